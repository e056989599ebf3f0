"""UniScene's OccDiT: reference size, forward / backward, spatial / temporal alternation, the
null layout of classifier-free guidance, the layout transform and the ground-truth prior."""
import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope

import occworld4d  # noqa: F401
from occworld4d.datasets.transforms import UniSceneLayout
from occworld4d.models.denoisers.uniscene_dit import UniSceneOccDiT
from occworld4d.models.generators.uniscene import UniSceneLatentDiffusion, occupancy_meta
from occworld4d.registry import MODELS, TRANSFORMS
from occworld4d.rendering.bev_layout import LAYOUT_CHANNELS


def _count(model):
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable


def _tiny(**kw):
    args = dict(input_size=8, in_channels=4, num_frames=3, arch='UniScene-tiny', patch_size=2)
    args.update(kw)
    return UniSceneOccDiT(**args)


def _randomize(model, seed=0):
    """Non-zero adaLN / output layers so that every block acts (adaLN-Zero starts at identity)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return model


def test_reference_parameter_counts():
    # The reference's DiT_2Frame with its 4-value meta embedder: 58,183,200 / 57,860,640.
    ref = UniSceneOccDiT(conditions=('layout', 'meta'), meta_dim=4)
    assert _count(ref) == (58_183_200, 57_860_640)
    # frozen = the spatial (625 x 512) and temporal (5 x 512) sin-cos tables
    assert ref.pos_embed.shape == (1, 625, 512) and ref.temp_embed.shape == (1, 5, 512)
    # occworld4d's default (no ground-truth meta): 198,656 fewer
    assert _count(UniSceneOccDiT()) == (57_984_544, 57_661_984)


def test_configs_build_the_reference_denoiser():
    from mmengine.config import Config
    cfg = Config.fromfile('configs/uniscene/uniscene_dit_8xb4-1200e_occ3d-nuscenes.py')
    with DefaultScope.overwrite_default_scope('occworld4d'):
        den = MODELS.build(cfg.model.denoiser)
    assert _count(den) == (57_984_544, 57_661_984)
    assert tuple(cfg.model.latent_shape) == (4, 5, 50, 50) and cfg.model.latent_scale == 70.0
    assert cfg.model.sample_cfg.sampler == 'ddim' and cfg.model.sample_cfg.num_steps == 50
    assert cfg.model.reference_gt_prior is False


def test_forward_backward_tiny():
    torch.manual_seed(0)
    model = _randomize(_tiny())
    x = torch.randn(2, 4, 3, 8, 8)
    layout = torch.randint(0, 13, (2, 3, 8, 8)).float()
    out = model(x, torch.tensor([3, 70]), layout=layout)
    assert out.shape == (2, 8, 3, 8, 8)  # learned sigma: 2C channels
    out.square().mean().backward()
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
        else:
            assert p.grad is None, name  # the sin-cos tables stay frozen
    # adaLN-Zero: the untrained network outputs exactly zero
    assert _tiny()(x, torch.tensor([3, 70])).abs().max() == 0


def test_spatial_blocks_keep_frames_apart_and_temporal_blocks_keep_positions_apart():
    x = torch.randn(1, 4, 3, 8, 8)
    t = torch.tensor([10])
    bump = torch.zeros_like(x)
    bump[:, :, 1, 0:2, 0:2] = 1.0  # frame 1, the first patch
    # one spatial block: only frame 1 changes (all of its tokens may)
    sp = _randomize(_tiny(depth=1)).eval()
    assert sp.block_kinds() == ['spatial']
    diff = (sp(x + bump, t) - sp(x, t)).abs().sum(dim=(0, 1))  # (T, H, W)
    assert diff[1].sum() > 0 and diff[0].sum() == 0 and diff[2].sum() == 0
    assert diff[1, 4:, 4:].sum() > 0  # spread over the frame
    # one temporal block: only the first patch position changes, in every frame
    tp = _randomize(_tiny(depth=1, first_block='temporal')).eval()
    assert tp.block_kinds() == ['temporal']
    diff = (tp(x + bump, t) - tp(x, t)).abs().sum(dim=(0, 1))  # (T, H, W)
    assert (diff[:, 0:2, 0:2].flatten(1).sum(1) > 0).all()
    mask = torch.ones_like(diff, dtype=torch.bool)
    mask[:, 0:2, 0:2] = False
    assert diff[mask].sum() == 0
    # alternating spatial, temporal: everything mixes
    both = _randomize(_tiny(depth=2)).eval()
    assert both.block_kinds() == ['spatial', 'temporal']
    diff = (both(x + bump, t) - both(x, t)).abs().sum(dim=(0, 1))
    assert diff[0, 6:, 6:].sum() > 0 and diff[2, 6:, 6:].sum() > 0


def test_layout_channel_values_pooling_and_null_layout():
    model = _tiny()
    lay = torch.zeros(1, 3, 8, 8)
    lay[0, 0, 2, 3] = 1   # road: first class -> 0
    lay[0, 0, 4, 4] = 12  # pedestrian: last class -> 1
    lay[0, 1, 5, 6] = 7
    inp = model.layout_input(lay, 1)  # (B, T, 1, H, W)
    assert inp.shape == (1, 3, 1, 8, 8)
    assert inp[0, 0, 0, 2, 3] == 0 and inp[0, 0, 0, 4, 4] == 1
    assert inp[0, 1, 0, 5, 6] == pytest.approx(6 / 11)
    assert inp[0, 2].eq(-1).all() and inp[0, 0, 0, 0, 0] == -1  # empty -> -1
    # a 4x finer layout is max-pooled to the latent (the 200 -> 50 path)
    fine = lay.repeat_interleave(4, -1).repeat_interleave(4, -2)
    fine[0, 0, 9, 13] = 3  # inside cell (2, 3): the max wins
    pooled = model.layout_input(fine, 1)
    assert pooled[0, 0, 0, 2, 3] == pytest.approx(2 / 11)
    assert torch.equal(pooled[0, 1:], inp[0, 1:])
    # null: no layout or drop=True -> the all -1 map
    assert model.layout_input(None, 2).eq(-1).all()
    dropped = model.layout_input(lay.expand(2, -1, -1, -1), 2,
                                 drop=torch.tensor([True, False]))
    assert dropped[0].eq(-1).all() and torch.equal(dropped[1], inp[0])
    with pytest.raises(ValueError, match='max-pooled'):
        model.layout_input(torch.zeros(1, 3, 10, 10), 1)
    with pytest.raises(ValueError, match='T=3'):
        model.layout_input(torch.zeros(1, 2, 8, 8), 1)


def test_onehot_layout_channels_null_and_forward():
    model = _tiny(layout_encoding='onehot')
    assert model.layout_channels == 13 and model.x_embedder.proj.in_channels == 4 + 13
    lay = torch.zeros(2, 3, 8, 8)
    lay[0, 0, 2, 3] = 1
    lay[0, 0, 4, 4] = 12
    inp = model.layout_input(lay, 2, drop=torch.tensor([False, True]))
    assert inp.shape == (2, 3, 13, 8, 8)
    assert inp[0].sum(1).eq(1).all()  # exactly one channel per cell when given
    assert inp[0, 0, 1, 2, 3] == 1 and inp[0, 0, 12, 4, 4] == 1 and inp[0, 0, 0, 0, 0] == 1
    assert inp[1].eq(0).all() and model.layout_input(None, 1).eq(0).all()  # null != empty
    out = model(torch.randn(2, 4, 3, 8, 8), torch.tensor([1, 500]), layout=lay)
    assert out.shape == (2, 8, 3, 8, 8)
    with pytest.raises(ValueError, match='layout values must be 0 .. 12'):
        model.layout_input(torch.full((1, 3, 8, 8), 13.0), 1)
    with pytest.raises(ValueError, match='layout_encoding'):
        _tiny(layout_encoding='embed')


def test_null_layout_for_cfg_and_condition_errors():
    torch.manual_seed(0)
    model = _randomize(_tiny()).eval()
    x, t = torch.randn(2, 4, 3, 8, 8), torch.tensor([5, 5])
    layout = torch.randint(1, 13, (2, 3, 8, 8)).float()
    cond = model(x, t, layout=layout)
    uncond = model(x, t)
    assert not torch.allclose(cond, uncond)  # the layout matters
    dropped = model(x, t, layout=layout, drop={'layout': torch.tensor([True, False])})
    assert torch.allclose(dropped[0], uncond[0], rtol=1e-4, atol=1e-4)
    assert torch.allclose(dropped[1], cond[1], rtol=1e-4, atol=1e-4)
    # CFG through the engine: guidance_scale 1 == the conditional call
    from occworld4d.diffusion.guidance import ClassifierFreeGuidance
    g1 = ClassifierFreeGuidance(model, dict(layout=layout), 1.0)(x, t)
    assert torch.allclose(g1, cond, rtol=1e-4, atol=1e-4)
    g3 = ClassifierFreeGuidance(model, dict(layout=layout), 3.0)(x, t)
    expected = uncond[:, :4] + 3.0 * (cond[:, :4] - uncond[:, :4])
    assert torch.allclose(g3[:, :4], expected, rtol=1e-4, atol=1e-4)
    assert torch.allclose(g3[:, 4:], cond[:, 4:], rtol=1e-4, atol=1e-4)
    with pytest.raises(TypeError, match='unknown condition'):
        model(x, t, trajectory=torch.zeros(2, 3, 3))
    with pytest.raises(ValueError, match='does not embed'):
        model(x, t, meta=torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r'\(B, 4, 3, 8, 8\)'):
        model(torch.randn(2, 4, 2, 8, 8), t)
    with pytest.raises(ValueError, match='meta_dim'):
        _tiny(conditions=('layout', 'meta'))
    with pytest.raises(KeyError, match='unknown arch'):
        _tiny(arch='nope')


def test_meta_embedding_and_occupancy_meta_hand_values():
    vox = torch.full((1, 20, 20, 25), 17)  # 10,000 voxels
    vox.view(-1)[:7000] = 14  # terrain: saturates
    vox.view(-1)[7000:7800] = 15
    vox.view(-1)[7800:8000] = 16
    vox.view(-1)[8000:8250] = 4  # other
    meta = occupancy_meta(vox)
    assert torch.allclose(meta, torch.tensor([[250 / 25000, 1.0, 800 / 16000, 200 / 20000]]))
    model = _randomize(_tiny(conditions=('layout', 'meta'), meta_dim=4)).eval()
    x, t = torch.randn(1, 4, 3, 8, 8), torch.tensor([5])
    a = model(x, t, meta=meta)
    assert not torch.allclose(a, model(x, t))
    assert torch.allclose(model(x, t, meta=meta, drop={'meta': torch.tensor([True])}),
                          model(x, t))  # dropped meta = zero embedding = missing


def _tiny_generator(**kw):
    cfg = dict(
        type='UniSceneLatentDiffusion',
        data_preprocessor=dict(type='OccDataPreprocessor', num_classes=18),
        tokenizer=dict(type='UniSceneOccVAE', num_classes=18, height=4, embed_dim=2, ch=8,
                       ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(), resolution=16,
                       dec_hidden=4, dec_ch_mult=(2, 1), dec_res_blocks=1),
        latent_shape=(4, 3, 8, 8), latent_scale=1.0,
        denoiser=dict(type='UniSceneOccDiT', input_size=8, num_frames=3, arch='UniScene-tiny'),
        diffusion=dict(type='GaussianDiffusion', num_timesteps=20, learn_sigma=True,
                       loss_type='hybrid'),
        sample_cfg=dict(sampler='ddim', num_steps=4, guidance_scale=2.0))
    cfg.update(kw)
    with DefaultScope.overwrite_default_scope('occworld4d'):
        return MODELS.build(cfg)


def test_generator_trains_and_samples_without_ground_truth_by_default():
    torch.manual_seed(0)
    model = _tiny_generator()
    assert isinstance(model, UniSceneLatentDiffusion) and not model.reference_gt_prior
    voxels = torch.randint(0, 18, (2, 3, 16, 16, 4))
    layout = torch.randint(0, 13, (2, 3, 16, 16)).float()  # 2x the latent: pooled inside
    inputs = dict(voxels=voxels, layout=layout)
    opt = torch.optim.Adam([p for p in model.denoiser.parameters() if p.requires_grad], 1e-2)
    losses = []
    for step in range(60):
        torch.manual_seed(step % 4)  # four fixed (t, noise) draws: a closed set to fit
        out = model.loss(inputs)
        opt.zero_grad()
        out['loss_diffusion'].backward()
        opt.step()
        losses.append((out['loss_diffusion'].item(), out['mse'].item()))
    first, last = np.mean(losses[:4], axis=0), np.mean(losses[-4:], axis=0)
    assert last[0] < 0.9 * first[0] and last[1] < 0.75 * first[1]  # hybrid loss, eps MSE
    model.eval()
    # default: the sample depends on the layout only, never on the ground-truth voxels
    other = torch.randint(0, 18, (2, 3, 16, 16, 4))
    torch.manual_seed(0)
    a = [d.pred_semantics for d in model.predict(dict(voxels=voxels, layout=layout))]
    torch.manual_seed(0)
    b = [d.pred_semantics for d in model.predict(dict(voxels=other, layout=layout))]
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    assert a[0].shape == (3, 16, 16, 4)


def test_reference_gt_prior_is_explicit_and_uses_ground_truth():
    with pytest.raises(ValueError, match='reference_gt_prior=True'):
        _tiny_generator(denoiser=dict(type='UniSceneOccDiT', input_size=8, num_frames=3,
                                      arch='UniScene-tiny', conditions=('layout', 'meta'),
                                      meta_dim=4))
    model = _tiny_generator(
        reference_gt_prior=True, noise_prior_weight=5.0,
        denoiser=dict(type='UniSceneOccDiT', input_size=8, num_frames=3, arch='UniScene-tiny',
                      conditions=('layout', 'meta'), meta_dim=4)).eval()
    _randomize(model.denoiser)
    assert model.condition_keys == ('layout', 'meta')
    voxels = torch.randint(0, 18, (1, 3, 16, 16, 4))
    cond = model.conditions_from_inputs(dict(voxels=voxels))
    assert torch.allclose(cond['meta'], occupancy_meta(voxels[:, 0]))
    # the chain starts at noise + lambda x0_gt(frame 0): the engine receives that x_T
    seen = {}
    engine_sample = type(model.diffusion).sample

    def spy(self, *args, **kwargs):
        seen['x_T'] = kwargs.get('x_T')
        return engine_sample(self, *args, **kwargs)

    type(model.diffusion).sample = spy
    try:
        torch.manual_seed(0)
        model.predict(dict(voxels=voxels, layout=torch.zeros(1, 3, 8, 8)))
    finally:
        type(model.diffusion).sample = engine_sample
    x0 = model.encode_latent(voxels)
    torch.manual_seed(0)
    noise = torch.randn_like(x0)
    assert torch.allclose(seen['x_T'], noise + 5.0 * x0[:, :, :1].expand_as(x0), atol=1e-5)
    assert 'sample' not in vars(model.diffusion)  # the engine is restored
    with pytest.raises(ValueError, match='ground-truth'):
        model.predict(dict(layout=torch.zeros(1, 3, 8, 8)), data_samples=[None])


def test_uniscene_layout_transform_from_occupancy_and_infos(real_path):
    # occupancy: a vehicle column and a road column of the synthetic city's vocabulary
    sem = np.zeros((2, 8, 8, 4), np.uint8)
    t = TRANSFORMS.build(dict(type='UniSceneLayout', source='occupancy', out_size=4))
    from occworld4d.structures import get_vocabulary
    voc = get_vocabulary('dynamiccity_carlasc')
    road, car = voc.classes.index('road'), voc.classes.index('vehicle')
    sem[0, 1, 1, 0] = road
    sem[0, 1, 0, 2] = car  # same 2x2 block as the road: the vehicle wins the max-pool
    sem[1, 6, 6, 0] = road
    out = t(dict(semantics=sem, vocabulary='dynamiccity_carlasc'))['layout']
    assert out.dtype == np.float32 and out.shape == (2, 4, 4)
    assert out[0, 0, 0] == 1 + LAYOUT_CHANNELS.index('vehicle')
    assert out[1, 3, 3] == 1 + LAYOUT_CHANNELS.index('road')
    assert out[0].sum() == out[0, 0, 0] and out[1].sum() == out[1, 3, 3]
    full = UniSceneLayout(source='occupancy', out_size=None)(
        dict(semantics=sem, vocabulary='dynamiccity_carlasc'))['layout']
    assert full.shape == (2, 8, 8) and full[0, 1, 1] == 1 + LAYOUT_CHANNELS.index('road')
    # infos: the real nuScenes mini infos' boxes for two frames of scene-0103
    import pickle
    pkl = real_path('nuscenes', 'infos', 'nuscenes_mini_infos_val.pkl', what='real infos')
    with open(pkl, 'rb') as f:
        infos = pickle.load(f)['infos']
    infos = infos if isinstance(infos, list) else [i for v in infos.values() for i in v]
    tokens = [infos[0]['token'], infos[1]['token']]
    occ = np.full((2, 200, 200, 16), 17, np.uint8)
    occ[:, :, :, 0] = 11  # driveable_surface everywhere
    t = UniSceneLayout(source='infos', ann_file=pkl, out_size=50,
                       map_from_occupancy=('road', ))
    res = t(dict(semantics=occ, frame_ids=tokens, vocabulary='occ3d_nuscenes'))
    lay = res['layout']
    assert lay.shape == (2, 50, 50)
    assert (lay >= 1).all()  # road everywhere from the occupancy map stand-in
    n_cars = sum(str(n) in ('car', 'truck', 'bus') for n in infos[0]['gt_names'])
    if n_cars:
        assert (lay[0] == 1 + LAYOUT_CHANNELS.index('vehicle')).any()
    with pytest.raises(KeyError, match='not in'):
        t(dict(semantics=occ, frame_ids=['nope', 'nope'], vocabulary='occ3d_nuscenes'))
    with pytest.raises(ValueError, match='map_from_occupancy'):
        UniSceneLayout(source='occupancy', map_from_occupancy=('road', ))
