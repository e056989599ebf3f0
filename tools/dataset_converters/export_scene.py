"""Export one dataset window of a config as a scene npz (the ``--input`` of tools/sample.py).

Examples:
    python tools/dataset_converters/export_scene.py \\
        configs/occworld/occworld_wm_tiny_synthetic-city.py --split val --index 0 --out scene.npz
    python tools/sample.py configs/occworld/occworld_wm_tiny_synthetic-city.py \\
        work_dirs/occworld_wm_tiny_synthetic-city --task forecast --input scene.npz
    python tools/dataset_converters/export_scene.py CONFIG --split val --index 3 \\
        --num-frames 16 --out scene.npz       # another window length than the config's

The window is read exactly as the dataset of ``{split}_dataloader`` reads it (its class
merge and transforms, without the final packing). The npz holds:

    semantics   uint8 (T, X, Y, Z) class ids
    vocabulary  str, the class vocabulary (a name of occworld4d.structures.VOCABULARIES)
    class_names str (K,), its class names; frame_rate float32 (Hz) (when the config or the
                dataset knows it)
    free_label  int; pc_range float32 (6,); voxel_size float32 (3,) (when the dataset has them)
    trajectory  float32 (T, 3) (x, y, yaw) relative to frame 0; command int64 (0 STATIC,
                1 FORWARD, 2 LEFT, 3 RIGHT); ego_poses float64 (T, 4, 4) world-from-ego
                (when the dataset has poses)
    layout      float32 (T, h, w) made by the config's layout transform (UniSceneLayout /
                MakeLayout) and layout_spec (str, that transform) - when the config has one;
                tools/sample.py rebuilds the layout from ``semantics`` when its config's
                transform differs, so a scene moves between configs of the same vocabulary
    masks       bool (T, X, Y, Z) of the visibility masks the dataset loads (mask_camera, ...)
    scene, frame_ids, source (config, split, index)

Written atomically (temporary name, then rename).
"""
import argparse
import os.path as osp
import sys

import numpy as np
from mmengine.registry import init_default_scope

import occworld4d  # noqa: F401  (registries)
from occworld4d.apis import generation as G
from occworld4d.apis.cli import CLIError, HelpFormatter, KeyValueAction, load_config
from occworld4d.apis.inferencer import config_picture_meta
from occworld4d.datasets.transforms import PackOccInputs
from occworld4d.structures.errors import DataFormatError
from occworld4d.registry import DATASETS
from occworld4d.structures import VOCABULARIES
from occworld4d.visualization import picture_meta
from occworld4d.utils import save_npz_atomic

MASKS = ('mask_lidar', 'mask_camera', 'mask_infov', 'valid_mask')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Export a dataset window as a scene npz',
                                formatter_class=HelpFormatter)
    p.add_argument('config', help='config with {train,val,test}_dataloader.dataset')
    p.add_argument('--split', default='val', choices=['train', 'val', 'test'])
    p.add_argument('--index', type=int, default=0, help='window index in the split')
    p.add_argument('--num-frames', type=int,
                   help="frames of the window (default: the split dataset's num_frames)")
    p.add_argument('--out', default='scene.npz', help='output npz')
    p.add_argument('--cfg-options', nargs='+', action=KeyValueAction,
                   help='override config keys, e.g. val_dataloader.dataset.data_root=data/x')
    return p.parse_args(argv)


def build_dataset(cfg, split: str, num_frames=None, config_path: str = 'the config'):
    key = f'{split}_dataloader'
    loader = cfg.get(key)
    if not loader or 'dataset' not in loader:
        raise CLIError(f'{config_path}: no {key}.dataset in the config')
    ds_cfg = dict(loader['dataset'])
    if num_frames is not None:
        if num_frames < 1:
            raise CLIError(f'--num-frames must be >= 1, got {num_frames}')
        ds_cfg['num_frames'] = num_frames
    init_default_scope(cfg.get('default_scope', 'occworld4d'))
    try:
        dataset = DATASETS.build(ds_cfg)
    except (KeyError, ValueError, FileNotFoundError, DataFormatError) as err:
        raise CLIError(f'{config_path}: {key}.dataset could not be built: '
                       f'{err.args[0] if err.args else err}') from err
    if not hasattr(dataset, 'load_window'):
        raise CLIError(f'{config_path}: {key}.dataset is a {type(dataset).__name__}, not an '
                       'occupancy sequence dataset (it has no windows of semantics to export)')
    return dataset


def load_window(dataset, index: int, config_path: str) -> dict:
    """Window ``index`` after the dataset's transforms, before the final packing."""
    dataset.full_init()
    if not 0 <= index < len(dataset):
        raise CLIError(f'--index {index}: the split of {config_path} has {len(dataset)} '
                       f'window(s) (0..{len(dataset) - 1})')
    window = dataset.load_window(dataset.get_data_info(index))
    for transform in dataset.pipeline.transforms:
        if isinstance(transform, PackOccInputs):
            break
        window = transform(window)
        if window is None:
            raise CLIError(f'{config_path}: window {index} was filtered out by {transform}')
    return window


def scene_arrays(cfg, window: dict, source: dict) -> dict:
    """The npz arrays of a window (see the module doc)."""
    sem = np.asarray(window['semantics'])
    if sem.ndim != 4:
        raise CLIError(f'window {source}: semantics has shape {sem.shape}, expected (T, X, Y, Z)')
    T = sem.shape[0]
    vocabulary = window.get('vocabulary') or cfg.get('vocabulary')
    if vocabulary is None:
        raise CLIError(f'{source["config"]}: neither the dataset nor the config names a '
                       'vocabulary')
    out = dict(semantics=sem.astype(np.uint8), vocabulary=np.array(str(vocabulary)),
               trajectory=np.asarray(window.get('trajectory', np.zeros((T, 3))), np.float32),
               command=np.int64(window.get('command', G.COMMANDS['FORWARD'])),
               scene=np.array(str(window.get('scene', ''))),
               frame_ids=np.array([str(f) for f in window.get('frame_ids', range(T))]),
               source=np.array(f'{source["config"]} --split {source["split"]} '
                               f'--index {source["index"]}'))
    free = window.get('free_label', cfg.get('free_label'))
    if free is not None:
        out['free_label'] = np.int64(free)
    # class_names and frame_rate, as tools/sample.py and SaveOccSamplesHook record them
    meta = config_picture_meta(cfg, sem.shape[1:])
    if str(vocabulary) in VOCABULARIES:
        meta.update(picture_meta(str(vocabulary), frame_rate=window.get('frame_rate')))
    for key in ('class_names', 'frame_rate'):
        if key in meta:
            out[key] = meta[key]
    pc_range = window.get('pc_range') or cfg.get('pc_range')
    if pc_range is not None:
        out['pc_range'] = np.asarray(pc_range, np.float32)
        voxel = window.get('voxel_size')
        if voxel is None:
            voxel = [(pc_range[a + 3] - pc_range[a]) / sem.shape[a + 1] for a in range(3)]
        out['voxel_size'] = np.asarray(voxel, np.float32)
    if window.get('ego_poses') is not None:
        out['ego_poses'] = np.asarray(window['ego_poses'], np.float64)
    for key in MASKS:
        if key in window:
            out[key] = np.asarray(window[key], bool)
    spec = G.layout_transform_spec(cfg)
    layout = window.get('layout')
    if layout is None and spec is not None:
        try:
            layout = G.layout_from_scene(cfg, sem)
        except ValueError as err:
            raise CLIError(f'{source["config"]}: {err}') from err
    if layout is not None:
        out['layout'] = np.asarray(layout, np.float32)
        out['layout_spec'] = np.array(G.layout_spec_key(spec))
    return out


def main(argv=None) -> str:
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    dataset = build_dataset(cfg, args.split, args.num_frames, args.config)
    try:
        window = load_window(dataset, args.index, args.config)
    except (DataFormatError, FileNotFoundError) as err:
        raise CLIError(f'{args.config} --split {args.split} --index {args.index}: {err}') from err
    source = dict(config=args.config, split=args.split, index=args.index)
    arrays = scene_arrays(cfg, window, source)
    save_npz_atomic(args.out, **arrays)
    sem = arrays['semantics']
    extra = ', '.join(k for k in ('trajectory', 'command', 'ego_poses', 'layout') if k in arrays)
    print(f'wrote {osp.abspath(args.out)}: {args.split} window {args.index} '
          f'(scene {str(arrays["scene"])!r}), semantics {sem.shape}, vocabulary '
          f'{str(arrays["vocabulary"])}, {extra}')
    return args.out


if __name__ == '__main__':
    sys.exit(0 if main() else 1)
