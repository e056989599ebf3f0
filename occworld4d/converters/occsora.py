"""OccSora (wzzheng/OccSora @ 9f8d1f0) checkpoints <-> occworld4d.

The reference saves

* the 4D VQ tokenizer (``train_1.py``; ``VAERes2D`` of ``model/VAE/vae_2d_resnet.py``, which
  builds ``Encoder`` / ``Decoder`` of 3D convs, attention-residual blocks with axial
  attention and BatchNorm) as ``{'state_dict', 'optimizer', 'scheduler', 'epoch', ...}``:
  ``encoder_gpt.*``, ``pre_vq_conv``, ``vqvae.{embedding, quant_conv, post_quant_conv}``,
  ``post_vq_conv``, ``decoder_gpt.*``, ``class_embeds`` ->
  :class:`~occworld4d.models.tokenizers.OccSoraVQVAE`;
* the DiT (``train_2.py``; ``DiT`` of ``models.py``) as DiT's ``{'model', 'ema', 'opt',
  'args'}`` (``args`` an ``argparse.Namespace``): ``my_net.conv1/2`` (input convs),
  ``mlp_trag.fc1..3`` (condition MLP), ``pos_embed``, ``t_embedder``, ``blocks.*`` (timm
  ``Attention`` / ``Mlp``), ``final_layer`` -> the ``denoiser`` of a
  :class:`~occworld4d.models.generators.LatentDiffusion` whose ``tokenizer`` comes from the
  tokenizer checkpoint. The EMA weights are taken by default (the reference samples them:
  ``download.find_model``).

Layout changes: each axial attention's bias-free ``w_qs`` / ``w_ks`` / ``w_vs`` become one
``qkv`` weight (3C, C) and ``fc`` becomes ``proj``. Our quantizer's ``steps_unused`` buffer
(dead-code statistics) has no reference counterpart: zeros forward, dropped back.
"""
import argparse
import os.path as osp
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor

from .common import (Conversion, ConversionError, GroupRule, KeyRule, StateDict,
                     check_state_dict, convert, model_shapes, occworld4d_weights,
                     read_checkpoint, report, save_occworld4d_checkpoint,
                     save_reference_checkpoint, select_weights, shapes_of)

REFERENCE = 'wzzheng/OccSora@9f8d1f0'
VQVAE_CONFIG = 'configs/occsora/occsora_vqvae_8xb1-150e_occ3d-nuscenes.py'
DIT_CONFIG = 'configs/occsora/occsora_dit_reference_occ3d-nuscenes.py'


def _cat(ts: List[Tensor]) -> List[Tensor]:
    return [torch.cat(ts, dim=0)]


def _chunk3(ts: List[Tensor]) -> List[Tensor]:
    return list(ts[0].chunk(3, dim=0))


def vqvae_conversion(ref: str = '', ours: str = '') -> Conversion:
    """Reference ``VAERes2D`` (OccSora's 4D tokenizer) keys <-> ``OccSoraVQVAE`` keys."""
    groups, rules = [], []
    for r_side, o_side in (('encoder_gpt', 'encoder'), ('decoder_gpt', 'decoder')):
        r, o = f'{ref}{r_side}.{{path*}}.attn_{{a}}', f'{ours}{o_side}.{{path*}}.attn_{{a}}'
        groups.append(GroupRule((f'{r}.w_qs.weight', f'{r}.w_ks.weight', f'{r}.w_vs.weight'),
                                (f'{o}.qkv.weight',), _cat, _chunk3))
        rules += [KeyRule(f'{r}.fc.{{p}}', f'{o}.proj.{{p}}'),
                  KeyRule(f'{ref}{r_side}.{{rest*}}', f'{ours}{o_side}.{{rest*}}')]
    rules += [
        KeyRule(f'{ref}class_embeds.weight', f'{ours}semantic.table.weight'),
        KeyRule(f'{ref}pre_vq_conv.{{rest*}}', f'{ours}pre_quant.{{rest*}}'),
        KeyRule(f'{ref}post_vq_conv.{{rest*}}', f'{ours}post_quant.{{rest*}}'),
        KeyRule(f'{ref}vqvae.embedding.weight', f'{ours}quantizer.embedding.weight'),
        KeyRule(f'{ref}vqvae.quant_conv.{{p}}', f'{ours}quant_conv.{{p}}'),
        KeyRule(f'{ref}vqvae.post_quant_conv.{{p}}', f'{ours}post_quant_conv.{{p}}'),
    ]

    def steps_unused(state: StateDict) -> Tensor:
        return torch.zeros(state[f'{ref}vqvae.embedding.weight'].shape[0], dtype=torch.long)

    return Conversion(rules=tuple(rules), groups=tuple(groups),
                      extra_dst=((f'{ours}quantizer.steps_unused', steps_unused),),
                      drop_dst=(f'{ours}quantizer.steps_unused',))


def dit_conversion(ours: str = 'denoiser.') -> Conversion:
    """Reference ``DiT`` keys <-> ``OccSoraDiT`` keys (under ``ours``)."""
    rules = [KeyRule('my_net.conv1.{p}', f'{ours}x_embedder.0.{{p}}'),
             KeyRule('my_net.conv2.{p}', f'{ours}x_embedder.1.{{p}}'),
             KeyRule('mlp_trag.fc1.{p}', f'{ours}cond_embedder.0.{{p}}'),
             KeyRule('mlp_trag.fc2.{p}', f'{ours}cond_embedder.2.{{p}}'),
             KeyRule('mlp_trag.fc3.{p}', f'{ours}cond_embedder.4.{{p}}')]
    rules.append(KeyRule('pos_embed', f'{ours}pos_embed'))
    rules += [KeyRule(f'{name}.{{rest*}}', f'{ours}{name}.{{rest*}}')
              for name in ('t_embedder', 'blocks', 'final_layer')]
    return Conversion(rules=tuple(rules))


def generator_conversion() -> Tuple[Conversion, Conversion]:
    """(tokenizer, DiT) conversions of a full ``LatentDiffusion`` (``tokenizer.`` /
    ``denoiser.`` keys)."""
    return vqvae_conversion('', 'tokenizer.'), dit_conversion('denoiser.')


def detect_kind(state: Dict[str, Tensor]) -> str:
    """``'dit'`` (``blocks.*`` / ``mlp_trag.*`` keys) or ``'vqvae'`` of a reference file."""
    return 'dit' if any(k.startswith(('blocks.', 'mlp_trag.', 'my_net.')) for k in state) \
        else 'vqvae'


def _check_kind(src: str, state: StateDict, expected: str, what: str) -> None:
    found = detect_kind(state)
    if found != expected:
        names = {'dit': 'a DiT checkpoint', 'vqvae': 'a tokenizer checkpoint'}
        raise ConversionError(f'{src}: expected {what} ({names[expected]}), but its keys are '
                              f'those of {names[found]}')


def convert_to_occworld4d(src: str, dst: str, tokenizer: Optional[str] = None,
                          weights: Optional[str] = None, config: Optional[str] = None,
                          trust: Optional[bool] = None) -> str:
    """A reference OccSora checkpoint -> an occworld4d checkpoint that ``config`` loads
    strictly.

    Args:
        src: a tokenizer file (``{'state_dict', ...}``) -> an ``OccSoraVQVAE`` checkpoint, or
            a DiT file (``{'model', 'ema', 'opt', 'args'}``) -> a full ``LatentDiffusion``
            checkpoint, which needs ``tokenizer``.
        dst: the occworld4d checkpoint to write.
        tokenizer: DiT only: the reference tokenizer checkpoint it was trained on.
        weights: DiT only: ``'ema'`` (default, as the reference samples) or ``'model'``.
        config: the occworld4d config (default :data:`VQVAE_CONFIG` / :data:`DIT_CONFIG`).
        trust: full-pickle loading (``None``: the process setting).

    Returns:
        The lines to print (file written, config, test / sample command).
    """
    ckpt = read_checkpoint(src, trust)
    state, name = select_weights(ckpt, src, weights, candidates=('ema', 'state_dict', 'model'))
    kind = detect_kind(state)
    meta = {'converted_from': osp.basename(src), 'reference': REFERENCE, 'weights': name,
            'converter': 'occsora_to_occworld4d'}
    if kind == 'vqvae':
        if tokenizer is not None:
            raise ConversionError(f'{src} is a tokenizer checkpoint; --tokenizer is only for '
                                  'a DiT checkpoint')
        config = config or VQVAE_CONFIG
        out = convert(state, vqvae_conversion(), src)
        check_state_dict(out, model_shapes(config), src, f'the occworld4d model of {config}')
        if isinstance(ckpt.get('epoch'), int):
            meta['reference_epoch'] = ckpt['epoch']
        save_occworld4d_checkpoint(out, dst, dict(meta, part='vqvae', config=config))
        return report(dst, config)
    if tokenizer is None:
        raise ConversionError(f'{src} is a DiT checkpoint: pass --tokenizer with the reference '
                              'tokenizer checkpoint it was trained on (the occworld4d '
                              'generator holds both)')
    tok_state, _ = select_weights(read_checkpoint(tokenizer, trust), tokenizer,
                                  candidates=('state_dict', 'ema', 'model'))
    _check_kind(tokenizer, tok_state, 'vqvae', '--tokenizer')
    config = config or DIT_CONFIG
    tok_conv, dit_conv = generator_conversion()
    out = {**convert(tok_state, tok_conv, tokenizer), **convert(state, dit_conv, src)}
    check_state_dict(out, model_shapes(config), f'{src} + {tokenizer}',
                     f'the occworld4d model of {config}')
    meta.update(part='generator', config=config, tokenizer=osp.basename(tokenizer))
    save_occworld4d_checkpoint(out, dst, meta)
    return report(dst, config, f'sample: python tools/sample.py {config} {dst} --task trajectory')


def reference_dit_checkpoint(state: StateDict) -> dict:
    """``{'model', 'ema', 'opt', 'args'}`` as the reference's ``train_2.py`` saves it: the
    weights as both ``model`` and ``ema``, a fresh ``AdamW(lr=1e-5, weight_decay=0)`` state
    over them (what ``train_2.py --ckpt`` loads to resume) and its default arguments."""
    params = [torch.nn.Parameter(v.clone()) for v in state.values()]
    opt = torch.optim.AdamW(params, lr=1e-5, weight_decay=0).state_dict()
    args = argparse.Namespace(model='DiT-XL/2', image_size=256, num_classes=1000, epochs=60000,
                              global_batch_size=16, global_seed=0, vae='ema', num_workers=8,
                              log_every=100, ckpt_every=10_000, ckpt=None)
    return {'model': dict(state), 'ema': {k: v.clone() for k, v in state.items()}, 'opt': opt,
            'args': args}


def convert_to_reference(src: str, dst: str, tokenizer_out: Optional[str] = None,
                         trust: Optional[bool] = None) -> str:
    """An occworld4d OccSoraVQVAE checkpoint -> ``{'state_dict': ...}``; an occworld4d OccSora
    generator -> a DiT file (:func:`reference_dit_checkpoint`) and, with ``tokenizer_out``,
    its tokenizer as ``{'state_dict': ...}``. Every key is consumed and the result converts
    forward to the input exactly."""
    state, _ = occworld4d_weights(src, trust)
    if any(k.startswith('denoiser.') for k in state):
        tok_conv, dit_conv = generator_conversion()
        tok = {k: v for k, v in state.items() if k.startswith('tokenizer.')}
        den = {k: v for k, v in state.items() if k.startswith('denoiser.')}
        other = sorted(set(state) - set(tok) - set(den))
        if other:
            raise ConversionError(f'{src}: keys outside tokenizer.* / denoiser.*: '
                                  + ', '.join(other))
        ref_dit = convert(den, dit_conv, src, reverse=True)
        ref_tok = convert(tok, tok_conv, src, reverse=True)
        again = {**convert(ref_tok, tok_conv, src), **convert(ref_dit, dit_conv, src)}
        check_state_dict(again, shapes_of(state), src, 'itself after a round trip')
        save_reference_checkpoint(reference_dit_checkpoint(ref_dit), dst)
        lines = [f'wrote {dst} (reference DiT layout of {REFERENCE}: model, ema, opt, args)']
        if tokenizer_out:
            save_reference_checkpoint({'state_dict': ref_tok}, tokenizer_out)
            lines.append(f'wrote {tokenizer_out} (reference tokenizer layout: state_dict)')
        return '\n'.join(lines)
    if tokenizer_out:
        raise ConversionError(f'{src} is a tokenizer checkpoint; --tokenizer-out is only for '
                              'a generator')
    conv = vqvae_conversion()
    ref = convert(state, conv, src, reverse=True)
    check_state_dict(convert(ref, conv, src), shapes_of(state), src, 'itself after a round trip')
    save_reference_checkpoint({'state_dict': ref}, dst)
    return f'wrote {dst} (reference tokenizer layout of {REFERENCE}: state_dict)'
