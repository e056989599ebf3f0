"""Sample 4D occupancy with a trained latent-diffusion generator.

Examples:
    python tools/sample.py CONFIG CKPT --task uncond --seed 0 --out outputs/uncond
    python tools/sample.py CONFIG CKPT --task command --command LEFT
    python tools/sample.py CONFIG CKPT --task trajectory --trajectory left      # or a .npy/.txt
    python tools/sample.py CONFIG CKPT --task layout --input scene.npz          # key 'layout'
    python tools/sample.py CONFIG CKPT --task continue --input scene.npz
    python tools/sample.py CONFIG CKPT --task long --num-frames 128
    python tools/sample.py CONFIG CKPT --task inpaint --input scene.npz --region 32 96 32 96 0 8
    python tools/sample.py CONFIG CKPT --task outpaint --input scene.npz --shift 64 0
    python tools/sample.py CONFIG CKPT --task single-frame --input scene.npz
    ... [--sampler ddpm|ddim|dpmpp_2m] [--steps N] [--cfg 4.0] [--num-samples N]

Input npz: ``semantics`` (T, X, Y, Z) class ids (or ``voxels``); ``layout`` (T, h, w) for the
layout task. Outputs (written atomically) in --out: ``sample_{i}.npz`` (``semantics`` uint8
(T, X, Y, Z)), ``sample_{i}_bev.png`` and ``sample_{i}.gif``.
"""
import argparse
import os.path as osp

import numpy as np


import occworld4d  # noqa: E402,F401  (registries, compat fixes)
from occworld4d.apis.cli import CLIError, DictAction, check_checkpoint, load_config  # noqa: E402
from occworld4d.apis.inferencer import (TASKS, CheckpointMismatchError,  # noqa: E402
                                        OccGenerationInferencer, load_generator)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Sample 4D occupancy with a generator')
    p.add_argument('config', help='config file path')
    p.add_argument('checkpoint', help='checkpoint of the generator (EMA weights with EMAHook)')
    p.add_argument('--task', choices=TASKS, default='uncond')
    p.add_argument('--command', help='STATIC | FORWARD | LEFT | RIGHT (or 0-3)')
    p.add_argument('--trajectory', help='a .npy / .txt (T, 3) file or a preset: straight, '
                   'left, right, stop, accelerate')
    p.add_argument('--num-frames', type=int, help='frames of long / continue outputs (e.g. 128)')
    p.add_argument('--overlap', type=int, default=4, help='frames shared by chained windows')
    p.add_argument('--region', type=int, nargs='+', metavar='N',
                   help='inpainting box x0 x1 y0 y1 z0 z1 [t0 t1] (half-open voxel indices)')
    p.add_argument('--shift', type=int, nargs=2, metavar=('DX', 'DY'),
                   help='outpainting: voxels to extend the scene by along x / y (sign = side)')
    p.add_argument('--input', help='npz with "semantics" (T, X, Y, Z) and/or "layout" (T, h, w)')
    p.add_argument('--sampler', choices=['ddpm', 'ddim', 'dpmpp_2m'])
    p.add_argument('--steps', type=int, help='sampling steps (default: the config / all)')
    p.add_argument('--cfg', type=float, help='classifier-free guidance scale (default: config)')
    p.add_argument('--resample-jumps', type=int, default=1,
                   help='RePaint resampling passes for inpaint / outpaint / continuation '
                   '(1 = none)')
    p.add_argument('--num-samples', type=int, default=1)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--device', default='cpu')
    p.add_argument('--out', default='outputs/sample', help='output folder')
    p.add_argument('--no-render', action='store_true', help='write npz only')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config keys, e.g. model.sample_cfg.num_steps=50')
    return p.parse_args(argv)


def read_input(path):
    if not osp.isfile(path):
        raise CLIError(f'--input {path!r} does not exist')
    data = np.load(path)
    voxels = next((data[k] for k in ('semantics', 'voxels') if k in data), None)
    layout = data['layout'] if 'layout' in data else None
    if voxels is not None and voxels.ndim not in (3, 4):
        raise CLIError(f'{path}: "semantics" must be (T, X, Y, Z) or (X, Y, Z), found shape '
                       f'{voxels.shape}')
    return voxels, layout


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    check_checkpoint(args.checkpoint)
    try:
        model = load_generator(cfg, args.checkpoint, args.device)
    except CheckpointMismatchError as err:
        raise CLIError(str(err)) from err
    inf = OccGenerationInferencer(model, palette=cfg.get('vis_palette'),
                                  free_label=cfg.get('free_label', 0))
    voxels = layout = None
    if args.input:
        voxels, layout = read_input(args.input)
    if args.task == 'layout' and layout is None:
        raise CLIError('--task layout needs --input NPZ with a "layout" (T, h, w) array')
    if args.task in ('continue', 'inpaint', 'outpaint', 'single-frame') and voxels is None:
        raise CLIError(f'--task {args.task} needs --input NPZ with "semantics" (T, X, Y, Z)')
    if args.task == 'command' and args.command is None:
        raise CLIError('--task command needs --command (STATIC, FORWARD, LEFT or RIGHT)')
    if args.task == 'trajectory' and args.trajectory is None:
        raise CLIError('--task trajectory needs --trajectory FILE or PRESET')
    if args.task == 'inpaint' and (args.region is None or len(args.region) not in (6, 8)):
        raise CLIError('--task inpaint needs --region x0 x1 y0 y1 z0 z1 [t0 t1]')
    if args.task == 'outpaint' and args.shift is None:
        raise CLIError('--task outpaint needs --shift DX DY')
    kwargs = dict(num_samples=args.num_samples, seed=args.seed, command=args.command,
                  trajectory=args.trajectory, layout=layout if args.task == 'layout' else None,
                  voxels=voxels, region=args.region, shift=args.shift or (0, 0),
                  num_frames=args.num_frames, overlap=args.overlap)
    if args.resample_jumps > 1:
        kwargs['resample_jumps'] = args.resample_jumps
    for key, value in (('sampler', args.sampler), ('num_steps', args.steps),
                       ('guidance_scale', args.cfg)):
        if value is not None:
            kwargs[key] = value
    try:
        result = inf(args.task, **kwargs)
    except (ValueError, NotImplementedError) as err:
        raise CLIError(f'{args.task}: {err}') from err
    paths = inf.save(result, args.out, render=not args.no_render)
    print(f'{args.task}: {result["semantics"].shape[0]} sample(s) of shape '
          f'{result["semantics"].shape[1:]} -> {osp.abspath(args.out)} ({len(paths)} files)')


if __name__ == '__main__':
    main()
