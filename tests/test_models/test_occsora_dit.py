"""OccSoraDiT: parameter count at the reference size, forward/backward, null conditioning
(CFG), any batch size, the command variant, and a tiny LatentDiffusion round with the 4D VQ
tokenizer (loss decreasing, guided sampling to voxels)."""
import pytest
import torch

from occworld4d.models.denoisers import OccSoraDiT
from occworld4d.registry import MODELS

TINY = dict(latent_shape=(4, 2, 3, 3), arch='DiT-tiny', num_frames=4)  # 18 tokens


def perturbed(**kw):
    """A tiny DiT whose zero-initialised layers are perturbed (so outputs are non-trivial)."""
    torch.manual_seed(1)
    m = OccSoraDiT(**{**TINY, **kw})
    for p in m.parameters():
        if p.requires_grad:
            p.data.add_(0.1 * torch.randn_like(p))
    return m.eval()


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_param_count_matches_reference():
    with torch.device('meta'):
        ref = MODELS.build(dict(type='OccSoraDiT'))
        cmd = OccSoraDiT(condition='command')
        null = OccSoraDiT(learned_null=True)
    # wzzheng/OccSora models.py DiT: 36,819,200 (convs 2,654,720, positions 640,000,
    # t-embedder 131,584, trajectory MLP 57,856, 28 x 1,183,488 blocks, final 197,376).
    assert n_params(ref) == 36_819_200
    assert n_params(ref.x_embedder) == 2_654_720
    assert n_params(ref.cond_embedder) == 57_856  # 64 -> 128 -> 128 -> 256
    assert ref.cond_embedder[0].in_features == 64
    assert n_params(ref.blocks) == 28 * 1_183_488
    assert ref.num_tokens == 2500 and ref.out_channels == 256
    frozen = [p for p in ref.parameters() if not p.requires_grad]
    assert len(frozen) == 1 and frozen[0].numel() == 2500 * 256
    assert n_params(cmd) == 36_819_200 - 64 * 128 + 4 * 128
    assert n_params(null) == 36_819_200 + 256


def test_forward_backward_and_zero_init():
    torch.manual_seed(0)
    m = OccSoraDiT(**TINY)
    x = torch.randn(2, 4, 2, 3, 3, requires_grad=True)
    t = torch.tensor([3, 700])
    traj = torch.randn(2, 4, 3)
    out = m(x, t, trajectory=traj)
    assert out.shape == (2, 8, 2, 3, 3)
    assert torch.count_nonzero(out) == 0  # adaLN-Zero + zero output layer
    m = perturbed()
    m.train()
    out = m(x, t, trajectory=traj)
    out.square().mean().backward()
    assert x.grad.abs().sum() > 0
    for p in m.cond_embedder.parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0
    assert m.x_embedder[0].weight.grad.abs().sum() > 0
    assert m.pos_embed.grad is None  # frozen sin-cos table
    no_sigma = OccSoraDiT(**TINY, learn_sigma=False)
    assert no_sigma(x, t).shape == (2, 4, 2, 3, 3)


def test_positions_are_1d_sincos_in_thw_order():
    m = OccSoraDiT(**TINY)
    pos = m.pos_embed[0]  # (18, 32)
    # token n = (t, h, w) flattened; the table is sin(n w_i) | cos(n w_i), w_0 = 1
    assert torch.allclose(pos[:, 0], torch.sin(torch.arange(18.0)), atol=1e-6)
    assert torch.allclose(pos[:, 16], torch.cos(torch.arange(18.0)), atol=1e-6)


def test_any_batch_size_is_per_sample():
    m = perturbed()
    torch.manual_seed(2)
    x, t, traj = torch.randn(5, 4, 2, 3, 3), torch.randint(0, 1000, (5,)), torch.randn(5, 4, 3)
    with torch.no_grad():
        full = m(x, t, trajectory=traj)
        for b in (1, 3):
            part = m(x[:b], t[:b], trajectory=traj[:b])
            assert torch.allclose(part, full[:b], atol=1e-5)


def test_null_conditioning_and_drop():
    m = perturbed()
    torch.manual_seed(3)
    x, t, traj = torch.randn(3, 4, 2, 3, 3), torch.tensor([5, 50, 500]), torch.randn(3, 4, 3)
    with torch.no_grad():
        cond = m(x, t, trajectory=traj)
        uncond = m(x, t)
        ones = torch.ones(3, dtype=torch.bool)
        all_dropped = m(x, t, trajectory=traj, drop=dict(trajectory=ones))
        mixed = m(x, t, trajectory=traj, drop=dict(trajectory=torch.tensor([True, False, True])))
    # zero null: a dropped condition is the unconditional call (c = t_emb alone)
    assert torch.allclose(all_dropped, uncond)
    assert not torch.allclose(cond, uncond)
    assert torch.allclose(mixed[1], cond[1]) and torch.allclose(mixed[[0, 2]], uncond[[0, 2]])
    # (x, y) only: the yaw column is ignored and (B, T, 2) is accepted
    with torch.no_grad():
        other_yaw = m(x, t, trajectory=torch.cat([traj[..., :2], 9 + traj[..., 2:]], -1))
        xy_only = m(x, t, trajectory=traj[..., :2])
    assert torch.allclose(other_yaw, cond) and torch.allclose(xy_only, cond)
    # a learned null is a parameter that receives gradient when the condition is dropped
    ln = perturbed(learned_null=True)
    ln.train()
    out = ln(x, t, trajectory=traj, drop=dict(trajectory=torch.tensor([True, False, False])))
    out.sum().backward()
    assert ln.null_embedding.grad.abs().sum() > 0


def test_command_variant_and_unconditional():
    m = perturbed(condition='command')
    assert m.conditions == ('command', )
    x, t = torch.randn(2, 4, 2, 3, 3), torch.tensor([10, 10])
    with torch.no_grad():
        a = m(x, t, command=torch.tensor([2, 3]))
        b = m(x, t, command=torch.tensor([3, 3]))
    assert not torch.allclose(a[0], b[0]) and torch.allclose(a[1], b[1], atol=1e-6)
    with pytest.raises(ValueError, match=r'command ids span \[0, 7\]'):
        m(x, t, command=torch.tensor([0, 7]))
    with pytest.raises(ValueError, match='does not embed'):
        m(x, t, trajectory=torch.zeros(2, 4, 3))
    plain = OccSoraDiT(**TINY, condition=None)
    assert plain.conditions == () and plain.cond_embedder is None
    assert plain(x, t).shape == (2, 8, 2, 3, 3)


def test_bad_inputs_are_named():
    m = OccSoraDiT(**TINY)
    x, t = torch.randn(1, 4, 2, 3, 3), torch.tensor([1])
    with pytest.raises(ValueError, match=r'trajectory should be \(B, 4, 3\)'):
        m(x, t, trajectory=torch.zeros(1, 5, 3))
    with pytest.raises(ValueError, match=r'expects x of shape \(B, 4, 2, 3, 3\)'):
        m(torch.randn(1, 4, 2, 3, 4), t)
    with pytest.raises(TypeError, match='unknown condition'):
        m(x, t, layout=torch.zeros(1, 4, 8, 8))
    with pytest.raises(ValueError, match='condition must be one of'):
        OccSoraDiT(**TINY, condition='layout')
    with pytest.raises(KeyError, match='unknown arch'):
        OccSoraDiT(latent_shape=(4, 2, 3, 3), arch='DiT-XXL')


def _tiny_generator():
    """The 4D VQ tokenizer (tiny) + OccSoraDiT (tiny) in the shared LatentDiffusion."""
    torch.manual_seed(0)
    return MODELS.build(dict(
        type='LatentDiffusion',
        data_preprocessor=dict(type='OccDataPreprocessor', num_classes=6),
        tokenizer=dict(type='OccSoraVQVAE', num_classes=6, height=2, embed_dim=2, hidden=8,
                       num_res_blocks=1, downsample=(2, 2, 2), z_channels=4,
                       quantizer=dict(num_codes=8)),
        latent_shape=(4, 2, 3, 3), latent_scale=0.1,
        denoiser=dict(type='OccSoraDiT', latent_shape=(4, 2, 3, 3), arch='DiT-tiny',
                      num_frames=4),
        diffusion=dict(type='GaussianDiffusion', num_timesteps=50, beta_schedule='linear',
                       prediction_type='eps', learn_sigma=True, loss_type='hybrid'),
        cond_drop_prob=0.1,
        sample_cfg=dict(sampler='ddim', num_steps=5, guidance_scale=4.0)))


def test_latent_diffusion_trains_and_samples_with_a_trajectory():
    gen = _tiny_generator()
    assert gen.condition_keys == ('trajectory', )
    torch.manual_seed(0)
    voxels = torch.randint(0, 6, (2, 4, 6, 6, 2))
    traj = torch.randn(2, 4, 3)
    x0 = gen.latents_from_inputs(dict(voxels=voxels))
    assert x0.shape == (2, 4, 2, 3, 3)
    opt = torch.optim.AdamW([p for p in gen.parameters() if p.requires_grad], lr=3e-3)
    tok_before = {k: v.clone() for k, v in gen.tokenizer.state_dict().items()}
    losses = []
    for _ in range(60):
        torch.manual_seed(len(losses) % 4)  # a few fixed (t, noise) draws, revisited
        loss = gen(dict(voxels=voxels, trajectory=traj), mode='loss')['loss_diffusion']
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-4:]) < 0.7 * sum(losses[:4])
    for k, v in gen.tokenizer.state_dict().items():  # frozen stage 1
        assert torch.equal(v, tok_before[k]), k
    gen.eval()
    from occworld4d.apis import generation as G
    sem = G.generate(gen, 3, trajectory=G.trajectory_preset('left', 4),
                     generator=torch.Generator().manual_seed(0))
    assert sem.shape == (3, 4, 6, 6, 2) and sem.dtype == torch.uint8 and int(sem.max()) < 6
    with pytest.raises(NotImplementedError, match='latent adapter'):
        G.inpaint(gen, voxels[0], (0, 2, 0, 2, 0, 2))


@pytest.mark.parametrize('dataset,grid,tokens', [
    ('occ3d-nuscenes', (200, 200, 16), (4, 25, 25)),
    ('carlasc', (128, 128, 8), (4, 16, 16)),
    ('occ3d-waymo', (200, 200, 16), (4, 25, 25)),
])
def test_stage2_configs_match_their_tokenizer(dataset, grid, tokens):
    """Each dataset's DiT config embeds exactly the tokenizer of its stage-1 config and its
    latent shape is that tokenizer's token grid for 32 frames."""
    import os.path as osp

    from mmengine.config import Config
    root = osp.join(osp.dirname(__file__), '..', '..', 'configs', 'occsora')
    vq = Config.fromfile(osp.join(root, f'occsora_vqvae_8xb1-150e_{dataset}.py')).model
    dit = Config.fromfile(osp.join(root, f'occsora_dit_8xb2-1200k_{dataset}.py')).model
    for key in ('num_classes', 'height', 'embed_dim', 'hidden', 'z_channels', 'token_preset'):
        assert dit.tokenizer[key] == vq[key], key
    assert dit.data_preprocessor.num_classes == vq.num_classes
    with torch.device('meta'):
        tok = MODELS.build(dict(vq, data_preprocessor=None))
        den = MODELS.build(dit.denoiser)
    assert tok.semantic.channels == 128  # Z x E folded width of the reference
    assert tok.token_shape(32, *grid[:2]) == tokens
    assert tuple(dit.latent_shape) == tuple(dit.denoiser.latent_shape) == (128, ) + tokens
    assert den.num_frames == 32 and den.cond_embedder[0].in_features == 64


def test_snap_to_codebook_decodes_a_noisy_sample_as_its_codes():
    """snap_to_codebook: a latent near the codebook is decoded as its nearest codes (the
    decoder's training inputs); without it the raw latent goes to the decoder."""
    gen = _tiny_generator().eval()
    gen.tokenizer.quantizer.embedding.weight.data.copy_(torch.eye(8, 4) * 2.0)  # distinct codes
    torch.manual_seed(0)
    ids = torch.randint(0, 8, (2, 2, 3, 3))
    clean = gen.tokenizer.quantizer.get_codebook_entry(ids)  # (2, 4, 2, 3, 3)
    noisy = clean + 0.3 * torch.randn_like(clean)  # every vector still closest to its code
    x0 = noisy * gen.latent_scale
    raw = gen.decode_latent(x0)
    gen.snap_to_codebook = True
    snapped = gen.decode_latent(x0)
    assert torch.allclose(snapped, gen.tokenizer.decode(clean), atol=1e-6)
    assert not torch.allclose(raw, snapped, atol=1e-3)


def test_snap_to_codebook_needs_a_codebook():
    with pytest.raises(ValueError, match='snap_to_codebook needs a tokenizer with a codebook'):
        MODELS.build(dict(
            type='LatentDiffusion',
            tokenizer=dict(type='UniSceneOccVAE', height=4, ch=16, ch_mult=(1, 2),
                           num_res_blocks=1, attn_resolutions=(8, ), resolution=16),
            latent_shape=(4, 2, 6, 6), allow_random_tokenizer=True, snap_to_codebook=True,
            denoiser=dict(type='OccSoraDiT', latent_shape=(4, 2, 6, 6), arch='DiT-tiny',
                          num_frames=2),
            diffusion=dict(type='GaussianDiffusion', num_timesteps=10)))
