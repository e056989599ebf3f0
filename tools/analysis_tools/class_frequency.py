"""Count the class voxels of a dataset config's split: the ``class_frequencies`` of a VAE.

Builds ``{split}_dataloader.dataset`` of CONFIG exactly as training does (the same reader,
class merge / ``RemapClasses`` pipeline and windows), counts the label of every voxel that
every selected mask keeps, prints per-class counts and frequencies, and writes them where
the HexPlane VAE's ``class_frequencies`` expects them (raw counts; the VAE turns them into CE
weights (max p / p_c) ** (1/3)).

Masks: ``--mask auto`` (default) keeps the voxels that every mask the config's dataset loads
(its ``masks=``, e.g. ``valid_mask`` of CarlaSC / the synthetic city, ``mask_camera`` of an
Occ3D validation split) marks True; ``--mask none`` counts every voxel; ``--mask KEY ...``
names the masks. Windows are counted as the loader yields them (overlapping windows count
their shared frames again, as the loss sees them); ``--max-windows`` takes evenly spaced
windows for a quick estimate.

Examples:
    python tools/analysis_tools/class_frequency.py \
        configs/dynamiccity/dynamiccity_vae_tiny_synthetic-city.py --out freq.json
    # Occ3D-Waymo: one window per 16 frames instead of the training stride 1
    python tools/analysis_tools/class_frequency.py \
        configs/dynamiccity/dynamiccity_vae_8xb1-100e_occ3d-waymo.py --out waymo_freq.py \
        --cfg-options train_dataloader.dataset.window_stride=16

``--out X.json`` writes ``{"class_frequencies": [...], "frequencies": [...], "classes": [...],
...}``; ``--out X.py`` writes a config fragment ``model = dict(class_frequencies=[...])``
(``Config.fromfile(X.py).model.class_frequencies``). Both are written atomically. Use the
counts by pasting the printed ``class_frequencies=[...]`` into the VAE config's ``model``
(mmengine refuses a second ``model`` among ``_base_`` files), or at train time with
``--cfg-options "model.class_frequencies=[...]"``.
"""
import argparse
import json
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.utils import import_modules_from_strings
from tqdm import tqdm

import occworld4d  # noqa: F401  (registries, compat fixes)
from occworld4d.apis.cli import CLIError, HelpFormatter, load_config
from occworld4d.registry import DATASETS
from occworld4d.structures.vocabularies import VOCABULARIES
from occworld4d.utils import atomic_path

MASK_KEYS = ('valid_mask', 'mask_camera', 'mask_lidar', 'mask_infov')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Per-class voxel counts of a dataset split',
                                formatter_class=HelpFormatter)
    p.add_argument('config', help='a dataset, tokenizer or generator config')
    p.add_argument('--split', default='train', choices=['train', 'val', 'test'])
    p.add_argument('--out', help='write the counts: .json (dict) or .py (config fragment)')
    p.add_argument('--mask', nargs='+', default=['auto'],
                   help='"auto" (the masks the dataset loads), "none", or mask keys '
                   f'({", ".join(MASK_KEYS)})')
    p.add_argument('--num-classes', type=int,
                   help='class slots (default: the config model\'s num_classes, else the '
                   'config\'s num_classes, else the vocabulary size)')
    p.add_argument('--max-windows', type=int, help='count this many evenly spaced windows')
    p.add_argument('--num-workers', type=int, default=0, help='data loading workers')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config keys, e.g. train_dataloader.dataset.window_stride=16')
    return p.parse_args(argv)


def config_num_classes(cfg: Config) -> Optional[int]:
    """num_classes of ``cfg.model`` (or its tokenizer), else the top-level ``num_classes``."""
    model = cfg.get('model') or {}
    for m in (model, model.get('tokenizer') or {}):
        if isinstance(m, dict) and m.get('num_classes') is not None:
            return int(m['num_classes'])
    return int(cfg['num_classes']) if cfg.get('num_classes') is not None else None


def select_masks(sample, requested: Sequence[str], dataset_masks: Sequence[str]) -> List[str]:
    """Mask keys to apply to one window's data sample."""
    if list(requested) == ['none']:
        return []
    if list(requested) == ['auto']:
        return [k for k in dataset_masks if k in sample]
    missing = [k for k in requested if k not in sample]
    if missing:
        have = [k for k in MASK_KEYS if k in sample]
        raise CLIError(f'--mask {missing}: the dataset windows carry no such mask (they carry '
                       f'{have}); add it to the dataset config\'s masks=(...) or pick another')
    return list(requested)


def count_window(item: dict, num_classes: int, mask_keys: Sequence[str]) -> np.ndarray:
    """int64 (K,) counts of one packed window (``dict(inputs, data_samples)``)."""
    voxels = torch.as_tensor(item['inputs']['voxels']).long().reshape(-1)  # (T*X*Y*Z,)
    keep = None
    for key in mask_keys:
        m = torch.as_tensor(getattr(item['data_samples'], key)).bool().reshape(-1)
        if m.shape != voxels.shape:
            raise CLIError(f'mask {key!r} has {m.numel()} voxels, the window {voxels.numel()}')
        keep = m if keep is None else keep & m
    if keep is not None:
        voxels = voxels[keep]
    if voxels.numel() and (int(voxels.min()) < 0 or int(voxels.max()) >= num_classes):
        scene = item['data_samples'].metainfo.get('scene', '?')
        raise CLIError(f'window of scene {scene!r} has labels in [{int(voxels.min())}, '
                       f'{int(voxels.max())}] but {num_classes} class slots are counted; check '
                       'the class merge / --num-classes')
    return torch.bincount(voxels, minlength=num_classes).numpy().astype(np.int64)


def count_classes(dataset, num_classes: Optional[int], masks: Sequence[str] = ('auto', ),
                  max_windows: Optional[int] = None, num_workers: int = 0,
                  progress: bool = True) -> Dict[str, object]:
    """Per-class voxel counts over the dataset's windows.

    Returns:
        dict(counts int64 (K,), frequencies float64 (K,), num_windows, num_voxels,
        masks (the applied mask keys), vocabulary (name or None)).
    """
    n = len(dataset)
    if n == 0:
        raise CLIError('the dataset split has no windows')
    indices = (np.linspace(0, n - 1, min(max_windows, n)).round().astype(int).tolist()
               if max_windows else list(range(n)))
    subset = torch.utils.data.Subset(dataset, indices)
    loader = torch.utils.data.DataLoader(subset, batch_size=None, shuffle=False,
                                         num_workers=num_workers, collate_fn=lambda x: x)
    dataset_masks = tuple(getattr(dataset, 'masks', MASK_KEYS))
    counts, applied, vocabulary = None, None, None
    for item in tqdm(loader, total=len(indices), desc='class voxels', disable=not progress):
        if counts is None:
            vocabulary = item['data_samples'].metainfo.get('vocabulary')
            if num_classes is None:
                if vocabulary not in VOCABULARIES:
                    raise CLIError('cannot tell the number of classes: give --num-classes')
                num_classes = VOCABULARIES[vocabulary].num_classes
            applied = select_masks(item['data_samples'], masks, dataset_masks)
            counts = np.zeros(num_classes, np.int64)
        counts += count_window(item, num_classes, applied)
    total = int(counts.sum())
    return dict(counts=counts, frequencies=counts / max(total, 1), num_windows=len(indices),
                num_voxels=total, masks=applied, vocabulary=vocabulary)


def class_names(vocabulary: Optional[str], num_classes: int) -> List[str]:
    classes = VOCABULARIES[vocabulary].classes if vocabulary in VOCABULARIES else ()
    return [classes[i] if i < len(classes) else f'class_{i}' for i in range(num_classes)]


def format_table(result: Dict[str, object], names: Sequence[str]) -> str:
    lines = [f'{"id":>3}  {"class":<22}{"voxels":>16}{"frequency":>12}']
    for i, (c, f) in enumerate(zip(result['counts'], result['frequencies'])):
        lines.append(f'{i:>3}  {names[i]:<22}{int(c):>16,}{f:>12.6f}')
    lines.append(f'{"":>3}  {"total":<22}{result["num_voxels"]:>16,}')
    return '\n'.join(lines)


def write_result(path: str, result: Dict[str, object], names: Sequence[str], config: str,
                 split: str) -> None:
    counts = [int(c) for c in result['counts']]
    with atomic_path(path) as tmp:
        with open(tmp, 'w') as f:
            if path.endswith('.py'):
                f.write(f'# Per-class voxel counts of the {split} split of {config}\n'
                        f'# ({result["num_windows"]} windows, masks {result["masks"]}); '
                        f'classes: {list(names)}\n'
                        f'model = dict(class_frequencies={counts})\n')
            else:
                json.dump(dict(class_frequencies=counts,
                               frequencies=[float(x) for x in result['frequencies']],
                               classes=list(names), config=config, split=split,
                               num_windows=result['num_windows'], masks=result['masks'],
                               vocabulary=result['vocabulary']), f, indent=2)
                f.write('\n')


def main(argv=None) -> Dict[str, object]:
    args = parse_args(argv)
    if args.out and not args.out.endswith(('.json', '.py')):
        raise CLIError(f'--out {args.out!r}: expected a .json or .py file name')
    if args.max_windows is not None and args.max_windows < 1:
        raise CLIError(f'--max-windows must be >= 1, got {args.max_windows}')
    cfg = load_config(args.config, args.cfg_options)
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg['custom_imports'])
    init_default_scope(cfg.get('default_scope', 'occworld4d'))
    key = f'{args.split}_dataloader'
    if not cfg.get(key) or not cfg[key].get('dataset'):
        raise CLIError(f'{args.config} has no {key}.dataset')
    dataset = DATASETS.build(cfg[key]['dataset'])
    num_classes = args.num_classes or config_num_classes(cfg)
    result = count_classes(dataset, num_classes, args.mask, args.max_windows, args.num_workers)
    names = class_names(result['vocabulary'], len(result['counts']))
    print(f'{args.split} split of {args.config}: {result["num_windows"]} windows, masks '
          f'{result["masks"] or "none"}')
    print(format_table(result, names))
    print(f'model = dict(class_frequencies={[int(c) for c in result["counts"]]})')
    if args.out:
        write_result(args.out, result, names, osp.relpath(args.config), args.split)
        print(f'written to {args.out}')
    return result


if __name__ == '__main__':
    sys.exit(0 if main() else 1)
