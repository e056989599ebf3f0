"""tools/analysis_tools/class_frequency.py: counts through the config's reader, class merge and
masks (hand-counted on a CarlaSC fixture), JSON / config-fragment outputs that the HexPlane VAE
accepts, and clear errors."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config

from helpers import ROOT, load_tool
from occworld4d.datasets.writers import write_carlasc_sequence
from occworld4d.registry import MODELS

class_frequency = load_tool('tools/analysis_tools/class_frequency.py')

GRID = (128, 128, 8)
TINY_VAE = osp.join(ROOT, 'configs', 'dynamiccity', 'dynamiccity_vae_tiny_synthetic-city.py')


@pytest.fixture(scope='module')
def carlasc(tmp_path_factory):
    """3 frames of raw CarlaSC labels; windows of 2 frames with stride 1 (frame 1 twice)."""
    root = tmp_path_factory.mktemp('carlasc')
    labels = np.zeros((3, ) + GRID, np.uint32)  # free
    labels[:, 0, 0, :4] = 17  # guardrail -> barrier (2)
    labels[:, 1, 0, :2] = 11  # wall -> barrier (2)
    labels[:, 2, 0, :3] = 6  # roadlines -> road (6)
    labels[1, 3, 0, :5] = 10  # vehicles -> vehicle (10), frame 1 only
    counts = np.zeros((3, ) + GRID, np.float32)
    counts[:, :4, 0, :] = 1.0  # observed: x 0..3 at y 0 (all z) = 32 voxels a frame
    counts[:, 0, 0, 3] = 0.0  # one guardrail voxel unobserved
    seq = osp.join(str(root), 'Cartesian', 'Train', 'Town01_Light', 'cartesian')
    poses = np.tile(np.eye(4), (3, 1, 1))
    write_carlasc_sequence(seq, labels, counts, poses, write_points=False)
    cfg = osp.join(str(root), 'carlasc_cfg.py')
    with open(cfg, 'w') as f:
        f.write(f"num_classes = 12\ntrain_dataloader = dict(dataset=dict(type='CarlaSCDataset', "
                f"data_root={str(root)!r}, num_frames=2, window_stride=1))\n")
    return cfg


def test_counts_follow_merge_masks_and_windows(carlasc, tmp_path, capsys):
    res = class_frequency.main([carlasc, '--out', str(tmp_path / 'f.json')])
    # Per frame, observed voxels: barrier 3 + 2, road 3, vehicle 5 (frame 1), free the rest of 31.
    # Windows (0, 1) and (1, 2): frames 0 and 2 once, frame 1 twice.
    expect = np.zeros(12, np.int64)
    expect[2], expect[6], expect[10] = 4 * 5, 4 * 3, 2 * 5
    expect[0] = 4 * 31 - expect[2] - expect[6] - expect[10]
    assert res['counts'].tolist() == expect.tolist()
    assert res['masks'] == ['valid_mask'] and res['num_windows'] == 2
    assert np.isclose(res['frequencies'].sum(), 1.0)
    out = json.load(open(tmp_path / 'f.json'))
    assert out['class_frequencies'] == expect.tolist()
    assert out['classes'][2] == 'barrier' and out['vocabulary'] == 'dynamiccity_carlasc'
    printed = capsys.readouterr().out
    assert 'barrier' in printed and f'model = dict(class_frequencies={expect.tolist()})' in printed
    # No mask: every voxel of the two windows.
    res = class_frequency.main([carlasc, '--mask', 'none'])
    assert res['num_voxels'] == 4 * int(np.prod(GRID)) and res['counts'][10] == 10
    assert res['counts'][2] == 4 * 6  # the unobserved guardrail voxel counts now
    res = class_frequency.main([carlasc, '--max-windows', '1'])
    assert res['num_windows'] == 1 and res['counts'][10] == 5


def test_synthetic_city_fragment_feeds_the_vae(tmp_path):
    frag = str(tmp_path / 'freq.py')
    res = class_frequency.main([TINY_VAE, '--out', frag, '--cfg-options',
                                'train_dataloader.dataset.num_scenes=2'])
    ds_cfg = Config.fromfile(TINY_VAE).train_dataloader.dataset
    from occworld4d.registry import DATASETS
    ds = DATASETS.build(dict(ds_cfg, num_scenes=2))
    hand = np.zeros(12, np.int64)
    for i in range(len(ds)):
        item = ds[i]
        keep = item['data_samples'].valid_mask
        hand += np.bincount(item['inputs']['voxels'][keep].numpy(), minlength=12)
    assert res['counts'].tolist() == hand.tolist() and hand[0] > hand[1] > 0
    freq = Config.fromfile(frag).model.class_frequencies
    assert freq == hand.tolist()
    cfg = Config.fromfile(TINY_VAE)
    cfg.model.class_frequencies = freq
    vae = MODELS.build(cfg.model)
    w = vae.loss_ce.class_weight  # (max p / p_c) ** (1/3); absent classes weigh 0
    nz = hand > 0
    assert torch.allclose(w[torch.from_numpy(nz)].double(),
                          torch.from_numpy((hand.max() / hand[nz]) ** (1 / 3)), rtol=1e-6)
    assert (w[torch.from_numpy(~nz)] == 0).all()


def test_clear_errors(carlasc, tmp_path, capsys):
    def error(*argv):
        with pytest.raises(SystemExit) as info:
            class_frequency.main([carlasc, *argv])
        err = capsys.readouterr().err
        assert info.value.code == 2, err
        return err

    err = error('--mask', 'mask_camera')
    assert "--mask ['mask_camera']: the dataset windows carry no such mask" in err
    assert "(they carry ['valid_mask'])" in err
    out = str(tmp_path / 'f.txt')
    assert f"--out '{out}': expected a .json or .py file name" in error('--out', out)
    # vehicle id 10 >= 5
    assert 'has labels in [0, 10] but 5 class slots are counted' in error('--num-classes', '5')
    # the config has no val split
    assert f'{carlasc} has no val_dataloader.dataset' in error('--split', 'val')
