"""DynamicCity (3DTopia/DynamicCity @ eaf0c6e) checkpoints <-> occworld4d.

The reference releases ``ckpts/<name>/conf.yaml`` (the training run's hydra config, written by
``dynamic_city/utils/ckpt_utils.py:save_conf``) beside its checkpoints:

- VAE (``dynamic_city/trainer/vae_trainer.py:save_checkpoint``), ``<epoch>_mIoU_<m>.ckpt`` /
  ``last.ckpt``: ``{epoch, optimizer_state_dict, scheduler_state_dict, best_miou, global_step,
  model_state_dict}``; ``model_state_dict`` is ``DynamicCityAE`` (``encoder`` TrEncoder,
  ``vae.fc_mu_logvar``, ``decoder`` ConvDecoder).
- DiT (``dynamic_city/trainer/dit_trainer.py:save_checkpoint``), ``<step>.ckpt`` /
  ``last.ckpt``: ``{epoch, optimizer_state_dict, current_step, model_state_dict, ema}``; the
  reference samples with ``ema`` (``infer_dit.py``), the default here too. Its conf names the
  VAE run (``vae_name``), whose conf gives the HexPlane sizes.

occworld4d's :class:`~occworld4d.models.tokenizers.HexPlaneVAE` and
:class:`~occworld4d.models.denoisers.RolloutDiT` are the same functions with other names;
two layout changes besides renaming:

- the decoder's plane block runs the three spatial (xy, xz, yz) and the three time planes
  (tx, ty, tz) as grouped convs (``groups=3``) in the reference and as one conv per plane
  here: output channels ``[g Q:(g + 1) Q]`` of a grouped conv are plane ``g``'s conv;
- the reference embeds the layout condition to width 1 and adds it to every hidden channel
  (broadcast); ours is a full-width patch embedding: the one output row repeated D times is
  the same function (the reverse way needs equal rows).

occworld4d's per-condition null embeddings are zero (the reference replaces a dropped
condition by zeros); the reverse way refuses non-zero ones, which the reference cannot express.
"""
import argparse
import glob
import inspect
import os.path as osp
import shutil
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import yaml
from mmengine.config import Config, DictAction
from torch import Tensor

from occworld4d.models.denoisers import DIT_PRESETS
from occworld4d.registry import MODELS
from occworld4d.utils.io import atomic_open, atomic_path
from .common import (Conversion, ConversionError, KeyRule, TensorTransform, add_prefix,
                     check_state_dict, convert, convert_into, convert_out_of, model_shapes,
                     occworld4d_weights, prefix_rules, read_checkpoint, save_occworld4d_checkpoint,
                     save_reference_checkpoint, select_weights, shapes_of, strip_prefix)

StateDict = Dict[str, Tensor]

PLANES = ('xy', 'xz', 'yz', 'tx', 'ty', 'tz')
VAE_CONFIG = 'configs/dynamiccity/dynamiccity_vae_reference_carlasc.py'
DIT_CONFIG = 'configs/dynamiccity/dynamiccity_dit_reference_carlasc.py'
CONF_NAME = 'conf.yaml'
MAX_LEVELS = 8
REFERENCE = '3DTopia/DynamicCity@eaf0c6e'
# reference DiT condition flag -> occworld4d condition name
DIT_CONDITIONS = (('traj_cond', 'trajectory'), ('cmd_cond', 'command'),
                  ('layout_cond', 'layout'), ('hex_cond', 'hexplane'))
DIT_ARCHS = ('DiT-DC/1', 'DiT-DC/2')
# grouped convs of the decoder's plane block: reference name -> (our name, planes)
_GROUPED = (('in_layers_{g}', 'in_convs'), ('out_layers_{g}.1', 'out_convs'),
            ('shortcut_{g}', 'shortcuts'))
_GROUP_PLANES = (('h', PLANES[:3]), ('t', PLANES[3:]))


# ------------------------------------------------------------------------------ conf.yaml
def find_conf(src: str) -> str:
    """``conf.yaml`` beside a reference checkpoint (``ckpts/<name>/conf.yaml``)."""
    path = osp.join(osp.dirname(osp.abspath(src)), CONF_NAME)
    if not osp.isfile(path):
        raise ConversionError(f'{src}: no {CONF_NAME} beside it ({path}); DynamicCity releases '
                              f'ckpts/<name>/{CONF_NAME} next to the checkpoints (give --conf)')
    return path


def load_conf(path: str) -> Dict[str, Any]:
    """A reference ``conf.yaml`` (OmegaConf's plain YAML) as nested dicts."""
    try:
        with open(path) as f:
            conf = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as err:
        raise ConversionError(f'{path}: not a readable YAML file ({err})') from err
    if not isinstance(conf, dict) or not isinstance(conf.get('model'), dict):
        raise ConversionError(f'{path}: expected a DynamicCity conf with a "model" section '
                              f'(ckpts/<name>/{CONF_NAME})')
    return conf


def _get(conf: Dict[str, Any], path: str, filename: str):
    node = conf
    for part in path.split('.'):
        if not isinstance(node, dict) or part not in node:
            raise ConversionError(f'{filename}: missing {path!r} (expected a DynamicCity VAE '
                                  f'conf.yaml as the reference saves it)')
        node = node[part]
    return node


def is_dit_conf(conf: Dict[str, Any]) -> bool:
    return 'vae_name' in conf or conf.get('model', {}).get('model') in DIT_ARCHS


def vae_kwargs_from_conf(conf: Dict[str, Any], filename: str) -> Dict[str, Any]:
    """HexPlaneVAE keyword arguments of a reference VAE conf (sizes and switches).

    Raises:
        ConversionError: a reference setting that occworld4d's HexPlaneVAE does not build
            (listing every one).
    """
    m = _get(conf, 'model', filename)
    unsupported = []
    for key, want in (('encoder_type', 'tr'), ('decoder_type', 'conv'), ('vae', True),
                      ('separate_t_encoder', True), ('one_hot_time', True),
                      ('separate_t_reducer', True)):
        if m.get(key, want) != want:
            unsupported.append(f'model.{key}={m.get(key)!r} (supported: {want!r})')
    if m.get('interpolate_t_skip', 0):
        unsupported.append(f'model.interpolate_t_skip={m["interpolate_t_skip"]!r} '
                           '(supported: 0)')
    if unsupported:
        raise ConversionError(f'{filename}: settings occworld4d\'s HexPlaneVAE does not '
                              f'build:\n    ' + '\n    '.join(unsupported))
    g = lambda key: _get(conf, key, filename)  # noqa: E731
    return dict(
        num_classes=int(g('dataset.num_classes')),
        num_frames=int(g('dataset.sequence_length')),
        spatial_size=tuple(int(s) for s in g('dataset.spatial_size')),
        latent_channels=int(g('model.latent_channels')),
        voxel_down=(int(g('model.down_x')), int(g('model.down_y')), int(g('model.down_z'))),
        plane_down=(int(g('model.hex_down_t')), int(g('model.hex_down_x')),
                    int(g('model.hex_down_y')), int(g('model.hex_down_z'))),
        transformer_depth=int(g('model.transformer_depth')),
        transformer_heads=int(g('model.transformer_heads')),
        transformer_mlp_dim=int(g('model.transformer_dim_mlp')),
        dropout=float(g('model.dropout')),
        fusion='hadamard' if g('model.hadamard') else 'sum',
        query_channels=int(g('model.query_channels')),
        hidden_channels=int(g('model.conv_hidden_low_res')),
        high_res_channels=int(g('model.conv_hidden_high_res')),
        num_freq=int(g('model.pe_freq')),
    )


def hex_shape(vae_kwargs: Dict[str, Any]) -> Tuple[int, int, int, int]:
    """(T', X', Y', Z') of the HexPlane (``DiTTrainer.hex_txyz`` of the reference)."""
    T = vae_kwargs['num_frames']
    X, Y, Z = vae_kwargs['spatial_size']
    vx, vy, vz = vae_kwargs['voxel_down']
    pt, px, py, pz = vae_kwargs['plane_down']
    return T >> pt, X >> (vx + px), Y >> (vy + py), Z >> (vz + pz)


def dit_kwargs_from_conf(conf: Dict[str, Any], vae_kwargs: Dict[str, Any],
                         filename: str) -> Dict[str, Any]:
    """RolloutDiT keyword arguments of a reference DiT conf and its VAE's sizes."""
    m = _get(conf, 'model', filename)
    arch = m.get('model')
    if arch not in DIT_ARCHS:
        raise ConversionError(f'{filename}: model.model={arch!r}; expected one of {DIT_ARCHS}')
    if m.get('x_attn', False):
        raise ConversionError(f'{filename}: model.x_attn=True (cross-attention to the '
                              'condition tokens) is not built by occworld4d\'s RolloutDiT')
    return dict(hex_shape=hex_shape(vae_kwargs), in_channels=vae_kwargs['latent_channels'],
                arch=arch, patch_size=2, mlp_ratio=4.0, learn_sigma=True,
                num_frames=vae_kwargs['num_frames'], num_commands=4,
                conditions=tuple(ours for ref, ours in DIT_CONDITIONS if m.get(ref, False)))


# ------------------------------------------------------------------------------ key rules
def _voxel_encoder_rules(ref: str, ours: str, levels: int) -> List[KeyRule]:
    rules = [KeyRule(f'encoder.{ref}.conv0.{{p}}', f'encoder.{ours}.conv_in.{{p}}'),
             KeyRule(f'encoder.{ref}.conv1.{{i}}.{{p}}', f'encoder.{ours}.block_in.{{i}}.{{p}}')]
    for lv in range(levels):
        rules += [KeyRule(f'encoder.{ref}.down.{2 * lv}.0.{{p}}',
                          f'encoder.{ours}.downs.{lv}.0.{{p}}'),
                  KeyRule(f'encoder.{ref}.down.{2 * lv + 1}.{{i}}.{{p}}',
                          f'encoder.{ours}.blocks.{lv}.{{i}}.{{p}}')]
    return rules


def vae_rules(max_levels: int = MAX_LEVELS) -> List[KeyRule]:
    """Reference ``DynamicCityAE`` keys -> HexPlaneVAE keys (after :func:`split_grouped`).

    Rules are generated for up to ``max_levels`` downsampling levels of the voxel encoders
    and plane downsamplers; a rule for a level a model does not have never matches (the key
    check against the model built from the config catches every real mismatch)."""
    rules = [KeyRule('encoder.embedding.weight', 'encoder.embedding.weight')]
    rules += _voxel_encoder_rules('voxel_encoder', 'voxel_encoder', max_levels)
    rules += _voxel_encoder_rules('t_encoder', 'time_encoder', max_levels)
    for k, plane in enumerate(PLANES):
        for lv in range(max_levels):
            rules.append(KeyRule(f'encoder.downsamplers.{k}.down.{lv + 1}.0.{{p}}',
                                 f'encoder.plane_downsamplers.{plane}.{2 * lv}.{{p}}'))
        rules.append(KeyRule(f'vae.fc_mu_logvar.{k}.{{p}}', f'heads.{plane}.{{p}}'))
        rules.append(KeyRule(f'decoder.conv_block.norms.{k}.{{p}}',
                             f'decoder.conv_block.norms.{plane}.{{p}}'))
        rules.append(KeyRule(f'decoder.hex_upsample_block.{k}.upsample.{{i}}.{{p}}',
                             f'decoder.upsamplers.{plane}.layers.{{i}}.{{p}}'))
    t = 'encoder.transformers.{pl}.layers.{l}'
    r = 'encoder.reducers.{pl}.layers.{l}'
    rules += [
        KeyRule('encoder.tokens.{pl}', 'encoder.reducers.{pl}.token'),
        KeyRule('encoder.pos_encodings.{pl}', 'encoder.reducers.{pl}.pos_embed'),
        KeyRule(f'{t}.0.0.{{p}}', f'{r}.norm1.{{p}}'),
        KeyRule(f'{t}.0.1.qkv.{{p}}', f'{r}.attn.qkv.{{p}}'),
        KeyRule(f'{t}.0.1.proj.{{p}}', f'{r}.attn.proj.{{p}}'),
        KeyRule(f'{t}.1.0.{{p}}', f'{r}.norm2.{{p}}'),
        KeyRule(f'{t}.1.1.fc1.{{p}}', f'{r}.mlp.0.{{p}}'),
        KeyRule(f'{t}.1.1.fc2.{{p}}', f'{r}.mlp.3.{{p}}'),
        KeyRule('encoder.convs.{pl}.{i}.{p}', 'encoder.convs.{pl}.{i}.{p}'),
    ]
    for ref, ours in _GROUPED:
        for g, planes in _GROUP_PLANES:
            for j, plane in enumerate(planes):
                rules.append(KeyRule(f'decoder.conv_block.{ref.format(g=g)}.group{j}.{{p}}',
                                     f'decoder.conv_block.{ours}.{plane}.{{p}}'))
    v = 'decoder.voxel_decoder'
    rules += [KeyRule(f'{v}.conv_in.0.{{p}}', 'decoder.conv_in.{p}'),
              KeyRule(f'{v}.conv_layers.0.{{i}}.{{p}}', 'decoder.block3.{i}.{p}'),
              KeyRule(f'{v}.conv_layers.1.{{i}}.{{p}}', 'decoder.block1.{i}.{p}'),
              KeyRule(f'{v}.transpose_conv.{{p}}', 'decoder.up.{p}'),
              KeyRule(f'{v}.final_conv.0.{{p}}', 'decoder.head_in.{p}'),
              KeyRule(f'{v}.final_conv.3.{{p}}', 'decoder.head_out.{p}')]
    return rules


def _grouped_names() -> List[Tuple[str, List[str]]]:
    """(reference grouped-conv prefix, its three per-group prefixes)."""
    out = []
    for ref, _ in _GROUPED:
        for g, _planes in _GROUP_PLANES:
            name = f'decoder.conv_block.{ref.format(g=g)}'
            out.append((name, [f'{name}.group{j}' for j in range(3)]))
    return out


def split_grouped(state: StateDict) -> StateDict:
    """Grouped-conv tensors (3 G, ...) -> three (G, ...) tensors ``<name>.group{j}.<p>``."""
    out = dict(state)
    for name, groups in _grouped_names():
        for p in ('weight', 'bias'):
            key = f'{name}.{p}'
            if key in out:
                value = out.pop(key)
                if value.shape[0] % 3:
                    continue  # left for the key check to report
                for g, part in zip(groups, value.chunk(3, 0)):
                    out[f'{g}.{p}'] = part
    return out


def fuse_grouped(state: StateDict) -> StateDict:
    """Inverse of :func:`split_grouped`."""
    out = dict(state)
    for name, groups in _grouped_names():
        for p in ('weight', 'bias'):
            parts = [f'{g}.{p}' for g in groups]
            if all(k in out for k in parts):
                out[f'{name}.{p}'] = torch.cat([out.pop(k) for k in parts], 0)
    return out


def vae_conversion() -> Conversion:
    return Conversion(rules=tuple(vae_rules()))


def _layout_transform(hidden: int) -> TensorTransform:
    def forward(w: Tensor) -> Tensor:  # (1, ...) -> (D, ...): the broadcast made explicit
        return w.expand(hidden, *w.shape[1:]).clone() if w.shape[0] == 1 else w

    def reverse(w: Tensor) -> Tensor:
        if not bool((w == w[:1]).all()):
            raise ConversionError('the layout embedding has different rows; the reference '
                                  'embeds the layout to width 1 (LayoutCondEmbedder), so only '
                                  'a layout patch embedding with equal rows converts back')
        return w[:1].clone()

    return TensorTransform('cond_embedders.layout.proj.{p}', forward, reverse)


def dit_rules() -> List[KeyRule]:
    """Reference ``DiT`` keys -> RolloutDiT keys."""
    rules = prefix_rules([(p, p) for p in ('x_embedder.', 't_embedder.', 'blocks.',
                                           'final_layer.')])
    rules += [KeyRule('pos_embed', 'pos_embed'),
              KeyRule('hex_emb.embedder.proj.{p}', 'cond_embedders.hexplane.proj.{p}'),
              KeyRule('layout_emb.embedder.proj.{p}', 'cond_embedders.layout.proj.{p}'),
              KeyRule('traj_emb.embedder.{i}.{p}', 'cond_embedders.trajectory.{i}.{p}'),
              KeyRule('cmd_emb.embedder.weight', 'cond_embedders.command.weight')]
    return rules


def dit_conversion(hidden: int) -> Conversion:
    return Conversion(rules=tuple(dit_rules()), transforms=(_layout_transform(hidden),))


# ------------------------------------------------------------------------------ conversions
def vae_to_ours(state: StateDict, filename: str,
                expected: Optional[Dict[str, Sequence[int]]] = None,
                prefix: str = '') -> StateDict:
    """Reference ``model_state_dict`` -> HexPlaneVAE state dict (``prefix`` + keys), checked
    against ``expected`` (our model's key -> shape) when given."""
    return convert_into(split_grouped(state), vae_conversion(), filename, expected, prefix,
                        'occworld4d\'s HexPlaneVAE')


def ours_to_vae(state: StateDict, filename: str, prefix: str = '') -> StateDict:
    """HexPlaneVAE state dict (keys under ``prefix``) -> reference ``model_state_dict``."""
    return fuse_grouped(convert_out_of(state, vae_conversion(), filename, prefix))


def dit_to_ours(state: StateDict, conditions: Sequence[str], hidden: int, filename: str,
                expected: Optional[Dict[str, Sequence[int]]] = None,
                prefix: str = '') -> StateDict:
    """Reference DiT weights -> RolloutDiT state dict; the null embeddings are zero."""
    ours = convert(state, dit_conversion(hidden), filename)
    for name in conditions:
        ours[f'null_embeddings.{name}'] = torch.zeros(hidden)
    ours = add_prefix(ours, prefix)
    if expected is not None:
        check_state_dict(ours, expected, filename, 'occworld4d\'s RolloutDiT')
    return ours


def ours_to_dit(state: StateDict, hidden: int, filename: str, prefix: str = '') -> StateDict:
    """RolloutDiT state dict (keys under ``prefix``) -> reference DiT weights."""
    sub = strip_prefix(state, prefix)
    nonzero = [k for k, v in sub.items() if k.startswith('null_embeddings.') and v.abs().any()]
    if nonzero:
        raise ConversionError(f'{filename}: non-zero null embeddings, which the reference '
                              f'cannot express (it zeroes a dropped condition):\n    '
                              + '\n    '.join(sorted(nonzero)))
    sub = {k: v for k, v in sub.items() if not k.startswith('null_embeddings.')}
    return convert(sub, dit_conversion(hidden), filename, reverse=True)


def hidden_size(arch: str) -> int:
    return DIT_PRESETS[arch][1]


# ------------------------------------------------------------------------------ files
def find_vae_checkpoint(dit_src: str, vae_name: str) -> str:
    """The VAE run's best checkpoint (``<epoch>_mIoU_<m>.ckpt`` with the highest mIoU, as
    ``get_vae_ckpt`` picks it), else its ``last.ckpt``, in ``ckpts/<vae_name>/``."""
    root = osp.dirname(osp.dirname(osp.abspath(dit_src)))
    folder = osp.join(root, str(vae_name))
    best = sorted(glob.glob(osp.join(folder, '*_mIoU_*.ckpt')),
                  key=lambda p: float(osp.basename(p)[:-5].split('_')[2]), reverse=True)
    if best:
        return best[0]
    last = osp.join(folder, 'last.ckpt')
    if osp.isfile(last):
        return last
    raise ConversionError(f'{dit_src}: its VAE run {vae_name!r} has no checkpoint in {folder} '
                          '(expected <epoch>_mIoU_<m>.ckpt or last.ckpt; give --vae)')


def reference_optimizer_state(state: StateDict, kind: str, lr: float,
                              weight_decay: float = 0.0,
                              milestones: Sequence[int] = (50, 60, 70, 80, 90),
                              gamma: float = 0.7) -> Dict[str, Any]:
    """A fresh (never stepped) optimizer / scheduler state over ``state``'s tensors, as the
    reference trainers' ``load_checkpoint`` requires ('vae': Adam + MultiStepLR, 'dit':
    AdamW); the reference's parameters are its state dict's tensors in order (no buffers)."""
    params = [torch.nn.Parameter(v.detach().clone().float()) for v in state.values()]
    if kind == 'vae':
        opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, list(milestones), gamma)
        return dict(optimizer_state_dict=opt.state_dict(),
                    scheduler_state_dict=sched.state_dict())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    return dict(optimizer_state_dict=opt.state_dict())


def config_overrides(kwargs: Dict[str, Any], base: Dict[str, Any], prefix: str) -> List[str]:
    """``--cfg-options`` items that set ``kwargs`` where they differ from ``base``."""
    out = []
    for key, value in kwargs.items():
        have = base.get(key)
        norm = lambda v: tuple(v) if isinstance(v, (list, tuple)) else v  # noqa: E731
        if norm(have) != norm(value):
            if isinstance(value, (list, tuple)):  # mmengine's DictAction: (a,b) / (a,) / ()
                text = '"(' + ','.join(str(v) for v in value) + (',' if len(value) == 1
                                                                  else '') + ')"'
            else:
                text = str(value)
            out.append(f'{prefix}{key}={text}')
    return out


def _base_model(config: str, sub: Optional[str] = None) -> Dict[str, Any]:
    """The model (``sub``: sub-model) settings of a config, the class defaults filled in."""

    if not osp.isfile(config):
        raise ConversionError(f'{config}: no such config')
    model = dict(Config.fromfile(config).model)
    model = dict(model if sub is None else model.get(sub) or {})
    cls = MODELS.get(model.get('type', ''))
    if cls is not None:
        for name, par in inspect.signature(cls.__init__).parameters.items():
            if par.default is not inspect.Parameter.empty:
                model.setdefault(name, par.default)
    return model


def _parse_options(items: Sequence[str]) -> Dict[str, Any]:
    """``--cfg-options`` strings -> the dict mmengine's DictAction makes of them."""
    parser = argparse.ArgumentParser()
    parser.add_argument('--o', nargs='+', action=DictAction)
    if not items:
        return {}
    return parser.parse_args(['--o', *[i.replace('"', '') for i in items]]).o


def _lines(dst: str, config: str, options: Sequence[str], extra: Sequence[str] = ()) -> str:
    opts = f' \\\n        --cfg-options {" ".join(options)}' if options else ''
    return '\n'.join([f'wrote {dst}', f'config: {config}',
                      f'test:   python tools/test.py {config} {dst}{opts}', *extra])


def vae_options(vae_kwargs: Dict[str, Any], config: str, prefix: str = 'model.') -> List[str]:
    """``--cfg-options`` that give ``config``'s HexPlaneVAE the reference conf's sizes."""
    sub = None if prefix == 'model.' else prefix.split('.')[1]
    out = config_overrides(vae_kwargs, _base_model(config, sub), prefix)
    base = _base_model(config)
    pre = base.get('data_preprocessor', {}) or {}
    if pre.get('num_classes') not in (None, vae_kwargs['num_classes']):
        out.append(f'model.data_preprocessor.num_classes={vae_kwargs["num_classes"]}')
    return out


def dit_options(vae_kwargs: Dict[str, Any], dit_kwargs: Dict[str, Any], config: str) -> List[str]:
    """``--cfg-options`` of the generator config for the reference VAE + DiT sizes."""
    out = vae_options(vae_kwargs, config, prefix='model.tokenizer.')
    out += config_overrides(dit_kwargs, _base_model(config, 'denoiser'), 'model.denoiser.')
    adapter = dict(hex_shape=dit_kwargs['hex_shape'],
                   voxel_shape=(vae_kwargs['num_frames'], *vae_kwargs['spatial_size']))
    out += config_overrides(adapter, _base_model(config, 'latent_adapter'),
                            'model.latent_adapter.')
    return out


def convert_to_occworld4d(src: str, dst: str, conf: Optional[str] = None,
                          vae: Optional[str] = None, vae_conf: Optional[str] = None,
                          weights: Optional[str] = None, config: Optional[str] = None,
                          trust: Optional[bool] = None) -> str:
    """A released DynamicCity VAE or DiT checkpoint -> an occworld4d checkpoint that
    ``tools/test.py`` / ``tools/sample.py`` load strictly. Returns the lines to print (the
    config and the ``--cfg-options`` to use with it).

    Args:
        src: ``ckpts/<name>/<file>.ckpt``.
        dst: the occworld4d ``.pth`` to write.
        conf: the run's ``conf.yaml`` (default: beside ``src``).
        vae: a DiT's VAE checkpoint (default: the best one of ``ckpts/<vae_name>/``).
        vae_conf: a DiT's VAE ``conf.yaml`` (default: ``ckpts/<vae_name>/conf.yaml``).
        weights: the entry to read (default: ``ema`` for a DiT, as ``infer_dit.py`` samples).
        config: the occworld4d config (default: the reference VAE / DiT config,
            dynamiccity_vae_reference_carlasc.py / dynamiccity_dit_reference_carlasc.py).
    """
    conf_path = conf or find_conf(src)
    run_conf = load_conf(conf_path)
    ckpt = read_checkpoint(src, trust)
    meta = dict(converted_from=osp.basename(src), reference=REFERENCE, dynamiccity_conf=run_conf)
    if is_dit_conf(run_conf):
        if 'vae_name' not in run_conf and vae_conf is None:
            raise ConversionError(f'{conf_path}: a DiT conf without vae_name (give --vae-conf)')
        vae_conf_path = vae_conf or osp.join(osp.dirname(osp.dirname(osp.abspath(src))),
                                             str(run_conf['vae_name']), CONF_NAME)
        if not osp.isfile(vae_conf_path):
            raise ConversionError(f'{src}: the VAE conf {vae_conf_path} of its run does not '
                                  'exist (give --vae-conf)')
        vae_run = load_conf(vae_conf_path)
        vae_kwargs = vae_kwargs_from_conf(vae_run, vae_conf_path)
        dit_kwargs = dit_kwargs_from_conf(run_conf, vae_kwargs, conf_path)
        state, name = select_weights(ckpt, src, weights,
                                     candidates=('ema', 'model_state_dict'))
        vae_src = vae or find_vae_checkpoint(src, run_conf.get('vae_name', ''))
        vae_state, _ = select_weights(read_checkpoint(vae_src, trust), vae_src,
                                      candidates=('model_state_dict', ))
        config = config or DIT_CONFIG
        options = dit_options(vae_kwargs, dit_kwargs, config)
        expected = model_shapes(config, _parse_options(options))
        hidden = hidden_size(dit_kwargs['arch'])
        ours = vae_to_ours(vae_state, vae_src, prefix='tokenizer.')
        ours.update(dit_to_ours(state, dit_kwargs['conditions'], hidden, src,
                                prefix='denoiser.'))
        meta.update(weights=name, vae_checkpoint=osp.basename(vae_src),
                    dynamiccity_vae_conf=vae_run)
    else:
        vae_kwargs = vae_kwargs_from_conf(run_conf, conf_path)
        state, name = select_weights(ckpt, src, weights, candidates=('model_state_dict', ))
        config = config or VAE_CONFIG
        options = vae_options(vae_kwargs, config)
        expected = model_shapes(config, _parse_options(options))
        ours = vae_to_ours(state, src)
        meta.update(weights=name)
    check_state_dict(ours, expected, src, f'the occworld4d model of {config}'
                     + (f' with {options}' if options else ''))
    meta.update(config=config, cfg_options=list(options))
    save_occworld4d_checkpoint(ours, dst, meta)
    return _lines(dst, config, options)


def convert_to_reference(src: str, dst: str, conf: Optional[str] = None,
                         vae_out: Optional[str] = None, lr: Optional[float] = None,
                         trust: Optional[bool] = None) -> str:
    """An occworld4d HexPlaneVAE or DynamicCity generator checkpoint -> the reference's files.

    A VAE becomes ``{epoch, optimizer_state_dict, scheduler_state_dict, best_miou,
    global_step, model_state_dict}``; a generator's denoiser a DiT checkpoint ``{epoch,
    optimizer_state_dict, current_step, model_state_dict, ema}`` (both the same weights) and,
    with ``vae_out``, its tokenizer a VAE checkpoint. The optimizer / scheduler states are
    fresh (never stepped): the reference's trainers load them unconditionally. ``conf.yaml``
    (``conf``, or the one the forward conversion kept in the checkpoint's meta) is written
    beside each file, as the reference reads ``ckpts/<name>/conf.yaml``.
    """
    state, meta = occworld4d_weights(src, trust)
    written = []

    def write_conf(path: str, run_conf: Optional[dict]) -> None:
        target = osp.join(osp.dirname(osp.abspath(path)), CONF_NAME)
        if conf is not None and path == dst:
            if osp.abspath(conf) != target:
                with atomic_path(target) as tmp:
                    shutil.copyfile(conf, tmp)
        elif run_conf is not None:
            with atomic_open(target, 'w') as f:
                yaml.safe_dump(run_conf, f, sort_keys=False)
        else:
            written.append(f'note: no conf.yaml for {path} (give --conf); the reference '
                           f'reads ckpts/<name>/{CONF_NAME}')
            return
        written.append(f'wrote {target}')

    def write_vae(sub: StateDict, path: str, prefix: str, run_conf: Optional[dict]) -> None:
        ref = ours_to_vae(sub, src, prefix=prefix)
        payload = dict(epoch=0, **reference_optimizer_state(ref, 'vae', lr or 1e-3),
                       best_miou=0.0, global_step=0, model_state_dict=ref)
        save_reference_checkpoint(payload, path)
        written.append(f'wrote {path}')
        write_conf(path, run_conf)

    is_generator = any(k.startswith('denoiser.') for k in state)
    if not is_generator:
        write_vae(state, dst, '', meta.get('dynamiccity_conf'))
        return '\n'.join(written)
    if 'denoiser.x_embedder.proj.weight' not in state:
        raise ConversionError(f'{src}: expected a DynamicCity generator (denoiser.x_embedder '
                              'weights of a RolloutDiT) or a HexPlaneVAE checkpoint')
    hidden = int(state['denoiser.x_embedder.proj.weight'].shape[0])
    ref = ours_to_dit(state, hidden, src, prefix='denoiser.')
    payload = dict(epoch=0, **reference_optimizer_state(ref, 'dit', lr or 1e-4), current_step=0,
                   model_state_dict=ref, ema={k: v.clone() for k, v in ref.items()})
    save_reference_checkpoint(payload, dst)
    written.append(f'wrote {dst}')
    write_conf(dst, meta.get('dynamiccity_conf'))
    if vae_out:
        write_vae(state, vae_out, 'tokenizer.', meta.get('dynamiccity_vae_conf'))
    return '\n'.join(written)
