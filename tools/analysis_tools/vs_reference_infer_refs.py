"""The reference side of the inference rows of ``benchmark_vs_reference.py``.

Imported only by the tool's reference-side worker process, after the shims and the checkout
(``vs_reference_refs.install_shims`` / ``enter_checkout``); never imports occworld4d. Each
builder returns ``(parts, info)``: ``parts`` is a list of ``(name, fn, timed_units,
whole_units)``; the tool times each ``fn()`` (no grad) and counts it ``whole_units /
timed_units`` times in the whole (a sampling loop of ``timed_units`` solver steps stands for
the reference sampler's ``whole_units`` steps; see the tool's docstring).
"""
import numpy as np
import torch

import vs_reference_refs as refs


def _info(model, frozen=None, **extra):
    info = refs.count(model, frozen=frozen)
    info.update(extra)
    return info


def uniscene_sample(spec, data):
    """occupancy_gen/eval_OccDiT.py: create_diffusion('ddim50'), ``ddim_sample_loop`` over
    ``OccDiT.forward_with_cfg`` on the doubled batch (z = [x_T, x_T], y = [layout, -1 map],
    meta repeated), clip_denoised=False, samples / 70 -> ``OccVAE.generate(samples, shape)``
    logits -> argmax. The ground-truth noise prior of its evaluation (one VAE encode of the
    clip) is not part of generation and is left out (on our side too)."""
    # local: the reference checkout
    from diffusion import create_diffusion
    B, T, (X, Y, Z) = spec['batch'], spec['frames'], spec['grid']
    _, steps = spec['ref_sampler']
    k = spec['timed_steps']
    vae, model = refs.uniscene_models(spec)
    model.eval()
    diffusion = create_diffusion(f'ddim{k}')  # the same loop, k of its 50 steps
    y = refs.uniscene_layout(data['layout'])
    kwargs = dict(y=torch.cat([y, -torch.ones_like(y)]), meta=torch.cat([data['meta']] * 2),
                  cfg_scale=spec['cfg'])
    z = torch.cat([data['noise']] * 2)
    state = {}

    def loop():
        out = diffusion.ddim_sample_loop(model.forward_with_cfg, z.shape, z, clip_denoised=False,
                                         model_kwargs=kwargs, progress=False, device='cpu')
        state['x0'] = out.chunk(2, dim=0)[0] / 70

    def decode():
        return vae.generate(state['x0'], [B, T, X, Y, Z])['logits'].argmax(dim=-1)
    parts = [('loop', loop, k, steps), ('decode', decode, 1, 1)]
    return parts, _info(model, frozen=vae, sampler='ddim', steps=steps, timed_steps=k,
                        guidance=spec['cfg'], network_batch=2 * B)


def dynamiccity_sample(spec, data):
    """infer_dit.py: batch 2 for classifier-free guidance, create_diffusion(str(1000)),
    ``p_sample_loop`` over the EMA DiT's ``forward_with_cfg`` (cfg_scale 4, hexplane zeros,
    every condition dropped: conf/dit/model/dit.yaml has none), clip_denoised=False, the
    first half -> ``rollout_to_hexplane`` -> the VAE decoder -> softmax -> argmax. (Its
    ``torch.cuda.amp.autocast`` does nothing on the CPU: fp32.)"""
    # local: the reference checkout
    from dynamic_city.diffusion import create_diffusion
    from dynamic_city.utils.hexplane_utils import rollout_to_hexplane
    B = spec['batch']
    _, steps = spec['ref_sampler']
    k = spec['timed_steps']
    model, _, txyz = refs.dynamiccity_dit_model(spec, 2 * B)
    model.eval()
    vae, conf = refs.dynamiccity_vae_model(spec)
    vae.eval()
    diffusion = create_diffusion(str(k))  # the same loop, k of its 1000 steps
    noise = torch.cat([data['noise']] * 2)
    C, S = noise.shape[1], noise.shape[-1]
    kwargs = dict(cfg_scale=spec['cfg'], hexplane=torch.zeros(2 * B, C, S, S), layout=None,
                  cmd=torch.zeros(2 * B, dtype=torch.long), traj=None, inference=True,
                  drop_hex=True, drop_layout=True, drop_traj=True, drop_cmd=True)
    state = {}

    def loop():
        out = diffusion.p_sample_loop(model.forward_with_cfg, noise.shape, noise,
                                      clip_denoised=False, model_kwargs=kwargs, device='cpu',
                                      progress=False)
        state['x0'] = out.chunk(2, dim=0)[0]

    def decode():
        logits = vae.decoder(rollout_to_hexplane(state['x0'], txyz))
        return torch.softmax(logits.float(), dim=-1).argmax(dim=-1)
    parts = [('loop', loop, k, steps), ('decode', decode, 1, 1)]
    return parts, _info(model, frozen=vae, sampler='ddpm', steps=steps, timed_steps=k,
                        guidance=spec['cfg'], network_batch=2 * B)


def occsora_sample(spec, data):
    """sample.py: create_diffusion(str(1000)), ``p_sample_loop`` over DiT-XL/2's
    ``forward_with_cfg`` on z = [x_T, x_T] with the same trajectory in both halves (y: 64
    values), cfg_scale 4, clip_denoised=False; the first half x 10 (the scale of its saved
    tokens) -> the VQ-VAE's ``forward_decoder`` -> argmax (its pipeline decodes the saved
    samples in ``VAERes2D.forward``, see the VQ note of the tool)."""
    # local: mmengine (only the mmengine-based references load it), then the checkout
    from mmengine.config import Config
    from mmengine.registry import MODELS
    import model as _models  # noqa: F401  (registers VAERes2D)
    from diffusion import create_diffusion
    from models import DiT_models
    B, (X, Y, Z) = spec['batch'], spec['grid']
    if tuple(spec['latent']) != (128, 4, 25, 25) or B != 1:
        raise SystemExit('benchmark_vs_reference: the OccSora DiT hard-codes the doubled batch '
                         f'2 and 128 x 4 x 25 x 25 tokens; got batch {B}, {spec["latent"]}')
    _, steps = spec['ref_sampler']
    k = spec['timed_steps']
    model = DiT_models['DiT-XL/2']().eval()
    vq = MODELS.build(Config.fromfile('config/train_vqvae.py').model)
    vq.init_weights()
    vq.eval()
    diffusion = create_diffusion(str(k))  # the same loop, k of its 1000 steps
    y = data['trajectory'][..., :2].reshape(B, -1)
    kwargs = dict(y=torch.cat([y, y]), cfg_scale=spec['cfg'])
    z = torch.cat([data['noise']] * 2)
    crop = spec.get('decode_latent')  # small: decode a crop of the sample
    T, X, Y = (crop[1] * 8, crop[2] * 8, crop[3] * 8) if crop else (spec['frames'], X, Y)
    state = {}

    def loop():
        out = diffusion.p_sample_loop(model.forward_with_cfg, z.shape, z, clip_denoised=False,
                                      model_kwargs=kwargs, progress=False, device='cpu')
        state['x0'] = out.chunk(2, dim=0)[0]

    def decode():
        x0 = state['x0'][:, :, :crop[1], :crop[2], :crop[3]] if crop else state['x0']
        return vq.forward_decoder(x0 * 10, (B, T, X, Y, Z)).argmax(dim=-1)
    parts = [('loop', loop, k, steps), ('decode', decode, 1, 1)]
    return parts, _info(model, frozen=vq, sampler='ddpm', steps=steps, timed_steps=k,
                        guidance=spec['cfg'], network_batch=2 * B)


def occworld_forecast(spec, data):
    """config/occworld.py (start_frame 0, mid_frame 5, end_frame 11) as eval_metric_stp3.py
    runs it: ``TransVQVAE.forward_autoreg_with_pose`` (encode all end_frame frames, roll out
    end - mid frames one at a time recomputing the whole context, decode them, argmax)."""
    B, T, H = spec['batch'], spec['frames'], spec['history']
    X, Y, _ = spec['grid']
    _, model = refs.occworld_model(True, token_shape=(128, X // 4, Y // 4))
    model.eval()
    steps = np.zeros((T, 2), dtype=np.float32)
    steps[:, 0] = 1.5  # the same ego steps as our side's trajectory
    mode = np.zeros((T, 3), dtype=np.float32)
    mode[:, 1] = 1.0
    metas = [dict(rel_poses=steps, gt_mode=mode)] * B
    voxels = data['voxels']

    def forecast():
        return model.forward_autoreg_with_pose(voxels, metas, start_frame=0, mid_frame=H,
                                               end_frame=T)['sem_pred']
    return [('forecast', forecast, T - H, T - H)], _info(model, history=H, future=T - H)


def occworld_codec(spec, data):
    """config/train_vqvae.py's VAERes2D: ``forward_encoder`` -> ``vqvae`` (quant conv,
    nearest code, post-quant conv) = encode; ``forward_decoder`` -> argmax = decode."""
    _, model = refs.occworld_model(False)
    model.eval()
    voxels, state = data['voxels'], {}

    def encode():
        z, shapes = model.forward_encoder(voxels)
        state['z'] = model.vqvae(z, is_voxel=False)[0], shapes

    def decode():
        z, shapes = state['z']
        return model.forward_decoder(z, shapes, voxels.shape).argmax(dim=-1)
    return [('encode', encode, 1, 1), ('decode', decode, 1, 1)], _info(model)


def uniscene_codec(spec, data):
    """config/train_vae_4_DwT_L_me.py's VAERes2D_DwT: ``encode`` (a posterior sample) =
    encode; ``generate(z, shape)`` logits -> argmax = decode (as eval_OccDiT.py decodes)."""
    # local: mmengine (only the mmengine-based references load it), then the checkout
    from mmengine.config import Config
    from mmengine.registry import MODELS
    import model_vae  # noqa: F401  (registers VAERes2D_DwT)
    model = MODELS.build(Config.fromfile('config/train_vae_4_DwT_L_me.py').model)
    model.init_weights()
    model.eval()
    voxels, state = data['voxels'], {}

    def encode():
        state['z'] = model.encode(voxels)

    def decode():
        return model.generate(state['z'], list(voxels.shape))['logits'].argmax(dim=-1)
    return [('encode', encode, 1, 1), ('decode', decode, 1, 1)], _info(model)


BUILDERS = {('UniScene', 'sample'): uniscene_sample,
            ('DynamicCity', 'sample'): dynamiccity_sample,
            ('OccSora', 'sample'): occsora_sample,
            ('OccWorld', 'forecast'): occworld_forecast,
            ('OccWorld', 'codec'): occworld_codec,
            ('UniScene', 'codec'): uniscene_codec}


def build(row: str, spec: dict, data: dict):
    """``(parts, info)`` of the reference's inference for ``row`` (after the shims and
    :func:`vs_reference_refs.enter_checkout`)."""
    return refs.dispatch(BUILDERS, row, spec, data)
