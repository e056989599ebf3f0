"""IoU conventions against hand-computed confusion matrices; OccupancyMetric exactness."""
import numpy as np
import pytest
import torch

from occworld4d.evaluation.functional import (confusion_matrix, confusion_per_step,
                                              iou_from_confusion)
from occworld4d.evaluation.metrics import OccupancyMetric

# K = 4, free = 3 (free last, as Occ3D-nuScenes)
GT = torch.tensor([0, 0, 1, 1, 2, 3, 3, 3])
PRED = torch.tensor([0, 1, 1, 1, 3, 3, 0, 3])
CM = torch.tensor([[1, 1, 0, 0], [0, 2, 0, 0], [0, 0, 0, 1], [1, 0, 0, 2]])


def test_confusion_matrix_hand_example_and_mask():
    assert torch.equal(confusion_matrix(PRED, GT, 4), CM)
    assert confusion_matrix(PRED, GT, 4).dtype == torch.int64
    mask = torch.tensor([1, 1, 1, 1, 0, 1, 0, 1], dtype=torch.bool)
    expect = torch.tensor([[1, 1, 0, 0], [0, 2, 0, 0], [0, 0, 0, 0], [0, 0, 0, 2]])
    assert torch.equal(confusion_matrix(PRED, GT, 4, mask), expect)
    assert torch.equal(confusion_matrix(PRED.numpy(), GT.numpy(), 4, ignore_index=2),
                       CM - torch.tensor([[0] * 4, [0] * 4, [0, 0, 0, 1], [0] * 4]))


def test_confusion_matrix_errors():
    with pytest.raises(ValueError, match='span'):
        confusion_matrix(torch.tensor([0, 5]), torch.tensor([0, 1]), 4)
    with pytest.raises(ValueError, match='shape'):
        confusion_matrix(torch.zeros(3, dtype=torch.long), torch.zeros(4, dtype=torch.long), 4)
    # unknown labels (255) are fine where they are not scored: ignored or masked out
    gt = torch.tensor([255, 1, 1], dtype=torch.uint8)
    pred = torch.tensor([0, 1, 0], dtype=torch.uint8)
    expect = torch.tensor([[0, 0], [1, 1]])
    assert torch.equal(confusion_matrix(pred, gt, 2, ignore_index=255), expect)
    assert torch.equal(confusion_matrix(pred, gt, 2, mask=gt != 255), expect)
    with pytest.raises(ValueError, match=r'gt class ids span \[1, 255\]'):
        confusion_matrix(pred, gt, 2)


def test_confusion_per_step_equals_loop():
    g = torch.randint(0, 5, (3, 4, 4, 2))
    p = torch.randint(0, 5, (3, 4, 4, 2))
    m = torch.rand(3, 4, 4, 2) > 0.3
    per = confusion_per_step(p, g, 5, m)
    assert per.shape == (3, 5, 5)
    for t in range(3):
        assert torch.equal(per[t], confusion_matrix(p[t], g[t], 5, m[t]))


def test_conventions_hand_values():
    r = iou_from_confusion(CM, 'occworld', free_label=3)
    np.testing.assert_allclose(r.iou[:3], [1 / 3, 2 / 3, 0.0])
    assert np.isnan(r.iou[3])
    assert r.miou == pytest.approx(1 / 3)
    assert r.binary_iou == pytest.approx(4 / 6)  # TP 4, FP 1 (free->0), FN 1 (2->free)
    d = iou_from_confusion(CM, 'dynamiccity', free_label=3)
    assert d.miou == pytest.approx(1 / 3) and d.binary_iou == pytest.approx(4 / 6)
    s = iou_from_confusion(CM, 'ssc', free_label=3)
    assert s.iou[3] == pytest.approx(0.5)
    assert s.miou == pytest.approx((1 / 3 + 2 / 3 + 0 + 0.5) / 4)
    with pytest.raises(ValueError, match='convention'):
        iou_from_confusion(CM, 'kitti', free_label=3)


def test_absent_class_rules():
    # class 2 absent from the GT but predicted once
    cm = confusion_matrix(torch.tensor([0, 2, 3, 3]), torch.tensor([0, 1, 3, 3]), 4)
    occ = iou_from_confusion(cm, 'occworld', 3)
    assert occ.iou[2] == 1.0 and occ.miou == pytest.approx((1 + 0 + 1) / 3)
    dyn = iou_from_confusion(cm, 'dynamiccity', 3)
    assert np.isnan(dyn.iou[2]) and dyn.miou == pytest.approx((1 + 0) / 2)
    ssc = iou_from_confusion(cm, 'ssc', 3)
    assert ssc.miou == pytest.approx((1 + 0 + 1) / 3)  # 0, 1, free; class 2 skipped
    # free = 0 (DynamicCity layout): classes 1..K-1 are scored
    cm0 = confusion_matrix(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 2, 2]), 3)
    d0 = iou_from_confusion(cm0, 'dynamiccity', free_label=0)
    np.testing.assert_allclose(d0.iou[1:], [1 / 2, 1 / 2])
    assert np.isnan(d0.iou[0]) and d0.binary_iou == 1.0
    # no occupied GT at all: occworld binary 1, others NaN-free only if something was predicted
    empty = confusion_matrix(torch.tensor([3, 3]), torch.tensor([3, 3]), 4)
    assert iou_from_confusion(empty, 'occworld', 3).binary_iou == 1.0
    assert iou_from_confusion(empty, 'occworld', 3).miou == 1.0
    assert np.isnan(iou_from_confusion(empty, 'dynamiccity', 3).miou)


def _samples(n, T=3, K=5, seed=0, mask=False):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        gt = torch.randint(0, K, (T, 4, 4, 2), generator=g, dtype=torch.uint8)
        pred = torch.where(torch.rand(gt.shape, generator=g) < 0.6, gt,
                           torch.randint(0, K, gt.shape, generator=g, dtype=torch.uint8))
        s = dict(gt_semantics=gt, pred_semantics=pred)
        if mask:
            s['valid_mask'] = torch.rand(gt.shape, generator=g) > 0.2
        out.append(s)
    return out


@pytest.mark.parametrize('convention', ['occworld', 'dynamiccity', 'ssc'])
def test_metric_batch_size_independent(convention):
    samples = _samples(6, mask=True)
    kw = dict(convention=convention, num_classes=5, free_label=0, mask_key='valid_mask',
              per_frame=True, horizons=(1, 3))
    big = OccupancyMetric(**kw)
    big.process(None, samples)
    ones = OccupancyMetric(**kw)
    for s in samples:
        ones.process(None, [s])
    a, b = big.compute_metrics(big.results), ones.compute_metrics(ones.results)
    assert a == b
    tag = f'{convention}@valid_mask'
    assert all(k.startswith(tag + '/') for k in a)
    # the overall value matches a direct computation on all voxels at once
    gt = torch.stack([s['gt_semantics'] for s in samples])
    pred = torch.stack([s['pred_semantics'] for s in samples])
    m = torch.stack([s['valid_mask'] for s in samples])
    per_step = confusion_per_step(pred.transpose(0, 1), gt.transpose(0, 1), 5,
                                  m.transpose(0, 1))  # (T, K, K)
    steps = iou_from_confusion(per_step, convention, 0)
    if convention == 'occworld':
        assert a[f'{tag}/mIoU'] == pytest.approx(float(steps.miou.mean()))
    else:
        total = iou_from_confusion(per_step.sum(0), convention, 0)
        assert a[f'{tag}/mIoU'] == pytest.approx(float(total.miou))
        assert a[f'{tag}/IoU'] == pytest.approx(float(total.binary_iou))
    assert a[f'{tag}/mIoU_3'] == pytest.approx(float(steps.miou[2]))
    assert a[f'{tag}/mIoU_t2'] == pytest.approx(float(steps.miou[1]))
    assert a[f'{tag}/mIoU_avg'] == pytest.approx(float((steps.miou[0] + steps.miou[2]) / 2))


def test_occworld_absent_is_per_frame_over_the_whole_set():
    # K=3, free=2. Frame 0: class 1 only in sample B; frame 1: class 1 nowhere.
    a_gt = torch.tensor([[0, 0], [0, 2]]).view(2, 2, 1, 1)
    a_pr = torch.tensor([[0, 1], [0, 1]]).view(2, 2, 1, 1)
    b_gt = torch.tensor([[1, 2], [0, 0]]).view(2, 2, 1, 1)
    b_pr = torch.tensor([[0, 2], [0, 0]]).view(2, 2, 1, 1)
    metric = OccupancyMetric('occworld', num_classes=3, free_label=2, per_frame=True,
                             class_names=('a', 'b', 'free'))
    metric.process(None, [dict(gt_semantics=a_gt, pred_semantics=a_pr)])
    metric.process(None, [dict(gt_semantics=b_gt, pred_semantics=b_pr)])
    r = metric.compute_metrics(metric.results)
    # frame 0: class a: tp 1, gt 2, pred 2 -> 1/3; class b: tp 0, gt 1 -> 0 => 1/6
    assert r['occworld/mIoU_t1'] == pytest.approx((1 / 3 + 0) / 2)
    # frame 1: class a: tp 3, gt 3, pred 3 -> 1; class b absent -> 1 (OccWorld rule)
    assert r['occworld/mIoU_t2'] == pytest.approx(1.0)
    assert r['occworld/mIoU'] == pytest.approx((1 / 6 + 1) / 2)
    # dynamiccity on the same data skips b in frame 1 and sums all frames
    dyn = OccupancyMetric('dynamiccity', num_classes=3, free_label=2)
    dyn.process(None, [dict(gt_semantics=a_gt, pred_semantics=a_pr),
                       dict(gt_semantics=b_gt, pred_semantics=b_pr)])
    d = dyn.compute_metrics(dyn.results)
    # all frames: class a tp 4, gt 5, pred 5 -> 4/6; class b tp 0, gt 1, pred 2 -> 0
    assert d['dynamiccity/mIoU'] == pytest.approx((4 / 6 + 0) / 2)


def test_metric_vocabulary_defaults_and_errors():
    m = OccupancyMetric('dynamiccity', vocabulary='dynamiccity_carlasc')
    assert m.num_classes == 12 and m.free_label == 0 and m.class_names[10] == 'vehicle'
    with pytest.raises(ValueError, match='convention'):
        OccupancyMetric('miou', num_classes=3, free_label=0)
    m = OccupancyMetric('ssc', num_classes=3, free_label=0, mask_key='mask_camera')
    with pytest.raises(KeyError, match='mask_camera'):
        m.process(None, [dict(gt_semantics=torch.zeros(1, 2, 2, 2, dtype=torch.uint8),
                              pred_semantics=torch.zeros(1, 2, 2, 2, dtype=torch.uint8))])
    m = OccupancyMetric('ssc', num_classes=3, free_label=0, horizons=(4,))
    m.process(None, [dict(gt_semantics=torch.zeros(2, 2, 2, 2, dtype=torch.uint8),
                          pred_semantics=torch.zeros(2, 2, 2, 2, dtype=torch.uint8))])
    with pytest.raises(ValueError, match='horizon 4'):
        m.compute_metrics(m.results)


def test_metric_in_mmengine_evaluator_with_occdatasample():
    from mmengine.evaluator import Evaluator
    from occworld4d.structures import OccDataSample
    ev = Evaluator(dict(type='OccupancyMetric', _scope_='occworld4d', convention='dynamiccity',
                        num_classes=4, free_label=3))
    ds = OccDataSample()
    ds.gt_semantics = GT.view(1, 8, 1, 1).to(torch.uint8)
    ds.pred_semantics = PRED.view(1, 8, 1, 1).to(torch.uint8)
    ev.process([ds])
    res = ev.evaluate(1)
    assert res['dynamiccity/mIoU'] == pytest.approx(1 / 3)
    assert res['dynamiccity/IoU'] == pytest.approx(2 / 3)


def test_mask_removes_voxels_before_scoring():
    # masking voxel 4 (gt 2 -> free) and voxel 6 (gt free -> 0) of the hand example
    mask = torch.tensor([1, 1, 1, 1, 0, 1, 0, 1], dtype=torch.bool)
    cm = confusion_matrix(PRED, GT, 4, mask)
    dyn = iou_from_confusion(cm, 'dynamiccity', 3)
    np.testing.assert_allclose(dyn.iou[:2], [1 / 2, 2 / 3])
    assert np.isnan(dyn.iou[2])  # class 2 lost its only GT voxel: skipped
    assert dyn.miou == pytest.approx(7 / 12) and dyn.binary_iou == 1.0
    occ = iou_from_confusion(cm, 'occworld', 3)
    assert occ.miou == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    ssc = iou_from_confusion(cm, 'ssc', 3)
    assert ssc.iou[3] == 1.0 and ssc.miou == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    # the same through the metric with a mask field
    metric = OccupancyMetric('dynamiccity', num_classes=4, free_label=3, mask_key='mask_camera')
    metric.process(None, [dict(gt_semantics=GT.view(1, 8, 1, 1), pred_semantics=PRED.view(
        1, 8, 1, 1), mask_camera=mask.view(1, 8, 1, 1))])
    res = metric.compute_metrics(metric.results)
    assert res['dynamiccity@mask_camera/mIoU'] == pytest.approx(7 / 12)
    assert 'dynamiccity@mask_camera/IoU_class2' not in res


def test_metric_without_results_names_the_cause():
    from mmengine.evaluator import Evaluator
    ev = Evaluator(dict(type='OccupancyMetric', _scope_='occworld4d', convention='occworld',
                        num_classes=4, free_label=3, mask_key='mask_camera'))
    with pytest.raises(ValueError, match=r'OccupancyMetric \(occworld@mask_camera\): no samples '
                       'were processed'):
        ev.evaluate(0)
