"""PlanningMetric (L2 at 1 / 2 / 3 s, FPS) and the forecasting IoU per step, hand-computed."""
import numpy as np
import pytest
import torch

from occworld4d.evaluation import OccupancyMetric, PlanningMetric
from occworld4d.registry import METRICS


def sample(pred, gt, seconds=None):
    out = dict(pred_ego_trajectory=torch.tensor(pred, dtype=torch.float32),
               gt_ego_trajectory=torch.tensor(gt, dtype=torch.float32))
    if seconds is not None:
        out['forecast_seconds'] = seconds
    return out


GT = [[1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [4.0, 0.0]]
# sample A: errors 3-4-5 triangle at step 1, then 0, 1, 2 m along y
A = sample([[4.0, 4.0], [2.0, 0.0], [3.0, 1.0], [4.0, 2.0]], GT, seconds=0.5)
# sample B: errors 1, 1, 1, 3 m
B = sample([[2.0, 0.0], [2.0, 1.0], [3.0, -1.0], [7.0, 0.0]], GT, seconds=1.5)


def test_l2_hand_computed():
    metric = METRICS.build(dict(type='PlanningMetric', frames_per_second=2.0, horizons=(1, 2)))
    metric.process({}, [A, B])
    res = metric.compute_metrics(metric.results)
    # 1 s = steps 1..2: A mean(5, 0) = 2.5, B mean(1, 1) = 1 -> 1.75
    # 2 s = steps 1..4: A mean(5, 0, 1, 2) = 2, B mean(1, 1, 1, 3) = 1.5 -> 1.75
    assert res['L2_1s'] == pytest.approx(1.75)
    assert res['L2_2s'] == pytest.approx(1.75)
    # at the horizon: step 2: A 0, B 1 -> 0.5; step 4: A 2, B 3 -> 2.5
    assert res['L2_1s_final'] == pytest.approx(0.5)
    assert res['L2_2s_final'] == pytest.approx(2.5)
    assert res['L2_avg'] == pytest.approx(1.75)
    # 8 forecast frames in 2 s
    assert res['FPS'] == pytest.approx(4.0)


def test_batch_split_and_prefix():
    one = PlanningMetric(frames_per_second=2.0, horizons=(1, 2))
    one.process({}, [A, B])
    two = PlanningMetric(frames_per_second=2.0, horizons=(1, 2))
    two.process({}, [A])
    two.process({}, [B])
    assert one.compute_metrics(one.results) == two.compute_metrics(two.results)
    # the mmengine entry point adds the 'plan/' prefix
    three = PlanningMetric(frames_per_second=2.0, horizons=(1, 2), time_key=None)
    three.process({}, [A, B])
    res = three.evaluate(2)
    assert res['plan/L2_1s'] == pytest.approx(1.75) and 'plan/FPS' not in res


def test_bad_inputs():
    with pytest.raises(ValueError, match='whole numbers'):
        PlanningMetric(frames_per_second=2.0, horizons=(0.75, ))
    metric = PlanningMetric(frames_per_second=2.0, horizons=(1, 2, 3))
    metric.process({}, [A])
    with pytest.raises(ValueError, match='6 steps'):
        metric.compute_metrics(metric.results)  # 3 s needs 6 steps, the forecast has 4
    with pytest.raises(KeyError, match='gt_ego_trajectory'):
        metric.process({}, [dict(pred_ego_trajectory=torch.zeros(4, 2))])
    with pytest.raises(ValueError, match=r'\(F, 2\)'):
        metric.process({}, [sample([[0.0, 0.0]], GT)])


def test_forecast_iou_per_step_hand_computed():
    """OccWorld convention per future step: classes 0, 1 scored, 2 = free; a class absent
    from a step's ground truth scores 1; _avg = mean over the horizons."""
    gt = torch.tensor([[0, 0, 1, 2], [0, 2, 2, 2]]).view(2, 4, 1, 1)  # (F, X, Y, Z)
    pred = torch.tensor([[0, 1, 1, 2], [0, 0, 2, 2]]).view(2, 4, 1, 1)
    metric = OccupancyMetric(convention='occworld', num_classes=3, free_label=2,
                             class_names=('a', 'b', 'free'), per_frame=True, horizons=(1, 2))
    metric.process({}, [dict(pred_semantics=pred, gt_semantics=gt)])
    res = metric.compute_metrics(metric.results)
    # step 1: class 0 IoU 1/2, class 1 1/2 -> mIoU 0.5; occupied IoU 3/3 = 1
    # step 2: class 0 IoU 1/2, class 1 absent in gt -> 1 -> 0.75; occupied 1/2
    assert res['occworld/mIoU_t1'] == pytest.approx(0.5)
    assert res['occworld/mIoU_2'] == pytest.approx(0.75)
    assert res['occworld/IoU_1'] == pytest.approx(1.0)
    assert res['occworld/IoU_2'] == pytest.approx(0.5)
    assert res['occworld/mIoU_avg'] == pytest.approx(np.mean([0.5, 0.75]))
    assert res['occworld/IoU_avg'] == pytest.approx(0.75)
