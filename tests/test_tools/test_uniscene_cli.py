"""UniScene through the tools: tiny VAE train -> tiny OccDiT train on the frozen VAE -> sample a
layout-conditioned scene -> its LiDAR sweeps and camera views, all from the CLI entry points."""
import numpy as np
import pytest
import torch
from PIL import Image

from helpers import tool_main

VAE_CFG = 'configs/uniscene/uniscene_vae_tiny_synthetic-city.py'
DIT_CFG = 'configs/uniscene/uniscene_dit_tiny_synthetic-city.py'
SMALL = ['train_dataloader.dataset.num_scenes=4', 'train_cfg.max_epochs=1',
         'default_hooks.checkpoint.interval=1']


def test_vae_then_dit_then_layout_sample_to_lidar_and_cameras(tmp_path, real_path, capsys):
    vae_dir, dit_dir, out = tmp_path / 'vae', tmp_path / 'dit', tmp_path / 'out'
    # in this process, as the DiT run below (a subprocess paid ~8 s CPU of start-up)
    tool_main('tools/train.py', VAE_CFG, '--work-dir', str(vae_dir), '--cfg-options', *SMALL,
              'val_cfg=None', 'val_dataloader=None', 'val_evaluator=None')
    vae_ckpt = vae_dir / 'epoch_1.pth'
    tool_main('tools/train.py', DIT_CFG, '--work-dir', str(dit_dir), '--cfg-options', *SMALL,
         f'model.tokenizer_ckpt={vae_ckpt}')
    dit_ckpt = dit_dir / 'epoch_1.pth'
    state = torch.load(dit_ckpt, map_location='cpu', weights_only=False)['state_dict']
    vae_state = torch.load(vae_ckpt, map_location='cpu', weights_only=False)['state_dict']
    key = 'encoder.conv_in.weight' if 'encoder.conv_in.weight' in vae_state else \
        next(k for k in vae_state if k.startswith('encoder.'))
    # stage 2 trained on the frozen stage-1 tokenizer: its weights are the VAE's, unchanged
    assert torch.equal(state[f'tokenizer.{key}'], vae_state[key])

    # A layout-conditioned scene from a bare occupancy npz (the layout is built from it with the
    # config's UniSceneLayout), straight to the LiDAR and the six real cameras.
    from occworld4d.datasets import SyntheticCityDataset
    ds = SyntheticCityDataset(num_scenes=1, num_frames=8, grid_size=(32, 32, 8), seed=3)
    scene = ds[0]['inputs']['voxels'].numpy()
    npz = tmp_path / 'scene.npz'
    np.savez(npz, semantics=scene)
    calib = real_path.glob('nuscenes', 'keyframe_scene-0061', pattern='*.pkl',
                           what='real calibration infos')[0]
    capsys.readouterr()
    tool_main('tools/sample.py', DIT_CFG, str(dit_ckpt), '--task', 'layout', '--input',
              str(npz), '--steps', '2', '--seed', '0', '--out', str(out), '--no-render',
              '--lidar', '--cameras', calib, '--camera-scale', '0.05')
    assert 'LiDAR points' in capsys.readouterr().out
    sem = np.load(out / 'sample_0.npz')['semantics']
    assert sem.shape == (8, 32, 32, 8) and sem.max() < 12
    sensors = out / 'sample_0_sensors'
    bins = sorted((sensors / 'lidar').glob('*.bin'))
    assert len(bins) == 8
    pts = np.fromfile(bins[0], np.float32).reshape(-1, 4)
    occupied = (sem[0] != 0).sum()
    if occupied:
        assert len(pts) > 0
        # every return lies in the grid (51.2 x 51.2 x 3 m) on a non-free voxel's class
        assert np.all(np.abs(pts[:, :2]) <= 25.6 + 1e-3)
        assert np.all((pts[:, 2] >= -2.0 - 1e-3) & (pts[:, 2] <= 1.0 + 1e-3))
        assert set(np.unique(pts[:, 3]).astype(int)) <= set(np.unique(sem[0]).tolist()) - {0}
    cams = sorted((sensors / 'cameras' / '000').glob('*_semantic.png'))
    assert len(cams) == 6
    depth = np.asarray(Image.open(str(cams[0]).replace('_semantic', '_depth')))
    assert depth.dtype == np.uint16 and depth.shape == (45, 80)  # 1600 x 900 x 0.05
    assert len(list((sensors / 'cameras').glob('*/*.png'))) == 8 * 6 * 2

    # errors name what is wrong
    with pytest.raises(SystemExit) as err:
        tool_main('tools/sample.py', DIT_CFG, str(dit_ckpt), '--task', 'layout', '--input',
                  str(npz), '--steps', '1', '--out', str(out), '--no-render', '--lidar', 'nope')
    assert err.value.code == 2
    assert "--lidar: unknown LiDAR preset 'nope'" in capsys.readouterr().err
