"""OccSora end to end through the command-line tools, at tiny size on the synthetic city:
train the 4D VQ tokenizer -> train the trajectory DiT on its frozen tokens -> sample with a
trajectory preset and with a trajectory file; bad inputs fail with one clear message."""
import os.path as osp

import numpy as np
import pytest
import torch

from helpers import ROOT, load_tool, tool_main

VQ_CFG = 'configs/occsora/occsora_vqvae_tiny_synthetic-city.py'
DIT_CFG = 'configs/occsora/occsora_dit_tiny_synthetic-city.py'


def load(path):
    return torch.load(path, map_location='cpu', weights_only=False)


@pytest.mark.slow
def test_tokenizer_dit_trajectory_sampling(tmp_path, capsys):
    """Every tool through its ``main(argv)`` in this process (what ``python tools/X.py``
    runs): the 3 subprocesses each paid ~8 s CPU of interpreter + mmengine start-up."""
    vq_dir, dit_dir = tmp_path / 'vq', tmp_path / 'dit'
    tool_main('tools/train.py', VQ_CFG, '--work-dir', str(vq_dir), '--cfg-options',
              'train_dataloader.dataset.num_scenes=4', 'val_dataloader.dataset.num_scenes=2',
              'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
              'default_hooks.checkpoint.interval=1')
    vq = load(vq_dir / 'epoch_1.pth')
    assert vq['meta']['iter'] == 2
    log = next(vq_dir.glob('*/*.log')).read_text()
    assert 'code_perplexity' in log and 'dead_codes' in log  # usage statistics logged

    tool_main('tools/train.py', DIT_CFG, '--work-dir', str(dit_dir), '--cfg-options',
              f'model.tokenizer_ckpt={vq_dir / "epoch_1.pth"}', 'train_cfg.max_epochs=1',
              'train_dataloader.dataset.num_scenes=4', 'default_hooks.checkpoint.interval=1')
    dit = load(dit_dir / 'epoch_1.pth')
    # the frozen stage-1 weights are the tokenizer checkpoint's, unchanged by stage 2
    for key, value in vq['state_dict'].items():
        assert torch.equal(dit['state_dict'][f'tokenizer.{key}'], value), key
    assert dit['state_dict']['denoiser.cond_embedder.0.weight'].shape == (128, 16)

    out = tmp_path / 'left'
    tool_main('tools/sample.py', DIT_CFG, str(dit_dir / 'epoch_1.pth'), '--task',
              'trajectory', '--trajectory', 'left', '--steps', '3', '--num-samples', '2',
              '--no-render', '--out', str(out))
    with np.load(out / 'sample_1.npz') as f:
        sem = f['semantics']
    assert sem.shape == (8, 32, 32, 8) and sem.dtype == np.uint8 and sem.max() < 12

    traj = np.stack([np.arange(8.0), 0.2 * np.arange(8.0), np.zeros(8)], 1)
    np.savetxt(tmp_path / 'traj.txt', traj)
    sample = load_tool('tools/sample.py')  # the same main() in this process (no start-up)
    ckpt = str(dit_dir / 'epoch_1.pth')
    sample.main([osp.join(ROOT, DIT_CFG), ckpt, '--task', 'trajectory', '--trajectory',
                 str(tmp_path / 'traj.txt'), '--steps', '2', '--no-render', '--out',
                 str(tmp_path / 'file')])
    assert osp.isfile(tmp_path / 'file' / 'sample_0.npz')
    # --amp: bf16 autocast of the networks, the same seed: the same scene up to rounding
    sample.main([osp.join(ROOT, DIT_CFG), ckpt, '--task', 'trajectory', '--trajectory',
                 str(tmp_path / 'traj.txt'), '--steps', '2', '--no-render', '--amp', '--out',
                 str(tmp_path / 'file_amp')])
    with np.load(tmp_path / 'file' / 'sample_0.npz') as a, \
            np.load(tmp_path / 'file_amp' / 'sample_0.npz') as b:
        assert (a['semantics'] == b['semantics']).mean() >= 0.98

    # bad trajectory file, a condition the model lacks, a region outside the window: one
    # message each
    np.savetxt(tmp_path / 'short.txt', traj[:5])
    bad_runs = [
        (['--task', 'trajectory', '--trajectory', str(tmp_path / 'short.txt')],
         ['short.txt', '(8, 3)']),
        (['--task', 'command', '--command', 'LEFT'],
         ['cannot run --task command', 'the tasks it can run are', 'trajectory']),
        (['--task', 'inpaint', '--input', str(out / 'sample_0.npz'), '--region', '0', '8', '0',
          '8', '0', '9'], ['region z range [0, 9)', '[0, 8)']),
    ]
    for args, words in bad_runs:
        with pytest.raises(SystemExit) as exc:
            sample.main([osp.join(ROOT, DIT_CFG), ckpt, *args, '--out', str(tmp_path / 'x')])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert all(w in err for w in words), (args, err)
