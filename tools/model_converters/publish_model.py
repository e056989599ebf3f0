"""Publish a trained occworld4d checkpoint as safe, shareable weights.

    python tools/model_converters/publish_model.py CKPT OUT [--config CFG]

Reads CKPT (an mmengine / occworld4d ``.pth``, loaded safely with ``torch.load(
weights_only=True)``; ``--trust-checkpoint`` for a full pickle), keeps only its weights
(``state_dict``: with EMAHook the EMA weights; the optimizer, schedulers, message hub and RNG
states are dropped) and writes, following mmdetection's ``publish_model.py`` convention
``<name>-<first 8 hex digits of the sha256>``:

- ``<OUT stem>-<sha8>.safetensors``: the weights (a plain state dict of tensors; every loader
  of the toolkit accepts it: ``tools/test.py``, ``tools/sample.py``, ``load_from``,
  ``model.tokenizer_ckpt``, the GenerationMetric extractor, ``cache_latents.py``);
- ``<OUT stem>-<sha8>.json``: the full sha256, the config (``--config`` or the one stored in
  the checkpoint's ``meta``), and metadata (epoch, iteration, seed, versions, parameters).

The sha256 is that of the ``.safetensors`` file. Both files are written atomically.
"""
import argparse
import hashlib
import json
import os.path as osp
import sys
from typing import Any, Dict, Optional, Tuple

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402

from occworld4d.apis.cli import HelpFormatter  # noqa: E402
from occworld4d.converters.common import (ConversionError, read_checkpoint,  # noqa: E402
                                          run_cli, select_weights)
from occworld4d.utils.io import write_bytes_atomic, write_text_atomic  # noqa: E402

META_KEYS = ('epoch', 'iter', 'seed', 'experiment_name', 'time', 'mmengine_version',
             'mmengine', 'occworld4d_version', 'dataset_meta', 'converted_from', 'reference',
             'weights', 'config', 'cfg_options', 'vae_checkpoint')


def _plain(value: Any) -> Any:
    """A JSON-serialisable copy (numbers, strings, lists, dicts; anything else as text)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, 'item') and getattr(value, 'ndim', 1) == 0:
        return value.item()
    return str(value)


def publish(ckpt_path: str, out: str, config: Optional[str] = None,
            trust: Optional[bool] = None) -> Tuple[str, str]:
    """Write the published weights and their JSON; returns (safetensors path, json path)."""
    from safetensors.torch import save as safetensors_bytes  # optional package: here only
    ckpt = read_checkpoint(ckpt_path, trust)
    state, name = select_weights(ckpt, ckpt_path, candidates=('state_dict', ))
    if name == '<root>':
        meta: Dict[str, Any] = {}
    else:
        meta = ckpt.get('meta', {}) if isinstance(ckpt.get('meta'), dict) else {}
    # Own, contiguous storage per tensor (safetensors refuses shared / strided tensors).
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}
    stem = out[:-len('.safetensors')] if out.endswith('.safetensors') else (
        osp.splitext(out)[0] if out.endswith(('.pth', '.json')) else out)
    # the bytes first: the file name carries their hash (the same bytes save_file writes)
    data = safetensors_bytes(tensors, metadata={'format': 'pt', 'source': osp.basename(ckpt_path)})
    digest = hashlib.sha256(data).hexdigest()
    final = f'{stem}-{digest[:8]}.safetensors'
    write_bytes_atomic(final, data)
    if config is not None:
        if not osp.isfile(config):
            raise ConversionError(f'{config}: no such config')
        with open(config) as f:
            cfg_text = f.read()
        cfg_name = config
    else:
        cfg_text = meta.get('cfg')
        cfg_name = None
    info = dict(
        weights=osp.basename(final), sha256=digest, source=osp.basename(ckpt_path),
        num_tensors=len(tensors), num_parameters=int(sum(t.numel() for t in tensors.values())),
        dtypes=sorted({str(t.dtype).replace('torch.', '') for t in tensors.values()}),
        config_file=cfg_name, config=cfg_text,
        meta=_plain({k: meta[k] for k in META_KEYS if k in meta}),
        dropped=sorted(str(k) for k in ckpt if k not in ('state_dict', 'meta'))
        if name != '<root>' else [],
        torch_version=torch.__version__)
    json_path = f'{stem}-{digest[:8]}.json'
    write_text_atomic(json_path, json.dumps(info, indent=2) + '\n')
    return final, json_path


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=HelpFormatter)
    p.add_argument('ckpt', help='trained checkpoint (.pth)')
    p.add_argument('out', help='output name, e.g. work_dirs/published/dynamiccity_vae_carlasc'
                   '(.safetensors); -<sha8> is inserted before the suffix')
    p.add_argument('--config', help='config file to record (default: the one stored in the '
                   'checkpoint\'s meta)')
    p.add_argument('--trust-checkpoint', action='store_true',
                   help='full-pickle loading (only for files you trust)')
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    weights, info = publish(args.ckpt, args.out, args.config,
                            trust=True if args.trust_checkpoint else None)
    print(f'wrote {weights}\nwrote {info}')
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
