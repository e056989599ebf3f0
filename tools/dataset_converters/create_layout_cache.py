"""Write BEV layout caches: one ``.npz`` per frame, from an infos pkl or an occupancy tree.

Each file holds ``layout`` (uint8 0/1, (C, H, W), H along ego X), ``semantic`` (uint8 (H, W),
:func:`collapse_layout`: 1 + index of the top channel, 0 = empty) and ``channels`` (names, in
order; see ``occworld4d.rendering.bev_layout.LAYOUT_CHANNELS``). Files are written to a
temporary name and renamed; existing files are skipped unless ``--overwrite``.

Examples:
    # boxes of a VAD-style temporal info file (or an mmdet3d v1.1 info) -> out/<scene>/<token>.npz
    python tools/dataset_converters/create_layout_cache.py --infos \\
        data/nuscenes/nuscenes_infos_val_temporal_v3_scene.pkl --out data/layouts
    # semantic occupancy tree -> out/<same relative folder>/<stem>_layout.npz
    python tools/dataset_converters/create_layout_cache.py --occ-root data/occ3d/gts \\
        --pattern '**/labels.npz' --key semantics --vocabulary occ3d_nuscenes --out data/layouts
    python tools/dataset_converters/create_layout_cache.py --occ-root data/occ3d_waymo/training \\
        --pattern '**/*_04.npz' --key voxel_label --vocabulary occ3d_waymo --out data/layouts_waymo
"""
import argparse
import glob
import os.path as osp
import sys
import zipfile
from typing import List, Optional

import numpy as np
from tqdm import tqdm

from occworld4d.apis.cli import HelpFormatter
from occworld4d.rendering.bev_layout import LAYOUT_CHANNELS, BEVLayoutRasterizer, collapse_layout
from occworld4d.structures.nuscenes_infos import load_info_frames
from occworld4d.structures.vocabularies import VOCABULARIES
from occworld4d.utils import join_inside, safe_file_name, save_npz_atomic


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Write per-frame BEV layout caches (npz)',
                                formatter_class=HelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument('--infos', help='info pkl (VAD-style temporal infos or mmdet3d v1.1)')
    src.add_argument('--occ-root', help='root of a semantic occupancy tree')
    p.add_argument('--out', required=True, help='output folder')
    p.add_argument('--pattern', default='**/labels.npz', help='glob under --occ-root')
    p.add_argument('--key', default='semantics', help='grid array name in each occupancy npz')
    p.add_argument('--vocabulary', default='occ3d_nuscenes', choices=sorted(VOCABULARIES))
    p.add_argument('--x-range', type=float, nargs=2, default=(-40.0, 40.0))
    p.add_argument('--y-range', type=float, nargs=2, default=(-40.0, 40.0))
    p.add_argument('--resolution', type=float, default=0.4)
    p.add_argument('--overwrite', action='store_true')
    return p.parse_args(argv)


def _scene_of(info: dict) -> str:
    """Folder name of a frame: its scene name where known, else its scene token."""
    if '_scene' in info:
        return str(info['_scene'])
    occ = info.get('occ_path')
    if occ:  # './data/nuscenes/gts/scene-0103/<token>' (any separator)
        parts = str(occ).replace('\\', '/').rstrip('/').split('/')
        if len(parts) >= 2:
            return parts[-2]
    return str(info.get('scene_token', 'unknown_scene'))


def _write(path: str, layout: np.ndarray) -> None:
    save_npz_atomic(path, layout=layout.astype(np.uint8),
                    semantic=collapse_layout(layout).numpy().astype(np.uint8),
                    channels=np.array(LAYOUT_CHANNELS))


def from_infos(args, rast: BEVLayoutRasterizer) -> int:
    infos = load_info_frames(args.infos)
    written = 0
    for i, info in enumerate(tqdm(infos, desc='layouts from infos')):
        token = info.get('token', info.get('sample_idx', i))
        # scene and token come from the info file: one safe file-name component each, and
        # the result must stay inside --out
        where = f'{args.infos} frame {i}'
        path = join_inside(args.out, safe_file_name(_scene_of(info), f'{where}: scene'),
                           safe_file_name(token, f'{where}: token') + '.npz')
        if osp.exists(path) and not args.overwrite:
            continue
        _write(path, rast.from_info(info, source=f'{args.infos} frame {i}'))
        written += 1
    return written


def from_occupancy(args, rast: BEVLayoutRasterizer) -> int:
    files = sorted(glob.glob(osp.join(args.occ_root, args.pattern), recursive=True))
    if not files:
        raise FileNotFoundError(f'{args.occ_root}: no file matches {args.pattern!r}')
    written = 0
    for f in tqdm(files, desc='layouts from occupancy'):
        rel = osp.relpath(f, args.occ_root)
        stem = osp.splitext(osp.basename(rel))[0]
        path = join_inside(args.out, osp.dirname(rel), f'{stem}_layout.npz')
        if osp.exists(path) and not args.overwrite:
            continue
        try:
            with np.load(f) as z:
                if args.key not in z:
                    raise KeyError(f'{f}: key {args.key!r} not found; found keys '
                                   f'{list(z.keys())}')
                sem = z[args.key]
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as err:
            raise ValueError(f'{f}: not a readable npz archive ({type(err).__name__}: '
                             f'{err}); expected an occupancy npz with key {args.key!r}') from err
        _write(path, rast.from_occupancy(sem, args.vocabulary))
        written += 1
    return written


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    rast = BEVLayoutRasterizer(tuple(args.x_range), tuple(args.y_range), args.resolution)
    n = from_infos(args, rast) if args.infos else from_occupancy(args, rast)
    print(f'wrote {n} layout files to {osp.abspath(args.out)}')
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except (KeyError, ValueError, FileNotFoundError) as err:
        print(f'error: {err}', file=sys.stderr)
        sys.exit(2)
