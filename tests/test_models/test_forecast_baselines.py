"""Forecasting baselines (CopyLastForecaster, EgoWarpForecaster) on hand-made scenes with
hand-checked values, and through ``tools/test.py CONFIG none``."""
import json
import math

import pytest
import torch

from helpers import tool_main
from occworld4d.evaluation import OccupancyMetric, PlanningMetric
from occworld4d.models.world_models import constant_velocity_plan, step_displacements
from occworld4d.registry import MODELS
from occworld4d.structures import OccDataSample

COPY_CFG = 'configs/occworld/occworld_baseline-copylast_tiny_synthetic-city.py'
WARP_CFG = 'configs/occworld/occworld_baseline-egowarp_tiny_synthetic-city.py'
WM_CFG = 'configs/occworld/occworld_wm_tiny_synthetic-city.py'


def build(kind, H, F, **kw):
    return MODELS.build(dict(type=kind, history_frames=H, future_frames=F, **kw))


def window(voxels, poses=None, trajectory=None, pc_range=None, voxel_size=None, masks=None):
    """One packed window (as PackOccInputs makes it): (inputs, data sample)."""
    T = voxels.shape[0]
    traj = torch.zeros(T, 3) if trajectory is None else torch.as_tensor(trajectory).float()
    ds = OccDataSample(metainfo=dict(scene='hand-made', free_label=0, pc_range=pc_range,
                                     voxel_size=voxel_size))
    ds.gt_semantics = voxels.to(torch.uint8)
    for key, value in (masks or {}).items():
        ds.set_field(value, key)
    if poses is not None:
        ds.ego_poses = torch.as_tensor(poses, dtype=torch.float64)
    return dict(voxels=voxels.to(torch.uint8), trajectory=traj,
                command=torch.tensor(1)), ds


def run(model, *windows):
    """model.test_step on a batch of windows (data preprocessor + predict)."""
    data = dict(inputs=dict(voxels=[w[0]['voxels'] for w in windows],
                            trajectory=[w[0]['trajectory'] for w in windows],
                            command=[w[0]['command'] for w in windows]),
                data_samples=[w[1] for w in windows])
    return model.test_step(data)


def scores(samples, num_classes, F, mask_key=None):
    occ = OccupancyMetric(convention='occworld', num_classes=num_classes, free_label=0,
                          per_frame=True, horizons=tuple(range(1, F + 1)), mask_key=mask_key)
    plan = PlanningMetric(frames_per_second=1.0, horizons=tuple(range(1, F + 1)))
    dicts = [ds.to_dict() for ds in samples]
    occ.process({}, dicts)
    plan.process({}, dicts)
    return occ.compute_metrics(occ.results), plan.compute_metrics(plan.results)


def pose(x, y, yaw, z=0.0):
    """World-from-ego (4, 4) of a planar pose."""
    c, s = math.cos(yaw), math.sin(yaw)
    return [[c, -s, 0, x], [s, c, 0, y], [0, 0, 1, z], [0, 0, 0, 1]]


# ----------------------------------------------------------------------------- copy last
def test_copy_last_two_frame_toy_hand_checked_iou():
    # 6 voxels in a row, classes 0 (free) .. 3; history frame 0, future frame 1.
    f0 = torch.tensor([1, 1, 2, 0, 3, 0]).view(6, 1, 1)
    f1 = torch.tensor([1, 2, 2, 2, 0, 0]).view(6, 1, 1)
    model = build('CopyLastForecaster', 1, 1)
    out = run(model, window(torch.stack([f0, f1])))
    assert torch.equal(out[0].pred_semantics, f0[None].to(torch.uint8))
    assert torch.equal(out[0].gt_semantics, f1[None].to(torch.uint8))  # scored on frame 1 only
    occ, plan = scores(out, 4, 1)
    # gt/pred pairs: (1,1) (2,1) (2,2) (2,0) (0,3) (0,0)
    # class 1: TP 1, union 2 -> 1/2; class 2: TP 1, gt 3 + pred 1 - 1 -> 1/3;
    # class 3: absent from the ground truth -> 1 (OccWorld convention, the false positive
    # does not count); mIoU = (1/2 + 1/3 + 1) / 3 = 11/18.
    assert occ['occworld/IoU_class1'] == pytest.approx(0.5)
    assert occ['occworld/IoU_class2'] == pytest.approx(1 / 3)
    assert occ['occworld/IoU_class3'] == pytest.approx(1.0)
    assert occ['occworld/mIoU_t1'] == pytest.approx(11 / 18)
    assert occ['occworld/mIoU_1'] == pytest.approx(11 / 18)
    # binary: occupied gt {0, 1, 2, 3}, occupied pred {0, 1, 2, 4}: TP 3, FP 1, FN 1 -> 3/5
    assert occ['occworld/IoU_t1'] == pytest.approx(0.6)
    # no trajectory (zeros): the plan stands still and so does the truth
    assert plan['L2_1s'] == pytest.approx(0.0)


def test_copy_last_history_only_windows_and_no_training():
    vox = torch.randint(0, 4, (2, 4, 4, 2))
    model = build('CopyLastForecaster', 2, 3)
    out = run(model, window(vox))  # H frames: predictions, no targets
    assert out[0].pred_semantics.shape == (3, 4, 4, 2)
    assert all(torch.equal(out[0].pred_semantics[k], vox[1].to(torch.uint8)) for k in range(3))
    assert 'gt_semantics' not in out[0] and 'gt_ego_trajectory' not in out[0]
    assert sum(p.numel() for p in model.parameters()) == 0 and not model.state_dict()
    with pytest.raises(RuntimeError, match='nothing to train'):
        model(dict(voxels=vox[None].long()), mode='loss')
    with pytest.raises(ValueError, match='history_frames=2'):
        model(dict(voxels=torch.zeros(1, 4, 4, 4, 2, dtype=torch.long)), mode='predict')


# ----------------------------------------------------------------------------- ego warp
def test_ego_warp_one_voxel_translation_reproduces_the_static_world():
    # A static world raster (world voxel = ego voxel size, 1 m x 1 m x 0.5 m) seen by an ego
    # that drives +x by exactly one voxel a frame, far from the world origin (float64 poses).
    # Ego grid 6 x 4 x 2 over x [-3, 3), y [-2, 2), z [-0.5, 0.5): frame t, voxel (i, j, k)
    # sees world cell (i + t, j, k).
    g = torch.Generator().manual_seed(0)
    world = torch.randint(1, 5, (6 + 5, 4, 2), generator=g)  # no free: every voxel scores
    frames = torch.stack([world[t:t + 6] for t in range(5)])  # (5, 6, 4, 2)
    poses = [pose(1000.0 + t, -500.0, 0.0, z=3.0) for t in range(5)]
    pc_range, vs = [-3.0, -2.0, -0.5, 3.0, 2.0, 0.5], [1.0, 1.0, 0.5]
    H, F = 2, 3
    # the overlap with the last history frame (frame 1): x-slices i < 6 - (t - 1)
    overlap = torch.zeros(F, 6, 4, 2, dtype=torch.bool)
    for k in range(F):
        overlap[k, :6 - (k + 1)] = True
    full_mask = torch.cat([torch.ones(H, 6, 4, 2, dtype=torch.bool), overlap])
    model = build('EgoWarpForecaster', H, F)
    out = run(model, window(frames, poses, pc_range=pc_range, voxel_size=vs,
                            masks=dict(valid_mask=full_mask)))
    pred = out[0].pred_semantics
    for k in range(F):
        shift = k + 1  # future frame H + k is (k + 1) voxels ahead of frame H - 1
        assert torch.equal(pred[k, :6 - shift], frames[H + k, :6 - shift].to(torch.uint8)), k
        assert (pred[k, 6 - shift:] == 0).all(), 'the entering edge must be free'
    occ, _ = scores(out, 5, F, mask_key='valid_mask')
    for step in (1, 2, 3):
        assert occ[f'occworld@valid_mask/mIoU_{step}'] == pytest.approx(1.0)
        assert occ[f'occworld@valid_mask/IoU_{step}'] == pytest.approx(1.0)
    # copy-last on the same window is wrong on the overlap: the warp is what is tested
    copy = run(build('CopyLastForecaster', H, F), window(frames, poses))[0].pred_semantics
    assert not torch.equal(copy[0, :5], frames[H, :5].to(torch.uint8))


def test_ego_warp_90_degree_left_turn_on_the_spot():
    # Square grid 4 x 4 x 2 over [-2, 2)^2 x [0, 1); the ego turns 90 degrees left (yaw
    # 0 -> pi/2) without moving. Target voxel (i, j) has its centre (i - 1.5, j - 1.5) in the
    # turned ego frame; in the world (= the unturned frame) that is (1.5 - j, i - 1.5), the
    # centre of source voxel (3 - j, i): warped[i, j, k] = last[3 - j, i, k]; nothing is free.
    g = torch.Generator().manual_seed(1)
    last = torch.randint(1, 6, (4, 4, 2), generator=g)
    frames = torch.stack([last, torch.zeros_like(last)])  # the future frame is not read
    poses = [pose(7.0, 3.0, 0.0), pose(7.0, 3.0, math.pi / 2)]
    model = build('EgoWarpForecaster', 1, 1)
    out = run(model, window(frames, poses, pc_range=[-2, -2, 0, 2, 2, 1],
                            voxel_size=[1, 1, 0.5]))
    pred = out[0].pred_semantics[0]
    expected = torch.empty_like(last)
    for i in range(4):
        for j in range(4):
            expected[i, j] = last[3 - j, i]
    assert torch.equal(pred, expected.to(torch.uint8))
    # the same as a clockwise quarter turn of the (x, y) raster ...
    assert torch.equal(pred, torch.rot90(last, -1, (0, 1)).to(torch.uint8))
    # ... so a voxel ahead and left of the ego (x 1.5, y 0.5) ends up on its right (y < 0)
    assert pred[2, 0, 0] == last[3, 2, 0]


def test_ego_warp_bad_inputs_are_clear():
    vox = torch.randint(0, 3, (2, 4, 4, 2))
    model = build('EgoWarpForecaster', 1, 1)
    geo = dict(pc_range=[-2, -2, 0, 2, 2, 1], voxel_size=[1, 1, 0.5])
    with pytest.raises(ValueError, match='ego_poses'):
        run(model, window(vox, **geo))  # a dataset without poses
    with pytest.raises(ValueError, match='pc_range'):
        run(model, window(vox, [pose(0, 0, 0)] * 2, pc_range=[-2, -2, 0, 2, 2, 1],
                          voxel_size=[0.5, 1, 0.5]))  # grid of 8 voxels, the voxels are 4
    with pytest.raises(ValueError, match='history \\+ future_frames=2'):
        run(model, window(vox[:1], [pose(0, 0, 0)], **geo))  # no future poses
    with pytest.raises(RuntimeError, match='nothing to train'):
        model(dict(voxels=vox[None].long()), mode='loss')


# ----------------------------------------------------------------------------- planning
def test_constant_velocity_plan_hand_computed_l2():
    # (x, y, yaw) of frames 0..5 in frame 0's axes; H = 3 history frames, F = 3 future.
    # The ego turns left at frame 1 and then drives along frame 0's +y axis:
    #   history step into frame 2 = R(-90 deg) (0, 2) = (2, 0) in frame 1's axes;
    #   future steps: R(-90 deg) (0, 2) = (2, 0), R(-90 deg) (-1, 2) = (2, 1),
    #   R(-90 deg) (-2, 1) = (1, 2).
    half = math.pi / 2
    traj = torch.tensor([[0, 0, 0], [1, 0, half], [1, 2, half], [1, 4, half], [0, 6, half],
                         [-2, 7, half]], dtype=torch.float32)
    steps = step_displacements(traj[None])
    plan = constant_velocity_plan(steps, 3, 3)[0]
    torch.testing.assert_close(plan, torch.tensor([[2.0, 0.0], [4.0, 0.0], [6.0, 0.0]]),
                               atol=1e-5, rtol=0)
    vox = torch.zeros(6, 2, 2, 1, dtype=torch.long)
    out = run(build('CopyLastForecaster', 3, 3), window(vox, trajectory=traj))
    torch.testing.assert_close(out[0].pred_ego_trajectory, plan)
    # truth = cumulative future steps: (2, 0), (4, 1), (5, 3); errors 0, 1, sqrt(10)
    torch.testing.assert_close(out[0].gt_ego_trajectory,
                               torch.tensor([[2.0, 0.0], [4.0, 1.0], [5.0, 3.0]]),
                               atol=1e-5, rtol=0)
    _, l2 = scores(out, 2, 3)
    assert l2['L2_1s'] == pytest.approx(0.0, abs=1e-5)
    assert l2['L2_2s'] == pytest.approx(0.5, abs=1e-5)
    assert l2['L2_3s'] == pytest.approx((1 + math.sqrt(10)) / 3, abs=1e-5)
    assert l2['L2_3s_final'] == pytest.approx(math.sqrt(10), abs=1e-5)
    # one history frame: no motion is known, the plan stands still
    assert torch.equal(constant_velocity_plan(steps, 1, 2), torch.zeros(1, 2, 2))


# ----------------------------------------------------------------------------- tools/test.py
def _exit_code(capfd, *args):
    """``tools/<tool>.py ARGS`` in this process, expected to stop with SystemExit: its code
    and what it printed to stderr. (A traceback would be an exception other than SystemExit
    escaping ``main``, which fails the test.)"""
    capfd.readouterr()
    with pytest.raises(SystemExit) as info:
        tool_main(*args)
    return info.value.code, capfd.readouterr().err


def test_tools_test_runs_the_baselines_without_a_checkpoint(tmp_path, capfd, monkeypatch):
    """tools/test.py / train.py through ``main(argv)`` in this process (the same code path
    as ``python tools/test.py``): 5 runs that each paid ~8 s CPU of interpreter + mmengine
    start-up as subprocesses."""
    small = ['--cfg-options', 'test_dataloader.dataset.num_scenes=2']
    res = {}
    for name, cfg in (('copy', COPY_CFG), ('warp', WARP_CFG)):
        out = tmp_path / f'{name}.json'
        capfd.readouterr()
        tool_main('tools/test.py', cfg, 'none', '--work-dir', tmp_path / name, '--out', out,
                  *small)
        captured = capfd.readouterr()
        log = captured.out + captured.err
        assert 'occworld/mIoU_1' in log and 'plan/L2_1s' in log and 'metrics written to' in log
        res[name] = json.loads(out.read_text())
        assert res[name]['_checkpoint'] == 'none'
        for key in ('occworld/mIoU_1', 'occworld/mIoU_3', 'occworld/IoU_road',
                    'occworld/IoU_building', 'plan/L2_1s', 'plan/L2_3s'):
            assert key in res[name], (key, sorted(res[name]))
    # same planner, same numbers
    assert res['copy']['plan/L2_3s'] == pytest.approx(res['warp']['plan/L2_3s'])
    # the ego moves, the city does not: warping by the true poses beats copying
    assert res['warp']['occworld/mIoU_1'] > res['copy']['occworld/mIoU_1'] + 0.1
    # no weights: the seeded tiny val scenes' numbers (78.4 vs 46.3 % mIoU at step 1)
    for name, step1, step3 in (('warp', 0.78444, 0.73146), ('copy', 0.46348, 0.33640)):
        assert res[name]['occworld/mIoU_1'] == pytest.approx(step1, abs=1e-4), res[name]
        assert res[name]['occworld/mIoU_3'] == pytest.approx(step3, abs=1e-4), res[name]
    assert res['copy']['plan/L2_3s'] == pytest.approx(0.026376, abs=1e-5)
    # a model with parameters refuses "none", with one clear message
    code, err = _exit_code(capfd, 'tools/test.py', WM_CFG, 'none', '--work-dir',
                           tmp_path / 'wm', *small)
    assert code == 2, err[-2000:]
    assert 'checkpoint "none" is only for models without parameters' in err
    assert 'OccWorld' in err and 'Traceback' not in err
    # DDP cannot wrap a model without parameters: said before anything is built (LOCAL_RANK
    # as torchrun sets it, so that the launcher setup leaves this process's environment alone)
    monkeypatch.setenv('LOCAL_RANK', '0')
    code, err = _exit_code(capfd, 'tools/test.py', COPY_CFG, 'none', '--launcher', 'pytorch')
    assert code == 2 and 'runs in one process' in err
    # nothing to train: tools/train.py says so instead of an empty-optimizer traceback
    code, err = _exit_code(capfd, 'tools/train.py', COPY_CFG, '--work-dir', tmp_path / 'train')
    assert code == 2 and 'no trainable parameters' in err
    assert 'Traceback' not in err
