"""Render an npz of semantic voxels to PNG / GIF / MP4 (BEV or isometric).

The npz holds ``semantics`` or ``pred_semantics`` (or the only array), shaped (T, X, Y, Z)
or (X, Y, Z); an optional ``vocabulary`` string in the npz is used unless --vocabulary
is given (default occ3d_nuscenes). One frame -> PNG; several -> GIF (or .mp4 with
imageio-ffmpeg, or a .png strip).

Examples:
    python tools/visualize.py labels.npz --out bev.png
    python tools/visualize.py sample.npz --mode iso --vocabulary dynamiccity_carlasc --out s.gif
    python tools/visualize.py sample.npz --frame 3 --out frame3.png
"""
import argparse
import os.path as osp

import numpy as np

from occworld4d.apis.cli import CLIError
from occworld4d.structures import VOCABULARIES, get_vocabulary
from occworld4d.visualization import render_sequence, save_frames, save_png

KEYS = ('semantics', 'pred_semantics', 'gt_semantics')


def load_semantics(path: str):
    """(T, X, Y, Z) integer array and the npz's vocabulary (or None)."""
    if not osp.isfile(path):
        raise CLIError(f'input {path!r} does not exist')
    try:
        with np.load(path, allow_pickle=False) as data:
            key = next((k for k in KEYS if k in data.files), None)
            if key is None:
                arrays = [k for k in data.files if data[k].ndim in (3, 4)]
                if len(arrays) != 1:
                    raise CLIError(f'{path!r} has no key {"/".join(KEYS)} (keys: {data.files})')
                key = arrays[0]
            sem = data[key]
            vocabulary = str(data['vocabulary']) if 'vocabulary' in data.files else None
    except CLIError:
        raise
    except Exception as err:  # truncated / corrupt archive: zipfile, zlib, EOF, ValueError
        raise CLIError(f'{path!r}: not a readable npz archive ({type(err).__name__}: {err}); '
                       f'expected an npz with {"/".join(KEYS)}') from err
    if sem.ndim == 3:
        sem = sem[None]
    if sem.ndim != 4 or not np.issubdtype(sem.dtype, np.integer):
        raise CLIError(f'{path!r}[{key!r}] must be integer (T, X, Y, Z) or (X, Y, Z); got '
                       f'{sem.dtype} {sem.shape}')
    return sem, vocabulary


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description='Render semantic occupancy to images')
    parser.add_argument('input', help='npz with semantics (T, X, Y, Z) or (X, Y, Z)')
    parser.add_argument('--out', help='output .png / .gif / .mp4 (default: beside the input)')
    parser.add_argument('--mode', choices=('bev', 'iso'), default='bev')
    parser.add_argument('--vocabulary', choices=sorted(VOCABULARIES))
    parser.add_argument('--frame', type=int, help='render only this frame')
    parser.add_argument('--scale', type=int, default=2, help='BEV pixels per voxel')
    parser.add_argument('--voxel-px', type=int, default=4, help='iso pixels per voxel edge')
    parser.add_argument('--no-shading', action='store_true', help='BEV without height shading')
    parser.add_argument('--fps', type=float, default=4.0)
    args = parser.parse_args(argv)
    sem, npz_voc = load_semantics(args.input)
    voc = get_vocabulary(args.vocabulary or npz_voc or 'occ3d_nuscenes')
    if sem.max() >= voc.num_classes:
        raise CLIError(f'labels go up to {sem.max()} but vocabulary {voc.name!r} has '
                       f'{voc.num_classes} classes; pass --vocabulary')
    if args.frame is not None:
        if not 0 <= args.frame < sem.shape[0]:
            raise CLIError(f'--frame {args.frame} outside [0, {sem.shape[0]})')
        sem = sem[args.frame:args.frame + 1]
    kw = dict(palette=voc.name, free_label=voc.free_label)
    if args.mode == 'bev':
        kw.update(scale=args.scale, height_shading=not args.no_shading)
    else:
        kw.update(voxel_px=args.voxel_px)
    frames = render_sequence(sem, args.mode, **kw)
    out = args.out or osp.splitext(args.input)[0] + f'_{args.mode}' + (
        '.png' if len(frames) == 1 else '.gif')
    if len(frames) == 1 and out.lower().endswith('.png'):
        save_png(frames[0], out)
    else:
        save_frames(frames, out, args.fps)
    print(f'wrote {out} ({len(frames)} frame(s), {args.mode}, vocabulary {voc.name})')
    return out


if __name__ == '__main__':
    main()
