"""Build OccWorld-style temporal infos (+ Occ3D label paths) from the raw nuScenes tables.

No public script builds the ``nuscenes_infos_*_temporal_v3_scene.pkl`` files that OccWorld,
OccSora, DOME and UniScene read; this one does. Per scene it walks the keyframes in time
order and writes, for each: ``token``, ``scene_token``, ``scene_name``, ``prev`` / ``next``,
``timestamp``, ``frame_idx``, ``lidar_path``, ``ego2global_*`` / ``lidar2ego_*``
(quaternion w, x, y, z + translation), ``gt_ego_fut_trajs`` (6, 2), ``gt_ego_fut_masks``
(6,), ``gt_ego_his_trajs`` (2, 2) and ``gt_ego_fut_cmd`` (3,) one-hot (right, left,
straight) from ``occworld4d.structures.geometry.vad_ego_trajectories`` /
``vad_command_onehot`` (the same functions the synthetic-city writer uses; the real info
file's convention: per-step LiDAR-origin offsets in the current LiDAR axes), boxes in the
LiDAR frame as in VAD / mmdet3d-0.x infos (``gt_boxes`` (N, 7) = x, y, z, w, l, h,
-yaw - pi / 2; ``gt_names`` detection names; ``gt_velocity`` (N, 2); ``num_lidar_pts``,
``num_radar_pts``, ``valid_flag``) and ``occ_path`` = ``<occ-prefix>/<scene_name>/<token>``.

Output: ``{'infos': {scene_name: [frame, ...]}, 'metadata': {...}}`` (OccWorld's scene
dict) or, with ``--flat``, a flat time-ordered list; ``Occ3DNuScenesDataset`` reads both.

Tables come from nuscenes-devkit's ``NuScenes(version, dataroot)`` when it is installed
(``--backend devkit`` requires it) or from a built-in reader of the same JSON files
(``--backend json``; nuscenes-devkit pins numpy < 2). Both end in :class:`NuScenesTables`,
so the devkit-specific code is only :meth:`NuScenesTables.from_devkit` (taking the devkit's
table lists); tests run it on a duck-typed stand-in of ``NuScenes``.

Example:
    python tools/dataset_converters/create_nuscenes_occ_infos.py --dataroot data/nuscenes \
        --version v1.0-trainval --out data/nuscenes/nuscenes_infos_{split}_temporal_v3_scene.pkl
"""
import argparse
import json
import os.path as osp
import pickle
from typing import Dict, List, Optional

import numpy as np
from tqdm import tqdm

from occworld4d.apis.cli import HelpFormatter
from occworld4d.structures.geometry import pose_matrix, vad_command_onehot, vad_ego_trajectories
from occworld4d.utils import atomic_path

NAME_MAPPING = {
    'movable_object.barrier': 'barrier', 'vehicle.bicycle': 'bicycle',
    'vehicle.bus.bendy': 'bus', 'vehicle.bus.rigid': 'bus', 'vehicle.car': 'car',
    'vehicle.construction': 'construction_vehicle', 'vehicle.motorcycle': 'motorcycle',
    'human.pedestrian.adult': 'pedestrian', 'human.pedestrian.child': 'pedestrian',
    'human.pedestrian.construction_worker': 'pedestrian',
    'human.pedestrian.police_officer': 'pedestrian',
    'movable_object.trafficcone': 'traffic_cone', 'vehicle.trailer': 'trailer',
    'vehicle.truck': 'truck'}
# Scene splits are not part of the tables; pass --scenes or a json list per split.
TABLES = ('scene', 'sample', 'sample_data', 'ego_pose', 'calibrated_sensor', 'sensor',
          'sample_annotation', 'instance', 'category')


class NuScenesTables:
    """The nuScenes tables this converter reads, with the reverse indices it needs.

    The one code path of the converter: records come either from the JSON files
    (:meth:`from_json`) or from a nuscenes-devkit ``NuScenes`` object
    (:meth:`from_devkit`, which only takes its already-loaded table lists), and everything
    after that -- ``get``, keyframe ``sample_data`` per channel, annotations of a sample,
    category names, velocities -- is this class. The records are never modified (the devkit
    adds its own reverse-index fields to them; they are not used).

    Args:
        tables: table name -> list of records (each with a ``token``).
        dataroot: nuScenes root (``lidar_path`` is joined to it).
        version: e.g. ``'v1.0-trainval'``.
        source: where the tables came from (named in errors).
    """

    def __init__(self, tables: Dict[str, List[dict]], dataroot: str = '', version: str = '',
                 source: str = 'nuScenes tables'):
        missing = [t for t in TABLES if t not in tables]
        if missing:
            raise KeyError(f'{source}: missing table(s) {missing}; expected {list(TABLES)}')
        self.dataroot, self.version, self.source = dataroot, version, source
        self.tables = {t: list(tables[t]) for t in TABLES}
        self._index = {}
        for table, records in self.tables.items():
            try:
                self._index[table] = {r['token']: r for r in records}
            except (KeyError, TypeError) as err:
                raise KeyError(f'{source}: a {table!r} record has no "token" ({err!r})') from None
        self._channel = {cs['token']: self.get('sensor', cs['sensor_token'])['channel']
                         for cs in self.tables['calibrated_sensor']}
        self._keyframe_data: Dict[str, Dict[str, str]] = {}
        for sd in self.tables['sample_data']:
            if sd.get('is_key_frame'):
                channel = self._channel[sd['calibrated_sensor_token']]
                self._keyframe_data.setdefault(sd['sample_token'], {})[channel] = sd['token']
        self._anns: Dict[str, List[str]] = {}
        for ann in self.tables['sample_annotation']:
            self._anns.setdefault(ann['sample_token'], []).append(ann['token'])

    @classmethod
    def from_json(cls, version: str, dataroot: str) -> 'NuScenesTables':
        """Read ``<dataroot>/<version>/<table>.json`` (the files the devkit reads)."""
        folder = osp.join(dataroot, version)
        tables = {}
        for table in TABLES:
            path = osp.join(folder, f'{table}.json')
            if not osp.isfile(path):
                raise FileNotFoundError(f'{path}: nuScenes table not found (expected the '
                                        f'{version} tables: {", ".join(TABLES)})')
            with open(path) as f:
                tables[table] = json.load(f)
        return cls(tables, dataroot, version, source=folder)

    @classmethod
    def from_devkit(cls, nusc) -> 'NuScenesTables':
        """Wrap a nuscenes-devkit ``NuScenes`` (or any object with the same attributes:
        one list of records per table name, ``dataroot`` and ``version``)."""
        missing = [t for t in TABLES if not isinstance(getattr(nusc, t, None), list)]
        if missing:
            raise TypeError(f'{type(nusc).__name__}: expected a nuscenes-devkit NuScenes with '
                            f'table lists {list(TABLES)}; missing {missing}')
        return cls({t: getattr(nusc, t) for t in TABLES}, getattr(nusc, 'dataroot', ''),
                   getattr(nusc, 'version', ''),
                   source=f'NuScenes({getattr(nusc, "version", "?")!r})')

    @property
    def scene(self) -> List[dict]:
        return self.tables['scene']

    def get(self, table: str, token: str) -> dict:
        try:
            return self._index[table][token]
        except KeyError:
            raise KeyError(f'{self.source}: token {token!r} not in table {table!r}') from None

    def keyframe_data(self, sample: dict, channel: str) -> dict:
        """The keyframe ``sample_data`` record of ``sample`` for a sensor channel."""
        token = self._keyframe_data.get(sample['token'], {}).get(channel)
        if token is None:
            raise KeyError(f'{self.source}: sample {sample["token"]} has no keyframe '
                           f'{channel} sample_data; found '
                           f'{sorted(self._keyframe_data.get(sample["token"], {}))}')
        return self.get('sample_data', token)

    def annotations(self, sample: dict) -> List[dict]:
        return [self.get('sample_annotation', t) for t in self._anns.get(sample['token'], [])]

    def category_name(self, ann: dict) -> str:
        inst = self.get('instance', ann['instance_token'])
        return self.get('category', inst['category_token'])['name']


def open_nuscenes(version: str, dataroot: str, backend: str = 'auto') -> NuScenesTables:
    """The tables of a nuScenes version.

    Args:
        backend: ``'devkit'`` (nuscenes-devkit's ``NuScenes``; an error when it is not
            installed), ``'json'`` (the built-in reader of the same JSON files) or
            ``'auto'`` (devkit when importable, else json).
    """
    if backend not in ('auto', 'devkit', 'json'):
        raise ValueError(f'backend must be auto / devkit / json, got {backend!r}')
    if backend != 'json':
        try:
            from nuscenes.nuscenes import NuScenes  # optional package: the devkit backend only
        except ImportError as err:
            if backend == 'devkit':
                raise ImportError('backend="devkit" needs nuscenes-devkit (pip install '
                                  'nuscenes-devkit; it pins numpy < 2), or use '
                                  'backend="json"') from err
        else:
            return NuScenesTables.from_devkit(
                NuScenes(version=version, dataroot=dataroot, verbose=False))
    return NuScenesTables.from_json(version, dataroot)


def scene_samples(nusc: NuScenesTables, scene: dict) -> List[dict]:
    """Keyframes of a scene in time order (following ``next`` links)."""
    samples, token = [], scene['first_sample_token']
    while token:
        sample = nusc.get('sample', token)
        samples.append(sample)
        token = sample['next']
    return samples


def _yaw(rotation) -> float:
    mat = pose_matrix(rotation, [0, 0, 0])
    return float(np.arctan2(mat[1, 0], mat[0, 0]))


def annotation_velocity(nusc: NuScenesTables, ann: dict, max_dt: float = 1.5) -> np.ndarray:
    """Global xy velocity by central differences over prev / next annotations (devkit's rule)."""
    has_prev, has_next = bool(ann['prev']), bool(ann['next'])
    if not has_prev and not has_next:
        return np.full(2, np.nan)
    first = nusc.get('sample_annotation', ann['prev']) if has_prev else ann
    last = nusc.get('sample_annotation', ann['next']) if has_next else ann
    t0 = nusc.get('sample', first['sample_token'])['timestamp'] / 1e6
    t1 = nusc.get('sample', last['sample_token'])['timestamp'] / 1e6
    dt = t1 - t0
    if dt <= 0 or dt > max_dt * (2 if has_prev and has_next else 1):
        return np.full(2, np.nan)
    return (np.asarray(last['translation'][:2]) - np.asarray(first['translation'][:2])) / dt


def sample_boxes(nusc: NuScenesTables, sample: dict,
                 global_from_lidar: np.ndarray) -> Dict[str, np.ndarray]:
    """Boxes of a keyframe in its LiDAR frame (VAD / mmdet3d-0.x convention)."""
    lidar_from_global = np.linalg.inv(global_from_lidar)
    boxes, names, vels, n_lidar, n_radar = [], [], [], [], []
    for ann in nusc.annotations(sample):
        center = lidar_from_global @ np.append(ann['translation'], 1.0)
        box_rot = lidar_from_global[:3, :3] @ pose_matrix(ann['rotation'], [0, 0, 0])[:3, :3]
        yaw = np.arctan2(box_rot[1, 0], box_rot[0, 0])
        w, l, h = ann['size']
        boxes.append([*center[:3], w, l, h, -yaw - np.pi / 2])
        velo = np.append(annotation_velocity(nusc, ann), 0.0)
        vels.append((lidar_from_global[:3, :3] @ velo)[:2])
        category = nusc.category_name(ann)
        names.append(NAME_MAPPING.get(category, category))
        n_lidar.append(ann.get('num_lidar_pts', 0))
        n_radar.append(ann.get('num_radar_pts', 0))
    n_lidar, n_radar = np.asarray(n_lidar, np.int64), np.asarray(n_radar, np.int64)
    return dict(gt_boxes=np.asarray(boxes, np.float64).reshape(-1, 7),
                gt_names=np.asarray(names, dtype='<U32'),
                gt_velocity=np.asarray(vels, np.float64).reshape(-1, 2),
                num_lidar_pts=n_lidar, num_radar_pts=n_radar,
                valid_flag=(n_lidar + n_radar) > 0)


def scene_infos(nusc: NuScenesTables, scene: dict, occ_prefix: str = './data/nuscenes/gts',
                fut_steps: int = 6, his_steps: int = 2) -> List[dict]:
    """Frame infos of one scene (see the module docstring for the fields)."""
    samples = scene_samples(nusc, scene)
    ego, lidar2ego, records = [], [], []
    for sample in samples:
        sd = nusc.keyframe_data(sample, 'LIDAR_TOP')
        pose = nusc.get('ego_pose', sd['ego_pose_token'])
        cs = nusc.get('calibrated_sensor', sd['calibrated_sensor_token'])
        ego.append(pose_matrix(pose['rotation'], pose['translation']))
        lidar2ego.append(pose_matrix(cs['rotation'], cs['translation']))
        records.append((sd, pose, cs))
    global_from_lidar = np.stack(ego) @ np.stack(lidar2ego)  # (T, 4, 4)
    infos = []
    for i, (sample, (sd, pose, cs)) in enumerate(zip(samples, records)):
        fut, mask, his = vad_ego_trajectories(global_from_lidar, i, fut_steps, his_steps)
        info = dict(
            token=sample['token'], scene_token=scene['token'], scene_name=scene['name'],
            prev=sample['prev'], next=sample['next'], timestamp=int(sample['timestamp']),
            frame_idx=i, lidar_token=sd['token'],
            lidar_path=osp.join(nusc.dataroot, sd['filename']),
            ego2global_translation=list(pose['translation']),
            ego2global_rotation=list(pose['rotation']),
            lidar2ego_translation=list(cs['translation']),
            lidar2ego_rotation=list(cs['rotation']),
            gt_ego_fut_trajs=fut, gt_ego_fut_masks=mask,
            gt_ego_fut_cmd=vad_command_onehot(fut, mask), gt_ego_his_trajs=his,
            fut_valid_flag=bool(mask.all()),
            occ_path=f'{occ_prefix}/{scene["name"]}/{sample["token"]}')
        info.update(sample_boxes(nusc, sample, global_from_lidar[i]))
        infos.append(info)
    return infos


def create_infos(nusc: NuScenesTables, scene_names: Optional[List[str]] = None,
                 occ_prefix: str = './data/nuscenes/gts', progress: bool = True
                 ) -> Dict[str, List[dict]]:
    """``{scene_name: [frame info, ...]}`` for the given scenes (default all)."""
    scenes = [s for s in nusc.scene if scene_names is None or s['name'] in scene_names]
    if scene_names is not None:
        missing = sorted(set(scene_names) - {s['name'] for s in scenes})
        if missing:
            raise KeyError(f'scenes not in the tables: {missing[:10]}')
    return {s['name']: scene_infos(nusc, s, occ_prefix)
            for s in tqdm(scenes, desc='nuScenes scenes', disable=not progress)}


def write_infos(path: str, infos: Dict[str, List[dict]], version: str, flat: bool) -> None:
    data = dict(infos=[f for frames in infos.values() for f in frames] if flat else infos,
                metadata=dict(version=version, source='occworld4d create_nuscenes_occ_infos'))
    with atomic_path(path) as tmp:
        with open(tmp, 'wb') as f:
            pickle.dump(data, f)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument('--dataroot', required=True)
    parser.add_argument('--version', default='v1.0-trainval')
    parser.add_argument('--out', required=True, help='output pkl')
    parser.add_argument('--scenes', nargs='*', help='scene names, or one .json file with a '
                        'list of names (default: all scenes of the version)')
    parser.add_argument('--occ-prefix', default='./data/nuscenes/gts')
    parser.add_argument('--flat', action='store_true', help='write a flat list of frames')
    parser.add_argument('--backend', default='auto', choices=['auto', 'devkit', 'json'],
                        help='nuscenes-devkit, the built-in JSON reader, or devkit if installed')
    args = parser.parse_args(argv)
    names = args.scenes
    if names and len(names) == 1 and names[0].endswith('.json'):
        with open(names[0]) as f:
            names = json.load(f)
    nusc = open_nuscenes(args.version, args.dataroot, args.backend)
    infos = create_infos(nusc, names or None, args.occ_prefix)
    write_infos(args.out, infos, args.version, args.flat)
    print(f'wrote {sum(len(v) for v in infos.values())} frames of {len(infos)} scenes to '
          f'{args.out}')


if __name__ == '__main__':
    main()
