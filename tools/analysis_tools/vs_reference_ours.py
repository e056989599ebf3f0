"""Our side of ``benchmark_vs_reference.py``: occworld4d's models of each row, one training step.

Imported only by the tool's ours-side worker process (the reference-side one never loads
occworld4d). :func:`build` returns ``(loss_fn, info)``; ``loss_fn()`` clears the gradients and
computes the training loss (under bf16 autocast with ``amp=True``; the tool runs ``backward``
outside it).
"""
import contextlib
import os.path as osp
import sys

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:  # a checkout without `pip install -e .`
    sys.path.insert(0, ROOT)
import occworld4d  # noqa: E402,F401  (mmengine compatibility; MODELS loads the models)
from occworld4d.registry import MODELS  # noqa: E402

#: (reference, kind) -> our config whose model is the reference's architecture.
CONFIGS = {
    ('DynamicCity', 'vae'): 'configs/dynamiccity/dynamiccity_vae_8xb1-100e_carlasc.py',
    ('DynamicCity', 'dit'): 'configs/dynamiccity/dynamiccity_dit_reference_carlasc.py',
    ('OccWorld', 'vqvae'): 'configs/occworld/occworld_vqvae_8xb1-200e_occ3d-nuscenes.py',
    ('OccWorld', 'wm'): 'configs/occworld/occworld_wm_8xb1-200e_occ3d-nuscenes.py',
    ('OccSora', 'vq'): 'configs/occsora/occsora_vqvae_8xb1-150e_occ3d-nuscenes.py',
    ('OccSora', 'dit'): 'configs/occsora/occsora_dit_reference_occ3d-nuscenes.py',
    ('UniScene', 'vae'): 'configs/uniscene/uniscene_vae_reference_occ3d-nuscenes.py',
    ('UniScene', 'dit'): 'configs/uniscene/uniscene_dit_reference_occ3d-nuscenes.py',
}


def model_cfg(spec: dict):
    """The row's model config at the row's size (frames, grid, latent)."""
    key = (spec['ref'], spec['kind'])
    if key not in CONFIGS:
        raise SystemExit(f'benchmark_vs_reference: no builder of ours for {key}')
    mcfg = Config.fromfile(osp.join(ROOT, CONFIGS[key])).model.copy()
    T, grid = spec['frames'], tuple(spec['grid'])
    if key == ('DynamicCity', 'vae'):
        mcfg.update(num_frames=T, spatial_size=grid)
    elif key == ('DynamicCity', 'dit'):  # HexPlane (T/2, X/2, Y/2, Z/2) of the reference VAE
        hex_shape = (T // 2, grid[0] // 2, grid[1] // 2, grid[2] // 2)
        mcfg.tokenizer.update(num_frames=T, spatial_size=grid)
        mcfg.latent_adapter.update(hex_shape=hex_shape, voxel_shape=(T, ) + grid)
        mcfg.denoiser.update(hex_shape=hex_shape, num_frames=T)
    elif key == ('OccWorld', 'wm'):  # T - 1 context frames, as the reference side is set
        mcfg.transformer.update(num_frames=T - 1)  # (the forecast lengths must fit it; the
        mcfg.update(history_frames=1, future_frames=T - 1)  # training step reads neither)
    elif key == ('OccSora', 'dit'):
        mcfg.update(latent_shape=tuple(spec['latent']))
        mcfg.denoiser.update(latent_shape=tuple(spec['latent']), num_frames=T)
    elif key == ('UniScene', 'dit'):
        C, _, H, W = spec['latent']
        mcfg.update(latent_shape=(C, T, H, W))
        mcfg.denoiser.update(input_size=(H, W), num_frames=T)
    if spec['kind'] in ('wm', 'dit'):  # frozen random tokenizer
        mcfg.update(tokenizer_ckpt=None, allow_random_tokenizer=True)
    return mcfg


def model_inputs(spec: dict, data: dict, model) -> dict:
    """The batch our model trains on: the same tensors as the reference side's."""
    if spec['kind'] == 'wm':
        voxels = data['voxels']
        T = voxels.shape[1]
        traj = torch.zeros(1, T, 3)
        traj[..., 0] = torch.arange(T, dtype=torch.float32) * 1.5
        return dict(voxels=voxels, trajectory=traj, command=torch.ones(1, dtype=torch.long))
    if spec['kind'] != 'dit':
        return dict(voxels=data['voxels'])
    if spec['ref'] == 'DynamicCity':  # the cached rollout, padding zeroed as the reference's
        return dict(latent=data['latent'] * model.valid_mask()[0].float())
    if spec['ref'] == 'OccSora':  # saved tokens (scaled by latent_scale 0.1 = the ref's / 10)
        return dict(latent=data['latent'], trajectory=data['trajectory'])
    return dict(voxels=data['voxels'], layout=data['layout'])  # UniScene: encoded in the step


def fix_draws(model, data: dict) -> None:
    """The diffusion loss at the row's fixed timestep and noise (the reference side's)."""
    engine = model.diffusion
    losses = engine.training_losses

    def training_losses(*args, **kwargs):
        kwargs.update(t=data['t'], noise=data['noise'])
        return losses(*args, **kwargs)
    engine.training_losses = training_losses


def count(net, frozen=None) -> dict:
    out = dict(params=sum(p.numel() for p in net.parameters()),
               trainable=sum(p.numel() for p in net.parameters() if p.requires_grad))
    if frozen is not None:
        out['frozen_tokenizer_params'] = sum(p.numel() for p in frozen.parameters())
    return out


def build(row: str, spec: dict, data: dict, amp: bool = False):
    """``(loss_fn, info)`` of our training step for ``row``."""
    mcfg = model_cfg(spec)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('occworld4d'):
        model = MODELS.build(mcfg).train()
    inputs = model_inputs(spec, data, model)
    if spec['kind'] == 'dit':
        if tuple(model.latent_shape(spec['batch'])) != tuple(data['noise'].shape):
            raise SystemExit(f'benchmark_vs_reference: {row}: our latent '
                             f'{tuple(model.latent_shape(spec["batch"]))} is not the row\'s '
                             f'{tuple(data["noise"].shape)}')
        fix_draws(model, data)
        info = count(model.denoiser, frozen=model.tokenizer)
    else:
        info = count(model)
    def loss():
        for p in model.parameters():
            p.grad = None
        with (torch.autocast('cpu', dtype=torch.bfloat16) if amp
              else contextlib.nullcontext()):
            out = model.loss(inputs)
            return sum(v for k, v in out.items() if k.startswith('loss'))
    info.update(model=type(model).__name__, config=CONFIGS[(spec['ref'], spec['kind'])],
                precision='bf16-autocast' if amp else 'fp32')
    return loss, info
