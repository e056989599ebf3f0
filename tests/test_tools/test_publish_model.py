"""tools/model_converters/publish_model.py: a model trained for 2 iterations, published as
``<name>-<sha8>.safetensors`` + JSON, gives tools/test.py the same metrics as its .pth.

The tools run through their ``main(argv)`` in this process (what ``python tools/X.py ARGS``
runs; a traceback would be an exception other than SystemExit escaping it): the 4
subprocesses here each paid ~8 s CPU of interpreter + mmengine start-up."""
import hashlib
import json

import pytest
import torch
from safetensors.torch import load_file

from helpers import load_tool, tool_main
from occworld4d.converters.common import run_cli

VAE_CFG = 'configs/dynamiccity/dynamiccity_vae_tiny_synthetic-city.py'
SMALL = ['train_dataloader.dataset.num_scenes=4', 'val_dataloader.dataset.num_scenes=2',
         'test_dataloader.dataset.num_scenes=2']
PUBLISH = 'tools/model_converters/publish_model.py'


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    work = tmp_path_factory.mktemp('vae')
    tool_main('tools/train.py', VAE_CFG, '--work-dir', work, '--cfg-options', *SMALL,
              'train_cfg.max_epochs=1', 'default_hooks.checkpoint.interval=1',
              'default_hooks.checkpoint.save_best=None', 'train_cfg.val_interval=100')
    ckpt = work / 'epoch_1.pth'
    meta = torch.load(ckpt, map_location='cpu', weights_only=False)['meta']
    assert meta['iter'] == 2
    return work, ckpt


def test_publish_drops_training_state_and_names_by_sha(trained, tmp_path, capsys):
    work, ckpt = trained
    assert tool_main(PUBLISH, ckpt, tmp_path / 'pub' / 'dc_vae_tiny.pth') == 0
    (weights, ) = (tmp_path / 'pub').glob('dc_vae_tiny-*.safetensors')
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert weights.name == f'dc_vae_tiny-{digest[:8]}.safetensors'
    info = json.loads((tmp_path / 'pub' / f'dc_vae_tiny-{digest[:8]}.json').read_text())
    assert info['sha256'] == digest and info['weights'] == weights.name
    assert info['meta']['iter'] == 2 and 'HexPlaneVAE' in info['config']
    assert {'optimizer', 'message_hub'} <= set(info['dropped'])
    full = torch.load(ckpt, map_location='cpu', weights_only=False)
    state = load_file(str(weights))
    assert set(state) == set(full['state_dict'])
    assert all(torch.equal(state[k], full['state_dict'][k]) for k in state)
    assert info['num_parameters'] == sum(v.numel() for v in state.values())
    assert not list((tmp_path / 'pub').glob('*.tmp*'))
    assert str(weights) in capsys.readouterr().out


def test_safetensors_gives_the_same_metrics_as_the_pth(trained, tmp_path):
    work, ckpt = trained
    tool_main(PUBLISH, ckpt, tmp_path / 'dc_vae_tiny')
    (weights, ) = tmp_path.glob('dc_vae_tiny-*.safetensors')
    metrics = []
    for i, path in enumerate((ckpt, weights)):
        out = tmp_path / f'metrics_{i}.json'
        tool_main('tools/test.py', VAE_CFG, path, '--out', out, '--work-dir',
                  tmp_path / f'w{i}', '--cfg-options', *SMALL)
        # the metrics (not the run's _date / _command / _checkpoint records)
        metrics.append({k: v for k, v in json.loads(out.read_text()).items()
                        if not k.startswith('_')})
    miou = [k for k in metrics[0] if k.endswith('mIoU')]
    assert miou, metrics[0]
    assert metrics[0] == metrics[1]


def test_bad_input_one_clear_message(tmp_path, capfd):
    bad = tmp_path / 'broken.pth'
    bad.write_bytes(b'PK\x03\x04 not a zip')
    # what the script's ``__main__`` runs: sys.exit(run_cli(main))
    code = run_cli(load_tool(PUBLISH).main, [str(bad), str(tmp_path / 'out')])
    err = capfd.readouterr().err
    assert code == 2 and 'broken.pth' in err
    assert 'Traceback' not in err
