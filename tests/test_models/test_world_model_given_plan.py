"""OccWorld(future_ego='given'): a plan-conditioned forecast. Each pose token carries the known
step to the next frame, in training and in the roll-out alike; the plan is returned as the
steps; windows without their future trajectory are refused."""
import pytest
import torch

from occworld4d.models.world_models import command_modes, step_displacements
from test_world_model import batch, tiny_model


def test_rollout_feeds_the_tokens_training_sees():
    torch.manual_seed(0)
    model = tiny_model(future_ego='given').eval()
    data = batch(T=6)  # H = 3 history + F = 3 future
    ids = model.tokenize(data['voxels'])
    steps = step_displacements(data['trajectory'])
    mode = command_modes(data['command'])
    # teacher forcing on the true future codes: the logits of frame H + k come from tokens
    # 0 .. H + k - 1 carrying steps 1 .. H + k; a roll-out fed the same codes must agree
    logits, *_ = model.teacher_forcing(data)  # (B, T - 1, K, h, w)
    f_ids, f_steps = model.forecast(ids[:, :3], steps[:, :3], mode, 3, plan=steps[:, 3:])
    torch.testing.assert_close(f_steps, steps[:, 3:])  # the plan is the output
    assert torch.equal(f_ids[:, 0], logits[:, 2].argmax(1))  # first future frame: same inputs
    # the pose tokens reach the code logits: the same weights with each token carrying its
    # own (past) step instead of the next one predict other logits
    model.future_ego = 'predicted'
    past, *_ = model.teacher_forcing(data)
    model.future_ego = 'given'
    assert (past - logits).abs().max() > 1e-4
    # cached and uncached roll-outs agree with a plan too
    u_ids, _ = model.forecast(ids[:, :3], steps[:, :3], mode, 3, plan=steps[:, 3:],
                              use_cache=False)
    assert torch.equal(u_ids, f_ids)


def test_predict_needs_the_future_trajectory_and_returns_the_plan():
    torch.manual_seed(0)
    model = tiny_model(future_ego='given').eval()
    out = model(batch(T=6), mode='predict')
    plan = step_displacements(batch(T=6)['trajectory'])[:, 3:].cumsum(1)
    torch.testing.assert_close(out[0].pred_ego_trajectory, plan[0])
    assert out[0].pred_semantics.shape == (3, 16, 16, 4)
    with pytest.raises(ValueError, match='H \\+ F = 6 frames'):
        model(batch(T=3), mode='predict')


def test_bad_options():
    with pytest.raises(ValueError, match='future_ego must be one of'):
        tiny_model(future_ego='oracle')
    with pytest.raises(ValueError, match='not the reference'):
        tiny_model(future_ego='given', ego_convention='reference')
