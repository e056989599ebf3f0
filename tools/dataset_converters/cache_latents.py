"""Encode a dataset with a trained tokenizer and cache the latents for stage 2.

Builds the config's tokenizer (``model``; or ``model.tokenizer`` when the config is a
stage-2 generator), loads CHECKPOINT with mmengine's ``load_checkpoint``, runs
``model.encode(voxels)`` over ``{split}_dataloader.dataset`` and writes one npz per window
(latent tensor, or each key of a dict latent such as HexPlane's xy/xz/yz/tx/ty/tz, plus
trajectory / command / layout) and an ``index.json``, each atomically.
Read it back with ``dict(type='LatentCacheDataset', cache_dir=DIR)``.

Example:
    python tools/dataset_converters/cache_latents.py \
        configs/dynamiccity/dynamiccity_vae_tiny_synthetic-city.py work_dirs/vae/epoch_1.pth \
        --out data/latents/vae_tiny --split train --batch-size 2
"""
import argparse
import os
import os.path as osp

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.dataset import default_collate
from mmengine.runner import load_checkpoint
from tqdm import tqdm

import occworld4d  # noqa: F401  (registries, compat fixes)
from occworld4d.apis.cli import (CLIError, HelpFormatter, add_device_argument,
                                 resolve_checkpoint_arg, resolve_device,
                                 add_trust_checkpoint_argument,
                                 apply_trust_checkpoint)
from occworld4d.datasets.latent_cache import (latent_to_arrays, write_latent_index,
                                              write_latent_window)
from occworld4d.registry import DATASETS, MODELS
from occworld4d.utils.compat import CheckpointLoadError, load_checkpoint_file


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Cache tokenizer latents of a dataset',
                                     formatter_class=HelpFormatter)
    parser.add_argument('config')
    parser.add_argument('checkpoint', help='tokenizer (or stage-2) checkpoint, or a work dir '
                        '(its latest checkpoint)')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--split', default='train', choices=['train', 'val', 'test'])
    parser.add_argument('--dataset-key', help='config key of the dataset to encode, e.g. '
                        'latent_source_dataset for a stage-2 config whose train_dataloader '
                        'reads the cache itself (default: {split}_dataloader.dataset)')
    parser.add_argument('--batch-size', type=int, default=1)
    add_device_argument(parser)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    add_trust_checkpoint_argument(parser)
    return parser.parse_args(argv)


def build_tokenizer(cfg: Config, checkpoint: str, device: str):
    """The tokenizer of ``cfg.model`` with the checkpoint's weights, in eval mode."""
    model_cfg = cfg.model
    prefix = None
    if 'tokenizer' in model_cfg and isinstance(model_cfg['tokenizer'], dict):
        model_cfg, prefix = model_cfg['tokenizer'], 'tokenizer.'
    model = MODELS.build(model_cfg)
    if not hasattr(model, 'encode'):
        raise SystemExit(f'{type(model).__name__} has no encode(); point the tool at a '
                         'tokenizer config or a generator config with model.tokenizer')
    revise = [(r'^module\.', '')]
    if prefix:
        ckpt = load_checkpoint_file(checkpoint, map_location='cpu')  # safe unless trusted
        state = ckpt.get('state_dict', ckpt)
        if any(k.startswith(prefix) for k in state):
            revise.append((r'^' + prefix.replace('.', r'\.'), ''))
    load_checkpoint(model, checkpoint, map_location='cpu', strict=prefix is None,
                    revise_keys=revise)
    return model.to(device).eval()


def main(argv=None):
    args = parse_args(argv)
    args.device = resolve_device(args.device)
    args.checkpoint = resolve_checkpoint_arg(args.checkpoint)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'occworld4d'))
    apply_trust_checkpoint(args, cfg)
    try:
        model = build_tokenizer(cfg, args.checkpoint, args.device)
    except (CheckpointLoadError, FileNotFoundError) as err:
        raise CLIError(str(err)) from err
    if args.dataset_key:
        ds_cfg = cfg.get(args.dataset_key)
        if not isinstance(ds_cfg, dict) or 'type' not in ds_cfg:
            raise CLIError(f'{args.config}: --dataset-key {args.dataset_key!r} names no dataset '
                           f'config (expected a dict with a "type"); found {ds_cfg!r}')
    else:
        ds_cfg = cfg[f'{args.split}_dataloader']['dataset']
    if ds_cfg.get('type') == 'LatentCacheDataset':
        raise CLIError(f'{args.config}: the {args.split} dataset is itself a latent cache; give '
                       '--dataset-key with the config key of the voxel dataset to encode')
    dataset = DATASETS.build(ds_cfg)
    os.makedirs(args.out, exist_ok=True)
    windows, latent_keys = [], None
    order = list(range(len(dataset)))
    for start in tqdm(range(0, len(order), args.batch_size), desc='cache latents'):
        items = [dataset[i] for i in order[start:start + args.batch_size]]
        batch = model.data_preprocessor(default_collate(items), False)
        inputs = batch['inputs']
        with torch.no_grad():
            latent = model.encode(inputs['voxels'])
        for b, item in enumerate(items):
            one = ({k: v[b] for k, v in latent.items()} if isinstance(latent, dict)
                   else latent[b])  # drop the batch axis
            keys = [k.split('.', 1)[-1] for k in latent_to_arrays(one)]
            latent_keys = latent_keys or keys
            name = f'{start + b:06d}.npz'
            cond = {k: inputs[k][b] for k in ('trajectory', 'command', 'layout') if k in inputs}
            write_latent_window(osp.join(args.out, name), one, cond)
            meta = item['data_samples'].metainfo
            windows.append(dict(file=name, scene=meta.get('scene'),
                                frame_ids=list(meta.get('frame_ids') or [])))
    write_latent_index(args.out, windows, latent_keys or [],
                       dict(config=osp.basename(args.config),
                            checkpoint=osp.abspath(args.checkpoint)))
    print(f'cached {len(windows)} windows ({latent_keys}) in {args.out}')


if __name__ == '__main__':
    main()
