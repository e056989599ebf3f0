import json
import os.path as osp

from helpers import ROOT, load_tool


def test_prints_sampling_and_decoding_seconds(capsys):
    tool = load_tool('tools/analysis_tools/benchmark_sampling.py')
    tool.main([osp.join(ROOT, 'configs/dynamiccity/dynamiccity_dit_tiny_synthetic-city.py'),
               '--steps', '3', '--repeats', '1', '--threads', '1', '--device', 'cpu'])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out['sampler'] == 'dpmpp_2m' and out['steps'] == 3 and out['cfg'] == 4.0
    assert out['conditions'] == ['command', 'trajectory']
    assert out['sample_s'] > 0 and out['decode_s'] > 0
    assert abs(out['total_s'] - out['sample_s'] - out['decode_s']) < 2e-3


def test_checkpoint_may_be_a_work_dir(tmp_path, capsys):
    """--checkpoint WORK_DIR loads its latest checkpoint (the README needs no file names)."""
    import pytest
    import torch

    from occworld4d.apis.cli import load_config
    from occworld4d.registry import MODELS
    tool = load_tool('tools/analysis_tools/benchmark_sampling.py')
    config = osp.join(ROOT, 'configs/dynamiccity/dynamiccity_dit_tiny_synthetic-city.py')
    args = [config, '--steps', '1', '--repeats', '1', '--threads', '1', '--device', 'cpu']
    with pytest.raises(SystemExit):
        tool.main(args + ['--checkpoint', str(tmp_path)])  # a folder without checkpoints
    assert f'--checkpoint: work dir {str(tmp_path)!r} has no checkpoint to load' in \
        capsys.readouterr().err
    cfg = load_config(config)
    model_cfg = cfg.model.copy()
    model_cfg.pop('tokenizer_ckpt', None)
    torch.manual_seed(0)
    state = MODELS.build(model_cfg).state_dict()
    torch.save(dict(meta=dict(epoch=2), state_dict=state), tmp_path / 'epoch_2.pth')
    tool.main(args + ['--checkpoint', str(tmp_path)])
    log = capsys.readouterr()
    assert 'epoch_2.pth' in log.out + log.err
    assert json.loads(log.out.strip().splitlines()[-1])['steps'] == 1
