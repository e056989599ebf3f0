"""train -> checkpoint -> resume -> test -> sample through the command-line tools, on the
tiny synthetic-city DynamicCity configs (what `make demo` runs, at a smaller size)."""
import json
import os.path as osp

import numpy as np
import pytest
import torch

from helpers import ROOT, run_cli, tool_main

VAE_CFG = 'configs/dynamiccity/dynamiccity_vae_tiny_synthetic-city.py'
DIT_CFG = 'configs/dynamiccity/dynamiccity_dit_tiny_synthetic-city.py'
SMALL = ['train_dataloader.dataset.num_scenes=4', 'val_dataloader.dataset.num_scenes=2',
         'test_dataloader.dataset.num_scenes=2']


def load(path):
    return torch.load(path, map_location='cpu', weights_only=False)


@pytest.mark.slow
def test_train_resume_test_sample(tmp_path, capsys):
    """In this process (each tool's ``main(argv)``, as ``python tools/X.py`` calls it): the
    process boundary is covered by test_bad_inputs_give_one_clear_message and the README /
    demo tests; here each of the 6 steps saved ~8 s of interpreter + mmengine start-up."""
    vae_dir, dit_dir = tmp_path / 'vae', tmp_path / 'dit'
    common = ['--work-dir', str(vae_dir), '--cfg-options', *SMALL,
              'default_hooks.checkpoint.interval=1', 'default_hooks.checkpoint.save_best=None',
              'train_cfg.val_interval=100']
    tool_main('tools/train.py', VAE_CFG, *common[:3], 'train_cfg.max_epochs=1', *common[3:])
    first = load(vae_dir / 'epoch_1.pth')
    assert first['meta']['epoch'] == 1 and first['meta']['iter'] == 2
    assert not list(vae_dir.glob('*.tmp*')), 'a temporary checkpoint file was left behind'

    # Resume from the latest checkpoint: continues at iteration 2 with the saved optimizer.
    tool_main('tools/train.py', VAE_CFG, *common[:3], 'train_cfg.max_epochs=2', *common[3:],
              '--resume')
    second = load(vae_dir / 'epoch_2.pth')
    assert second['meta']['iter'] == 4 and second['meta']['epoch'] == 2
    state = second['optimizer']['state']
    assert all(int(s['step']) == 4 for s in state.values()), 'optimizer state was not resumed'

    out = tmp_path / 'metrics.json'
    tool_main('tools/test.py', VAE_CFG, str(vae_dir / 'epoch_2.pth'), '--out', str(out),
              '--work-dir', str(vae_dir), '--cfg-options', *SMALL)
    metrics = json.loads(out.read_text())
    # the config's randomness.seed=0, 4 iterations: bit-identical run to run on 1 thread; 2
    # threads move mIoU / IoU by 1.7e-4 / 1.1e-4 (a few voxels' argmax), seed 1 by 7.7e-3 / 0.13
    assert metrics['dynamiccity@valid_mask/mIoU'] == pytest.approx(0.02887, abs=1e-3), metrics
    assert metrics['dynamiccity@valid_mask/IoU'] == pytest.approx(0.3715, abs=1e-3), metrics

    # A checkpoint of another model is refused with a message naming it.
    capsys.readouterr()
    with pytest.raises(SystemExit) as bad:
        tool_main('tools/test.py', DIT_CFG, str(vae_dir / 'epoch_2.pth'), '--cfg-options',
                  'test_dataloader.dataset.num_scenes=2', 'test_evaluator.allow_untrained=True')
    assert bad.value.code == 2
    assert 'does not match the model of the config' in capsys.readouterr().err

    tool_main('tools/train.py', DIT_CFG, '--work-dir', str(dit_dir), '--cfg-options',
              f'model.tokenizer_ckpt={vae_dir / "epoch_2.pth"}', 'train_cfg.max_epochs=1',
              'train_dataloader.dataset.num_scenes=4', 'default_hooks.checkpoint.interval=1')
    sample_dir = tmp_path / 'sample'
    tool_main('tools/sample.py', DIT_CFG, str(dit_dir / 'epoch_1.pth'), '--task', 'command',
              '--command', 'LEFT', '--steps', '4', '--out', str(sample_dir))
    with np.load(sample_dir / 'sample_0.npz') as f:
        sem = f['semantics']
    assert sem.shape == (8, 32, 32, 8) and sem.dtype == np.uint8 and sem.max() < 12


def test_bad_inputs_give_one_clear_message(tmp_path):
    proc = run_cli('tools/train.py', 'configs/does_not_exist.py', expect_ok=False)
    assert proc.returncode == 2 and 'does_not_exist.py' in proc.stderr
    assert 'Traceback' not in proc.stderr
    proc = run_cli('tools/test.py', VAE_CFG, str(tmp_path / 'missing.pth'), expect_ok=False)
    assert proc.returncode == 2 and 'missing.pth' in proc.stderr
    bad_cfg = tmp_path / 'bad_type.py'
    bad_cfg.write_text(f"_base_ = ['{osp.join(ROOT, VAE_CFG)}']\nmodel = dict(type='NoSuchModel')\n")
    proc = run_cli('tools/train.py', str(bad_cfg), '--work-dir', str(tmp_path / 'w'),
                   expect_ok=False)
    assert proc.returncode != 0 and 'NoSuchModel' in proc.stderr
