"""UniScene (Arlo0o/UniScene-Unified-Occupancy-centric-Driving-Scene-Generation @ e98413d)
occupancy checkpoints <-> occworld4d.

The reference (``occupancy_gen/``) saves:

- the occupancy VAE (``train_OccVAE.py``), ``epoch_<n>.pth``: ``{state_dict, optimizer,
  scheduler, epoch, ...}``; ``state_dict`` is ``VAERes2D_DwT`` (``encoder`` Encoder2D_new2,
  ``decoder`` Decoder3D_withT, ``class_embeds``), built from
  ``config/train_vae_4_DwT_L_me.py``;
- the OccDiT (``train_OccDiT.py``), ``<step>.pt``: ``{model, ema, opt, args}``; evaluation
  (``eval_OccDiT.py`` through ``download.find_model``) uses ``ema``, the default here too.

occworld4d's :class:`~occworld4d.models.tokenizers.UniSceneOccVAE` and
:class:`~occworld4d.models.denoisers.UniSceneOccDiT` hold the same parameters under other
names; the VAE's separate q / k / v projections (``w_qs``, ``w_ks``, ``w_vs``, VideoGPT's
``MultiHeadAttention``) are one fused ``qkv`` weight here (rows q, k, v). The reference's
sizes live in its Python config, not beside the checkpoint: the converter checks the weights
against the occworld4d config's model (every missing / unexpected key and shape at once).

The function: the released encoder's 2D "axial" attention is not the intended one (see
:class:`~occworld4d.models.tokenizers.blocks_2d.AxialAttnBlock2d`); the configs for converted
checkpoints set ``axial_mode='reference'`` to compute what the reference computes.
"""
from typing import Any, Dict, List, Optional

import torch
from torch import Tensor

from .common import (Conversion, ConversionError, KeyRule, check_state_dict, convert_into,
                     convert_out_of, model_shapes, occworld4d_weights, read_checkpoint, report,
                     save_occworld4d_checkpoint, save_reference_checkpoint, select_weights)

StateDict = Dict[str, Tensor]

REFERENCE = 'Arlo0o/UniScene-Unified-Occupancy-centric-Driving-Scene-Generation@e98413d'
VAE_CONFIG = 'configs/uniscene/uniscene_vae_reference_occ3d-nuscenes.py'
DIT_CONFIG = 'configs/uniscene/uniscene_dit_reference_occ3d-nuscenes.py'
_QKV = ('w_qs', 'w_ks', 'w_vs')


# ------------------------------------------------------------------------------ key rules
def vae_rules() -> List[KeyRule]:
    """Reference ``VAERes2D_DwT`` keys (q / k / v fused by :func:`fuse_qkv`) -> ours."""
    return [
        KeyRule('class_embeds.weight', 'semantic.table.weight'),
        # encoder: ResNet shortcuts, axial blocks = Sequential(GroupNorm, AxialBlock_wh)
        KeyRule('encoder.{part*}.nin_shortcut.{p}', 'encoder.{part*}.shortcut.{p}'),
        KeyRule('encoder.{part*}.attn.{i}.block.0.{p}', 'encoder.{part*}.attn.{i}.norm.{p}'),
        KeyRule('encoder.mid.attn_1.block.0.{p}', 'encoder.mid.attn_1.norm.{p}'),
        KeyRule('encoder.{part*}.block.1.attn_{a}.qkv.weight',
                'encoder.{part*}.attn_{a}.qkv.weight'),
        KeyRule('encoder.{part*}.block.1.attn_{a}.fc.{p}', 'encoder.{part*}.attn_{a}.proj.{p}'),
        KeyRule('encoder.{rest*}', 'encoder.{rest*}'),
        # decoder: attention-residual stages after the transposed convs
        KeyRule('decoder.convz_in.weight', 'decoder.conv_in.weight'),
        KeyRule('decoder.attn_res.{s}.{i}.block.5.attn_{a}.qkv.weight',
                'decoder.stages.{s}.{i}.block.5.attn_{a}.qkv.weight'),
        KeyRule('decoder.attn_res.{s}.{i}.block.5.attn_{a}.fc.{p}',
                'decoder.stages.{s}.{i}.block.5.attn_{a}.proj.{p}'),
        KeyRule('decoder.attn_res.{rest*}', 'decoder.stages.{rest*}'),
        KeyRule('decoder.{part*}.attn_{a}.fc.{p}', 'decoder.{part*}.attn_{a}.proj.{p}'),
        KeyRule('decoder.{rest*}', 'decoder.{rest*}'),
    ]


def fuse_qkv(state: StateDict, filename: str) -> StateDict:
    """``<m>.w_qs / w_ks / w_vs.weight`` -> ``<m>.qkv.weight`` (rows q, k, v)."""
    out = dict(state)
    incomplete = []
    for key in [k for k in state if k.endswith('.w_qs.weight')]:
        base = key[:-len('.w_qs.weight')]
        names = [f'{base}.{n}.weight' for n in _QKV]
        if not all(n in out for n in names):
            incomplete += [n for n in names if n not in out]
            continue
        out[f'{base}.qkv.weight'] = torch.cat([out.pop(n) for n in names], 0)
    stray = [k for k in out if k.endswith(('.w_ks.weight', '.w_vs.weight'))]
    if incomplete or stray:
        raise ConversionError(f'{filename}: incomplete q / k / v projections: '
                              f'{sorted(incomplete + stray)}')
    return out


def split_qkv(state: StateDict) -> StateDict:
    """Inverse of :func:`fuse_qkv`."""
    out = {}
    for key, value in state.items():
        if key.endswith('.qkv.weight') and '.attn_' in key:
            base = key[:-len('.qkv.weight')]
            for name, part in zip(_QKV, value.chunk(3, 0)):
                out[f'{base}.{name}.weight'] = part.clone()
        else:
            out[key] = value
    return out


def dit_rules() -> List[KeyRule]:
    """Reference ``OccDiT`` keys -> UniSceneOccDiT keys."""
    rules = [KeyRule('pos_embed_m', 'pos_embed'), KeyRule('temp_embed', 'temp_embed')]
    rules += [KeyRule(f'meta_embedder.fc{j + 1}.{{p}}', f'meta_embedder.{2 * j}.{{p}}')
              for j in range(3)]
    rules += [KeyRule(f'{p}{{rest*}}', f'{p}{{rest*}}')
              for p in ('x_embedder.', 't_embedder.', 'blocks.', 'final_layer.')]
    return rules


# ------------------------------------------------------------------------------ conversions
def vae_to_ours(state: StateDict, filename: str, expected=None, prefix: str = '') -> StateDict:
    return convert_into(fuse_qkv(state, filename), Conversion(rules=tuple(vae_rules())),
                        filename, expected, prefix, 'occworld4d\'s UniSceneOccVAE')


def ours_to_vae(state: StateDict, filename: str, prefix: str = '') -> StateDict:
    return split_qkv(convert_out_of(state, Conversion(rules=tuple(vae_rules())), filename,
                                    prefix))


def dit_to_ours(state: StateDict, filename: str, expected=None, prefix: str = '') -> StateDict:
    return convert_into(state, Conversion(rules=tuple(dit_rules())), filename, expected, prefix,
                        'occworld4d\'s UniSceneOccDiT')


def ours_to_dit(state: StateDict, filename: str, prefix: str = '') -> StateDict:
    return convert_out_of(state, Conversion(rules=tuple(dit_rules())), filename, prefix)


def is_dit_state(state: StateDict) -> bool:
    return 'pos_embed_m' in state or 'final_layer.linear.weight' in state


# ------------------------------------------------------------------------------ files
def convert_to_occworld4d(src: str, dst: str, vae: Optional[str] = None,
                          weights: Optional[str] = None, config: Optional[str] = None,
                          trust: Optional[bool] = None) -> str:
    """A released UniScene VAE (``epoch_<n>.pth``) or OccDiT (``<step>.pt``, with its VAE
    ``vae``) -> an occworld4d checkpoint that ``tools/test.py`` / ``tools/sample.py`` load
    strictly with ``config`` (default: the reference configs, ``axial_mode='reference'``).
    Returns the lines to print."""
    ckpt = read_checkpoint(src, trust)
    state, name = select_weights(ckpt, src, weights, candidates=('ema', 'state_dict', 'model'))
    meta: Dict[str, Any] = dict(converted_from=src.split('/')[-1], reference=REFERENCE,
                                weights=name)
    if is_dit_state(state):
        if vae is None:
            raise ConversionError(f'{src}: an OccDiT checkpoint; give its VAE checkpoint with '
                                  '--vae (the reference\'s ckpt/VAE/epoch_296.pth), which '
                                  'becomes model.tokenizer')
        vae_state, _ = select_weights(read_checkpoint(vae, trust), vae,
                                      candidates=('state_dict', ))
        config = config or DIT_CONFIG
        expected = model_shapes(config)
        ours = vae_to_ours(vae_state, vae, prefix='tokenizer.')
        ours.update(dit_to_ours(state, src, prefix='denoiser.'))
        meta.update(vae_checkpoint=vae.split('/')[-1])
    else:
        config = config or VAE_CONFIG
        expected = model_shapes(config)
        ours = vae_to_ours(state, src)
    check_state_dict(ours, expected, src, f'the occworld4d model of {config}')
    meta.update(config=config)
    save_occworld4d_checkpoint(ours, dst, meta)
    return report(dst, config)


def convert_to_reference(src: str, dst: str, vae_out: Optional[str] = None,
                         trust: Optional[bool] = None) -> str:
    """An occworld4d UniSceneOccVAE or UniScene generator checkpoint -> the reference layout:
    a VAE ``{state_dict, epoch}`` (what ``train_OccDiT.py`` / ``eval_OccDiT.py`` read) or an
    OccDiT ``{model, ema}`` (both the same weights; ``find_model`` reads ``ema``), and with
    ``vae_out`` the generator's tokenizer as a VAE file."""
    state, _ = occworld4d_weights(src, trust)
    written = []
    if any(k.startswith('denoiser.') for k in state):
        ref = ours_to_dit(state, src, prefix='denoiser.')
        save_reference_checkpoint(dict(model=ref, ema={k: v.clone() for k, v in ref.items()}),
                                  dst)
        written.append(f'wrote {dst}')
        if vae_out:
            save_reference_checkpoint(dict(state_dict=ours_to_vae(state, src, 'tokenizer.'),
                                           epoch=0), vae_out)
            written.append(f'wrote {vae_out}')
    else:
        save_reference_checkpoint(dict(state_dict=ours_to_vae(state, src), epoch=0), dst)
        written.append(f'wrote {dst}')
    return '\n'.join(written)
