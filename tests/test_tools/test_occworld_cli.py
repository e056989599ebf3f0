"""OccWorld through the command-line tools: tiny VQ-VAE train -> world model train on the
frozen tokenizer -> tools/test.py forecast (3 -> 3 frames) with per-step IoU / mIoU, planning L2
and FPS in the metrics JSON.

The tools' ``main(argv)`` run in this process (argument parsing included): three fresh Python
processes would spend most of this test importing torch and mmengine.
"""
import json
import os.path as osp

import pytest
import torch

from helpers import ROOT, tool_main

VAE_CFG = osp.join(ROOT, 'configs/occworld/occworld_vqvae_tiny_synthetic-city.py')
WM_CFG = osp.join(ROOT, 'configs/occworld/occworld_wm_tiny_synthetic-city.py')
NO_VAL = ['val_cfg=None', 'val_dataloader=None', 'val_evaluator=None']


@pytest.mark.slow
def test_tokenizer_world_model_forecast(tmp_path):
    vae_dir, wm_dir = tmp_path / 'vae', tmp_path / 'wm'
    tool_main('tools/train.py', VAE_CFG, '--work-dir', str(vae_dir), '--cfg-options',
              'train_dataloader.dataset.num_scenes=2', 'train_cfg.max_epochs=1',
              'default_hooks.checkpoint.interval=1', *NO_VAL)
    vae_ckpt = vae_dir / 'epoch_1.pth'
    tool_main('tools/train.py', WM_CFG, '--work-dir', str(wm_dir), '--cfg-options',
              f'model.tokenizer_ckpt={vae_ckpt}', 'train_dataloader.dataset.num_scenes=2',
              'train_cfg.max_epochs=1', 'default_hooks.checkpoint.interval=1', *NO_VAL)
    wm_ckpt = wm_dir / 'epoch_1.pth'
    # The world model trained on the stage-1 tokenizer, frozen: its weights are unchanged.
    vae = torch.load(vae_ckpt, map_location='cpu', weights_only=False)['state_dict']
    wm = torch.load(wm_ckpt, map_location='cpu', weights_only=False)['state_dict']
    for key, value in vae.items():
        assert torch.equal(wm[f'tokenizer.{key}'], value), key

    out = tmp_path / 'forecast.json'
    tool_main('tools/test.py', WM_CFG, str(wm_ckpt), '--work-dir', str(wm_dir), '--out', str(out),
              '--cfg-options', 'test_dataloader.dataset.num_scenes=2')
    metrics = json.loads(out.read_text())
    # the configs' randomness.seed=0: the same numbers with 1 and 2 threads (L2 to 2e-8)
    expected = {1: (0.18619, 0.30084, 0.71777), 2: (0.18680, 0.29585, 1.08487),
                3: (0.18566, 0.28934, 1.45644)}  # mIoU, IoU, L2 (m)
    for step, (miou, iou, l2) in expected.items():
        for key in (f'occworld/mIoU_t{step}', f'occworld/IoU_t{step}', f'occworld/mIoU_{step}',
                    f'plan/L2_{step}s'):
            assert key in metrics, (key, sorted(metrics))
        assert metrics[f'occworld/mIoU_t{step}'] == pytest.approx(miou, abs=1e-4), metrics
        assert metrics[f'occworld/mIoU_{step}'] == pytest.approx(miou, abs=1e-4), metrics
        assert metrics[f'occworld/IoU_t{step}'] == pytest.approx(iou, abs=1e-4), metrics
        assert metrics[f'plan/L2_{step}s'] == pytest.approx(l2, abs=1e-4), metrics
    assert metrics['occworld/mIoU_avg'] == pytest.approx(
        sum(metrics[f'occworld/mIoU_{s}'] for s in (1, 2, 3)) / 3)
    assert metrics['plan/FPS'] > 0
