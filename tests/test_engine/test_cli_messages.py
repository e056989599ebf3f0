"""Issue 15, item 9: the bare tracebacks of the audit are one message each (exit code 2) that
names the key, file or value and says what was expected; --amp on CPU is bf16 autocast."""
import glob

import numpy as np
import pytest
import torch
from torch import nn

from helpers import tool_main
from occworld4d.engine import CPUAutocastOptimWrapper

VQ_CFG = 'configs/occworld/occworld_vqvae_tiny_synthetic-city.py'


def _fails(capsys, *argv, tool='tools/train.py'):
    with pytest.raises(SystemExit) as err:
        tool_main(tool, *argv)
    assert err.value.code == 2
    return capsys.readouterr().err


def test_cfg_options_without_equals_or_wrong_type(capsys, tmp_path):
    err = _fails(capsys, VQ_CFG, '--work-dir', tmp_path, '--cfg-options', 'train_cfg.max_epochs')
    assert "--cfg-options 'train_cfg.max_epochs': expected KEY=VALUE" in err
    err = _fails(capsys, VQ_CFG, '--work-dir', tmp_path, '--cfg-options',
                 'train_cfg.max_epochs=abc')
    assert "train_cfg.max_epochs='abc': expected a number like the value of " \
           "train_cfg.max_epochs" in err and '(4)' in err
    err = _fails(capsys, VQ_CFG, 'none', '--cfg-options', 'x', tool='tools/test.py')
    assert 'expected KEY=VALUE' in err


def test_empty_training_set_is_one_message(capsys, tmp_path):
    err = _fails(capsys, VQ_CFG, '--work-dir', tmp_path, '--cfg-options',
                 'train_dataloader.dataset.num_scenes=0')
    assert 'the training set has no batches' in err and 'SyntheticCityDataset with 0' in err
    assert 'epoch_length' not in err


def test_truncated_npz_in_visualize_and_create_layout_cache(capsys, tmp_path):
    good = tmp_path / 'occ' / 'a' / 'labels.npz'
    good.parent.mkdir(parents=True)
    np.savez_compressed(good, semantics=np.zeros((200, 200, 16), np.uint8))
    data = good.read_bytes()
    good.write_bytes(data[:len(data) // 2])
    err = _fails(capsys, good, tool='tools/visualize.py')
    assert str(good) in err and 'not a readable npz archive' in err
    with pytest.raises(ValueError, match=r'labels\.npz: not a readable npz archive'):
        tool_main('tools/dataset_converters/create_layout_cache.py', '--occ-root',
                  tmp_path / 'occ', '--pattern', '**/labels.npz', '--key', 'semantics',
                  '--vocabulary', 'occ3d_nuscenes', '--out', tmp_path / 'lay')


def test_cpu_autocast_wrapper_runs_bf16():
    model = nn.Linear(4, 2)
    wrapper = CPUAutocastOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    with wrapper.optim_context(model):
        out = model(torch.randn(3, 4))
    assert out.dtype == torch.bfloat16
    before = model.weight.detach().clone()
    wrapper.update_params(out.float().pow(2).mean())
    assert model.weight.dtype == torch.float32 and not torch.equal(before, model.weight)


def test_train_amp_on_cpu_trains_with_bf16_autocast(capsys, tmp_path):
    if torch.cuda.is_available():
        pytest.skip('CPU-only behaviour')
    tool_main('tools/train.py', VQ_CFG, '--amp', '--work-dir', tmp_path, '--cfg-options',
              'train_dataloader.dataset.num_scenes=2', 'train_cfg.max_epochs=1',
              'train_cfg.val_interval=100', 'default_hooks.checkpoint.interval=1')
    out = capsys.readouterr().out
    assert '--amp on CPU: bf16 autocast' in out
    assert glob.glob(str(tmp_path / 'epoch_1.pth'))


def test_train_compile_compiles_the_train_step(tmp_path):
    # --compile = mmengine's cfg.compile; a compile dict given by --cfg-options stays (here
    # dynamo's eager backend: the tracing without inductor's minutes of C++ compilation)
    tool_main('tools/train.py', VQ_CFG, '--compile', '--work-dir', tmp_path, '--cfg-options',
              'compile.backend=eager', 'train_dataloader.dataset.num_scenes=2',
              'train_cfg.max_epochs=1', 'train_cfg.val_interval=100',
              'default_hooks.checkpoint.interval=1')
    log = next(tmp_path.glob('*/*.log')).read_text()
    assert 'Model has been "compiled"' in log
    assert glob.glob(str(tmp_path / 'epoch_1.pth'))
