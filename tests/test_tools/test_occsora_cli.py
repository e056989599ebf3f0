"""OccSora end to end through the command-line tools, at tiny size on the synthetic city:
train the 4D VQ tokenizer -> train the trajectory DiT on its frozen tokens -> sample with a
trajectory preset and with a trajectory file; HexPlane-only tasks fail with a clear message."""
import importlib.util
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
VQ_CFG = 'configs/occsora/occsora_vqvae_tiny_synthetic-city.py'
DIT_CFG = 'configs/occsora/occsora_dit_tiny_synthetic-city.py'


def cli(*args, expect_ok=True):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900)
    if expect_ok:
        assert proc.returncode == 0, f'{args}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}'
    return proc


def load(path):
    return torch.load(path, map_location='cpu', weights_only=False)


@pytest.mark.slow
def test_tokenizer_dit_trajectory_sampling(tmp_path, capsys):
    vq_dir, dit_dir = tmp_path / 'vq', tmp_path / 'dit'
    cli('tools/train.py', VQ_CFG, '--work-dir', str(vq_dir), '--cfg-options',
        'train_dataloader.dataset.num_scenes=4', 'val_dataloader.dataset.num_scenes=2',
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
        'default_hooks.checkpoint.interval=1')
    vq = load(vq_dir / 'epoch_1.pth')
    assert vq['meta']['iter'] == 2
    log = next(vq_dir.glob('*/*.log')).read_text()
    assert 'code_perplexity' in log and 'dead_codes' in log  # usage statistics logged

    cli('tools/train.py', DIT_CFG, '--work-dir', str(dit_dir), '--cfg-options',
        f'model.tokenizer_ckpt={vq_dir / "epoch_1.pth"}', 'train_cfg.max_epochs=1',
        'train_dataloader.dataset.num_scenes=4', 'default_hooks.checkpoint.interval=1')
    dit = load(dit_dir / 'epoch_1.pth')
    # the frozen stage-1 weights are the tokenizer checkpoint's, unchanged by stage 2
    for key, value in vq['state_dict'].items():
        assert torch.equal(dit['state_dict'][f'tokenizer.{key}'], value), key
    assert dit['state_dict']['denoiser.cond_embedder.0.weight'].shape == (128, 16)

    out = tmp_path / 'left'
    cli('tools/sample.py', DIT_CFG, str(dit_dir / 'epoch_1.pth'), '--task', 'trajectory',
        '--trajectory', 'left', '--steps', '3', '--num-samples', '2', '--no-render',
        '--out', str(out))
    with np.load(out / 'sample_1.npz') as f:
        sem = f['semantics']
    assert sem.shape == (8, 32, 32, 8) and sem.dtype == np.uint8 and sem.max() < 12

    traj = np.stack([np.arange(8.0), 0.2 * np.arange(8.0), np.zeros(8)], 1)
    np.savetxt(tmp_path / 'traj.txt', traj)
    sample = _sample_tool()  # the same main(), in this process (saves interpreter starts)
    ckpt = str(dit_dir / 'epoch_1.pth')
    sample.main([osp.join(ROOT, DIT_CFG), ckpt, '--task', 'trajectory', '--trajectory',
                 str(tmp_path / 'traj.txt'), '--steps', '2', '--no-render', '--out',
                 str(tmp_path / 'file')])
    assert osp.isfile(tmp_path / 'file' / 'sample_0.npz')

    # bad trajectory file, a condition the model lacks, a HexPlane-only task: one message each
    np.savetxt(tmp_path / 'short.txt', traj[:5])
    bad_runs = [
        (['--task', 'trajectory', '--trajectory', str(tmp_path / 'short.txt')],
         ['short.txt', '(8, 3)']),
        (['--task', 'command', '--command', 'LEFT'], ["['command']"]),
        (['--task', 'inpaint', '--input', str(out / 'sample_0.npz'), '--region', '0', '8', '0',
          '8', '0', '8'], ['latent adapter']),
    ]
    for args, words in bad_runs:
        with pytest.raises(SystemExit) as exc:
            sample.main([osp.join(ROOT, DIT_CFG), ckpt, *args, '--out', str(tmp_path / 'x')])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert all(w in err for w in words), (args, err)


def _sample_tool():
    spec = importlib.util.spec_from_file_location('occsora_sample_tool',
                                                  osp.join(ROOT, 'tools', 'sample.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
