"""Layout agreement of samples with their requested BEV layout (UniScene, issue 13):
hand-checked IoUs, and the layout computed from voxels equals UniSceneLayout's."""
import numpy as np
import pytest

from occworld4d.datasets.transforms import UniSceneLayout
from occworld4d.evaluation.functional.scene_stats import bev_layouts, layout_agreement
from occworld4d.rendering.bev_layout import LAYOUT_CHANNELS
from occworld4d.structures import get_vocabulary

L = len(LAYOUT_CHANNELS) + 1  # 0 = empty, 1..12 channels


def test_layout_agreement_hand_checked():
    # One scene, one frame, 2 x 3 cells. Reference: road (1) x 3, building (5) x 2, empty x 1.
    ref = np.array([[[[1, 1, 1], [5, 5, 0]]]])
    got = np.array([[[[1, 1, 5], [5, 0, 0]]]])
    res = layout_agreement(got, ref, L)
    # road: inter 2 (cells 0, 1), union 3 (cells 0, 1, 2) -> 2/3
    # building: inter 1 (cell 3), union 3 (cells 2, 3, 4) -> 1/3; empty ignored
    assert res['iou'][1] == pytest.approx(2 / 3)
    assert res['iou'][5] == pytest.approx(1 / 3)
    assert np.isnan(res['iou'][0]) and np.isnan(res['iou'][2])
    assert res['miou'] == pytest.approx(0.5)
    assert res['sample_miou'][0] == pytest.approx(0.5)
    assert res['intersection'][1] == 2 and res['union'][5] == 3


def test_layout_agreement_pools_over_scenes_and_counts_extra_classes():
    ref = np.array([[[[1, 1]]], [[[1, 0]]]])  # (2, 1, 1, 2)
    got = np.array([[[[1, 1]]], [[[10, 0]]]])  # scene 1 draws a vehicle where road was asked
    res = layout_agreement(got, ref, L)
    assert res['iou'][1] == pytest.approx(2 / 3)  # inter 2, union 3 over both scenes
    assert res['iou'][10] == pytest.approx(0.0)  # vehicle only in the sample: IoU 0 counts
    assert res['miou'] == pytest.approx(1 / 3)
    assert res['miou_requested'] == pytest.approx(2 / 3)  # vehicle was never requested
    np.testing.assert_allclose(res['sample_miou'], [1.0, 0.0])
    # identical layouts agree fully
    assert layout_agreement(ref, ref, L)['miou'] == pytest.approx(1.0)


def test_layout_agreement_errors():
    with pytest.raises(ValueError, match='shape'):
        layout_agreement(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 2, 3)), L)
    with pytest.raises(ValueError, match='values span'):
        layout_agreement(np.full((1, 1, 2, 2), 13), np.zeros((1, 1, 2, 2)), L)


def test_bev_layouts_match_the_transform():
    vocab = get_vocabulary('dynamiccity_carlasc')
    rng = np.random.default_rng(0)
    sem = rng.integers(0, vocab.num_classes, size=(3, 2, 8, 8, 4)).astype(np.uint8)
    sem[0, :, :, :, :] = 0
    sem[0, 0, 0, 0, 1] = vocab.classes.index('vehicle')
    for out in (None, 4):
        got = bev_layouts(sem, 'dynamiccity_carlasc', out)
        for i in range(len(sem)):
            want = UniSceneLayout(source='occupancy', out_size=out)(
                dict(semantics=sem[i], vocabulary='dynamiccity_carlasc'))['layout']
            np.testing.assert_array_equal(got[i], want)
    # scene 0: one vehicle voxel -> its (pooled) cell holds the vehicle channel, the rest empty
    lay = bev_layouts(sem[:1], 'dynamiccity_carlasc', 4)
    assert lay[0, 0, 0, 0] == 1 + LAYOUT_CHANNELS.index('vehicle')
    assert lay[0, 0].sum() == lay[0, 0, 0, 0] and lay[0, 1].sum() == 0


def test_score_samples_layout_keys(tmp_path, capsys):
    """score_samples.py: samples that are the val windows themselves with their own layouts
    agree fully (1.0); a sample given another window's layout agrees less; the val split's
    pipeline layout matches the recomputed one (1.0); random-training-scene baseline < 1."""
    import json
    import sys
    sys.path.insert(0, 'tests')
    from helpers import tool_main

    from occworld4d.datasets.synthetic_city import SyntheticCityDataset
    ds = SyntheticCityDataset(num_scenes=3, num_frames=8, grid_size=(32, 32, 8), seed=1,
                              vocabulary='dynamiccity_carlasc')
    wins = [ds.load_window(ds.get_data_info(i)) for i in range(3)]
    make = UniSceneLayout(source='occupancy', out_size=16)
    lays = [make(dict(semantics=w['semantics'], vocabulary='dynamiccity_carlasc'))['layout']
            for w in wins]
    for i, w in enumerate(wins):
        np.savez(tmp_path / f'own_{i}.npz', semantics=w['semantics'], layout=lays[i])
    np.savez(tmp_path / 'other.npz', semantics=wins[0]['semantics'], layout=lays[1])
    import os.path as osp
    cfg = tmp_path / 'layout_cfg.py'
    base = osp.abspath('configs/_base_/datasets/synthetic_city_tiny.py')
    cfg.write_text(
        f"_base_ = [{base!r}]\n"
        "val_dataloader = dict(dataset=dict(num_scenes=3, pipeline=[\n"
        "    dict(type='UniSceneLayout', source='occupancy', out_size=16),\n"
        "    dict(type='PackOccInputs')]))\n"
        "train_dataloader = dict(dataset=dict(num_scenes=4))\n")
    cfg = str(cfg)
    opts = ['--no-val-commands']
    out = tmp_path / 'own.json'
    tool_main('tools/analysis_tools/score_samples.py', str(tmp_path / 'own_*.npz'), '--config',
              cfg, '--json', out, *opts)
    own = json.loads(out.read_text())
    assert 'layout agreement mIoU' in capsys.readouterr().out
    assert own['layout_miou'] == pytest.approx(1.0) and own['num_layouts'] == 3
    assert own['layout_size'] == [16, 16] and own['val_layout_miou'] == pytest.approx(1.0)
    assert own['layout_iou_road'] == pytest.approx(1.0)
    assert own['layout_iou_bicycle'] is None  # no bicycle in the synthetic city
    assert own['layout_miou_random_train'] < 0.9
    assert own['layout_miou_requested'] == pytest.approx(1.0)
    # the random scene's mean over the requested classes only: never below the strict one
    assert own['layout_miou_random_train'] <= own['layout_miou_requested_random_train'] < 1.0
    assert all(p['layout_miou'] == pytest.approx(1.0) for p in own['per_sample'])
    out = tmp_path / 'other.json'
    tool_main('tools/analysis_tools/score_samples.py', str(tmp_path / 'other.npz'), '--config',
              cfg, '--json', out, *opts)
    other = json.loads(out.read_text())
    assert other['layout_miou'] < 0.9
