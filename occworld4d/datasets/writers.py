"""Writers for the exact on-disk formats occworld4d reads (CarlaSC, Occ3D-nuScenes, Occ3D-Waymo,
nuScenes temporal infos).

They exist so that tests and the synthetic city can produce files that the same readers load as
the real datasets. Every file is written to a temporary name and renamed, so an interrupted run
never leaves half a file. Formats (see ``/work/shared/spec/datasets.md``):

* CarlaSC: ``<root>/Cartesian/<Split>/<Town>/cartesian/`` holding ``evaluation/NNNNNN.label``
  (uint32 voxel labels, flat, C order over (X, Y, Z) -- CarlaSC's own loader and DynamicCity both
  ``np.fromfile(...).reshape(grid_size)``), ``evaluation/NNNNNN.bin`` (float32 per-voxel point
  counts, same order), ``evaluation/params.json``, ``velodyne/NNNNNN.bin`` (float32 N x 4:
  x, y, z, intensity in the ego frame), ``labels/NNNNNN.label`` (uint32 per point),
  ``poses.txt`` (``np.savetxt`` of (T, 12): the row-major top 3 x 4 of each pose) and
  ``times.txt`` (seconds, one a line).
* Occ3D-nuScenes: ``labels.npz`` with ``semantics``, ``mask_lidar``, ``mask_camera``, each
  uint8 (X, Y, Z), zip-deflated as the real files.
* Occ3D-Waymo: ``NNN.npz`` / ``NNN_04.npz`` with ``voxel_label``, ``origin_voxel_state``
  (lidar mask), ``final_voxel_state`` (camera mask), ``infov`` and optionally ``ego2global``.
* nuScenes temporal infos (the VAD-style pkl OccWorld / OccSora / DOME / UniScene read):
  ``{'infos': [frame dict, ...], 'metadata': {...}}``, a flat time-ordered list whose frames
  carry ``scene_token``; :func:`build_nuscenes_infos` makes the frame dicts from ego poses.
"""
import hashlib
import json
import os
import os.path as osp
import pickle
from typing import Dict, List, Optional, Sequence

import numpy as np

from occworld4d.structures.geometry import (pose_matrix, quaternion_from_matrix,
                                            vad_command_onehot, vad_ego_trajectories)
from occworld4d.utils import atomic_path, save_npz_atomic
from .waymo_records import (V2_POSE_COLUMN, V2_SEGMENT_COLUMN, V2_TIME_COLUMN, _dataset_pb2,
                            write_tfrecord)

CARLASC_NUM_CLASSES = 23
CARLASC_MIN_BOUND = (-25.6, -25.6, -2.0)
CARLASC_MAX_BOUND = (25.6, 25.6, 1.0)
OCC3D_NUSCENES_FREE = 17
OCC3D_WAYMO_FREE_LABELS = (15, 23)
# Columns of the one-hot ``gt_ego_fut_cmd`` in the real info file (VAD's order).
NUSCENES_CMD_ORDER = ('RIGHT', 'LEFT', 'STRAIGHT')
NUSCENES_EGO_SIZE = (4.084, 1.85)  # length, width (m) written in gt_ego_lcf_feat
# lidar2ego of nuScenes LIDAR_TOP (rounded): lidar x right, y forward, z up; 1.84 m high.
NUSCENES_LIDAR2EGO_TRANSLATION = (0.985793, 0.0, 1.84019)
NUSCENES_LIDAR2EGO_ROTATION = (0.7071067811865476, 0.0, 0.0, -0.7071067811865476)  # w, x, y, z


# ----------------------------------------------------------------------------- checks
def _check_array(name: str, where: str, arr, ndim: int, shape=None, kinds='biuf') -> np.ndarray:
    """Return ``arr`` as an ndarray or raise naming ``where`` / ``name`` and expected vs found."""
    arr = np.asarray(arr)
    if arr.ndim != ndim or (shape is not None and tuple(arr.shape) != tuple(shape)):
        exp = f'shape {tuple(shape)}' if shape is not None else f'{ndim} dims'
        raise ValueError(f'{where}: {name} expected {exp}, found shape {arr.shape}')
    if arr.dtype.kind not in kinds:
        raise TypeError(f'{where}: {name} expected a numeric dtype ({kinds}), found {arr.dtype}')
    return arr


def _check_labels(name: str, where: str, arr: np.ndarray, allowed: Sequence[int]) -> None:
    if arr.dtype.kind == 'f' and not np.all(arr == np.round(arr)):
        raise TypeError(f'{where}: {name} must hold integer class ids, found fractional values')
    bad = np.setdiff1d(np.unique(arr), np.asarray(allowed))
    if bad.size:
        raise ValueError(f'{where}: {name} has ids {bad[:8].tolist()} outside the allowed '
                         f'{min(allowed)}..{max(allowed)}')


def _check_mask(name: str, where: str, arr, shape) -> np.ndarray:
    arr = _check_array(name, where, arr, len(shape), shape, kinds='biuf')
    if arr.dtype != bool and not np.isin(arr, (0, 1)).all():
        raise ValueError(f'{where}: {name} must be a 0/1 mask, found values '
                         f'{np.unique(arr)[:8].tolist()}')
    return arr.astype(np.uint8)


def _tofile_atomic(path: str, arr: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        np.ascontiguousarray(arr).tofile(tmp)


def _savetxt_atomic(path: str, arr: np.ndarray, fmt: str = '%.18e') -> None:
    with atomic_path(path) as tmp:
        np.savetxt(tmp, arr, fmt=fmt)


# ----------------------------------------------------------------------------- CarlaSC
def carlasc_params(grid_size: Sequence[int], min_bound=CARLASC_MIN_BOUND,
                   max_bound=CARLASC_MAX_BOUND) -> Dict:
    """``evaluation/params.json`` content. Like CarlaSC's generator, numbers are floats."""
    return dict(grid_size=[float(g) for g in grid_size],
                min_bound=[float(b) for b in min_bound],
                max_bound=[float(b) for b in max_bound],
                num_channels=CARLASC_NUM_CLASSES, coordinates='cartesian')


def sample_points_from_voxels(labels: np.ndarray, point_counts: np.ndarray, min_bound,
                              max_bound, rng: np.random.Generator, max_points: int = 4):
    """Points uniformly inside every occupied voxel with a positive point count.

    Args:
        labels (X, Y, Z) int: raw class ids, 0 = free (never emits a point).
        point_counts (X, Y, Z) float: points per voxel; each occupied voxel emits
            ``clip(round(count), 1, max_points)`` points.

    Returns:
        points (N, 4) float32 (x, y, z, intensity 0) and per-point labels (N,) uint32.
    """
    grid = np.asarray(labels.shape, dtype=np.float64)
    lo, hi = np.asarray(min_bound, np.float64), np.asarray(max_bound, np.float64)
    vsize = (hi - lo) / grid
    occ = (labels != 0) & (point_counts > 0)
    idx = np.argwhere(occ)  # (M, 3) voxel indices
    reps = np.clip(np.round(point_counts[occ]).astype(np.int64), 1, max_points)
    idx = np.repeat(idx, reps, axis=0)  # (N, 3)
    xyz = lo + (idx + rng.uniform(0.05, 0.95, size=idx.shape)) * vsize  # (N, 3) metres
    pts = np.zeros((len(idx), 4), np.float32)
    pts[:, :3] = xyz
    return pts, labels[idx[:, 0], idx[:, 1], idx[:, 2]].astype(np.uint32)


def write_carlasc_sequence(seq_dir: str, labels, point_counts, poses, times=None,
                          params: Optional[Dict] = None, start_index: int = 0,
                          write_points: bool = True, seed: int = 0) -> List[str]:
    """Write one CarlaSC sequence folder (``.../Cartesian/<Split>/<Town>/cartesian``).

    Memory order: ``evaluation/NNNNNN.label`` is ``labels[t].astype(uint32)`` flattened in C
    order of (X, Y, Z), i.e. Z fastest; readers recover it with
    ``np.fromfile(f, np.uint32).reshape(X, Y, Z)`` exactly as CarlaSC and DynamicCity do.

    Args:
        seq_dir: the ``cartesian`` folder to (over)write.
        labels (T, X, Y, Z) int: raw CarlaSC ids 0..22 (0 free).
        point_counts (T, X, Y, Z) float: per-voxel point counts (0 = unobserved).
        poses (T, 4, 4) or (T, 3, 4) float: poses written to ``poses.txt`` (CarlaSC stores
            them relative to the sequence's first frame; the caller decides).
        times (T,) float: seconds; default ``0.1 * t`` (10 Hz).
        params: ``params.json`` overrides (``min_bound``, ``max_bound``, ...).
        start_index: number of the first frame file.
        write_points: also write ``velodyne/`` and ``labels/`` (points sampled from
            occupied, observed voxels) so the tree is complete.
        seed: seed of the point sampling.

    Returns:
        The evaluation label paths written, in frame order.
    """
    where = f'write_carlasc_sequence({seq_dir!r})'
    labels = _check_array('labels', where, labels, 4)
    _check_labels('labels', where, labels, range(CARLASC_NUM_CLASSES))
    T = labels.shape[0]
    point_counts = _check_array('point_counts', where, point_counts, 4, labels.shape)
    if (point_counts < 0).any():
        raise ValueError(f'{where}: point_counts must be >= 0, found {point_counts.min()}')
    poses = _check_array('poses', where, poses, 3, kinds='biuf')
    if poses.shape[0] != T or poses.shape[1:] not in ((4, 4), (3, 4)):
        raise ValueError(f'{where}: poses expected shape ({T}, 4, 4) or ({T}, 3, 4), '
                         f'found {poses.shape}')
    times = np.arange(T) * 0.1 if times is None else _check_array('times', where, times, 1, (T,))
    prm = carlasc_params(labels.shape[1:])
    prm.update(params or {})
    if [int(g) for g in prm['grid_size']] != list(labels.shape[1:]):
        raise ValueError(f'{where}: params grid_size {prm["grid_size"]} does not match labels '
                         f'(X, Y, Z) = {labels.shape[1:]}')
    ev_dir = osp.join(seq_dir, 'evaluation')
    os.makedirs(ev_dir, exist_ok=True)
    with atomic_path(osp.join(ev_dir, 'params.json')) as tmp:
        with open(tmp, 'w') as f:
            json.dump(prm, f)
    rng = np.random.default_rng(seed)
    written = []
    for t in range(T):
        name = f'{start_index + t:06d}'
        lab_path = osp.join(ev_dir, name + '.label')
        _tofile_atomic(lab_path, labels[t].astype(np.uint32))  # C order over (X, Y, Z)
        _tofile_atomic(osp.join(ev_dir, name + '.bin'), point_counts[t].astype(np.float32))
        written.append(lab_path)
        if write_points:
            pts, pt_lab = sample_points_from_voxels(labels[t], point_counts[t], prm['min_bound'],
                                                    prm['max_bound'], rng)
            _tofile_atomic(osp.join(seq_dir, 'velodyne', name + '.bin'), pts)
            _tofile_atomic(osp.join(seq_dir, 'labels', name + '.label'), pt_lab)
    _savetxt_atomic(osp.join(seq_dir, 'poses.txt'), poses[:, :3, :4].reshape(T, 12))  # (T, 12)
    _savetxt_atomic(osp.join(seq_dir, 'times.txt'), np.asarray(times, np.float64))
    return written


# ----------------------------------------------------------------------------- Occ3D
def write_occ3d_nuscenes_frame(path: str, semantics, mask_lidar, mask_camera) -> None:
    """Write an Occ3D-nuScenes ``labels.npz`` (``gts/<scene>/<token>/labels.npz``).

    Args:
        semantics (X, Y, Z) int: ids 0..17 (17 free).
        mask_lidar, mask_camera (X, Y, Z) bool or 0/1.
    """
    where = f'write_occ3d_nuscenes_frame({path!r})'
    sem = _check_array('semantics', where, semantics, 3)
    _check_labels('semantics', where, sem, range(OCC3D_NUSCENES_FREE + 1))
    save_npz_atomic(path, semantics=sem.astype(np.uint8),
                    mask_lidar=_check_mask('mask_lidar', where, mask_lidar, sem.shape),
                    mask_camera=_check_mask('mask_camera', where, mask_camera, sem.shape))


def write_occ3d_waymo_frame(path: str, voxel_label, origin_voxel_state, final_voxel_state,
                            infov, ego2global=None, free_label: int = 23) -> None:
    """Write an Occ3D-Waymo frame npz (``<split>/<scene:03d>/<frame:03d>[_04].npz``).

    Args:
        voxel_label (X, Y, Z) int: ids 0..14 semantic; free as 15 or 23 (either is accepted
            and written as ``free_label``).
        origin_voxel_state, final_voxel_state, infov (X, Y, Z) bool or 0/1: lidar, camera and
            field-of-view masks (written uint8).
        ego2global (4, 4) float: optional world-from-ego pose (written float64).
        free_label: 15 (Occ3D README) or 23 (Occ3D visualizer).
    """
    where = f'write_occ3d_waymo_frame({path!r})'
    if free_label not in OCC3D_WAYMO_FREE_LABELS:
        raise ValueError(f'{where}: free_label expected 15 or 23, found {free_label}')
    lab = _check_array('voxel_label', where, voxel_label, 3)
    _check_labels('voxel_label', where, lab, list(range(15)) + list(OCC3D_WAYMO_FREE_LABELS))
    lab = lab.astype(np.uint8)
    lab[(lab == 15) | (lab == 23)] = free_label
    arrays = dict(voxel_label=lab,
                  origin_voxel_state=_check_mask('origin_voxel_state', where,
                                                 origin_voxel_state, lab.shape),
                  final_voxel_state=_check_mask('final_voxel_state', where,
                                                final_voxel_state, lab.shape),
                  infov=_check_mask('infov', where, infov, lab.shape))
    if ego2global is not None:
        arrays['ego2global'] = _check_array('ego2global', where, ego2global, 2,
                                            (4, 4)).astype(np.float64)
    save_npz_atomic(path, **arrays)


def write_waymo_segment_poses(path: str, segment: str, poses, timestamps) -> None:
    """Write the ego poses of one Waymo segment in a real on-disk format, by extension.

    ``.tfrecord``: a v1 segment, one ``dataset_pb2.Frame`` a record with ``context.name``,
    ``timestamp_micros`` and ``pose.transform`` (row-major 4 x 4; the other fields empty),
    TFRecord-framed with masked CRC-32C (needs the waymo-open-dataset protobuf modules).
    ``.parquet``: a v2 ``vehicle_pose`` component with the columns ``key.segment_context_name``,
    ``key.frame_timestamp_micros`` and ``[VehiclePoseComponent].world_from_vehicle.transform``.
    Rows / records are written in the given order (readers sort them by timestamp).

    Args:
        segment: the segment name (``context.name``).
        poses (N, 4, 4) float: world-from-vehicle.
        timestamps (N,) int: microseconds.
    """
    where = f'write_waymo_segment_poses({path!r})'
    poses = _check_array('poses', where, poses, 3, kinds='f').astype(np.float64)
    n = len(poses)
    if poses.shape[1:] != (4, 4):
        raise ValueError(f'{where}: poses expected shape ({n}, 4, 4), found {poses.shape}')
    stamps = _check_array('timestamps', where, timestamps, 1, (n,), kinds='iu').astype(np.int64)
    if path.endswith('.parquet'):
        import pyarrow as pa  # optional package (requirements/optional.txt): parquet only
        import pyarrow.parquet as pq
        table = pa.table({V2_SEGMENT_COLUMN: [segment] * n,
                          V2_TIME_COLUMN: stamps.tolist(),
                          V2_POSE_COLUMN: poses.reshape(n, 16).tolist()})  # row-major
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)
    elif path.endswith('.tfrecord'):
        pb2 = _dataset_pb2()
        payloads = []
        for pose, stamp in zip(poses, stamps):
            frame = pb2.Frame()
            frame.context.name = segment
            frame.timestamp_micros = int(stamp)
            frame.pose.transform.extend(pose.reshape(16).tolist())  # row-major
            payloads.append(frame.SerializeToString())
        write_tfrecord(path, payloads)
    else:
        raise ValueError(f'{where}: expected a .tfrecord (v1) or .parquet (v2 vehicle_pose) '
                         'path')


# ----------------------------------------------------------------------------- nuScenes infos
NUSCENES_INFO_KEYS = ('token', 'scene_token', 'prev', 'next', 'timestamp',
                      'ego2global_translation', 'ego2global_rotation',
                      'lidar2ego_translation', 'lidar2ego_rotation',
                      'gt_ego_fut_trajs', 'gt_ego_fut_cmd', 'gt_ego_his_trajs', 'occ_path')


def fake_token(*parts) -> str:
    """A deterministic 32-hex-digit token (the shape of nuScenes tokens) from ``parts``."""
    return hashlib.md5('/'.join(map(str, parts)).encode()).hexdigest()


def build_nuscenes_infos(scene_name: str, ego2global, timestamps,
                         occ_root: str = './data/nuscenes/gts',
                         boxes: Optional[List[Dict]] = None, fut_steps: int = 6,
                         his_steps: int = 2, map_location: str = 'synthetic-city') -> List[Dict]:
    """Frame dicts of one scene in the schema of the real temporal info pkl.

    Ego trajectories and the command come from
    :func:`~occworld4d.structures.geometry.vad_ego_trajectories` and
    :func:`~occworld4d.structures.geometry.vad_command_onehot` (the converter uses the same
    two functions), in the
    real file's convention: per-step LiDAR-origin offsets in the current LiDAR axes, future
    steps past the scene end zero with ``gt_ego_fut_masks`` 0, missing history steps copy the
    nearest existing step, ``gt_ego_fut_cmd`` one-hot (right, left, straight).

    Args:
        scene_name: e.g. ``'scene-0001'``; the scene token is derived from it.
        ego2global (T, 4, 4): world-from-ego poses.
        timestamps (T,) int: microseconds.
        occ_root: prefix of ``occ_path`` (``<occ_root>/<scene_name>/<token>``).
        boxes: optional per-frame ``dict(gt_boxes=(N, 7), gt_names=(N,), gt_velocity=(N, 2))``
            in the lidar frame.

    Returns:
        A list of T frame dicts (pass them to :func:`write_nuscenes_infos`).
    """
    where = f'build_nuscenes_infos({scene_name!r})'
    E = _check_array('ego2global', where, ego2global, 3, kinds='f').astype(np.float64)
    T = E.shape[0]
    if E.shape[1:] != (4, 4):
        raise ValueError(f'{where}: ego2global expected shape ({T}, 4, 4), found {E.shape}')
    ts = _check_array('timestamps', where, timestamps, 1, (T,), kinds='iu')
    L = pose_matrix(NUSCENES_LIDAR2EGO_ROTATION, NUSCENES_LIDAR2EGO_TRANSLATION)  # ego-from-lidar
    W = E @ L  # (T, 4, 4) global-from-lidar
    scene_token = fake_token('scene', scene_name)
    tokens = [fake_token(scene_name, t) for t in range(T)]
    infos = []
    for i in range(T):
        fut, fut_mask, his = vad_ego_trajectories(W, i, fut_steps, his_steps)
        n_fut = int(fut_mask.sum())
        cmd = vad_command_onehot(fut, fut_mask)  # (right, left, straight)
        dt = 0.5 if T < 2 else max(1e-6, (ts[min(i + 1, T - 1)] - ts[max(i - 1, 0)]) / 1e6
                                   / (min(i + 1, T - 1) - max(i - 1, 0)))
        vel = (fut[0] if fut_mask[0] else his[-1]) / dt  # step i -> i + 1 (last: into i)
        yaw = np.arctan2(E[:, 1, 0], E[:, 0, 0])
        yaw_rate = float(np.angle(np.exp(1j * (yaw[min(i + 1, T - 1)] - yaw[i])))) / dt
        speed = float(np.hypot(*vel))
        lcf = np.array([vel[0], vel[1], 0, 0, yaw_rate, *NUSCENES_EGO_SIZE, speed, 0], np.float32)
        b = (boxes[i] if boxes is not None else {})
        info = dict(
            lidar_path=f'./data/nuscenes/samples/LIDAR_TOP/{tokens[i]}.pcd.bin',
            token=tokens[i], scene_token=scene_token, scene_name=scene_name,
            prev=tokens[i - 1] if i > 0 else '', next=tokens[i + 1] if i + 1 < T else '',
            timestamp=int(ts[i]), frame_idx=i, can_bus=np.zeros(18), sweeps=[], cams={},
            lidar2ego_translation=list(NUSCENES_LIDAR2EGO_TRANSLATION),
            lidar2ego_rotation=list(NUSCENES_LIDAR2EGO_ROTATION),
            ego2global_translation=E[i, :3, 3].tolist(),
            ego2global_rotation=quaternion_from_matrix(E[i, :3, :3]),
            fut_valid_flag=bool(n_fut == fut_steps), map_location=map_location,
            pose_mat=W[i], ego_from_sensor=L, global_from_ego=E[i],
            gt_boxes=np.asarray(b.get('gt_boxes', np.zeros((0, 7))), np.float64),
            gt_names=np.asarray(b.get('gt_names', np.zeros(0, '<U10'))),
            gt_velocity=np.asarray(b.get('gt_velocity', np.zeros((0, 2))), np.float64),
            gt_ego_his_trajs=his, gt_ego_fut_trajs=fut, gt_ego_fut_masks=fut_mask,
            gt_ego_fut_cmd=cmd, gt_ego_lcf_feat=lcf,
            occ_path=f'{occ_root}/{scene_name}/{tokens[i]}')
        infos.append(info)
    return infos


def write_nuscenes_infos(path: str, infos: List[Dict], metadata: Dict) -> None:
    """Pickle ``{'infos': infos, 'metadata': metadata}`` (the real temporal info schema).

    Args:
        infos: flat time-ordered list of frame dicts; each must carry
            :data:`NUSCENES_INFO_KEYS` with ``gt_ego_fut_trajs`` (F, 2), ``gt_ego_fut_cmd`` (3,)
            one-hot (right, left, straight), 4-element ``*_rotation`` quaternions (w, x, y, z)
            and 3-element ``*_translation``.
        metadata: e.g. ``{'version': 'v1.0-trainval'}``.
    """
    where = f'write_nuscenes_infos({path!r})'
    if not isinstance(infos, (list, tuple)):
        raise TypeError(f'{where}: infos expected a list of dicts, found {type(infos).__name__}')
    if not isinstance(metadata, dict):
        raise TypeError(f'{where}: metadata expected a dict, found {type(metadata).__name__}')
    for i, info in enumerate(infos):
        missing = [k for k in NUSCENES_INFO_KEYS if k not in info]
        if missing:
            raise KeyError(f'{where}: infos[{i}] lacks keys {missing}')
        for key, shape in (('gt_ego_fut_trajs', (None, 2)), ('gt_ego_his_trajs', (None, 2)),
                           ('gt_ego_fut_cmd', (3,)), ('ego2global_rotation', (4,)),
                           ('lidar2ego_rotation', (4,)), ('ego2global_translation', (3,)),
                           ('lidar2ego_translation', (3,))):
            s = np.shape(info[key])
            if len(s) != len(shape) or any(e is not None and e != f for e, f in zip(shape, s)):
                raise ValueError(f'{where}: infos[{i}][{key!r}] expected shape {shape}, found {s}')
        if np.asarray(info['gt_ego_fut_cmd']).sum() != 1:
            raise ValueError(f'{where}: infos[{i}]["gt_ego_fut_cmd"] must be one-hot, found '
                             f'{np.asarray(info["gt_ego_fut_cmd"]).tolist()}')
    with atomic_path(path) as tmp:
        with open(tmp, 'wb') as f:
            pickle.dump({'infos': list(infos), 'metadata': dict(metadata)}, f)


# ----------------------------------------------------------------------------- Occ3D json
def occ3d_annotations_from_infos(infos: List[Dict], split: str = 'train',
                                 annotations: Optional[Dict] = None) -> Dict:
    """Occ3D-nuScenes ``annotations.json`` content for the scenes of ``infos``.

    Schema (as Occ3D's loaders read it): ``train_split`` / ``val_split`` (scene names),
    ``scene_infos[scene][token]`` with ``timestamp``, ``ego_pose`` (``translation``,
    ``rotation`` w, x, y, z), ``gt_path`` (``gts/<scene>/<token>/labels.npz``, relative to
    the data root), ``prev`` / ``next`` (``'EOF'`` at the scene ends) and
    ``camera_sensor`` (empty here: the synthetic city has no images).

    Args:
        infos: frame dicts from :func:`build_nuscenes_infos` (they carry ``scene_name``).
        split: ``'train'`` or ``'val'``: the list the scenes are added to.
        annotations: an existing annotation dict to extend (e.g. the other split's).
    """
    if split not in ('train', 'val'):
        raise ValueError(f'occ3d_annotations_from_infos: split expected train / val, found '
                         f'{split!r}')
    ann = annotations or dict(train_split=[], val_split=[], scene_infos={})
    for i, info in enumerate(infos):
        if 'scene_name' not in info:
            raise KeyError(f'occ3d_annotations_from_infos: infos[{i}] lacks "scene_name"')
        scene = info['scene_name']
        if scene not in ann['scene_infos']:
            ann['scene_infos'][scene] = {}
            ann[f'{split}_split'].append(scene)
        ann['scene_infos'][scene][info['token']] = dict(
            timestamp=int(info['timestamp']),
            ego_pose=dict(translation=list(map(float, info['ego2global_translation'])),
                          rotation=list(map(float, info['ego2global_rotation']))),
            gt_path=f'gts/{scene}/{info["token"]}/labels.npz',
            prev=info['prev'] or 'EOF', next=info['next'] or 'EOF', camera_sensor={})
    return ann


def write_occ3d_annotations(path: str, annotations: Dict) -> None:
    """Write an Occ3D ``annotations.json`` (see :func:`occ3d_annotations_from_infos`)."""
    missing = [k for k in ('train_split', 'val_split', 'scene_infos') if k not in annotations]
    if missing:
        raise KeyError(f'write_occ3d_annotations({path!r}): missing keys {missing}')
    with atomic_path(path) as tmp:
        with open(tmp, 'w') as f:
            json.dump(annotations, f)
