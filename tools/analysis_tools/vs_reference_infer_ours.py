"""Our side of the inference rows of ``benchmark_vs_reference.py``: sampling, forecasting and
tokenizer encode / decode with occworld4d's models (random weights, eval mode).

Imported only by the tool's ours-side worker process. Each builder returns ``(parts, info)``:
``parts`` is a list of ``(name, fn, timed_units, whole_units)``; the tool times each ``fn()``
(no grad) and counts it ``whole_units / timed_units`` times in the whole (a sampling loop of
``timed_units`` solver steps stands for our sampler's ``whole_units`` steps; see the tool's
docstring). With ``amp=True`` every part runs under CPU bf16 autocast.
"""
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

import vs_reference_ours as ours  # occworld4d on sys.path, registries loaded
from occworld4d.models.world_models import command_modes, step_displacements


def model_cfg(spec: dict):
    """The model config of the row (the training rows' configs at the row's size)."""
    if spec['kind'] != 'forecast':
        return ours.model_cfg(dict(spec, kind=spec['model']))
    X, Y, _ = spec['grid']
    mcfg = Config.fromfile(osp.join(ours.ROOT, ours.CONFIGS[('OccWorld', 'wm')])).model.copy()
    mcfg.update(tokenizer_ckpt=None, allow_random_tokenizer=True,
                history_frames=spec['history'], future_frames=spec['frames'] - spec['history'])
    mcfg.transformer.update(token_shape=(128, X // 4, Y // 4))
    return mcfg


def sample_parts(spec, data, model):
    """``LatentDiffusion.sample`` (our engine: one network call a step on the doubled CFG
    batch) from the row's x_T with the row's conditions, then ``decode_latent`` -> argmax."""
    sampler, steps = spec['ours_sampler']
    k, B = spec['timed_steps'], spec['batch']
    cond = {key: data[key] for key in model.condition_keys if key in data}
    missing = [key for key in model.condition_keys if key not in cond]
    if missing:
        raise SystemExit(f'benchmark_vs_reference: no input for the conditions {missing}')
    scale = spec['cfg'] if cond else 1.0  # no condition (DynamicCity's conf): nothing to guide
    state = {}

    def loop():
        state['x0'] = model.sample(B, cond=cond, guidance_scale=scale, sampler=sampler,
                                   num_steps=k, x_T=data['noise'])

    crop = spec.get('decode_latent')  # small OccSora: decode a crop (tokenizer.decode, as
    # decode_latent does without its shape check)

    def decode():
        if crop:
            x0 = state['x0'][:, :, :crop[1], :crop[2], :crop[3]]
            return model.tokenizer.decode(x0 / model.latent_scale).argmax(1)
        return model.decode_latent(state['x0']).argmax(1)
    info = ours.count(model.denoiser, frozen=model.tokenizer)
    info.update(sampler=sampler, steps=steps, timed_steps=k, guidance=scale,
                network_batch=2 * B if scale != 1.0 else B)
    return [('loop', loop, k, steps), ('decode', decode, 1, 1)], info


def forecast_parts(spec, data, model):
    """``OccWorld.predict``'s forecast: tokenize the history, KV-cached ``forecast``, decode
    the future codes -> argmax (``tools/analysis_tools/benchmark_forecast.py`` times the same)."""
    B, T, H = spec['batch'], spec['frames'], spec['history']
    X, Y, _ = spec['grid']
    voxels = data['voxels'][:, :H]
    traj = torch.zeros(B, H, 3)
    traj[..., 0] = torch.arange(H, dtype=torch.float32) * 1.5  # the reference side's steps
    steps = step_displacements(traj)
    mode = command_modes(torch.ones(B, dtype=torch.long))

    def forecast():
        ids = model.tokenize(voxels)
        fut, _ = model.forecast(ids, steps, mode, T - H, use_cache=True)
        return model.tokenizer.decode_indices(fut, size=(X, Y)).argmax(1)
    info = ours.count(model)
    info.update(history=H, future=T - H)
    return [('forecast', forecast, T - H, T - H)], info


def codec_parts(spec, data, model):
    """The tokenizer's ``encode`` (UniScene: a posterior sample, as the reference's) and
    ``decode`` -> argmax."""
    voxels, state = data['voxels'], {}
    enc_kw = dict(sample=True) if spec['ref'] == 'UniScene' else {}
    dec_kw = dict(size=voxels.shape[2:4]) if spec['ref'] == 'OccWorld' else {}

    def encode():
        state['z'] = model.encode(voxels, **enc_kw)

    def decode():
        return model.decode(state['z'], **dec_kw).argmax(1)
    return [('encode', encode, 1, 1), ('decode', decode, 1, 1)], ours.count(model)


PARTS = dict(sample=sample_parts, forecast=forecast_parts, codec=codec_parts)


def build(row: str, spec: dict, data: dict, amp: bool = False):
    """``(parts, info)`` of our inference for ``row``."""
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('occworld4d'):
        model = ours.MODELS.build(model_cfg(spec)).eval()
    if spec['kind'] == 'sample' and tuple(model.latent_shape(spec['batch'])) != tuple(
            data['noise'].shape):
        raise SystemExit(f'benchmark_vs_reference: {row}: our latent '
                         f'{tuple(model.latent_shape(spec["batch"]))} is not the row\'s '
                         f'{tuple(data["noise"].shape)}')
    parts, info = PARTS[spec['kind']](spec, data, model)
    if amp:
        def autocast(fn):
            def run():
                with torch.autocast('cpu', dtype=torch.bfloat16):
                    return fn()
            return run
        parts = [(name, autocast(fn), k, n) for name, fn, k, n in parts]
    key = (spec['ref'], 'wm' if spec['kind'] == 'forecast' else spec['model'])
    info.update(model=type(model).__name__, config=ours.CONFIGS[key],
                precision='bf16-autocast' if amp else 'fp32')
    return parts, info

