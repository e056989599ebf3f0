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
    # OccWorld (and the forecasting baselines, CKPT = none): the future of a scene
    python tools/sample.py OCCWORLD_CONFIG WORK_DIR --task forecast --input scene.npz
    ... [--sampler ddpm|ddim|dpmpp_2m|dpmpp_3m|unipc] [--steps N] [--cfg 4.0] [--num-samples N]
    # several processes (CPU: gloo; one GPU a rank with CUDA), the same files as one process
    # with the same --seed / --batch-size (docs/reliability.md, section 10)
    torchrun --nproc_per_node 2 tools/sample.py CONFIG CKPT --num-samples 8 --launcher pytorch
    # UniScene: a layout-conditioned scene, then its LiDAR sweep and six camera views
    python tools/sample.py CONFIG CKPT --task layout --input scene.npz --lidar \
        --cameras nuscenes   # the preset six-camera rig, or an info .pkl with calibrations

CKPT may be a checkpoint file or a work dir (its latest checkpoint: ``last_checkpoint``'s
target, else the newest .pth; the choice is logged). A model that cannot run --task gets one
line naming the tasks it can run (forecasters: forecast; generators: by their conditions).

Input npz: ``semantics`` (T, X, Y, Z) class ids (or ``voxels``); ``layout`` (T, h, w) for the
layout task (and, for a layout-conditioned model, inpaint and single-frame); without a
``layout`` the layout task builds one from ``semantics`` with the
layout transform of the config's training pipeline (``UniSceneLayout`` / ``MakeLayout``).
Forecast input npz (``tools/dataset_converters/export_scene.py`` writes one): ``semantics``
(H or H + F frames), optional ``trajectory`` (T, 3), ``command``, ``ego_poses`` (T, 4, 4);
output ``forecast.npz`` (``semantics`` (F, X, Y, Z) future frames, ``history``,
``pred_trajectory`` (F, 2) planned ego positions in metres from the last history frame, with
``gt_semantics`` / ``gt_trajectory`` when the input holds the future), ``forecast_trajectory.txt``,
``forecast_bev.png`` (last history frame with the planned path), ``forecast.gif``
(history then forecast) and, with the future in the input, ``forecast_compare.gif`` (GT |
forecast | difference).
Outputs (written atomically) in --out: ``sample_{i}.npz`` (``semantics`` uint8 (T, X, Y, Z)),
``sample_{i}_bev.png`` (``_iso.png`` with ``--view iso``) and ``sample_{i}.gif``. Every
picture is drawn by tools/visualize.py's renderer (legend, scale bar, ego marker, frame index
and time); every npz records the ``vocabulary``, ``class_names``, ``free_label``,
``pc_range``, ``voxel_size`` and ``frame_rate`` known from the config, so tools/visualize.py
draws it without the config (docs/visualization.md); with ``--lidar`` / ``--cameras`` the
sampled
occupancy goes straight to the sensor renderers (:func:`occworld4d.rendering.export_sensors`):
``sample_{i}_sensors/lidar/{t:03d}.bin`` (float32 x, y, z, label) and
``sample_{i}_sensors/cameras/{t:03d}/{CAM}_{semantic,depth}.png``. The grid lies over
``--pc-range`` (default: the config's ``pc_range``, else Occ3D's) with voxels of range / shape.
"""
import argparse
import os
import os.path as osp

import numpy as np
import torch
import torch.distributed as torch_dist

import occworld4d  # noqa: E402,F401  (registries, compat fixes)
from occworld4d.apis import generation as G  # noqa: E402
from occworld4d.apis.cli import (CLIError, HelpFormatter, KeyValueAction,  # noqa: E402
                                 add_device_argument, add_trust_checkpoint_argument,
                                 apply_trust_checkpoint, checkpoint_errors, load_config,
                                 resolve_checkpoint_arg, resolve_device)
from occworld4d.apis.inferencer import (TASKS, CheckpointMismatchError,  # noqa: E402
                                        OccGenerationInferencer, autocast_context,
                                        config_picture_meta, load_generator)
from occworld4d.apis.launcher import sample_batches, setup_sampling  # noqa: E402
from occworld4d.rendering import (CAMERA_RIGS, CameraRenderer, GridGeometry,  # noqa: E402
                                  LidarSensor, LidarSimulator, export_sensors, load_cameras)
from occworld4d.rendering.palette import get_palette  # noqa: E402
from occworld4d.rendering.raycast import OCC3D_PC_RANGE  # noqa: E402
from occworld4d.utils import atomic_path, save_npz_atomic  # noqa: E402
from occworld4d.visualization import (draw_frame, info_from_meta, picture_meta,  # noqa: E402
                                      save_gif, save_png, scene_frames)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Sample 4D occupancy with a generator, or forecast '
                                'a scene with a world model', formatter_class=HelpFormatter)
    p.add_argument('config', help='config file path')
    p.add_argument('checkpoint', help='checkpoint of the model (EMA weights with EMAHook), a '
                   'work dir (its latest checkpoint), or "none" for a parameter-free '
                   'forecasting baseline')
    p.add_argument('--task', choices=TASKS + G.FORECAST_TASKS, default='uncond',
                   help='forecast: world models (OccWorld) and forecasting baselines')
    p.add_argument('--command', help='STATIC | FORWARD | LEFT | RIGHT (or 0-3); forecast: '
                   'overrides the input\'s command')
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
    p.add_argument('--input', help='npz with "semantics" (T, X, Y, Z) and/or "layout" (T, h, w); '
                   'forecast: also "trajectory", "command", "ego_poses" (export_scene.py)')
    p.add_argument('--sampler', choices=['ddpm', 'ddim', 'dpmpp_2m', 'dpmpp_3m', 'unipc'])
    p.add_argument('--steps', type=int, help='sampling steps (default: the config / all)')
    p.add_argument('--cfg', type=float, help='classifier-free guidance scale (default: config)')
    p.add_argument('--resample-jumps', type=int, default=1,
                   help='RePaint resampling passes for inpaint / outpaint / continuation '
                   '(1 = none)')
    p.add_argument('--amp', action='store_true',
                   help='bf16 autocast of the networks (denoiser, decoder, world model); the '
                   'sampler arithmetic stays fp32. A fast path on GPUs and on CPUs with AMX; '
                   'a slowdown on AVX2-only CPUs (docs/benchmarks.md)')
    p.add_argument('--num-samples', type=int, default=1)
    p.add_argument('--seed', type=int, default=0,
                   help='batch b of --batch-size samples is drawn with seed SEED + b')
    p.add_argument('--batch-size', type=int,
                   help='samples drawn together (default: all of --num-samples, split evenly '
                   'over the processes of --launcher); the files depend on --seed and '
                   '--batch-size only, not on the number of processes')
    p.add_argument('--launcher', choices=['none', 'pytorch'], default='none',
                   help='pytorch: under torchrun, each rank draws its share of the batches '
                   '(torchrun --nproc_per_node N tools/sample.py ... --launcher pytorch)')
    add_device_argument(p)
    p.add_argument('--no-progress', action='store_true',
                   help='no progress bar over the sampling / forecasting steps')
    p.add_argument('--out', default='outputs/sample', help='output folder')
    p.add_argument('--no-render', action='store_true', help='write npz only')
    p.add_argument('--view', choices=('bev', 'iso'), default='bev',
                   help='picture view: bird\'s-eye (sample_{i}_bev.png) or isometric '
                   '(sample_{i}_iso.png); both with legend, scale bar, ego, frame and time')
    add_trust_checkpoint_argument(p)
    p.add_argument('--cfg-options', nargs='+', action=KeyValueAction,
                   help='override config keys, e.g. model.sample_cfg.num_steps=50')
    sensors = p.add_argument_group('sensors from the sampled occupancy')
    sensors.add_argument('--lidar', nargs='?', const='nuscenes_lidar_top', metavar='PRESET',
                         help='write a LiDAR sweep per frame (preset: nuscenes_lidar_top, or '
                         'another name of occworld4d.rendering.LIDAR_PRESETS)')
    sensors.add_argument('--cameras', metavar='RIG_OR_PKL',
                         help='a preset rig (nuscenes: six nuScenes-like cameras, no file '
                         'needed) or an info pkl with camera calibrations (mmdet3d v1.1 or '
                         'VAD-style): write semantic + depth PNGs of every camera per frame')
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
    try:
        return G.layout_from_scene(cfg, voxels)
    except ValueError as err:
        raise CLIError(f'--task layout: the input npz has no usable "layout" and {err}') from err


def render_sensors(cfg, args, semantics, first_index=0, seed=None):
    """LiDAR points / camera PNGs of every sample next to it; returns the counts."""
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
        simulator = LidarSimulator(sensor, geometry, free_label=free,
                                   seed=args.seed if seed is None else seed)
    cameras, palette = {}, None
    if args.cameras:
        if args.cameras not in CAMERA_RIGS and not osp.isfile(args.cameras):
            raise CLIError(f'--cameras {args.cameras!r}: no such file and not a preset rig '
                           f'({", ".join(CAMERA_RIGS)})')
        try:
            cameras = load_cameras(args.cameras, args.calib_index, args.camera_scale)
        except (KeyError, IndexError) as err:
            raise CLIError(f'--cameras {args.cameras}: {err}') from err
        vocabulary = cfg.get('vis_palette') or cfg.get('vocabulary')
        if vocabulary is None:
            raise CLIError('--cameras: the config names no vocabulary / vis_palette for colours')
        palette = get_palette(vocabulary)
    renderer = CameraRenderer(geometry, free_label=free)
    device = torch.device(resolve_device(args.sensor_device or args.device))
    totals = dict(points=0, images=0)
    for i, s in enumerate(sem, first_index):
        stats = export_sensors(s, osp.join(args.out, f'sample_{i}_sensors'), simulator,
                               renderer, cameras, palette, device=device)
        totals['points'] += stats['points']
        totals['images'] += stats['images']
    return totals


def read_input(path, cfg=None):
    """Scene voxels and layout of an input npz. A layout recorded with its ``layout_spec``
    (export_scene.py) that another config made (a different layout transform) is rebuilt
    from the scene with this config's transform, so layouts move between configs of the same
    ``vocabulary``; a scene of another vocabulary is refused."""
    if not osp.isfile(path):
        raise CLIError(f'--input {path!r} does not exist')
    data = np.load(path)
    voxels = next((data[k] for k in ('semantics', 'voxels') if k in data), None)
    layout = data['layout'] if 'layout' in data else None
    if voxels is not None and voxels.ndim not in (3, 4):
        raise CLIError(f'{path}: "semantics" must be (T, X, Y, Z) or (X, Y, Z), found shape '
                       f'{voxels.shape}')
    voc = cfg.get('vocabulary') if cfg is not None else None
    if 'vocabulary' in data and voc and str(data['vocabulary']) != voc:
        raise CLIError(f'{path}: the scene is in vocabulary {str(data["vocabulary"])!r}, the '
                       f'config in {voc!r}; export it with a config of vocabulary {voc!r}')
    if layout is not None and 'layout_spec' in data and cfg is not None:
        mine = G.layout_spec_key(G.layout_transform_spec(cfg))
        if str(data['layout_spec']) != mine:
            if voxels is None:
                raise CLIError(f'{path}: its layout was made by another layout transform '
                               f'({str(data["layout_spec"]) or "none"}) than the config\'s '
                               f'({mine or "none"}) and the npz has no "semantics" to rebuild it')
            layout = None
            if mine:
                layout = layout_from_voxels(cfg, voxels if voxels.ndim == 4 else voxels[None])
                print(f'{path}: layout rebuilt from "semantics" with this config\'s layout '
                      'transform (the npz\'s was made by another config)')
    return voxels, layout


def npz_meta(cfg, grid_shape) -> dict:
    """What every npz of this tool records besides the arrays, so that tools/visualize.py
    draws it without the config: the config's ``vocabulary`` (name = palette name),
    ``class_names``, ``free_label``, the grid's ``pc_range`` and ``voxel_size`` (range /
    ``grid_shape``) and ``frame_rate`` when known (:func:`config_picture_meta`)."""
    return config_picture_meta(cfg, grid_shape)


def load_model(cfg, args):
    """The model of the config with the checkpoint (a file, a work dir, or ``none`` for a
    parameter-free forecasting baseline) on the device, in eval mode."""
    device = resolve_device(args.device)
    ckpt = args.checkpoint
    if ckpt.lower() == 'none':
        model = load_generator(cfg, None, device)
        if model.state_dict():
            raise CLIError(f'checkpoint "none" is only for models without parameters (the '
                           f'forecasting baselines); {type(model).__name__} of {args.config} '
                           'has parameters: pass its checkpoint file or work dir')
        return model
    ckpt = resolve_checkpoint_arg(ckpt)
    try:
        return load_generator(cfg, ckpt, device)
    except (CheckpointMismatchError,) + checkpoint_errors() as err:
        raise CLIError(str(err)) from err


def read_scene(path: str) -> dict:
    """The arrays of a forecast input npz (export_scene.py): semantics and optional ego data."""
    if not osp.isfile(path):
        raise CLIError(f'--input {path!r} does not exist')
    with np.load(path) as data:
        if 'semantics' not in data.files:
            raise CLIError(f'{path}: no "semantics" (T, X, Y, Z) array; found keys '
                           f'{sorted(data.files)} (tools/dataset_converters/export_scene.py '
                           'writes a scene npz)')
        scene = {k: np.asarray(data[k]) for k in ('semantics', 'trajectory', 'command',
                                                  'ego_poses', 'vocabulary', 'free_label',
                                                  'pc_range', 'voxel_size') if k in data.files}
    if scene['semantics'].ndim != 4:
        raise CLIError(f'{path}: "semantics" must be (T, X, Y, Z), found shape '
                       f'{scene["semantics"].shape}')
    return scene


def run_forecast(cfg, args, model):
    """--task forecast: the future frames, the planned trajectory and the pictures."""
    if not args.input:
        raise CLIError('--task forecast needs --input NPZ with "semantics" (T, X, Y, Z) '
                       f'(T = {model.history_frames} history frames, or + '
                       f'{model.future_frames} future frames to compare with); '
                       'tools/dataset_converters/export_scene.py writes one')
    scene = read_scene(args.input)
    voc = cfg.get('vocabulary')
    if 'vocabulary' in scene and voc and str(scene['vocabulary']) != voc:
        raise CLIError(f'{args.input}: the scene is in vocabulary {str(scene["vocabulary"])!r}, '
                       f'the model of {args.config} in {voc!r}; export the scene with a config '
                       'of the same vocabulary')
    H, Fu = model.history_frames, model.future_frames
    sem = scene['semantics']
    if sem.shape[0] > H + Fu:  # a longer window: its first H + F frames
        print(f'forecast: the input has {sem.shape[0]} frames; using the first {H + Fu} '
              f'({H} history + {Fu} future to compare with)')
        sem = sem[:H + Fu]
    elif H < sem.shape[0] < H + Fu:
        sem = sem[:H]
    T = sem.shape[0]
    traj = scene.get('trajectory')
    poses = scene.get('ego_poses')
    command = args.command if args.command is not None else (
        int(scene['command']) if 'command' in scene else None)
    free = scene['free_label'] if 'free_label' in scene else cfg.get('free_label', 0)
    meta = dict(scene=osp.basename(args.input), free_label=int(free))
    if voc:
        meta['vocabulary'] = voc
    pc = scene['pc_range'] if 'pc_range' in scene else cfg.get('pc_range')
    if pc is not None:  # the grid's extent (the ego-warp baseline needs it)
        pc = [float(v) for v in pc]
        meta['pc_range'] = pc
        meta['voxel_size'] = ([float(v) for v in scene['voxel_size']] if 'voxel_size' in scene
                              else [(pc[a + 3] - pc[a]) / sem.shape[a + 1] for a in range(3)])
    if hasattr(model, 'show_progress'):
        model.show_progress = not args.no_progress
    try:
        out = G.forecast_scene(model, sem, None if traj is None else traj[:T], command,
                               None if poses is None else poses[:T], meta)
    except ValueError as err:
        raise CLIError(f'forecast {args.input}: {err}') from err
    os.makedirs(args.out, exist_ok=True)
    path = osp.join(args.out, 'forecast.npz')
    pictures = npz_meta(cfg, sem.shape[1:])  # the scene's own grid wins over the config's
    pictures.update(picture_meta(None, meta.get('pc_range'), meta.get('voxel_size')))
    arrays = dict(pictures, **out)
    save_npz_atomic(path, task=np.array('forecast'), **arrays,
                    command=np.int64(G.parse_command(command) if command is not None else 1))
    paths = [path]
    txt = osp.join(args.out, 'forecast_trajectory.txt')
    with atomic_path(txt) as tmp:
        np.savetxt(tmp, out['pred_trajectory'], fmt='%.4f',
                   header='planned ego positions (x forward, y left; metres from the last '
                   'history frame), one row per future frame')
    paths.append(txt)
    if not args.no_render:
        paths += render_forecast(cfg, out, args.out, pictures,
                                 None if traj is None else traj[:T], args.view)
    F = out['semantics'].shape[0]
    last = out['pred_trajectory'][-1]
    print(f'forecast: {H} history -> {F} future frame(s) of shape {out["semantics"].shape[1:]}'
          f'; planned ego position after {F} frame(s): x {last[0]:.2f} m, y {last[1]:.2f} m '
          f'-> {osp.abspath(args.out)} ({len(paths)} files)')
    return out


def render_forecast(cfg, out: dict, out_dir: str, scene_meta: dict,
                    trajectory=None, mode: str = 'bev') -> list:
    """The pictures of a forecast, drawn like tools/visualize.py (legend, scale bar, ego
    marker, frame index and time): ``forecast_bev.png``, the last history frame with the
    planned path; ``forecast.gif``, history then forecast frames (with the input's
    trajectory, the ego path); with the ground-truth future ``forecast_compare.gif``, GT |
    forecast | difference of every future frame. ``mode`` 'iso': the isometric view
    (``forecast_iso.png``)."""
    hist, fut = np.asarray(out['history']), np.asarray(out['semantics'])
    H, Fu = len(hist), len(fut)
    shape = hist.shape[1:]
    meta = dict(scene_meta, trajectory=None)
    plan = np.asarray(out['pred_trajectory'], np.float64)
    # the planned path from the last history frame: positions in its ego axes, heading kept
    info = info_from_meta(dict(meta, trajectory=np.concatenate(
        [np.zeros((1, 3)), np.pad(plan, ((0, 0), (0, 1)))])), shape, first_frame=H - 1)
    paths = [save_png(draw_frame(hist[-1], info, 0, 1, mode, title='last history frame, '
                                 'planned path'), osp.join(out_dir, f'forecast_{mode}.png'))]
    traj = None
    if trajectory is not None and len(trajectory) >= H:
        t = np.asarray(trajectory, np.float64)[:H]
        c, s_ = np.cos(t[-1, 2]), np.sin(t[-1, 2])
        world = t[-1, :2] + plan @ np.array([[c, s_], [-s_, c]])  # last frame -> frame 0
        traj = np.concatenate([t, np.concatenate([world, np.full((Fu, 1), t[-1, 2])], 1)])
    info = info_from_meta(dict(meta, trajectory=traj), shape)
    frames = [draw_frame(g, info, k, H + Fu, mode,
                         title='history' if k < H else 'forecast')
              for k, g in enumerate(list(hist) + list(fut))]
    fps = info.frame_rate or 4.0
    paths.append(save_gif(frames, osp.join(out_dir, 'forecast.gif'), fps))
    if 'gt_semantics' in out:
        info = info_from_meta(meta, shape, first_frame=H)
        frames = scene_frames(fut, info, mode, gt=np.asarray(out['gt_semantics']),
                              title='GT | forecast | difference')
        paths.append(save_gif(frames, osp.join(out_dir, 'forecast_compare.gif'), fps))
    return paths


def main(argv=None):
    args = parse_args(argv)
    if args.num_samples < 1 or (args.batch_size is not None and args.batch_size < 1):
        raise CLIError(f'--num-samples and --batch-size must be >= 1, got {args.num_samples} '
                       f'and {args.batch_size}')
    rank, world = setup_sampling(args.launcher)
    if world > 1 and args.task == 'forecast':
        raise CLIError('--task forecast forecasts one scene: run it in one process '
                       '(without torchrun / --launcher)')
    if world > 1 and resolve_device(args.device) == 'cuda':  # one GPU a rank
        local = int(os.environ.get('LOCAL_RANK', rank))
        if local >= torch.cuda.device_count():
            raise CLIError(f'--launcher pytorch: local rank {local} needs GPU cuda:{local}, '
                           f'this machine has {torch.cuda.device_count()}; start at most that '
                           'many processes a node, or sample on the CPU (--device cpu)')
        args.device = f'cuda:{local}'
    cfg = load_config(args.config, args.cfg_options)
    apply_trust_checkpoint(args, cfg)
    model = load_model(cfg, args)
    refusal = G.unsupported_task_message(model, args.task)
    if refusal:
        raise CLIError(refusal)
    if args.task == 'forecast':
        with autocast_context(G.model_device(model), args.amp):
            return run_forecast(cfg, args, model)
    inf = OccGenerationInferencer(model, free_label=cfg.get('free_label', 0), config=cfg,
                                  amp=args.amp)
    voxels = layout = None
    if args.input:
        voxels, layout = read_input(args.input, cfg)
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
    kwargs = dict(command=args.command,
                  trajectory=args.trajectory, layout=layout if use_layout else None,
                  voxels=voxels, region=args.region, shift=args.shift or (0, 0),
                  num_frames=args.num_frames, overlap=args.overlap)
    if not args.no_progress and rank == 0:
        kwargs['progress'] = True
    if args.resample_jumps > 1:
        kwargs['resample_jumps'] = args.resample_jumps
    for key, value in (('sampler', args.sampler), ('num_steps', args.steps),
                       ('guidance_scale', args.cfg)):
        if value is not None:
            kwargs[key] = value
    batch_size = args.batch_size or -(-args.num_samples // world)
    who = f'rank {rank}/{world}: ' if world > 1 else ''
    result = None
    for first, count, seed in sample_batches(args.num_samples, batch_size, args.seed, rank,
                                             world):
        try:
            result = inf(args.task, num_samples=count, seed=seed, **kwargs)
        except (ValueError, NotImplementedError) as err:
            raise CLIError(f'{args.task}: {err}') from err
        paths = inf.save(result, args.out, render=not args.no_render, first_index=first,
                         mode=args.view)
        print(f'{who}{args.task}: {count} sample(s) of shape {result["semantics"].shape[1:]} '
              f'-> {osp.abspath(args.out)} ({len(paths)} files)')
        if args.lidar or args.cameras:
            stats = render_sensors(cfg, args, result['semantics'], first, seed)
            print(f'{who}sensors: {stats["points"]} LiDAR points, {stats["images"]} camera '
                  f'PNGs -> {osp.abspath(args.out)}/sample_*_sensors')
    if world > 1:
        finish_sampling(args, rank, batch_size)
    return result


def finish_sampling(args, rank: int, batch_size: int) -> None:
    """Under torchrun: wait for every rank, then rank 0 checks that ``sample_0 ..
    sample_{N-1}.npz`` are all there (one line, or an error naming the missing ones)."""
    torch_dist.barrier()
    if rank == 0:
        missing = [i for i in range(args.num_samples)
                   if not osp.isfile(osp.join(args.out, f'sample_{i}.npz'))]
        if missing:
            raise CLIError(f'{args.out}: sample(s) {missing[:10]} missing after all ranks '
                           'finished')
        print(f'{args.task}: {args.num_samples} sample(s) in batches of {batch_size} (seed '
              f'{args.seed} + batch index) over {torch_dist.get_world_size()} processes -> '
              f'{osp.abspath(args.out)}')
    torch_dist.destroy_process_group()


if __name__ == '__main__':
    main()
