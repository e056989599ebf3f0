"""The window cache returns exactly what the per-frame files give."""
import json
import os.path as osp

import numpy as np
import pytest
import torch

from occworld4d.datasets import (CarlaSCDataset, DataFormatError, Occ3DWaymoDataset,
                                 pack_window_cache)
from occworld4d.datasets.writers import write_carlasc_sequence, write_occ3d_waymo_frame


def _same(a, b):
    assert torch.equal(a['inputs']['voxels'], b['inputs']['voxels'])
    assert torch.equal(a['inputs']['trajectory'], b['inputs']['trajectory'])
    assert int(a['inputs']['command']) == int(b['inputs']['command'])
    assert a['data_samples'].metainfo['frame_ids'] == b['data_samples'].metainfo['frame_ids']


def test_carlasc_cache_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    for town, num in (('Town01_Heavy', 6), ('Town03_Light', 4)):
        poses = np.tile(np.eye(4), (num, 1, 1))
        poses[:, 1, 3] = np.arange(num) * 0.3
        write_carlasc_sequence(str(tmp_path / 'data' / 'Cartesian' / 'Train' / town / 'cartesian'),
                               rng.integers(0, 23, (num, 128, 128, 8)),
                               rng.integers(0, 2, (num, 128, 128, 8)), poses,
                               write_points=False)
    root, cache = str(tmp_path / 'data'), str(tmp_path / 'cache')
    kwargs = dict(num_frames=3, frame_step=1, pipeline=[dict(type='MakeLayout')])
    files = CarlaSCDataset(root, **kwargs)
    index = pack_window_cache(files, cache, progress=False)
    assert sorted(index['scenes']) == ['Train/Town01_Heavy', 'Train/Town03_Light']
    assert index['keys'] == ['semantics', 'valid_mask']
    arr = np.load(osp.join(cache, 'Train__Town01_Heavy.semantics.npy'), mmap_mode='r')
    assert arr.shape == (6, 128, 128, 8) and arr.dtype == np.uint8
    cached = CarlaSCDataset(root, cache_dir=cache, **kwargs)
    assert len(cached) == len(files) == 4 + 2
    for i in range(len(files)):
        a, b = files[i], cached[i]
        _same(a, b)
        assert torch.equal(a['data_samples'].valid_mask, b['data_samples'].valid_mask)
        assert torch.equal(a['inputs']['layout'], b['inputs']['layout'])
    # stride-2 windows read strided slices of the same arrays
    strided = dict(kwargs, frame_step=2)
    files2, cached2 = CarlaSCDataset(root, **strided), CarlaSCDataset(root, cache_dir=cache,
                                                                       **strided)
    _same(files2[1], cached2[1])
    # a cache that does not match the dataset's frames is refused
    with open(osp.join(cache, 'index.json')) as f:
        idx = json.load(f)
    idx['scenes']['Train/Town03_Light']['frame_ids'] = ['9', '8', '7', '6']
    with open(osp.join(cache, 'index.json'), 'w') as f:
        json.dump(idx, f)
    stale = CarlaSCDataset(root, cache_dir=cache, **kwargs)
    with pytest.raises(DataFormatError, match="cached frames of scene 'Train/Town03_Light'"):
        stale[5]
    with pytest.raises(DataFormatError, match='window-cache index not found'):
        CarlaSCDataset(root, cache_dir=str(tmp_path / 'nope'), **kwargs)[0]


def test_waymo_cache_keeps_npz_poses(tmp_path):
    grid = (200, 200, 16)
    poses = np.tile(np.eye(4), (3, 1, 1))
    poses[:, 0, 3] = [0, 1, 2.5]
    for t in range(3):
        lab = np.full(grid, 15, np.uint8)
        lab[t, 0, 0] = 13
        write_occ3d_waymo_frame(str(tmp_path / 'd' / 'training' / '000' / f'{t:03d}_04.npz'),
                                lab, np.ones(grid), np.ones(grid), np.ones(grid),
                                ego2global=poses[t], free_label=15)
    files = Occ3DWaymoDataset(str(tmp_path / 'd'), num_frames=3)
    index = pack_window_cache(files, str(tmp_path / 'c'), progress=False)
    assert 'ego_poses' in index['scenes']['000']['files']
    cached = Occ3DWaymoDataset(str(tmp_path / 'd'), num_frames=3, cache_dir=str(tmp_path / 'c'))
    _same(files[0], cached[0])
    np.testing.assert_allclose(cached[0]['inputs']['trajectory'][:, 0].numpy(), [0, 1, 2.5])
