"""Pack a dataset's frames into memory-mappable per-scene arrays for fast windows.

Writes ``<out>/<scene>.<key>.npy`` (uint8 (N, X, Y, Z) for ``semantics`` and each mask the
dataset loads, float64 (N, 4, 4) ``ego_poses`` when every frame has a pose) and
``<out>/index.json``; each file is written under a temporary name and renamed. Point the
dataset at it with ``cache_dir=<out>``: a window then is one slice of a memory map.

Example:
    python tools/dataset_converters/pack_window_cache.py \
        configs/_base_/datasets/occ3d_nuscenes.py --split train --out data/cache/occ3d_train
"""
import argparse

from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope

import occworld4d  # noqa: F401  (registries)
from occworld4d.apis.cli import HelpFormatter
from occworld4d.datasets import pack_window_cache
from occworld4d.registry import DATASETS


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Pack a window cache of a dataset config',
                                     formatter_class=HelpFormatter)
    parser.add_argument('config', help='config with {train,val,test}_dataloader.dataset')
    parser.add_argument('--out', required=True, help='output folder of the cache')
    parser.add_argument('--split', default='train', choices=['train', 'val', 'test'])
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, e.g. train_dataloader.dataset.data_root=x')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'occworld4d'))
    key = f'{args.split}_dataloader'
    if key not in cfg or 'dataset' not in cfg[key]:
        raise SystemExit(f'{args.config}: no {key}.dataset in the config')
    ds_cfg = dict(cfg[key]['dataset'])
    ds_cfg.pop('cache_dir', None)
    ds_cfg['pipeline'] = []  # raw frames are cached; the pipeline runs at read time
    dataset = DATASETS.build(ds_cfg)
    index = pack_window_cache(dataset, args.out)
    frames = sum(len(s['frame_ids']) for s in index['scenes'].values())
    print(f'packed {len(index["scenes"])} scenes, {frames} frames, keys {index["keys"]} '
          f'into {args.out}')


if __name__ == '__main__':
    main()
