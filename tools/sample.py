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
    ... [--sampler ddpm|ddim|dpmpp_2m|dpmpp_3m|unipc] [--steps N] [--cfg 4.0] [--num-samples N]
    # UniScene: a layout-conditioned scene, then its LiDAR sweep and six camera views
    python tools/sample.py CONFIG CKPT --task layout --input scene.npz --lidar \
        --cameras ../shared/data/real/nuscenes/keyframe_scene-0061/<info>.pkl

Input npz: ``semantics`` (T, X, Y, Z) class ids (or ``voxels``); ``layout`` (T, h, w) for the
layout task (and, for a layout-conditioned model, inpaint and single-frame); without a ``layout`` the layout task builds one from ``semantics`` with the
layout transform of the config's training pipeline (``UniSceneLayout`` / ``MakeLayout``).
Outputs (written atomically) in --out: ``sample_{i}.npz`` (``semantics`` uint8 (T, X, Y, Z)),
``sample_{i}_bev.png`` and ``sample_{i}.gif``; with ``--lidar`` / ``--cameras`` the sampled
occupancy goes straight to the sensor renderers (:func:`occworld4d.rendering.export_sensors`):
``sample_{i}_sensors/lidar/{t:03d}.bin`` (float32 x, y, z, label) and
``sample_{i}_sensors/cameras/{t:03d}/{CAM}_{semantic,depth}.png``. The grid lies over
``--pc-range`` (default: the config's ``pc_range``, else Occ3D's) with voxels of range / shape.
"""
import argparse
import os.path as osp

import numpy as np
from mmengine.registry import DefaultScope

import occworld4d  # noqa: E402,F401  (registries, compat fixes)
from occworld4d.apis.cli import (CLIError, KeyValueAction,  # noqa: E402
                                 add_trust_checkpoint_argument, apply_trust_checkpoint,
                                 check_checkpoint, checkpoint_errors, load_config)
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
    p.add_argument('--overlap', type=int,
                   help='frames shared by chained windows (default: 4 for HexPlane latents; for '
                   'token-grid latents the smallest overlap that keeps a latent time slice, '
                   'e.g. 16 for OccSora)')
    p.add_argument('--region', type=int, nargs='+', metavar='N',
                   help='inpainting box x0 x1 y0 y1 z0 z1 [t0 t1] (half-open voxel indices)')
    p.add_argument('--shift', type=int, nargs=2, metavar=('DX', 'DY'),
                   help='outpainting: voxels to extend the scene by along x / y (sign = side)')
    p.add_argument('--input', help='npz with "semantics" (T, X, Y, Z) and/or "layout" (T, h, w)')
    p.add_argument('--sampler', choices=['ddpm', 'ddim', 'dpmpp_2m', 'dpmpp_3m', 'unipc'])
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
    add_trust_checkpoint_argument(p)
    p.add_argument('--cfg-options', nargs='+', action=KeyValueAction,
                   help='override config keys, e.g. model.sample_cfg.num_steps=50')
    sensors = p.add_argument_group('sensors from the sampled occupancy')
    sensors.add_argument('--lidar', nargs='?', const='nuscenes_lidar_top', metavar='PRESET',
                         help='write a LiDAR sweep per frame (preset: nuscenes_lidar_top, or '
                         'another name of occworld4d.rendering.LIDAR_PRESETS)')
    sensors.add_argument('--cameras', metavar='PKL',
                         help='info pkl with camera calibrations (mmdet3d v1.1 or VAD-style): '
                         'write semantic + depth PNGs of every camera per frame')
    sensors.add_argument('--calib-index', type=int, default=0, help='frame of the --cameras pkl')
    sensors.add_argument('--camera-scale', type=float, default=0.25,
                         help='image scale (1 = 1600 x 900)')
    sensors.add_argument('--pc-range', type=float, nargs=6, metavar='M',
                         help='x0 y0 z0 x1 y1 z1 of the grid (default: config pc_range / Occ3D)')
    sensors.add_argument('--sensor-device', help='device of the renderers (default: --device)')
    return p.parse_args(argv)


def layout_from_voxels(cfg, voxels):
    """A layout (T, h, w) from a scene (T, X, Y, Z) with the layout transform of the config's
    training pipeline, so it matches what the model was trained on."""
    from occworld4d.registry import TRANSFORMS
    pipeline = (cfg.get('train_dataloader') or {}).get('dataset', {}).get('pipeline', [])
    specs = [t for t in pipeline if isinstance(t, dict)
             and t.get('type') in ('UniSceneLayout', 'MakeLayout')]
    if not specs:
        raise CLIError('--task layout: the input npz has no "layout" and the config\'s training '
                       'pipeline has no layout transform (UniSceneLayout / MakeLayout) to build '
                       'one from its "semantics"')
    spec = dict(specs[0])
    if spec['type'] == 'UniSceneLayout' and spec.get('source', 'occupancy') != 'occupancy':
        # the training layouts came from boxes; from a bare scene, the occupancy is the source
        spec = dict(spec, source='occupancy', map_from_occupancy=())
    vocabulary = cfg.get('vocabulary')
    if vocabulary is None:
        raise CLIError('--task layout: the config names no "vocabulary" to read the scene with')
    window = dict(semantics=np.asarray(voxels).astype(np.uint8), vocabulary=vocabulary)
    with DefaultScope.overwrite_default_scope('occworld4d'):
        transform = TRANSFORMS.build(spec)
    return transform(window)['layout']


def render_sensors(cfg, args, semantics):
    """LiDAR points / camera PNGs of every sample next to it; returns the counts."""
    import torch

    from occworld4d.rendering import (CameraRenderer, GridGeometry, LidarSensor, LidarSimulator,
                                      export_sensors, load_cameras)
    from occworld4d.rendering.palette import get_palette
    from occworld4d.rendering.raycast import OCC3D_PC_RANGE
    sem = np.asarray(semantics)  # (N, T, X, Y, Z)
    pc_range = tuple(float(v) for v in (args.pc_range or cfg.get('pc_range') or OCC3D_PC_RANGE))
    if len(pc_range) != 6 or any(pc_range[a + 3] <= pc_range[a] for a in range(3)):
        raise CLIError(f'--pc-range / config pc_range must be x0 y0 z0 x1 y1 z1 with x0 < x1 '
                       f'...; got {pc_range}')
    shape = sem.shape[2:]
    geometry = GridGeometry(pc_range, tuple((pc_range[a + 3] - pc_range[a]) / shape[a]
                                            for a in range(3)))
    free = int(cfg.get('free_label', 0))
    simulator = None
    if args.lidar:
        try:
            sensor = LidarSensor.preset(args.lidar)
        except KeyError as err:
            raise CLIError(f'--lidar: {err.args[0]}') from err
        simulator = LidarSimulator(sensor, geometry, free_label=free, seed=args.seed)
    cameras, palette = {}, None
    if args.cameras:
        if not osp.isfile(args.cameras):
            raise CLIError(f'--cameras {args.cameras!r} does not exist')
        try:
            cameras = load_cameras(args.cameras, args.calib_index, args.camera_scale)
        except (KeyError, IndexError) as err:
            raise CLIError(f'--cameras {args.cameras}: {err}') from err
        vocabulary = cfg.get('vis_palette') or cfg.get('vocabulary')
        if vocabulary is None:
            raise CLIError('--cameras: the config names no vocabulary / vis_palette for colours')
        palette = get_palette(vocabulary)
    renderer = CameraRenderer(geometry, free_label=free)
    device = torch.device(args.sensor_device or args.device)
    totals = dict(points=0, images=0)
    for i, s in enumerate(sem):
        stats = export_sensors(s, osp.join(args.out, f'sample_{i}_sensors'), simulator,
                               renderer, cameras, palette, device=device)
        totals['points'] += stats['points']
        totals['images'] += stats['images']
    return totals


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
    apply_trust_checkpoint(args, cfg)
    try:
        model = load_generator(cfg, args.checkpoint, args.device)
    except (CheckpointMismatchError,) + checkpoint_errors() as err:
        raise CLIError(str(err)) from err
    inf = OccGenerationInferencer(model, palette=cfg.get('vis_palette'),
                                  free_label=cfg.get('free_label', 0))
    voxels = layout = None
    if args.input:
        voxels, layout = read_input(args.input)
    if args.task == 'layout' and layout is None and voxels is not None:
        layout = layout_from_voxels(cfg, voxels if voxels.ndim == 4 else voxels[None])
    if args.task == 'layout' and layout is None:
        raise CLIError('--task layout needs --input NPZ with a "layout" (T, h, w) array or a '
                       'scene "semantics" (T, X, Y, Z) to build it from')
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
    # A layout-conditioned model also takes the input's layout where the output covers the
    # input's extent in space and time (inpaint, single-frame); continuation / long sequences /
    # outpainting generate frames or areas that the input's layout does not describe.
    use_layout = args.task == 'layout' or (
        args.task in ('inpaint', 'single-frame')
        and 'layout' in getattr(model, 'condition_keys', ()))
    kwargs = dict(num_samples=args.num_samples, seed=args.seed, command=args.command,
                  trajectory=args.trajectory, layout=layout if use_layout else None,
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
    if args.lidar or args.cameras:
        stats = render_sensors(cfg, args, result['semantics'])
        print(f'sensors: {stats["points"]} LiDAR points, {stats["images"]} camera PNGs -> '
              f'{osp.abspath(args.out)}/sample_*_sensors')


if __name__ == '__main__':
    main()
