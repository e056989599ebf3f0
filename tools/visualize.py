"""Render an npz of semantic voxels to pictures (PNG / GIF / MP4) or an interactive HTML view.

The npz holds ``semantics`` or ``pred_semantics`` (or the only 3-D / 4-D array), shaped
(T, X, Y, Z) or (X, Y, Z). Every picture has a legend of the class names and colours, a
scale bar in metres, the ego marker (position and heading), the frame index and the time.
What the npz records is used: ``vocabulary`` (colours and names; ``--vocabulary`` wins;
else the recorded ``class_names`` / ``free_label``, colours by name; without any of them
occ3d_nuscenes is assumed with a warning), ``voxel_size`` /
``pc_range`` (the scale bar and ego position; else the vocabulary's dataset grid),
``frame_rate`` (Hz: the time of each frame and the GIF / MP4 speed) and ``trajectory``
(T, 3) (the ego's future path drawn from each frame).

One frame -> PNG; several -> GIF (or .mp4, or a .png strip). ``--compare GT.npz`` draws
GT | sample | difference per frame (reconstruction and forecasting). ``--html`` writes
one self-contained HTML file (no network needed) to orbit the scene, scrub time with a
slider and toggle classes in the legend.

Examples:
    python tools/visualize.py labels.npz --out bev.png
    python tools/visualize.py sample.npz --mode iso --out s.gif
    python tools/visualize.py sample.npz --compare gt.npz --out cmp.mp4
    python tools/visualize.py sample.npz --html scene.html
"""
import argparse
import os.path as osp
import sys
from typing import Optional

import numpy as np

from occworld4d.apis.cli import CLIError
from occworld4d.structures import VOCABULARIES, get_vocabulary
from occworld4d.visualization import save_frames, save_png
from occworld4d.visualization.figure import scene_frames, scene_info, unnamed_vocabulary
from occworld4d.visualization.html import write_scene_html

KEYS = ('semantics', 'pred_semantics', 'gt_semantics')
META = ('vocabulary', 'voxel_size', 'pc_range', 'frame_rate', 'trajectory', 'class_names',
        'free_label')
DEFAULT_VOCABULARY = 'occ3d_nuscenes'


def load_npz(path: str, keys=KEYS):
    """(T, X, Y, Z) integer array and the npz's recorded metadata (dict of META keys)."""
    if not osp.isfile(path):
        raise CLIError(f'input {path!r} does not exist')
    meta = {}
    try:
        with np.load(path, allow_pickle=False) as data:
            key = next((k for k in keys if k in data.files), None)
            if key is None:
                arrays = [k for k in data.files if data[k].ndim in (3, 4)]
                if len(arrays) != 1:
                    raise CLIError(f'{path!r} has no key {"/".join(keys)} (keys: {data.files})')
                key = arrays[0]
            sem = data[key]
            for k in META:
                if k in data.files:
                    meta[k] = data[k]
            if 'frame_rate' not in meta and 'fps' in data.files:
                meta['frame_rate'] = data['fps']
    except CLIError:
        raise
    except Exception as err:  # truncated / corrupt archive: zipfile, zlib, EOF, ValueError
        raise CLIError(f'{path!r}: not a readable npz archive ({type(err).__name__}: {err}); '
                       f'expected an npz with {"/".join(keys)}') from err
    if sem.ndim == 3:
        sem = sem[None]
    if sem.ndim != 4 or not np.issubdtype(sem.dtype, np.integer):
        raise CLIError(f'{path!r}[{key!r}] must be integer (T, X, Y, Z) or (X, Y, Z); got '
                       f'{sem.dtype} {sem.shape}')
    if 'vocabulary' in meta:
        meta['vocabulary'] = str(meta['vocabulary'])
    return sem, meta


def load_semantics(path: str):
    """(T, X, Y, Z) integer array and the npz's vocabulary (or None)."""
    sem, meta = load_npz(path)
    return sem, meta.get('vocabulary')


def pick_vocabulary(flag, recorded, path: str, meta: Optional[dict] = None):
    """--vocabulary wins; else the npz's ``vocabulary``; else its ``class_names`` (the known
    vocabulary with those names, or one made of them); else the default, with a warning.
    Returns a :class:`~occworld4d.structures.Vocabulary`."""
    meta = meta or {}
    names = meta.get('class_names')
    if flag:
        if recorded and recorded != flag:
            print(f'note: --vocabulary {flag} overrides the vocabulary {recorded!r} recorded '
                  f'in {path}', file=sys.stderr)
        return get_vocabulary(flag)
    if recorded:
        if recorded in VOCABULARIES:
            return get_vocabulary(recorded)
        if names is None:
            raise CLIError(f'{path!r} records vocabulary {recorded!r}, which is not one of '
                           f'{sorted(VOCABULARIES)}; pass --vocabulary')
    if names is not None:
        names = tuple(str(n) for n in np.asarray(names).ravel())
        free = meta.get('free_label')
        free = int(free) if free is not None else len(names) - 1
        same = [v for v in VOCABULARIES.values() if v.classes == names and v.free_label == free]
        if same:
            return same[0]
        try:
            return unnamed_vocabulary(len(names), free, names, recorded)
        except ValueError as err:
            raise CLIError(f'{path!r}: class_names / free_label: {err}') from err
    print(f'warning: {path} records no "vocabulary"; assuming {DEFAULT_VOCABULARY} '
          '(pass --vocabulary to choose the colours and class names)', file=sys.stderr)
    return get_vocabulary(DEFAULT_VOCABULARY)


def parse_args(argv=None):
    fmt = argparse.ArgumentDefaultsHelpFormatter
    p = argparse.ArgumentParser(description='Render semantic occupancy to pictures or an '
                                'interactive HTML view', formatter_class=fmt)
    p.add_argument('input', help='npz with semantics (T, X, Y, Z) or (X, Y, Z)')
    p.add_argument('--out', help='output .png / .gif / .mp4 (default: beside the input, '
                   'unless only --html is asked for)')
    p.add_argument('--mode', choices=('bev', 'iso'), default='bev')
    p.add_argument('--vocabulary', choices=sorted(VOCABULARIES),
                   help='class names and colours (default: the npz\'s "vocabulary")')
    p.add_argument('--compare', metavar='GT_NPZ',
                   help='ground truth npz: draw GT | sample | difference per frame')
    p.add_argument('--gt-offset', type=int,
                   help='GT frame of the sample\'s frame 0 (default 0 when the lengths match, '
                   'else the sample is aligned to the last GT frames, as a forecast)')
    p.add_argument('--frame', type=int, help='render only this frame')
    p.add_argument('--scale', type=int, help='BEV pixels per voxel (default: reach --min-size)')
    p.add_argument('--voxel-px', type=int,
                   help='iso pixels per voxel edge (default: reach --min-size)')
    p.add_argument('--min-size', type=int, default=512, help='smallest panel side, pixels')
    p.add_argument('--no-shading', action='store_true', help='BEV without height shading')
    p.add_argument('--voxel-size', type=float, nargs=3, metavar=('VX', 'VY', 'VZ'),
                   help='metres per voxel (default: the npz\'s, else the vocabulary\'s '
                   'dataset grid)')
    p.add_argument('--fps', type=float,
                   help='GIF / MP4 frames per second (default: the npz\'s frame_rate, else 4)')
    p.add_argument('--html', metavar='HTML',
                   help='also write an interactive 3D view (one self-contained .html file)')
    p.add_argument('--max-html-voxels', type=int, default=400_000,
                   help='HTML: keep at most this many surface voxels over all frames (frames '
                   'are subsampled in time beyond it)')
    return p.parse_args(argv)


def _align(sem, gt, offset, path):
    T, Tg = sem.shape[0], gt.shape[0]
    if sem.shape[1:] != gt.shape[1:]:
        raise CLIError(f'--compare {path!r}: GT grid {gt.shape[1:]} differs from the '
                       f'sample\'s {sem.shape[1:]}')
    if offset is None:
        if T > Tg:
            raise CLIError(f'--compare {path!r}: the sample has {T} frames, GT only {Tg}')
        offset = Tg - T
        if offset:
            print(f'note: the sample\'s {T} frames are compared with GT frames {offset}..'
                  f'{Tg - 1} (a forecast after {offset} history frames; --gt-offset to '
                  'change)', file=sys.stderr)
    if not 0 <= offset <= Tg - T:
        raise CLIError(f'--gt-offset {offset}: GT has {Tg} frames, the sample {T}; expected '
                       f'0..{Tg - T}')
    return gt[offset:offset + T], offset


def main(argv=None) -> str:
    args = parse_args(argv)
    sem, meta = load_npz(args.input)
    voc = pick_vocabulary(args.vocabulary, meta.get('vocabulary'), args.input, meta)
    if sem.max() >= voc.num_classes or sem.min() < 0:
        raise CLIError(f'{args.input}: labels span [{sem.min()}, {sem.max()}] but vocabulary '
                       f'{voc.name!r} has {voc.num_classes} classes; pass --vocabulary')
    gt, first = None, 0
    if args.compare:
        gt_all, gt_meta = load_npz(args.compare, ('semantics', 'gt_semantics', 'voxels'))
        if gt_meta.get('vocabulary') and gt_meta['vocabulary'] != voc.name:
            raise CLIError(f'--compare {args.compare!r} records vocabulary '
                           f'{gt_meta["vocabulary"]!r}, the sample is drawn in {voc.name!r}')
        if gt_all.max() >= voc.num_classes:
            raise CLIError(f'--compare {args.compare!r}: labels go up to {gt_all.max()}, '
                           f'beyond vocabulary {voc.name!r}')
        gt, first = _align(sem, gt_all, args.gt_offset, args.compare)
        for k in META[1:]:
            meta.setdefault(k, gt_meta.get(k))
    traj = meta.get('trajectory')
    if traj is not None and (traj.ndim != 2 or traj.shape[0] < sem.shape[0]):
        traj = None  # a trajectory of another length than the frames: not drawn
    if traj is not None:
        traj = traj[first:first + sem.shape[0]] if len(traj) >= first + sem.shape[0] else \
            traj[:sem.shape[0]]
    try:
        info = scene_info(voc, sem.shape[1:], meta.get('pc_range'),
                          args.voxel_size or meta.get('voxel_size'), meta.get('frame_rate'),
                          traj, first)
    except ValueError as err:
        raise CLIError(f'{args.input}: {err}') from err
    for note in info.notes:
        print(f'note: {note}; pass --voxel-size for the right scale bar', file=sys.stderr)
    if args.frame is not None:
        if not 0 <= args.frame < sem.shape[0]:
            raise CLIError(f'--frame {args.frame} outside [0, {sem.shape[0]})')
        sem = sem[args.frame:args.frame + 1]
        gt = None if gt is None else gt[args.frame:args.frame + 1]
        info.first_frame += args.frame
        if info.trajectory is not None:
            info.trajectory = info.trajectory[args.frame:]
    written = None
    if args.html:
        stats = write_scene_html(sem, info, args.html, max_voxels=args.max_html_voxels,
                                 title=osp.basename(args.input))
        print(f'wrote {args.html} ({stats["frames"]} frame(s), {stats["voxels"]} surface '
              f'voxels, {stats["bytes"] / 1e6:.1f} MB, vocabulary {voc.name})')
        written = args.html
        if not args.out:
            return written
    scale = args.scale if args.mode == 'bev' else args.voxel_px
    frames = scene_frames(sem, info, args.mode, gt=gt, scale=scale, min_size=args.min_size,
                          height_shading=not args.no_shading,
                          title=osp.basename(args.input))
    tag = f'_compare_{args.mode}' if gt is not None else f'_{args.mode}'
    out = args.out or osp.splitext(args.input)[0] + tag + (
        '.png' if len(frames) == 1 else '.gif')
    fps = args.fps or info.frame_rate or 4.0
    try:
        if len(frames) == 1 and out.lower().endswith('.png'):
            save_png(frames[0], out)
        else:
            save_frames(frames, out, fps)
    except (ValueError, ImportError) as err:
        raise CLIError(f'--out {out!r}: {err}') from err
    print(f'wrote {out} ({len(frames)} frame(s), {args.mode}, vocabulary {voc.name}, '
          f'{frames[0].shape[1]}x{frames[0].shape[0]} px)')
    return out


if __name__ == '__main__':
    main()
