"""Shared pieces of the checkpoint converters (``tools/model_converters/*_to_occworld4d.py``).

A converter reads a checkpoint as a reference repository saves it, picks the weights
(:func:`select_weights`), renames every key by an ordered list of invertible templates
(:class:`KeyRule`), optionally transforms single tensors (:class:`TensorTransform`), checks the
result against the key set and shapes that the other side expects (:func:`check_state_dict`),
and writes the result atomically (:func:`save_occworld4d_checkpoint`,
:func:`save_reference_checkpoint`). Every failure is a :class:`ConversionError` whose message
names the file and lists every offending key.

Key templates: a rule ``KeyRule('blocks.{i}.attn.qkv.{p}', 'layers.{i}.attn.qkv.{p}')`` maps
one key to another. ``{name}`` matches one dot-free key segment, ``{name*}`` matches the rest
of the key (dots included); the other characters match literally and the template must
match the WHOLE key. The same placeholder names must appear on both sides, so every rule
inverts by swapping its sides (:meth:`KeyRule.inverted`). Rules are tried in order; the first
that matches wins.
"""
import argparse
import functools
import os.path as osp
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from torch import Tensor

from occworld4d.apis.cli import HelpFormatter
from occworld4d.models.tokenizers.base import filled_on_load
from occworld4d.registry import MODELS
from occworld4d.utils.compat import (CheckpointLoadError, atomic_save_checkpoint,
                                     checkpoint_is_intact, load_checkpoint_file)

StateDict = Dict[str, Tensor]
ShapeMap = Mapping[str, Sequence[int]]

_PLACEHOLDER = re.compile(r'\{([A-Za-z_][A-Za-z0-9_]*)(\*?)\}')


class ConversionError(RuntimeError):
    """A checkpoint cannot be converted; the message names the file and every bad key."""


@functools.lru_cache(maxsize=None)
def _compile(template: str) -> Tuple[re.Pattern, Tuple[str, ...]]:
    parts, names, pos = [], [], 0
    for m in _PLACEHOLDER.finditer(template):
        parts.append(re.escape(template[pos:m.start()]))
        name, rest = m.group(1), m.group(2)
        if name in names:
            raise ValueError(f'key template {template!r} uses {{{name}}} twice')
        names.append(name)
        parts.append(f'(?P<{name}>.+)' if rest else f'(?P<{name}>[^.]+)')
        pos = m.end()
    parts.append(re.escape(template[pos:]))
    return re.compile(''.join(parts)), tuple(names)


@dataclass(frozen=True)
class KeyRule:
    """One invertible key-rename template (see the module docstring)."""

    src: str
    dst: str

    def __post_init__(self) -> None:
        src_names = sorted(_compile(self.src)[1])
        dst_names = sorted(_compile(self.dst)[1])
        if src_names != dst_names:
            raise ValueError(f'KeyRule({self.src!r}, {self.dst!r}): both sides need the same '
                             f'placeholders ({src_names} != {dst_names})')

    def apply(self, key: str) -> Optional[str]:
        """The renamed key, or None when the source template does not match ``key``."""
        pattern, _ = _compile(self.src)
        m = pattern.fullmatch(key)
        if m is None:
            return None
        return _PLACEHOLDER.sub(lambda p: m.group(p.group(1)), self.dst)

    def inverted(self) -> 'KeyRule':
        return KeyRule(self.dst, self.src)


def prefix_rules(pairs: Iterable[Tuple[str, str]]) -> List[KeyRule]:
    """Prefix maps ``[('encoder.', 'enc.'), ...]`` as rules (the rest of the key is kept)."""
    return [KeyRule(f'{a}{{rest*}}', f'{b}{{rest*}}') for a, b in pairs]


@dataclass(frozen=True)
class TensorTransform:
    """A change of one tensor's layout, applied to the keys (after renaming, so on the
    TARGET side when converting forward) that match ``key`` (a template as in KeyRule).

    ``forward`` maps the reference tensor to ours, ``reverse`` ours back; they must be exact
    inverses (a reshape, a transpose, a split of fused weights along an axis...).
    """

    key: str
    forward: Callable[[Tensor], Tensor]
    reverse: Callable[[Tensor], Tensor]

    def matches(self, key: str) -> bool:
        return _compile(self.key)[0].fullmatch(key) is not None


@dataclass(frozen=True)
class GroupRule:
    """Several keys <-> several keys at once (fused / split weights).

    ``src`` and ``dst`` are templates with the same placeholders; ``forward`` maps the list of
    source tensors (in ``src`` order) to the list of target tensors (in ``dst`` order),
    ``reverse`` back; they must be exact inverses. E.g. three 1x1-conv q / k / v weights
    -> one ``qkv`` linear weight, or ``nn.MultiheadAttention``'s ``in_proj_weight`` -> a ``q``
    and a ``kv`` weight.
    """

    src: Tuple[str, ...]
    dst: Tuple[str, ...]
    forward: Callable[[List[Tensor]], List[Tensor]]
    reverse: Callable[[List[Tensor]], List[Tensor]]

    def __post_init__(self) -> None:
        names = {tuple(sorted(_compile(t)[1])) for t in self.src + self.dst}
        if len(names) != 1:
            raise ValueError(f'GroupRule {self.src} -> {self.dst}: every template needs the '
                             'same placeholders')

    def inverted(self) -> 'GroupRule':
        return GroupRule(self.dst, self.src, self.reverse, self.forward)


def _fill(template: str, values: Mapping[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda p: values[p.group(1)], template)


def apply_groups(state: Mapping[str, Tensor], groups: Sequence[GroupRule],
                 filename: str) -> Tuple[StateDict, StateDict]:
    """Apply every group rule: (the keys left, the keys produced).

    Raises:
        ConversionError: a group found incomplete (one of its source keys is missing), all
            such keys listed.
    """
    rest = dict(state)
    out: StateDict = {}
    incomplete: List[str] = []
    for g in groups:
        first = _compile(g.src[0])[0]
        for key in [k for k in rest if first.fullmatch(k)]:
            values = first.fullmatch(key).groupdict()
            names = [_fill(t, values) for t in g.src]
            absent = [n for n in names if n not in rest]
            if absent:
                incomplete += [f'{n} (with {key})' for n in absent]
                continue
            produced = g.forward([rest.pop(n) for n in names])
            out.update({_fill(t, values): v for t, v in zip(g.dst, produced)})
    if incomplete:
        raise ConversionError(f'{filename}: incomplete fused/split weights, missing:'
                              f'{_listing(incomplete)}')
    return rest, out


@dataclass(frozen=True)
class Conversion:
    """Rules + transforms between a reference layout (``src``) and ours (``dst``).

    Forward: ``groups`` first, then ``rules`` on the keys left, then ``transforms`` on the
    renamed keys. ``drop_src``: templates of reference keys that ours does not keep (a
    buffer ours recomputes), consumed without a target; ``extra_dst``: keys only ours has,
    ``(name, fn(reference_state) -> Tensor)``, created. The reverse way mirrors it:
    ``drop_dst`` templates of our keys consumed without a target, ``extra_src`` reference
    keys re-created by ``fn(our_state)``.
    """

    rules: Tuple[KeyRule, ...]
    transforms: Tuple[TensorTransform, ...] = ()
    drop_src: Tuple[str, ...] = ()
    extra_src: Tuple[Tuple[str, Callable[[StateDict], Tensor]], ...] = field(default=())
    groups: Tuple[GroupRule, ...] = ()
    drop_dst: Tuple[str, ...] = ()
    extra_dst: Tuple[Tuple[str, Callable[[StateDict], Tensor]], ...] = field(default=())

    def reversed_rules(self) -> Tuple[KeyRule, ...]:
        return tuple(r.inverted() for r in self.rules)


def _listing(keys: Iterable[str]) -> str:
    keys = sorted(keys)
    return '\n    ' + '\n    '.join(keys)  # every key: nothing is cut


def rename_state_dict(state: Mapping[str, Tensor], rules: Sequence[KeyRule], filename: str,
                      drop: Sequence[str] = ()) -> StateDict:
    """Rename every key by the first matching rule.

    Raises:
        ConversionError: keys that no rule (and no ``drop`` template) matches, or two keys
            that map to the same target: the full list, naming ``filename``.
    """
    drop_patterns = [_compile(d)[0] for d in drop]
    out: StateDict = {}
    unknown: List[str] = []
    clashes: List[str] = []
    for key, value in state.items():
        if any(p.fullmatch(key) for p in drop_patterns):
            continue
        new = next((n for n in (r.apply(key) for r in rules) if n is not None), None)
        if new is None:
            unknown.append(key)
        elif new in out:
            clashes.append(f'{key} -> {new}')
        else:
            out[new] = value
    if unknown:
        raise ConversionError(f'{filename}: {len(unknown)} key(s) that the converter does not '
                              f'know (a different model or version?):{_listing(unknown)}')
    if clashes:
        raise ConversionError(f'{filename}: keys mapped twice to one target:{_listing(clashes)}')
    return out


def apply_transforms(state: StateDict, transforms: Sequence[TensorTransform],
                     reverse: bool = False) -> StateDict:
    """Apply the first matching transform to each tensor (``reverse``: the inverse)."""
    out: StateDict = {}
    for key, value in state.items():
        t = next((t for t in transforms if t.matches(key)), None)
        out[key] = value if t is None else (t.reverse if reverse else t.forward)(value)
    return out


def convert(state: Mapping[str, Tensor], conversion: Conversion, filename: str,
            reverse: bool = False) -> StateDict:
    """Reference -> ours (``reverse=False``) or ours -> reference, without the key check."""
    c = conversion
    if reverse:
        state = {k: v for k, v in state.items() if not filled_on_load(k)}
    if not reverse:
        rest, grouped = apply_groups(state, c.groups, filename)
        out = rename_state_dict(rest, c.rules, filename, c.drop_src)
        out = apply_transforms({**grouped, **out}, c.transforms)
        for name, make in c.extra_dst:
            out[name] = make(dict(state))
        return out
    ours = apply_transforms(dict(state), c.transforms, reverse=True)
    rest, grouped = apply_groups(ours, [g.inverted() for g in c.groups], filename)
    out = {**grouped, **rename_state_dict(rest, c.reversed_rules(), filename, c.drop_dst)}
    for name, make in c.extra_src:
        out[name] = make(dict(state))
    return out


def check_state_dict(state: Mapping[str, Tensor], expected: ShapeMap, filename: str,
                     what: str) -> None:
    """Every expected key produced with its shape, nothing else.

    Args:
        state: the converted state dict.
        expected: key -> shape of the side converted to (``model.state_dict()`` of ours, or
            the reference layout).
        filename: the source file, for the message.
        what: the target, e.g. ``'the occworld4d model of configs/occworld/x.py'``.

    Keys of :data:`occworld4d.models.tokenizers.base.FILLED_ON_LOAD` may be missing (the module fills them on loading).

    Raises:
        ConversionError: listing every missing key, every unexpected key and every shape
            mismatch at once.
    """
    missing = [k for k in expected if k not in state and not filled_on_load(k)]
    unexpected = [k for k in state if k not in expected]
    shapes = [f'{k}: {tuple(state[k].shape)} (expected {tuple(expected[k])})'
              for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k])]
    problems = []
    if missing:
        problems.append(f'{len(missing)} missing key(s):{_listing(missing)}')
    if unexpected:
        problems.append(f'{len(unexpected)} unexpected key(s):{_listing(unexpected)}')
    if shapes:
        problems.append(f'{len(shapes)} shape mismatch(es):{_listing(shapes)}')
    if problems:
        raise ConversionError(f'{filename} does not convert to {what}:\n  '
                              + '\n  '.join(problems))


def shapes_of(state: Mapping[str, Tensor]) -> Dict[str, Tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items()}


def model_shapes(config: str, cfg_options: Optional[Mapping[str, Any]] = None,
                 sub: Optional[str] = None) -> Dict[str, Tuple[int, ...]]:
    """Key -> shape of the occworld4d model a config builds (``cfg_options`` merged first, as
    ``--cfg-options`` does), i.e. what ``tools/test.py`` will load strictly; ``sub`` builds
    only ``cfg.model[sub]`` (e.g. ``'tokenizer'``).

    Raises:
        ConversionError: the config is missing or does not build (naming it).
    """

    if not osp.isfile(config):
        raise ConversionError(f'{config}: no such config')
    try:
        cfg = Config.fromfile(config)
        if cfg_options:
            cfg.merge_from_dict(dict(cfg_options))
        model_cfg = cfg.model if sub is None else cfg.model[sub]
        with DefaultScope.overwrite_default_scope('occworld4d'):
            model = MODELS.build(model_cfg)
    except Exception as err:  # any build failure: one line naming the config
        raise ConversionError(f'{config}: the model does not build with '
                              f'{dict(cfg_options or {})}: {type(err).__name__}: {err}') from err
    return shapes_of(model.state_dict())


# ---------------------------------------------------------------------------------------------
# Reading


def _sniff(filename: str) -> None:
    """Refuse, in one line, what is not a checkpoint before unpickling anything."""
    if not osp.isfile(filename):
        raise ConversionError(f'{filename}: no such file (expected a checkpoint)')
    if filename.endswith('.safetensors'):
        return
    with open(filename, 'rb') as f:
        head = f.read(4)
    if not head:
        raise ConversionError(f'{filename}: empty file (expected a checkpoint)')
    if head.startswith(b'PK'):  # torch.save's zip format (torch >= 1.6)
        if not checkpoint_is_intact(filename):
            raise ConversionError(f'{filename}: truncated or corrupt checkpoint (the zip '
                                  'archive written by torch.save is incomplete)')
    elif not head.startswith(b'\x80'):  # the legacy format starts with a pickle opcode
        raise ConversionError(f'{filename}: not a file written by torch.save (neither its zip '
                              'archive nor a pickle)')


def read_checkpoint(filename: str, trust: Optional[bool] = None) -> Any:
    """Load a reference checkpoint safely (``torch.load(weights_only=True)`` with the project's
    allow-list, :func:`occworld4d.utils.compat.load_checkpoint_file`).

    ``argparse.Namespace`` is allowed besides (DiT-style checkpoints save the training
    arguments as ``args``). ``trust=True`` is a full pickle (only for files you trust).

    Raises:
        ConversionError: one line naming the file: missing, truncated, not a checkpoint, or
            refused by the safe loader (with the way to allow it).
    """
    filename = str(filename)
    _sniff(filename)
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return load_checkpoint_file(filename, map_location='cpu', trust=trust)
    except CheckpointLoadError as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ConversionError(first) from err


def select_weights(ckpt: Any, filename: str, weights: Optional[str] = None,
                   candidates: Sequence[str] = ('ema', 'state_dict', 'model')) -> Tuple[StateDict,
                                                                                         str]:
    """The weights sub-dict of a checkpoint and its name.

    ``weights`` names the entry (``'ema'``, ``'model'``, ``'state_dict'``); ``None`` takes the
    first of ``candidates`` present (so a DiT file ``{model, ema, opt, args}`` gives its EMA
    weights, as the references sample). A plain dict of tensors is returned as is
    (``'<root>'``). A DistributedDataParallel ``module.`` prefix on every key is stripped.

    Raises:
        ConversionError: not a dict, the named entry is absent, or it is not tensors.
    """
    if not isinstance(ckpt, dict):
        raise ConversionError(f'{filename}: expected a checkpoint dict, got '
                              f'{type(ckpt).__name__}')
    if weights is None:
        name = next((c for c in candidates if c in ckpt), None)
        if name is None and ckpt and all(isinstance(v, Tensor) for v in ckpt.values()):
            name = '<root>'
        if name is None:
            raise ConversionError(f'{filename}: no weights found (expected one of '
                                  f'{list(candidates)} or a plain state dict; the file has '
                                  f'{sorted(map(str, ckpt))})')
    else:
        name = weights
        if name not in ckpt:
            raise ConversionError(f'{filename}: no {name!r} entry (the file has '
                                  f'{sorted(map(str, ckpt))})')
    state = ckpt if name == '<root>' else ckpt[name]
    if not isinstance(state, dict) or not state:
        raise ConversionError(f'{filename}: {name!r} is not a non-empty state dict')
    bad = [str(k) for k, v in state.items() if not isinstance(v, Tensor)]
    if bad:
        raise ConversionError(f'{filename}: {name!r} holds non-tensor entries:{_listing(bad)}')
    if all(str(k).startswith('module.') for k in state):
        state = {k[len('module.'):]: v for k, v in state.items()}
    return dict(state), name


# ---------------------------------------------------------------------------------------------
# Writing


def save_occworld4d_checkpoint(state: StateDict, dst: str, meta: Dict[str, Any]) -> None:
    """``{'state_dict': ..., 'meta': ...}`` (what ``tools/test.py`` / ``tools/sample.py`` load
    strictly through mmengine's ``load_checkpoint``), written atomically."""
    tensors = {k: v.detach().contiguous().clone() for k, v in state.items()}
    atomic_save_checkpoint({'state_dict': tensors, 'meta': dict(meta)}, str(dst))


def save_reference_checkpoint(payload: Dict[str, Any], dst: str) -> None:
    """A reference-layout checkpoint (e.g. ``{'state_dict': ...}``), written atomically."""
    atomic_save_checkpoint(payload, str(dst))


def occworld4d_weights(filename: str, trust: Optional[bool] = None) -> Tuple[StateDict, dict]:
    """The ``state_dict`` and ``meta`` of an occworld4d checkpoint (for the reverse way)."""
    ckpt = read_checkpoint(filename, trust)
    state, _ = select_weights(ckpt, filename, candidates=('state_dict',))
    meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
    return state, meta if isinstance(meta, dict) else {}


def report(dst: str, config: Optional[str], extra: str = '') -> str:
    """The lines a converter prints: what it wrote and the config to use with it."""
    lines = [f'wrote {dst}']
    if config:
        lines += [f'config: {config}',
                  f'test:   python tools/test.py {config} {dst}']
    if extra:
        lines.append(extra)
    return '\n'.join(lines)


def converter_parser(doc: str, config_help: str) -> argparse.ArgumentParser:
    """The arguments every converter tool shares: SRC, DST, ``--reverse``, ``--config``,
    ``--trust-checkpoint``; a tool adds its own (``--vae``, ``--weights`` ...) to it."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0], formatter_class=HelpFormatter)
    p.add_argument('src', help='reference checkpoint (or, with --reverse, an occworld4d one)')
    p.add_argument('dst', help='output checkpoint')
    p.add_argument('--reverse', action='store_true', help='occworld4d -> reference layout')
    p.add_argument('--config', help=config_help)
    p.add_argument('--trust-checkpoint', action='store_true',
                   help='full-pickle loading (only for files you trust)')
    return p


def trust_of(args: argparse.Namespace) -> Optional[bool]:
    """``--trust-checkpoint`` as the ``trust`` argument of :func:`read_checkpoint` (None = the
    config / default rule)."""
    return True if args.trust_checkpoint else None


def add_prefix(state: Mapping[str, Tensor], prefix: str) -> StateDict:
    """``prefix + key`` for every key (a sub-model's weights inside a generator)."""
    return {prefix + k: v for k, v in state.items()}


def strip_prefix(state: Mapping[str, Tensor], prefix: str) -> StateDict:
    """The entries under ``prefix``, with it removed (inverse of :func:`add_prefix`)."""
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def convert_into(state: Mapping[str, Tensor], conversion: 'Conversion', filename: str,
                 expected: Optional[ShapeMap] = None, prefix: str = '',
                 what: str = 'the occworld4d model') -> StateDict:
    """Reference weights -> ours under ``prefix``, checked against ``expected`` (our model's
    key -> shape) when given; ``what`` names our model in the error."""
    ours = add_prefix(convert(state, conversion, filename), prefix)
    if expected is not None:
        check_state_dict(ours, expected, filename, what)
    return ours


def convert_out_of(state: Mapping[str, Tensor], conversion: 'Conversion', filename: str,
                   prefix: str = '') -> StateDict:
    """Our weights under ``prefix`` -> the reference keys (inverse of :func:`convert_into`)."""
    return convert(strip_prefix(state, prefix), conversion, filename, reverse=True)


def run_cli(main: Callable[[Optional[List[str]]], int],
            argv: Optional[List[str]] = None) -> int:
    """Run a converter's ``main``; a :class:`ConversionError` is printed as ``error: ...`` on
    stderr with exit status 2 (one message, no traceback)."""
    try:
        return main(argv)
    except ConversionError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2

