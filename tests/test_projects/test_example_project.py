"""The worked example of projects/: a config that inherits a core method config, swaps the
quantizer for a component registered by the project, and trains through tools/train.py."""
import os
import os.path as osp
import subprocess
import sys

import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = 'projects/example_project/configs/occworld_fsq-vqvae_tiny_synthetic-city.py'


def test_fsq_codes_round_trip():
    sys.path.insert(0, ROOT)
    from projects.example_project.fsq import FSQuantizer
    q = FSQuantizer(code_dim=6, levels=(3, 5))
    assert q.num_codes == 15
    z = torch.randn(2, 6, 4, 4, requires_grad=True)
    out = q(z)
    assert out.indices.min() >= 0 and out.indices.max() < 15
    assert torch.allclose(q.get_codebook_entry(out.indices), out.quantized, atol=1e-6)
    out.quantized.sum().backward()  # straight-through rounding passes gradients
    assert z.grad.abs().sum() > 0


def test_project_config_trains_through_the_cli(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    cmd = [sys.executable, 'tools/train.py', CONFIG, '--work-dir', str(tmp_path),
           '--cfg-options', 'train_cfg.max_epochs=1', 'train_dataloader.dataset.num_scenes=4',
           'val_cfg=None', 'val_dataloader=None', 'val_evaluator=None']
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = torch.load(tmp_path / 'epoch_1.pth', map_location='cpu', weights_only=False)
    keys = ckpt['state_dict'].keys()
    assert any(k.startswith('quantizer.project_in') for k in keys), 'FSQ was not swapped in'
    assert not any(k.startswith('quantizer.embedding') for k in keys)
