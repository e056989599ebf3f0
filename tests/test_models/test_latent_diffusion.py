"""LatentDiffusion: frozen tokenizer, cached latents, condition dropping, masked loss that
falls on a fixed batch, predict attaches pred_semantics, tokenizer checkpoint loading."""
import os.path as osp
import sys

import pytest
import torch

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'test_apis'))
from tiny_models import C, VOXELS, random_voxels, tiny_model_cfg  # noqa: E402

import occworld4d.diffusion  # noqa: E402,F401  (registers the engine)
from occworld4d.registry import MODELS  # noqa: E402
from occworld4d.structures import OccDataSample  # noqa: E402


def batch(B=2):
    return dict(voxels=random_voxels(B), trajectory=torch.randn(B, VOXELS[0], 3),
                command=torch.tensor([1, 2][:B]), layout=torch.rand(B, VOXELS[0], 8, 8))


def test_loss_falls_on_fixed_batch_and_tokenizer_stays_frozen():
    torch.manual_seed(0)
    model = MODELS.build(tiny_model_cfg(cond_drop_prob=0.0))
    tok_before = {k: v.clone() for k, v in model.tokenizer.state_dict().items()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert all(p.requires_grad is False for p in model.tokenizer.parameters())
    opt = torch.optim.AdamW(trainable, lr=3e-3)
    inputs = batch()
    g = torch.Generator().manual_seed(0)
    t = torch.randint(0, 50, (2,), generator=g)
    noise = torch.randn(2, C, 8, 8, generator=g)
    x0 = model.latents_from_inputs(inputs)
    model.train()
    assert not model.tokenizer.training
    losses = []
    for _ in range(40):
        out = model.diffusion.training_losses(
            model.denoiser, x0, t=t, noise=noise, mask=model.valid_mask(),
            cond=model.conditions_from_inputs(inputs), zero_masked_inputs=True)
        loss = out['loss'].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses[::8]
    # The mode='loss' path (random t, noise, drops) returns the documented keys.
    out = model(inputs, mode='loss')
    assert set(out) == {'loss_diffusion', 'mse', 'vb'} and out['loss_diffusion'].requires_grad
    for k, v in model.tokenizer.state_dict().items():
        assert torch.equal(v, tok_before[k]), k


def test_cached_latents_equal_encoding():
    model = MODELS.build(tiny_model_cfg(latent_scale=0.5))
    v = random_voxels()
    x0 = model.latents_from_inputs(dict(voxels=v))
    planes = model.tokenizer.encode(v)
    assert torch.allclose(model.latents_from_inputs(dict(planes)), x0)
    assert torch.allclose(model.latents_from_inputs(dict(latent=planes)), x0)  # latent cache
    assert torch.allclose(model.latents_from_inputs(dict(latent=x0 / 0.5)), x0)
    assert x0.shape == (2, C, 8, 8)
    # Padding of the rollout is exactly zero; decode(encode) == tokenizer reconstruction.
    assert torch.count_nonzero(x0[:, :, ~model.adapter.valid_mask()]) == 0
    assert torch.allclose(model.decode_latent(x0), model.tokenizer.reconstruct(v), atol=1e-6)
    with pytest.raises(KeyError, match='voxels'):
        model.latents_from_inputs(dict(command=torch.zeros(2)))


def test_condition_drop_masks_follow_probability(monkeypatch):
    model = MODELS.build(tiny_model_cfg(cond_drop_prob=dict(command=1.0, trajectory=0.0,
                                                            default=1.0)))
    assert model.cond_drop_prob == dict(trajectory=0.0, command=1.0, layout=1.0, hexplane=1.0)
    seen = {}

    def fake_losses(net, x0, cond=None, mask=None, **kw):
        seen.update(cond)
        seen['mask'] = mask
        z = x0.new_zeros(x0.shape[0], requires_grad=True)
        return dict(loss=z, mse=z)

    monkeypatch.setattr(model.diffusion, 'training_losses', fake_losses)
    inputs = batch()
    inputs['prev_voxels'] = random_voxels(seed=3)
    model(inputs, mode='loss')
    assert seen['drop']['command'].all() and not seen['drop']['trajectory'].any()
    assert seen['drop']['layout'].all() and seen['drop']['hexplane'].all()  # the default
    assert set(seen['drop']) == {'trajectory', 'command', 'layout', 'hexplane'}
    assert seen['hexplane'].shape == (2, C, 8, 8)  # encoded from prev_voxels
    assert seen['mask'].shape == (1, 1, 8, 8) and int(seen['mask'].sum()) == 52


def test_predict_and_sample():
    torch.manual_seed(0)
    model = MODELS.build(tiny_model_cfg()).eval()
    inputs = batch()
    samples = [OccDataSample(), OccDataSample()]
    out = model(inputs, samples, mode='predict')
    assert out[0].pred_semantics.shape == VOXELS and out[0].pred_semantics.dtype == torch.uint8
    assert torch.equal(out[1].gt_semantics, inputs['voxels'][1].to(torch.uint8))
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    a = model.sample(1, cond=dict(command=torch.tensor([2])), generator=g1)
    b = model.sample(1, cond=dict(command=torch.tensor([2])), generator=g2)
    assert torch.equal(a, b)  # reproducible with a generator
    assert torch.count_nonzero(a[:, :, ~model.adapter.valid_mask()]) == 0
    with pytest.raises(ValueError, match='condition keys'):
        model.sample(1, cond=dict(cmd=torch.tensor([2])))


def test_tokenizer_ckpt_loaded_by_init_weights(tmp_path):
    src = MODELS.build(dict(type='TinyHexTokenizer'))
    torch.nn.init.constant_(src.enc.weight, 0.25)
    path = str(tmp_path / 'tok.pth')
    torch.save(dict(state_dict=src.state_dict()), path)
    model = MODELS.build(tiny_model_cfg(tokenizer_ckpt=path))
    assert not torch.equal(model.tokenizer.enc.weight, src.enc.weight)
    model.init_weights()
    assert torch.equal(model.tokenizer.enc.weight, src.enc.weight)


def test_needs_latent_shape_without_adapter():
    with pytest.raises(ValueError, match='latent_shape'):
        MODELS.build(tiny_model_cfg(latent_adapter=None))


def test_rebase_trajectory_by_hand():
    import math

    from occworld4d.models.generators.latent_diffusion import rebase_trajectory
    # Frame 1 at (1, 1) facing +y (yaw 90 deg); frame 2 one metre further along +y.
    traj = torch.tensor([[[0., 0., 0.], [1., 1., math.pi / 2], [1., 2., math.pi / 2]]])
    out = rebase_trajectory(traj, 1)
    assert torch.allclose(out, torch.tensor([[[0., 0., 0.], [1., 0., 0.]]]), atol=1e-6)


def test_context_stride_splits_previous_and_current_window(monkeypatch):
    model = MODELS.build(tiny_model_cfg(context_stride=2))
    T = VOXELS[0]
    v = torch.randint(0, 3, (2, T + 2, *VOXELS[1:]))
    traj = torch.cumsum(torch.rand(2, T + 2, 3), 1)
    inputs = dict(voxels=v, trajectory=traj, command=torch.tensor([1, 2]),
                  layout=torch.rand(2, T + 2, 8, 8))
    split = model.split_context(inputs)
    assert torch.equal(split['voxels'], v[:, 2:2 + T])
    assert torch.equal(split['prev_voxels'], v[:, :T])
    assert torch.equal(split['layout'], inputs['layout'][:, 2:2 + T])
    assert split['trajectory'].shape == (2, T, 3)
    assert torch.allclose(split['trajectory'][:, 0], torch.zeros(2, 3), atol=1e-6)
    cond = model.conditions_from_inputs(split)
    assert torch.allclose(cond['hexplane'], model.encode_latent(v[:, :T]))
    plain = dict(voxels=v[:, :T])
    assert model.split_context(plain) is plain  # already one window: untouched
    with pytest.raises(ValueError, match='frames'):
        model.split_context(dict(voxels=v[:, :T + 1]))
    # predict scores the current window.
    ds = [OccDataSample(gt_semantics=v[i].to(torch.uint8)) for i in range(2)]
    out = model.eval()(inputs, ds, mode='predict')
    assert out[0].gt_semantics.shape == VOXELS and out[0].pred_semantics.shape == VOXELS
    assert torch.equal(out[1].gt_semantics, v[1, 2:2 + T].to(torch.uint8))
    assert set(model(inputs, mode='loss')) == {'loss_diffusion', 'mse', 'vb'}


def test_generic_without_adapter():
    """OccSora / UniScene style: a tensor latent, no adapter, any denoiser."""
    from torch import nn

    from occworld4d.models.tokenizers.base import BaseTokenizer

    @MODELS.register_module(force=True)
    class _VolTok(BaseTokenizer):
        def __init__(self):
            super().__init__(3)
            self.proj = nn.Conv3d(3, 2, 1)
            self.out = nn.Conv3d(2, 3, 1)

        def encode(self, voxels, **cond):  # (B, T, X, Y, Z) -> (B, 2, T, X, Y), Z pooled
            f = torch.nn.functional.one_hot(voxels, 3).float().mean(-2)  # (B, T, X, Y, 3)
            return self.proj(f.permute(0, 4, 1, 2, 3))

        def decode(self, latent, **cond):  # -> (B, K, T, X, Y, Z=4)
            return self.out(latent)[..., None].expand(-1, -1, -1, -1, -1, 4)

        def loss(self, inputs, data_samples=None):
            return {}

    @MODELS.register_module(force=True)
    class _ConvDenoiser(nn.Module):
        conditions = ('command', )

        def __init__(self):
            super().__init__()
            self.net = nn.Conv3d(2, 4, 3, padding=1)
            self.cmd = nn.Embedding(4, 4)

        def forward(self, x, t, drop=None, command=None):
            out = self.net(x)
            if command is not None:
                emb = self.cmd(command)
                if drop and 'command' in drop:
                    emb = emb * (~drop['command'])[:, None]
                out = out + emb[:, :, None, None, None]
            return out

    model = MODELS.build(tiny_model_cfg(
        tokenizer=dict(type='_VolTok'), latent_adapter=None, latent_shape=(2, 4, 8, 8),
        denoiser=dict(type='_ConvDenoiser')))
    inputs = dict(voxels=random_voxels(), command=torch.tensor([0, 3]))
    assert model.latents_from_inputs(inputs).shape == (2, 2, 4, 8, 8)
    out = model(inputs, mode='loss')
    out['loss_diffusion'].backward()
    assert model.denoiser.cmd.weight.grad is not None
    assert model.valid_mask() is None
    ds = model.eval()(inputs, mode='predict')
    assert ds[0].pred_semantics.shape == VOXELS


def test_cond_drop_prob_is_explicit():
    build = lambda p: MODELS.build(tiny_model_cfg(cond_drop_prob=p))  # noqa: E731
    assert set(build(0.25).cond_drop_prob.values()) == {0.25}
    full = dict(trajectory=0.1, command=0.2, layout=0.3, hexplane=0.0)
    assert build(full).cond_drop_prob == full
    with pytest.raises(ValueError, match=r"does not name the condition\(s\) \['layout', 'hexplane'\]"):
        build(dict(trajectory=0.1, command=0.1))  # no silent 0.1 any more
    with pytest.raises(ValueError, match=r"\['speed'\] that are not condition keys"):
        build(dict(speed=0.1, default=0.1))
    with pytest.raises(ValueError, match='probability in'):
        build(dict(command=1.5, default=0.1))


def test_sample_cfg_engine_keys_and_x_T_reach_the_engine(monkeypatch):
    """solver_order / start_at_zero_snr / clip_x0 from sample_cfg and an explicit x_T are
    handed to the engine; unknown sample_cfg keys are refused at build time."""
    model = MODELS.build(tiny_model_cfg(sample_cfg=dict(
        sampler='unipc', num_steps=3, solver_order=2, start_at_zero_snr=False))).eval()
    seen = {}
    real = type(model.diffusion).sample

    def spy(engine, *args, **kwargs):
        seen.update(kwargs)
        return real(engine, *args, **kwargs)

    monkeypatch.setattr(type(model.diffusion), 'sample', spy)
    x_T = torch.randn(model.latent_shape(1))
    a = model.sample(1, x_T=x_T)
    assert seen['solver_order'] == 2 and seen['start_at_zero_snr'] is False
    assert seen['sampler'] == 'unipc' and seen['x_T'] is x_T and 'clip_x0' not in seen
    assert torch.equal(a, model.sample(1, x_T=x_T.clone()))  # deterministic given x_T (ODE)
    with pytest.raises(ValueError, match="unknown sample_cfg keys \\['steps'\\]"):
        MODELS.build(tiny_model_cfg(sample_cfg=dict(steps=10)))
