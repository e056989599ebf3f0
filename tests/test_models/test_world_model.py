"""OccWorld world model: reference parameter count, tiny forward/backward and training,
causality of the temporal attention, cached == uncached rollouts, forecast outputs."""
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config

import occworld4d  # noqa: F401
from occworld4d.evaluation import OccupancyMetric, PlanningMetric
from occworld4d.models.world_models import (OccWorld, OccWorldTransformer, command_modes,
                                            step_displacements)
from occworld4d.registry import MODELS
from occworld4d.structures import OccDataSample

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY_TF = dict(type='OccWorldTransformer', token_shape=(16, 8, 8), channels=(16, 32, 64),
               num_frames=7, num_codes=32, temporal_layers=2, pose_layers=1, pose_dim=16,
               pose_out_dim=16, num_heads=2)


def tiny_model(**kw) -> OccWorld:
    cfg = dict(
        type='OccWorld',
        data_preprocessor=dict(type='OccDataPreprocessor', num_classes=6),
        tokenizer=dict(type='OccWorldVQVAE', num_classes=6, height=4, embed_dim=4, ch=8,
                       ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(8, ), resolution=16,
                       z_channels=16, quantizer=dict(num_codes=32, code_dim=16)),
        transformer=TINY_TF,
        pose_encoder=dict(type='PoseEncoder', in_channels=5, out_channels=16),
        pose_decoder=dict(type='PoseDecoder', in_channels=16),
        history_frames=3, future_frames=3)
    cfg.update(kw)
    return MODELS.build(cfg)


def batch(B=2, T=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    voxels = torch.randint(0, 6, (B, T, 16, 16, 4), generator=g)
    traj = torch.zeros(B, T, 3)
    traj[..., 0] = torch.arange(T) * 2.0  # 2 m a frame forward
    traj[1, :, 1] = 0.1 * torch.arange(T) ** 2  # drifting left
    return dict(voxels=voxels, trajectory=traj, command=torch.tensor([1, 2]))


def test_reference_parameter_count():
    cfg = Config.fromfile(osp.join(ROOT, 'configs/_base_/models/occworld_world_model.py'))
    cfg.model.tokenizer_ckpt = None
    model = MODELS.build(cfg.model)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert model.world_model_parameters() == 58_217_306  # the number, exactly
    assert count(model.transformer) == 58_182_740
    assert count(model.pose_encoder) == 17_280 and count(model.pose_decoder) == 17_286
    assert count(model.tokenizer) == 14_168_272
    assert not any(p.requires_grad for p in model.tokenizer.parameters())


def test_forward_backward_tiny():
    model = tiny_model()
    model.train()
    losses = model.loss(batch())
    assert set(losses) >= {'loss_ce', 'loss_plan', 'plan_l2', 'code_acc'}
    assert torch.isfinite(losses['loss_ce']) and losses['loss_ce'] > 0
    # untrained: CE near log(32), pose term = 0.1 x L2
    assert abs(losses['loss_ce'].item() - math.log(32)) < 1.0
    assert torch.allclose(losses['loss_plan'], 0.1 * losses['plan_l2'])
    (losses['loss_ce'] + losses['loss_plan']).backward()
    for name in ('transformer', 'pose_encoder', 'pose_decoder'):
        grads = [p.grad for p in getattr(model, name).parameters()]
        assert all(g is not None for g in grads), name
    assert all(p.grad is None for p in model.tokenizer.parameters())
    assert not model.tokenizer.training  # frozen tokenizer stays in eval mode


def test_training_overfits_one_batch():
    torch.manual_seed(0)
    model = tiny_model(pose_loss_weight=1.0)  # the pose head learns within 20 steps
    model.train()
    data = batch(T=4)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    first = None
    for _ in range(20):
        losses = model.loss(data)
        loss = losses['loss_ce'] + losses['loss_plan']
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first if first is not None else (losses['loss_ce'].item(),
                                                 losses['plan_l2'].item())
    assert losses['loss_ce'].item() < 0.5 * first[0], (first, losses)
    assert losses['plan_l2'].item() < 0.5 * first[1], (first, losses)


def test_causal_masking():
    """Changing frame k's tokens or pose never changes the outputs of frames < k."""
    torch.manual_seed(0)
    tf = MODELS.build(TINY_TF).eval()
    x, p = torch.randn(2, 6, 16, 8, 8), torch.randn(2, 6, 16)
    with torch.no_grad():
        logits, pose = tf(x, p)
        for k in range(6):
            x2, p2 = x.clone(), p.clone()
            x2[:, k] += torch.randn_like(x2[:, k])
            p2[:, k] += 1.0
            l2, q2 = tf(x2, p2)
            assert torch.equal(l2[:, :k], logits[:, :k]), k
            assert torch.equal(q2[:, :k], pose[:, :k]), k
            assert not torch.allclose(l2[:, k], logits[:, k])  # frame k itself does change
            assert not torch.allclose(q2[:, k], pose[:, k])
    # and through the gradient: the loss at frame 1 has no gradient on frames 2..5
    x.requires_grad_(True)
    logits, _ = tf(x, p)
    logits[:, 1].sum().backward()
    assert x.grad[:, 2:].abs().max() == 0 and x.grad[:, :2].abs().max() > 0


def test_step_with_cache_matches_full_forward():
    torch.manual_seed(0)
    tf = MODELS.build(TINY_TF).eval()
    x, p = torch.randn(2, 6, 16, 8, 8), torch.randn(2, 6, 16)
    with torch.no_grad():
        logits, pose = tf(x, p)
        cache = tf.new_cache()
        out = [tf.step(x[:, :3], p[:, :3], cache)]
        out += [tf.step(x[:, t:t + 1], p[:, t:t + 1], cache) for t in (3, 4, 5)]
    assert cache.length == 6 and cache.nbytes() > 0
    for t, (lg, ps) in zip((2, 3, 4, 5), out):
        torch.testing.assert_close(lg, logits[:, t], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ps, pose[:, t], atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match='num_frames=7'):
        tf.step(x[:, :2], p[:, :2], cache)  # 6 + 2 frames > the context


def test_cached_and_uncached_rollouts_are_identical():
    torch.manual_seed(0)
    model = tiny_model().eval()
    data = batch(T=3)
    ids = model.tokenize(data['voxels'])
    steps = step_displacements(data['trajectory'])
    mode = command_modes(data['command'])
    a_ids, a_steps = model.forecast(ids, steps, mode, 5, use_cache=True)
    b_ids, b_steps = model.forecast(ids, steps, mode, 5, use_cache=False)
    assert a_ids.shape == (2, 5, 8, 8) and a_steps.shape == (2, 5, 2)
    assert torch.equal(a_ids, b_ids)
    torch.testing.assert_close(a_steps, b_steps, atol=1e-5, rtol=1e-5)
    # the forecast depends on the history
    c_ids, _ = model.forecast(ids.flip(1), steps, mode, 5, use_cache=True)
    assert not torch.equal(c_ids, a_ids)
    with pytest.raises(ValueError, match='num_frames=7'):
        model.forecast(ids, steps, mode, 6)


def test_predict_outputs_feed_the_metrics():
    torch.manual_seed(0)
    model = tiny_model().eval()
    data = batch(T=6)
    samples = []
    for i in range(2):
        ds = OccDataSample(metainfo=dict(vocabulary=None))
        ds.gt_semantics = data['voxels'][i].to(torch.uint8)
        ds.valid_mask = torch.ones(6, 16, 16, 4, dtype=torch.bool)
        samples.append(ds)
    with torch.no_grad():
        out = model(dict(data), samples, mode='predict')
    for i, ds in enumerate(out):
        assert ds.pred_semantics.shape == (3, 16, 16, 4) and ds.pred_semantics.dtype == torch.uint8
        assert torch.equal(ds.gt_semantics, data['voxels'][i, 3:].to(torch.uint8))
        assert ds.valid_mask.shape == (3, 16, 16, 4)
        assert ds.pred_ego_trajectory.shape == (3, 2) and ds.forecast_seconds > 0
    # ground truth: positions of frames 3, 4, 5 from frame 2 (2 m steps forward)
    torch.testing.assert_close(out[0].gt_ego_trajectory,
                               torch.tensor([[2.0, 0.0], [4.0, 0.0], [6.0, 0.0]]))
    occ = OccupancyMetric(convention='occworld', num_classes=6, free_label=0, per_frame=True,
                          horizons=(1, 2, 3))
    plan = PlanningMetric(frames_per_second=1.0, horizons=(1, 2, 3))
    dicts = [ds.to_dict() for ds in out]
    occ.process({}, dicts)
    plan.process({}, dicts)
    res = occ.compute_metrics(occ.results)
    assert {'occworld/mIoU_1', 'occworld/mIoU_3', 'occworld/mIoU_avg'} <= set(res)
    assert set(plan.compute_metrics(plan.results)) >= {'L2_1s', 'L2_3s', 'FPS'}


def test_history_only_windows_and_bad_inputs():
    model = tiny_model().eval()
    data = batch(T=3)
    ds = [OccDataSample(), OccDataSample()]
    for i in range(2):
        ds[i].gt_semantics = data['voxels'][i].to(torch.uint8)
    out = model.predict(data, ds)  # no future frames: predictions, no targets
    assert out[0].pred_semantics.shape[0] == 3 and 'gt_semantics' not in out[0]
    assert 'gt_ego_trajectory' not in out[0]
    with pytest.raises(ValueError, match='history_frames=3'):
        model.predict(batch(T=5))
    with pytest.raises(ValueError, match=r'2\.\.8 frames'):
        model.loss(batch(T=9))
    bad = batch(T=4)
    bad['command'] = torch.tensor([1, 7])
    with pytest.raises(ValueError, match='command ids'):
        model.loss(bad)
    bad = batch(T=4)
    bad['trajectory'] = bad['trajectory'][:, :3]
    with pytest.raises(ValueError, match='trajectory'):
        model.loss(bad)
    with pytest.raises(ValueError, match='num_frames=7'):
        tiny_model(history_frames=5, future_frames=4)
    with pytest.raises(ValueError, match='pose_dim'):
        OccWorldTransformer(token_shape=(16, 8, 8), pose_dim=8)


def test_step_displacements_and_modes_hand_computed():
    # frame 0 at the origin heading +x; frame 1 at (1, 0) turned left by 90 deg; frame 2 one
    # metre further along the new heading (+y in frame 0's axes).
    traj = torch.tensor([[[0.0, 0.0, 0.0], [1.0, 0.0, math.pi / 2], [1.0, 1.0, math.pi / 2]]])
    steps = step_displacements(traj)
    torch.testing.assert_close(steps, torch.tensor([[[0.0, 0.0], [1.0, 0.0], [1.0, 0.0]]]))
    # STATIC, FORWARD -> straight (2), LEFT -> 1, RIGHT -> 0 (VAD's one-hot order)
    assert command_modes(torch.tensor([0, 1, 2, 3])).tolist() == [2, 2, 1, 0]


def test_tokenizer_checkpoint_is_loaded(tmp_path):
    src = tiny_model()
    for p in src.tokenizer.parameters():
        p.data.normal_()
    path = str(tmp_path / 'tok.pth')
    torch.save(dict(state_dict={f'module.{k}': v for k, v in src.tokenizer.state_dict().items()}),
               path)
    model = tiny_model(tokenizer_ckpt=path)
    model.init_weights()
    for (k, a), b in zip(src.tokenizer.state_dict().items(), model.tokenizer.state_dict().values()):
        assert torch.equal(a, b), k
