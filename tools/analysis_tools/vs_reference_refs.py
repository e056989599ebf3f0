"""The reference side of ``benchmark_vs_reference.py``: CPU shims and the reference steps.

Imported only by the tool's reference-side worker process (never by occworld4d, never by the
ours-side process). The reference code is imported from the checkouts under
``--reference-root``; nothing of it is in this repository. The shims are applied in memory
(files in the checkouts are neither modified nor byte-compiled); the tool's module docstring
lists them. Every builder returns ``(loss_fn, info)``: ``loss_fn()`` computes the training
loss of one step (gradients cleared first); the tool times ``loss_fn`` + ``backward``.
"""
import importlib.abc
import importlib.machinery
import importlib.util
import os
import os.path as osp
import sys
import types

import torch
import torch.nn.functional as F
from torch import nn

#: Reference checkouts: folder under --reference-root, code root inside it, what it holds.
CHECKOUTS = {
    'DynamicCity': ('', '3DTopia/DynamicCity (eaf0c6e): conf/, dynamic_city/'),
    'OccWorld': ('', 'wzzheng/OccWorld (1ee7f77): config/, model/, loss/'),
    'OccSora': ('', 'wzzheng/OccSora (9f8d1f0): config/, model/, loss/, models.py, diffusion/'),
    'UniScene': ('occupancy_gen', 'Arlo0o/UniScene-Unified-Occupancy-centric-Driving-Scene-'
                 'Generation (e98413d): occupancy_gen/{config,model_vae,loss,diffusion}/'),
}

#: In-memory source fixes: {reference: {module: [(text, replacement)]}}, each text found
#: exactly once in the module's source (else the import fails, naming the file).
SOURCE_FIXES = {
    'DynamicCity': {
        # dynamic_city/diffusion/models.py, DiT.unpatchify: the padding buffer is made half
        # (training runs under fp16 autocast, where the final layer's output is half); here it
        # takes the output's dtype (fp32, as the step runs; a copy, as the cast made one)
        'dynamic_city.diffusion.models': [('.half()', '.to(x.dtype, copy=True)')],
    },
    'OccSora': {
        # model/VAE/vae_2d_resnet.py, VAERes2D.forward: a line holding only ")" (a
        # SyntaxError at 9f8d1f0: the package does not import), dropped
        'model.VAE.vae_2d_resnet': [('\n)\n', '\n')],
    },
    'UniScene': {
        # occupancy_gen/loss/recon_loss.py line 3: the __future__ name "print_functiona"
        # (a SyntaxError at e98413d), spelled print_function
        'loss.recon_loss': [('print_functiona', 'print_function')],
    },
}

RAISING_STUBS = ('skimage', 'skimage.draw', 'nuscenes', 'nuscenes.utils',
                 'nuscenes.utils.data_classes', 'scipy', 'scipy.spatial',
                 'scipy.spatial.transform', 'skvideo', 'skvideo.io', 'torchvision',
                 'torchvision.models')


# ============================================================================ shims
def _flash_attn():
    def _sdpa(q, k, v, dropout_p=0.0, causal=False, softmax_scale=None):
        # flash-attn layout (B, N, H, D) -> SDPA (B, H, N, D)
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2),
                                             v.transpose(1, 2), dropout_p=dropout_p,
                                             is_causal=causal, scale=softmax_scale)
        return out.transpose(1, 2)

    def qkvpacked(qkv, dropout_p=0.0, softmax_scale=None, causal=False, **kw):
        q, k, v = qkv.unbind(2)  # (B, N, 3, H, D)
        return _sdpa(q, k, v, dropout_p, causal, softmax_scale)

    def kvpacked(q, kv, dropout_p=0.0, softmax_scale=None, causal=False, **kw):
        k, v = kv.unbind(2)  # (B, M, 2, H, D)
        return _sdpa(q, k, v, dropout_p, causal, softmax_scale)

    def plain(q, k, v, dropout_p=0.0, softmax_scale=None, causal=False, **kw):
        return _sdpa(q, k, v, dropout_p, causal, softmax_scale)

    flash = types.ModuleType('flash_attn')
    flash.flash_attn_qkvpacked_func = qkvpacked
    flash.flash_attn_kvpacked_func = kvpacked
    flash.flash_attn_func = plain
    sys.modules['flash_attn'] = flash


def _timm_modules():
    """timm's Mlp, PatchEmbed and Attention with the same parameters and computation."""
    class Mlp(nn.Module):  # fc1 -> act -> drop -> (norm) -> fc2 -> drop
        def __init__(self, in_features, hidden_features=None, out_features=None,
                     act_layer=nn.GELU, norm_layer=None, bias=True, drop=0.0, **kw):
            super().__init__()
            out_features = out_features or in_features
            hidden_features = hidden_features or in_features
            self.fc1 = nn.Linear(in_features, hidden_features, bias=bias)
            self.act = act_layer()
            self.drop1 = nn.Dropout(drop)
            self.norm = norm_layer(hidden_features) if norm_layer else nn.Identity()
            self.fc2 = nn.Linear(hidden_features, out_features, bias=bias)
            self.drop2 = nn.Dropout(drop)

        def forward(self, x):
            return self.drop2(self.fc2(self.norm(self.drop1(self.act(self.fc1(x))))))

    class PatchEmbed(nn.Module):  # strided conv, (B, N, C) tokens
        def __init__(self, img_size=224, patch_size=16, in_chans=3, embed_dim=768,
                     norm_layer=None, flatten=True, bias=True, **kw):
            super().__init__()
            img = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
            patch = (patch_size, patch_size) if isinstance(patch_size, int) else tuple(patch_size)
            self.img_size, self.patch_size = img, patch
            self.grid_size = (img[0] // patch[0], img[1] // patch[1])
            self.num_patches = self.grid_size[0] * self.grid_size[1]
            self.flatten = flatten
            self.proj = nn.Conv2d(in_chans, embed_dim, patch, patch, bias=bias)
            self.norm = norm_layer(embed_dim) if norm_layer else nn.Identity()

        def forward(self, x):
            x = self.proj(x)
            if self.flatten:
                x = x.flatten(2).transpose(1, 2)
            return self.norm(x)

    class Attention(nn.Module):  # qkv -> (q/k norm) -> fused SDPA -> proj
        def __init__(self, dim, num_heads=8, qkv_bias=False, qk_norm=False, attn_drop=0.0,
                     proj_drop=0.0, norm_layer=nn.LayerNorm, **kw):
            super().__init__()
            self.num_heads, self.head_dim = num_heads, dim // num_heads
            self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
            self.q_norm = norm_layer(self.head_dim) if qk_norm else nn.Identity()
            self.k_norm = norm_layer(self.head_dim) if qk_norm else nn.Identity()
            self.attn_drop = nn.Dropout(attn_drop)
            self.proj = nn.Linear(dim, dim)
            self.proj_drop = nn.Dropout(proj_drop)

        def forward(self, x):
            B, N, C = x.shape
            qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim)
            q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # (B, H, N, D) each
            x = F.scaled_dot_product_attention(
                self.q_norm(q), self.k_norm(k), v,
                dropout_p=self.attn_drop.p if self.training else 0.0)
            return self.proj_drop(self.proj(x.transpose(1, 2).reshape(B, N, C)))

    return Mlp, PatchEmbed, Attention


def _timm():
    Mlp, PatchEmbed, Attention = _timm_modules()
    timm = types.ModuleType('timm')
    layers = types.ModuleType('timm.layers')
    models = types.ModuleType('timm.models')
    vit = types.ModuleType('timm.models.vision_transformer')
    layers.Mlp = vit.Mlp = Mlp
    layers.PatchEmbed = vit.PatchEmbed = PatchEmbed
    layers.Attention = vit.Attention = Attention
    timm.layers, timm.models, models.vision_transformer = layers, models, vit
    sys.modules.update({'timm': timm, 'timm.layers': layers, 'timm.models': models,
                        'timm.models.vision_transformer': vit})


def _raising_stubs():
    """Modules whose attributes raise when called, for packages that are not installed."""
    def unavailable(modname):
        def getattr_(attr):
            if attr.startswith('__'):
                raise AttributeError(attr)

            def missing(*a, **k):
                raise RuntimeError(f'{modname}.{attr} is a benchmark_vs_reference stub (the '
                                   'package is not installed; the training step does not use it)')
            return missing
        return getattr_

    for name in RAISING_STUBS:
        top = name.split('.')[0]
        if top not in sys.modules and importlib.util.find_spec(top) is not None:
            continue  # installed: the real package
        mod = types.ModuleType(name)
        mod.__getattr__ = unavailable(name)
        mod.__path__ = []
        sys.modules[name] = mod
        if '.' in name:  # the parent (stubbed just before) holds its child
            parent, _, child = name.rpartition('.')
            setattr(sys.modules[parent], child, mod)


class AttrDict(dict):
    __getattr__ = dict.__getitem__


def _to_attr(obj):
    if isinstance(obj, dict):
        return AttrDict({k: _to_attr(v) for k, v in obj.items()})
    if isinstance(obj, list):
        return [_to_attr(v) for v in obj]
    return obj


def load_yaml(path):
    """``OmegaConf.load`` on PyYAML: nested dicts with attribute access."""
    import yaml  # local: only the references configured by YAML read it
    with open(path) as f:
        return _to_attr(yaml.safe_load(f) or {})


def install_shims():
    """Install every CPU shim in this process (see the tool's module docstring)."""
    sys.dont_write_bytecode = True  # no __pycache__ written into the checkouts
    _flash_attn()
    _timm()
    sys.modules['wandb'] = types.ModuleType('wandb')
    _raising_stubs()
    omegaconf = types.ModuleType('omegaconf')
    omegaconf.OmegaConf = types.SimpleNamespace(load=load_yaml, create=_to_attr)
    sys.modules['omegaconf'] = omegaconf
    torch.Tensor.cuda = lambda self, *a, **k: self
    return load_yaml


class _FixingLoader(importlib.machinery.SourceFileLoader):
    """Compiles a reference module from its source with :data:`SOURCE_FIXES` applied."""

    def __init__(self, fullname, path, fixes):
        super().__init__(fullname, path)
        self.fixes = fixes

    def get_code(self, fullname):
        text = self.get_data(self.path).decode('utf-8')
        for old, new in self.fixes:
            if text.count(old) != 1:
                raise ImportError(f'benchmark_vs_reference: expected the text {old!r} once in '
                                  f'{self.path} (another commit of the checkout?)')
            text = text.replace(old, new)
        return compile(text, self.path, 'exec', dont_inherit=True)


class _FixingFinder(importlib.abc.MetaPathFinder):
    def __init__(self, fixes):
        self.fixes = fixes

    def find_spec(self, fullname, path, target=None):
        if fullname not in self.fixes:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not spec.origin:
            return None
        spec.loader = _FixingLoader(fullname, spec.origin, self.fixes[fullname])
        return spec


def enter_checkout(ref: str, ref_root: str) -> str:
    """chdir into the checkout's code root, put it on sys.path, install its source fixes."""
    if not ref_root:
        raise SystemExit('benchmark_vs_reference: give --reference-root DIR (the folder with '
                         'the reference checkouts)')
    sub, what = CHECKOUTS[ref]
    folder = osp.join(ref_root, ref)
    code = osp.join(folder, sub) if sub else folder
    if not osp.isdir(code):
        raise SystemExit(f'benchmark_vs_reference: {folder} not found (expected the {ref} '
                         f'reference checkout under --reference-root: {what})')
    os.chdir(code)  # the reference reads some files relative to its root
    sys.path.insert(0, code)
    if ref in SOURCE_FIXES:
        sys.meta_path.insert(0, _FixingFinder(SOURCE_FIXES[ref]))
    return code


# ============================================================================ helpers
def clear_grads(model):
    for p in model.parameters():
        p.grad = None


def count(model, frozen=None) -> dict:
    """params / trainable of the trained network (+ the frozen tokenizer's, when built)."""
    out = dict(params=sum(p.numel() for p in model.parameters()),
               trainable=sum(p.numel() for p in model.parameters() if p.requires_grad),
               model=type(model).__name__)
    if frozen is not None:
        out['frozen_tokenizer_params'] = sum(p.numel() for p in frozen.parameters())
    return out


def openocc_loss(cfg, loss_fn, out, voxels):
    """The OpenOcc-style MultiLoss of OccWorld / OccSora / UniScene on the model outputs."""
    li = {'inputs': voxels}
    for key, val in cfg.loss_input_convertion.items():
        li[key] = out[val]
    total, _ = loss_fn(li)
    return total


def openocc_model(config: str):
    """(cfg, model in train mode after its init_weights, MultiLoss) of an mmengine config of
    the checkout (OccSora / UniScene tokenizers); the caller imports the checkout's module
    that registers the model first."""
    # local: mmengine (only the mmengine-based references load it), then the checkout
    from mmengine.config import Config
    from mmengine.registry import MODELS
    from loss import OPENOCC_LOSS
    cfg = Config.fromfile(config)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    return cfg, model, OPENOCC_LOSS.build(cfg.loss)


# ============================================================================ builders
def dynamiccity_vae_model(spec):
    """DynamicCityAE of conf/vae/{model/vae,dataset/carlasc}.yaml at the row's window."""
    # local: the reference checkout (on sys.path from enter_checkout)
    from dynamic_city.vae.vae import DynamicCityAE
    dset = load_yaml('conf/vae/dataset/carlasc.yaml')
    dset.update(sequence_length=spec['frames'], spatial_size=list(spec['grid']))
    conf = AttrDict(model=load_yaml('conf/vae/model/vae.yaml'), dataset=dset)
    return DynamicCityAE(conf), conf


def dynamiccity_vae(spec, data):
    # local: the reference checkout (on sys.path from enter_checkout)
    from dynamic_city.utils.loss_utils import build_losses
    model, conf = dynamiccity_vae_model(spec)
    model.train()
    losses = build_losses(conf.model, ce_weight=None)
    weights = dict(conf.model.loss_weights)
    voxels, K = data['voxels'], conf.dataset.num_classes

    def loss():
        clear_grads(model)
        out = model(voxels)
        parts = dict(ce=losses['ce'](out['pred'].permute(0, 5, 1, 2, 3, 4), voxels),
                     lovasz=losses['lovasz'](out['pred'].reshape(-1, K), voxels.reshape(-1)),
                     kl=losses['kl'](out['mus'], out['logvars']))
        return sum(weights[k] * v for k, v in parts.items())
    return loss, count(model)


def dynamiccity_dit_model(spec, B):
    """DiTTrainer.setup_model (dynamic_city/trainer/dit_trainer.py) for batch B: DiT-DC/2 over
    the padded rollout, conf/dit/model/dit.yaml; returns (model, rollout mask, hex txyz)."""
    # local: the reference checkout (on sys.path from enter_checkout)
    from dynamic_city.diffusion.models import DiT_models
    from dynamic_city.utils.hexplane_utils import get_rollout_mask
    conf = load_yaml('conf/dit/model/dit.yaml')
    vae = load_yaml('conf/vae/model/vae.yaml')
    T, (X, Y, Z) = spec['frames'], spec['grid']
    txyz = (T // 2 ** vae.hex_down_t,  # the trainer's hex_t, hex_x, hex_y, hex_z
            X // 2 ** vae.hex_down_x // 2 ** vae.down_x,
            Y // 2 ** vae.hex_down_y // 2 ** vae.down_y,
            Z // 2 ** vae.hex_down_z // 2 ** vae.down_z)
    patch_mask = get_rollout_mask(tuple(d // 2 for d in txyz)).half()  # as the trainer
    patch_mask = patch_mask.flatten(2).transpose(1, 2).expand(B, -1, 1)
    model = DiT_models[conf.model](
        in_channels=vae.latent_channels, x_attn=conf.x_attn, txyz=txyz, seq_len=T,
        patch_mask=patch_mask, hex_cond=conf.hex_cond, layout_cond=conf.layout_cond,
        traj_cond=conf.traj_cond, cmd_cond=conf.cmd_cond, traj_size=3 * T)
    return model, get_rollout_mask(txyz), txyz


def dynamiccity_dit(spec, data):
    """DiTTrainer.forward_step: every condition off (conf/dit/model/dit.yaml), from a cached
    HexPlane (the reference trains from its HexPlane cache; the VAE is not built)."""
    # local: the reference checkout (on sys.path from enter_checkout)
    from dynamic_city.diffusion import create_diffusion
    model, rollout_mask, _ = dynamiccity_dit_model(spec, spec['batch'])
    model.train()
    diffusion = create_diffusion(timestep_respacing='')
    x = data['latent'] * rollout_mask
    kwargs = dict(hexplane=None, layout=None, traj=None, cmd=None)  # every condition off

    def loss():
        clear_grads(model)
        return diffusion.training_losses(model, x, data['t'], kwargs, noise=data['noise'],
                                         mask=rollout_mask)['loss'].mean()
    return loss, count(model)


def occworld_model(wm: bool, num_frames=None, token_shape=None):
    """(cfg, model): VAERes2D of config/train_vqvae.py, or TransVQVAE of config/occworld.py
    (its num_frames 15 unless given; token_shape = the transformer's img_shape, (128, 50, 50))."""
    # local: mmengine (only the mmengine-based references load it), then the checkout
    from mmengine.config import Config
    from mmengine.registry import MODELS
    import model as _models  # noqa: F401  (registers VAERes2D, TransVQVAE, ...)
    cfg = Config.fromfile('config/occworld.py' if wm else 'config/train_vqvae.py')
    if num_frames is not None:
        cfg.model.num_frames = cfg.model.transformer.num_frames = num_frames
    if token_shape is not None:
        cfg.model.transformer.img_shape = tuple(token_shape)
    return cfg, MODELS.build(cfg.model)


def occworld(spec, data):
    # local: the reference checkout
    import numpy as np
    from loss import OPENOCC_LOSS
    wm = spec['kind'] == 'wm'
    cfg, model = occworld_model(wm, spec['frames'] - 1 if wm else None)
    model.train()
    loss_fn = OPENOCC_LOSS.build(cfg.loss)
    metas = None
    if wm:  # frozen tokenizer, as in the reference training
        for p in model.vae.parameters():
            p.requires_grad_(False)
        T = spec['frames']
        steps = np.zeros((T, 2), dtype=np.float32)
        steps[:, 0] = 1.5  # the same ego steps as our side's trajectory
        mode = np.zeros((T, 3), dtype=np.float32)
        mode[:, 1] = 1.0
        metas = [dict(rel_poses=steps, gt_mode=mode)]
    voxels = data['voxels']

    def loss():
        clear_grads(model)
        return openocc_loss(cfg, loss_fn, model(x=voxels, metas=metas), voxels)
    return loss, count(model)


def occsora_vq(spec, data):
    """train_1.py with config/train_vqvae.py (VAERes2D: VideoGPT Encoder(512, 4, (8, 8, 8)),
    VectorQuantizer, Decoder). Its forward replaces the latent by np.load('/samples_array.npy')
    before decoding (a leftover, OccSora issue #4); the step here is that forward without the
    override: forward_encoder -> vqvae -> forward_decoder, then the config's MultiLoss."""
    # local: the reference checkout
    import model as _models  # noqa: F401  (registers VAERes2D, VectorQuantizer)
    if spec['batch'] != 1:
        raise SystemExit('benchmark_vs_reference: the OccSora VQ-VAE decoder squeezes the '
                         'batch dimension (batch 1 only)')
    cfg, model, loss_fn = openocc_model('config/train_vqvae.py')
    voxels = data['voxels']

    def loss():
        clear_grads(model)
        z = model.forward_encoder(voxels)
        z_q, embed_loss, _ = model.vqvae(z, is_voxel=False)
        out = dict(logits=model.forward_decoder(z_q, voxels.shape), embed_loss=embed_loss)
        return openocc_loss(cfg, loss_fn, out, voxels)
    return loss, count(model)


def occsora_dit(spec, data):
    """train_2.py: DiT_models[args.model]() with the default --model DiT-XL/2 (depth 28,
    width 256), x = saved tokens / 10, y = the 64-value trajectory; create_diffusion('')."""
    # local: the reference checkout (on sys.path from enter_checkout)
    from diffusion import create_diffusion
    from models import DiT_models
    if tuple(spec['latent']) != (128, 4, 25, 25) or spec['batch'] != 2:
        raise SystemExit('benchmark_vs_reference: the OccSora DiT hard-codes batch 2 and '
                         f'2500 tokens of 128 x 4 x 25 x 25 (models.py); got batch '
                         f'{spec["batch"]}, latent {tuple(spec["latent"])}')
    model = DiT_models['DiT-XL/2']().train()
    diffusion = create_diffusion(timestep_respacing='')
    x = data['latent'] / 10
    y = data['trajectory'][..., :2].reshape(spec['batch'], -1)  # (B, 64): (x, y) a frame

    def loss():
        clear_grads(model)
        return diffusion.training_losses(model, x, data['t'], dict(y=y),
                                         noise=data['noise'])['loss'].mean()
    return loss, count(model)


def uniscene_vae(spec, data):
    """train_OccVAE.py with config/train_vae_4_DwT_L_me.py (VAERes2D_DwT + MultiLoss)."""
    # local: the reference checkout
    import model_vae  # noqa: F401  (registers VAERes2D_DwT, Encoder2D_new2, Decoder3D_withT)
    cfg, model, loss_fn = openocc_model('config/train_vae_4_DwT_L_me.py')
    voxels = data['voxels']

    def loss():
        clear_grads(model)
        return openocc_loss(cfg, loss_fn, model(x=voxels), voxels)
    return loss, count(model)


def uniscene_models(spec):
    """(VAE, OccDiT) of train_OccDiT.py main(): the frozen VAE of config/train_vae_4_DwT_L_me.py
    (eval) and OccDiT with its DiT_cfg (depth 12, width 512, layout concat, 4-value meta)."""
    # local: mmengine (only the mmengine-based references load it), then the checkout
    from mmengine.config import Config
    from mmengine.registry import MODELS
    import model_vae  # noqa: F401
    from diffusion.models import OccDiT
    X, Y, _ = spec['grid']
    if (X // 4) * (Y // 4) != 2500:
        raise SystemExit('benchmark_vs_reference: the UniScene OccDiT hard-codes 625 tokens a '
                         f'frame (a 200 x 200 grid; diffusion/models.py); got {X} x {Y}')
    vae = MODELS.build(Config.fromfile('config/train_vae_4_DwT_L_me.py').model)
    vae.init_weights()
    vae.eval()
    model = OccDiT(depth=12, in_channels=4, hidden_size=512, use_label=False,
                   use_bev_concat=True, bev_in_ch=1, bev_out_ch=1, use_meta=True,
                   bev_dropout_prob=0.1, meta_num=4, direct_concat=True, Tframe=spec['frames'])
    return vae, model


def uniscene_layout(layout):
    """(B, T, X, Y) layout ids 0..12 -> the reference's (B, T, 1, X, Y) map in [-1, 1]."""
    layout = layout.float()
    return torch.where(layout > 0, (layout - 1) / 11, -torch.ones_like(layout)).unsqueeze(2)


def uniscene_dit(spec, data):
    """train_OccDiT.py main() (its DiT_cfg with the argparse defaults depth 12, width 512, and
    run_train_dit.sh's --lambda_noise_prior 0.03): the frozen VAE of
    config/train_vae_4_DwT_L_me.py encodes the clip in the step (no grad, x 70), OccDiT with
    the BEV layout concatenated and the 4-value meta, noise = eps + 0.03 x the frame-0 latent."""
    # local: the reference checkout
    from diffusion import create_diffusion
    T = spec['frames']
    vae, model = uniscene_models(spec)
    model.train()
    diffusion = create_diffusion(timestep_respacing='')
    kwargs = dict(y=uniscene_layout(data['layout']), meta=data['meta'])

    def loss():
        clear_grads(model)
        with torch.no_grad():
            x = vae.encode(data['voxels']) * 70  # (B, C, T, H, W)
        noise = data['noise'] + 0.03 * x[:, :, :1].repeat(1, 1, T, 1, 1)
        return diffusion.training_losses(model, x, data['t'], kwargs,
                                         noise=noise)['loss'].mean()
    return loss, count(model, frozen=vae)


BUILDERS = {('DynamicCity', 'vae'): dynamiccity_vae, ('DynamicCity', 'dit'): dynamiccity_dit,
            ('OccWorld', 'vqvae'): occworld, ('OccWorld', 'wm'): occworld,
            ('OccSora', 'vq'): occsora_vq, ('OccSora', 'dit'): occsora_dit,
            ('UniScene', 'vae'): uniscene_vae, ('UniScene', 'dit'): uniscene_dit}


def dispatch(builders: dict, row: str, spec: dict, data: dict):
    """``builders[(ref, kind)](spec, data)`` seeded with 0: ``(fn, info)``, info marked fp32."""
    builder = builders.get((spec['ref'], spec['kind']))
    if builder is None:
        raise SystemExit(f'benchmark_vs_reference: no reference builder for row {row!r}')
    torch.manual_seed(0)
    fn, info = builder(spec, data)
    return fn, dict(info, precision='fp32')


def build(row: str, spec: dict, data: dict):
    """``(loss_fn, info)`` of the reference's training step for ``row`` (after
    :func:`install_shims` and :func:`enter_checkout`)."""
    return dispatch(BUILDERS, row, spec, data)
