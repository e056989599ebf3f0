"""OccWorld (wzzheng/OccWorld @ 1ee7f77) checkpoints <-> occworld4d.

The reference saves ``{'state_dict', 'optimizer', 'scheduler', 'epoch', ...}`` (``train.py``)
for both stages:

* stage 1, ``VAERes2D`` (``model/VAE/vae_2d_resnet.py``): ``encoder.*`` / ``decoder.*`` (the
  taming-transformers ResNet blocks, ``nin_shortcut`` and single-head 1x1-conv attention
  ``q`` / ``k`` / ``v`` / ``proj_out``), ``class_embeds``, ``vqvae.{embedding, quant_conv,
  post_quant_conv}`` -> :class:`~occworld4d.models.tokenizers.OccWorldVQVAE`
  (``configs/occworld/occworld_vqvae_8xb1-200e_occ3d-nuscenes.py``);
* stage 2, ``TransVQVAE`` (``model/TransVQVAE.py``): ``vae.*`` (stage 1), ``transformer.*``
  (``PlanUAutoRegTransformer``: ``nn.MultiheadAttention`` with fused ``in_proj_weight``,
  ``ModuleList`` slots 0..5 for attention / norm / FFN), ``pose_encoder.pose_encoder.*``,
  ``pose_decoder.pose_decoder.*`` -> :class:`~occworld4d.models.world_models.OccWorld`
  (``configs/occworld/occworld_wm_reference_occ3d-nuscenes.py``: the reference's ego
  convention, ``ego_convention='reference'``).

Layout changes: the three 1x1-conv ``q`` / ``k`` / ``v`` weights (C, C, 1, 1) become one
``attn.qkv`` linear weight (3C, C) and ``proj_out`` the linear ``attn.proj``; a
``MultiheadAttention``'s ``in_proj_weight`` (3C, C) becomes ``q`` (C, C) and ``kv`` (2C, C).
Our quantizer's ``steps_unused`` buffer (dead-code statistics, training only) has no
reference counterpart: it is created as zeros and dropped on the way back.
"""
import os.path as osp
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor

from .common import (Conversion, ConversionError, GroupRule, KeyRule, StateDict,
                     check_state_dict, convert, model_shapes, occworld4d_weights,
                     read_checkpoint, report, save_occworld4d_checkpoint,
                     save_reference_checkpoint, select_weights, shapes_of)

VQVAE_CONFIG = 'configs/occworld/occworld_vqvae_8xb1-200e_occ3d-nuscenes.py'
WM_CONFIG = 'configs/occworld/occworld_wm_reference_occ3d-nuscenes.py'
REFERENCE = 'wzzheng/OccWorld@1ee7f77'


def _fuse_qkv(ts: List[Tensor]) -> List[Tensor]:
    return [torch.cat([t.flatten(1) if t.ndim == 4 else t for t in ts], dim=0)]


def _split_qkv(conv: bool):
    def split(ts: List[Tensor]) -> List[Tensor]:
        parts = list(ts[0].chunk(3, dim=0))
        return [p[..., None, None] if conv else p for p in parts]
    return split


def _conv_to_linear(ts: List[Tensor]) -> List[Tensor]:
    return [ts[0].flatten(1)]


def _linear_to_conv(ts: List[Tensor]) -> List[Tensor]:
    return [ts[0][..., None, None]]


def _split_in_proj(ts: List[Tensor]) -> List[Tensor]:
    w = ts[0]
    c = w.shape[0] // 3
    return [w[:c], w[c:]]


def _join_in_proj(ts: List[Tensor]) -> List[Tensor]:
    return [torch.cat(ts, dim=0)]


def _vqvae_groups(ref: str, ours: str) -> Tuple[GroupRule, ...]:
    """Attention blocks of the 2D encoder / decoder (``{path*}`` is e.g. ``down.2.attn.0``)."""
    groups = []
    for side in ('encoder', 'decoder'):
        r, o = f'{ref}{side}.{{path*}}', f'{ours}{side}.{{path*}}'
        groups += [
            GroupRule((f'{r}.q.weight', f'{r}.k.weight', f'{r}.v.weight'),
                      (f'{o}.attn.qkv.weight',), _fuse_qkv, _split_qkv(conv=True)),
            GroupRule((f'{r}.q.bias', f'{r}.k.bias', f'{r}.v.bias'),
                      (f'{o}.attn.qkv.bias',), _fuse_qkv, _split_qkv(conv=False)),
            GroupRule((f'{r}.proj_out.weight',), (f'{o}.attn.proj.weight',), _conv_to_linear,
                      _linear_to_conv),
        ]
    return tuple(groups)


def _vqvae_rules(ref: str, ours: str) -> Tuple[KeyRule, ...]:
    rules = [
        KeyRule(f'{ref}class_embeds.weight', f'{ours}semantic.table.weight'),
        KeyRule(f'{ref}vqvae.embedding.weight', f'{ours}quantizer.embedding.weight'),
        KeyRule(f'{ref}vqvae.quant_conv.{{p}}', f'{ours}quant_conv.{{p}}'),
        KeyRule(f'{ref}vqvae.post_quant_conv.{{p}}', f'{ours}post_quant_conv.{{p}}'),
    ]
    for side in ('encoder', 'decoder'):
        rules += [
            KeyRule(f'{ref}{side}.{{path*}}.proj_out.bias',
                    f'{ours}{side}.{{path*}}.attn.proj.bias'),
            KeyRule(f'{ref}{side}.{{path*}}.nin_shortcut.{{p}}',
                    f'{ours}{side}.{{path*}}.shortcut.{{p}}'),
            KeyRule(f'{ref}{side}.{{rest*}}', f'{ours}{side}.{{rest*}}'),
        ]
    return tuple(rules)


def _steps_unused(ours: str, ref: str):
    def make(state: StateDict) -> Tensor:
        num_codes = state[f'{ref}vqvae.embedding.weight'].shape[0]
        return torch.zeros(num_codes, dtype=torch.long)
    return (f'{ours}quantizer.steps_unused', make)


def vqvae_conversion(ref: str = '', ours: str = '') -> Conversion:
    """Reference ``VAERes2D`` keys (prefix ``ref``) <-> ``OccWorldVQVAE`` keys (``ours``)."""
    return Conversion(rules=_vqvae_rules(ref, ours), groups=_vqvae_groups(ref, ours),
                      extra_dst=(_steps_unused(ours, ref),),
                      drop_dst=(f'{ours}quantizer.steps_unused',))


def _transformer_rules() -> Tuple[Tuple[KeyRule, ...], Tuple[GroupRule, ...]]:
    r, o = 'transformer.', 'transformer.'
    rules: List[KeyRule] = [
        KeyRule(f'{r}temporal_embeddings.weight', f'{o}temporal_embed.weight'),
        KeyRule(f'{r}pose_temporal_embeddings.weight', f'{o}pose_temporal_embed.weight'),
    ]
    groups: List[GroupRule] = []

    def mha(src: str, dst: str) -> None:
        for p in ('weight', 'bias'):
            groups.append(GroupRule((f'{src}.in_proj_{p}',), (f'{dst}.q.{p}', f'{dst}.kv.{p}'),
                                    _split_in_proj, _join_in_proj))
            rules.append(KeyRule(f'{src}.out_proj.{p}', f'{dst}.proj.{p}'))

    for ref_side, our_side in (('en', 'enc'), ('de', 'dec')):
        t = f'{r}temporal_attentions_{ref_side}.{{l}}.{{j}}'
        u = f'{o}{our_side}_temporal.{{l}}.{{j}}'
        mha(f'{t}.0', f'{u}.attn')
        rules += [KeyRule(f'{t}.1.{{p}}', f'{u}.norm1.{{p}}'),
                  KeyRule(f'{t}.2.{{fc}}.{{p}}', f'{u}.ffn.{{fc}}.{{p}}'),
                  KeyRule(f'{t}.3.{{p}}', f'{u}.norm2.{{p}}')]
        t = f'{r}pose_attn_{ref_side}.{{l}}.{{j}}'
        u = f'{o}{our_side}_pose_layers.{{l}}.{{j}}'
        mha(f'{t}.0', f'{u}.temporal')
        mha(f'{t}.2', f'{u}.spatial')
        rules += [KeyRule(f'{t}.1.{{p}}', f'{u}.norm1.{{p}}'),
                  KeyRule(f'{t}.3.{{p}}', f'{u}.norm2.{{p}}'),
                  KeyRule(f'{t}.4.{{fc}}.{{p}}', f'{u}.ffn.{{fc}}.{{p}}'),
                  KeyRule(f'{t}.5.{{p}}', f'{u}.norm3.{{p}}')]
    for ref_name, our_name in (('encoders', 'enc_blocks'), ('decoders', 'dec_blocks'),
                               ('mid', 'mid')):
        rules += [KeyRule(f'{r}{ref_name}.{{path*}}.ln.{{p}}',
                          f'{o}{our_name}.{{path*}}.norm.{{p}}'),
                  KeyRule(f'{r}{ref_name}.{{rest*}}', f'{o}{our_name}.{{rest*}}')]
    for ref_name, our_name in (('pose_en', 'enc_pose_mlps'), ('pose_de', 'dec_pose_mlps'),
                               ('pose_up', 'pose_ups'), ('downsamples', 'downs'),
                               ('upsamples', 'ups'), ('pose_mid', 'pose_mid'),
                               ('conv_out', 'conv_out'), ('pose_out', 'pose_out')):
        rules.append(KeyRule(f'{r}{ref_name}.{{rest*}}', f'{o}{our_name}.{{rest*}}'))
    return tuple(rules), tuple(groups)


def world_model_conversion() -> Conversion:
    """Reference ``TransVQVAE`` keys <-> :class:`OccWorld` keys (tokenizer included)."""
    vq = vqvae_conversion('vae.', 'tokenizer.')
    rules, groups = _transformer_rules()
    rules += (KeyRule('pose_encoder.pose_encoder.{rest*}', 'pose_encoder.mlp.{rest*}'),
              KeyRule('pose_decoder.pose_decoder.{rest*}', 'pose_decoder.mlp.{rest*}'))
    return Conversion(rules=vq.rules + rules, groups=vq.groups + groups,
                      extra_dst=vq.extra_dst, drop_dst=vq.drop_dst)


def detect_part(state: Dict[str, Tensor]) -> str:
    """``'wm'`` for a TransVQVAE state dict (``vae.*`` / ``transformer.*`` keys), else
    ``'vqvae'``."""
    if any(k.startswith(('transformer.', 'vae.')) for k in state):
        return 'wm'
    return 'vqvae'


def conversion_for(part: str) -> Conversion:
    if part == 'wm':
        return world_model_conversion()
    if part == 'vqvae':
        return vqvae_conversion()
    raise ValueError(f"part must be 'vqvae' or 'wm', got {part!r}")


def config_for(part: str) -> str:
    return WM_CONFIG if part == 'wm' else VQVAE_CONFIG


def detect_our_part(state: Dict[str, Tensor]) -> str:
    """The part of an occworld4d checkpoint: ``'wm'`` with ``transformer.*`` keys."""
    return 'wm' if any(k.startswith('transformer.') for k in state) else 'vqvae'


def convert_to_occworld4d(src: str, dst: str, part: Optional[str] = None,
                          config: Optional[str] = None, trust: Optional[bool] = None) -> str:
    """A reference checkpoint -> an occworld4d checkpoint that ``config`` loads strictly.

    Args:
        src: the reference file (``{'state_dict', 'optimizer', 'scheduler', 'epoch', ...}``,
            or a plain state dict).
        dst: the occworld4d checkpoint to write.
        part: ``'vqvae'`` or ``'wm'``; default: detected from the keys (a mismatch with the
            given part is an error).
        config: the occworld4d config (default: :data:`VQVAE_CONFIG` / :data:`WM_CONFIG`).
        trust: full-pickle loading (``None``: the process setting).

    Returns:
        The lines to print (the file written, the config and the test command).

    Raises:
        ConversionError: unreadable file, unknown / missing keys or shapes (every one listed).
    """
    ckpt = read_checkpoint(src, trust)
    state, name = select_weights(ckpt, src, candidates=('state_dict',))
    found = detect_part(state)
    part = part or found
    if part != found:
        what = 'TransVQVAE (world model)' if found == 'wm' else 'VAERes2D (VQ-VAE)'
        raise ConversionError(f'{src}: --part {part} given, but the keys are those of the '
                              f'reference {what}')
    config = config or config_for(part)
    out = convert(state, conversion_for(part), src)
    check_state_dict(out, model_shapes(config), src, f'the occworld4d model of {config}')
    meta = {'converted_from': osp.basename(src), 'reference': REFERENCE, 'part': part,
            'weights': name, 'config': config, 'converter': 'occworld_to_occworld4d'}
    if isinstance(ckpt, dict) and isinstance(ckpt.get('epoch'), int):
        meta['reference_epoch'] = ckpt['epoch']
    save_occworld4d_checkpoint(out, dst, meta)
    return report(dst, config)


def convert_to_reference(src: str, dst: str, part: Optional[str] = None,
                         trust: Optional[bool] = None) -> str:
    """An occworld4d OccWorldVQVAE / OccWorld checkpoint -> the reference layout
    ``{'state_dict': ...}`` (what the reference's ``train.py`` ``load_from`` and
    ``eval_metric_stp3.py`` read). Every key must be consumed; the result is converted
    forward again and must give back the input exactly."""
    state, _ = occworld4d_weights(src, trust)
    found = detect_our_part(state)
    part = part or found
    if part != found:
        raise ConversionError(f'{src}: --part {part} given, but the checkpoint is an '
                              f'occworld4d {"OccWorld" if found == "wm" else "OccWorldVQVAE"}')
    conv = conversion_for(part)
    ref = convert(state, conv, src, reverse=True)
    again = convert(ref, conv, src)
    check_state_dict(again, shapes_of(state), src, 'itself after a round trip')
    save_reference_checkpoint({'state_dict': ref}, dst)
    return f'wrote {dst} (reference layout of {REFERENCE}: {{"state_dict"}}, ' \
           f'{"TransVQVAE" if part == "wm" else "VAERes2D"})'
