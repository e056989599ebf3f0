"""Build OccWorld-style temporal infos (+ Occ3D label paths) from the raw nuScenes tables.

No public script builds the ``nuscenes_infos_*_temporal_v3_scene.pkl`` files that OccWorld,
OccSora, DOME and UniScene read; this one does. Per scene it walks the keyframes in time
order and writes, for each: ``token``, ``scene_token``, ``scene_name``, ``prev`` / ``next``,
``timestamp``, ``frame_idx``, ``lidar_path``, ``ego2global_*`` / ``lidar2ego_*``
(quaternion w, x, y, z + translation), ``gt_ego_fut_trajs`` (6, 2): per-step displacement
of the LiDAR origin in the current LiDAR frame (x right, y forward; matches the real
info file), ``gt_ego_fut_masks`` (6,), ``gt_ego_fut_cmd`` (3,) one-hot in VAD's order
(right, left, straight: cumulative lateral >= 2 m right, <= -2 m left),
``gt_ego_his_trajs`` (2, 2), boxes in the LiDAR frame as in VAD / mmdet3d-0.x infos
(``gt_boxes`` (N, 7) = x, y, z, w, l, h, -yaw - pi / 2; ``gt_names`` detection names;
``gt_velocity`` (N, 2); ``num_lidar_pts``, ``num_radar_pts``, ``valid_flag``) and
``occ_path`` = ``<occ-prefix>/<scene_name>/<token>``.

Output: ``{'infos': {scene_name: [frame, ...]}, 'metadata': {...}}`` (OccWorld's scene
dict) or, with ``--flat``, a flat time-ordered list; ``Occ3DNuScenesDataset`` reads both.

Uses nuscenes-devkit's ``NuScenes(version, dataroot)`` when it is installed; otherwise a
built-in reader of the same JSON tables (nuscenes-devkit pins numpy < 2).

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

from occworld4d.datasets.geometry import pose_matrix, vad_command_from_offsets
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
    """The part of ``nuscenes.NuScenes`` this converter uses, read from the JSON tables.

    ``get(table, token)``, ``.scene``, and the reverse indices the devkit adds:
    ``sample['data'][channel]`` (keyframe sample_data tokens) and ``sample['anns']``.
    """

    def __init__(self, version: str, dataroot: str):
        self.dataroot = dataroot
        folder = osp.join(dataroot, version)
        self._index = {}
        for table in TABLES:
            path = osp.join(folder, f'{table}.json')
            if not osp.isfile(path):
                raise FileNotFoundError(f'{path}: nuScenes table not found (expected the '
                                        f'{version} tables: {", ".join(TABLES)})')
            with open(path) as f:
                records = json.load(f)
            setattr(self, table, records)
            self._index[table] = {r['token']: r for r in records}
        for sample in self.sample:
            sample['data'], sample['anns'] = {}, []
        for sd in self.sample_data:
            cs = self.get('calibrated_sensor', sd['calibrated_sensor_token'])
            sd['channel'] = self.get('sensor', cs['sensor_token'])['channel']
            if sd.get('is_key_frame'):
                self.get('sample', sd['sample_token'])['data'][sd['channel']] = sd['token']
        for ann in self.sample_annotation:
            inst = self.get('instance', ann['instance_token'])
            ann['category_name'] = self.get('category', inst['category_token'])['name']
            self.get('sample', ann['sample_token'])['anns'].append(ann['token'])

    def get(self, table: str, token: str) -> dict:
        try:
            return self._index[table][token]
        except KeyError:
            raise KeyError(f'token {token!r} not in table {table!r}') from None


def open_nuscenes(version: str, dataroot: str):
    try:
        from nuscenes.nuscenes import NuScenes
    except ImportError:
        return NuScenesTables(version, dataroot)
    return NuScenes(version=version, dataroot=dataroot, verbose=False)


def scene_samples(nusc, scene: dict) -> List[dict]:
    """Keyframes of a scene in time order (following ``next`` links)."""
    samples, token = [], scene['first_sample_token']
    while token:
        sample = nusc.get('sample', token)
        samples.append(sample)
        token = sample['next']
    return samples


def ego_offsets(lidar_poses: np.ndarray, i: int, fut_steps: int = 6, his_steps: int = 2):
    """VAD ego trajectories of frame ``i`` from global-from-lidar poses (T, 4, 4).

    Returns:
        fut (fut_steps, 2) per-step displacements of the LiDAR origin in frame i's LiDAR
        axes (zero past the scene end), fut_mask (fut_steps,), his (his_steps, 2) the steps
        into frame i (oldest first; zero before the scene start).
    """
    num = len(lidar_poses)
    inv = np.linalg.inv(lidar_poses[i])
    pos = (inv[None] @ lidar_poses[:, :, 3:4])[:, :2, 0]  # (T, 2) origins in lidar_i axes
    steps = np.diff(pos, axis=0)  # (T - 1, 2): steps[j] = pos[j + 1] - pos[j]
    fut = np.zeros((fut_steps, 2), np.float32)
    mask = np.zeros(fut_steps, np.float32)
    n_fut = min(fut_steps, num - 1 - i)
    if n_fut > 0:
        fut[:n_fut], mask[:n_fut] = steps[i:i + n_fut], 1
    his = np.zeros((his_steps, 2), np.float32)
    for k in range(his_steps):
        j = i - his_steps + k
        if j >= 0:
            his[k] = steps[j]
    return fut, mask, his


def command_onehot(fut: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """VAD one-hot (right, left, straight) of a future trajectory."""
    from occworld4d.datasets.geometry import LEFT, RIGHT
    cmd = vad_command_from_offsets(fut, mask)
    onehot = np.zeros(3, np.float32)
    onehot[0 if cmd == RIGHT else 1 if cmd == LEFT else 2] = 1
    return onehot


def _yaw(rotation) -> float:
    mat = pose_matrix(rotation, [0, 0, 0])
    return float(np.arctan2(mat[1, 0], mat[0, 0]))


def annotation_velocity(nusc, ann: dict, max_dt: float = 1.5) -> np.ndarray:
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


def sample_boxes(nusc, sample: dict, global_from_lidar: np.ndarray) -> Dict[str, np.ndarray]:
    """Boxes of a keyframe in its LiDAR frame (VAD / mmdet3d-0.x convention)."""
    lidar_from_global = np.linalg.inv(global_from_lidar)
    boxes, names, vels, n_lidar, n_radar = [], [], [], [], []
    for token in sample['anns']:
        ann = nusc.get('sample_annotation', token)
        center = lidar_from_global @ np.append(ann['translation'], 1.0)
        box_rot = lidar_from_global[:3, :3] @ pose_matrix(ann['rotation'], [0, 0, 0])[:3, :3]
        yaw = np.arctan2(box_rot[1, 0], box_rot[0, 0])
        w, l, h = ann['size']
        boxes.append([*center[:3], w, l, h, -yaw - np.pi / 2])
        velo = np.append(annotation_velocity(nusc, ann), 0.0)
        vels.append((lidar_from_global[:3, :3] @ velo)[:2])
        names.append(NAME_MAPPING.get(ann['category_name'], ann['category_name']))
        n_lidar.append(ann.get('num_lidar_pts', 0))
        n_radar.append(ann.get('num_radar_pts', 0))
    n_lidar, n_radar = np.asarray(n_lidar, np.int64), np.asarray(n_radar, np.int64)
    return dict(gt_boxes=np.asarray(boxes, np.float64).reshape(-1, 7),
                gt_names=np.asarray(names, dtype='<U32'),
                gt_velocity=np.asarray(vels, np.float64).reshape(-1, 2),
                num_lidar_pts=n_lidar, num_radar_pts=n_radar,
                valid_flag=(n_lidar + n_radar) > 0)


def scene_infos(nusc, scene: dict, occ_prefix: str = './data/nuscenes/gts',
                fut_steps: int = 6, his_steps: int = 2) -> List[dict]:
    """Frame infos of one scene (see the module docstring for the fields)."""
    samples = scene_samples(nusc, scene)
    ego, lidar2ego, records = [], [], []
    for sample in samples:
        sd = nusc.get('sample_data', sample['data']['LIDAR_TOP'])
        pose = nusc.get('ego_pose', sd['ego_pose_token'])
        cs = nusc.get('calibrated_sensor', sd['calibrated_sensor_token'])
        ego.append(pose_matrix(pose['rotation'], pose['translation']))
        lidar2ego.append(pose_matrix(cs['rotation'], cs['translation']))
        records.append((sd, pose, cs))
    global_from_lidar = np.stack(ego) @ np.stack(lidar2ego)  # (T, 4, 4)
    infos = []
    for i, (sample, (sd, pose, cs)) in enumerate(zip(samples, records)):
        fut, mask, his = ego_offsets(global_from_lidar, i, fut_steps, his_steps)
        info = dict(
            token=sample['token'], scene_token=scene['token'], scene_name=scene['name'],
            prev=sample['prev'], next=sample['next'], timestamp=int(sample['timestamp']),
            frame_idx=i, lidar_token=sd['token'],
            lidar_path=osp.join(getattr(nusc, 'dataroot', ''), sd['filename']),
            ego2global_translation=list(pose['translation']),
            ego2global_rotation=list(pose['rotation']),
            lidar2ego_translation=list(cs['translation']),
            lidar2ego_rotation=list(cs['rotation']),
            gt_ego_fut_trajs=fut, gt_ego_fut_masks=mask,
            gt_ego_fut_cmd=command_onehot(fut, mask), gt_ego_his_trajs=his,
            fut_valid_flag=bool(mask.all()),
            occ_path=f'{occ_prefix}/{scene["name"]}/{sample["token"]}')
        info.update(sample_boxes(nusc, sample, global_from_lidar[i]))
        infos.append(info)
    return infos


def create_infos(nusc, scene_names: Optional[List[str]] = None,
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--dataroot', required=True)
    parser.add_argument('--version', default='v1.0-trainval')
    parser.add_argument('--out', required=True, help='output pkl')
    parser.add_argument('--scenes', nargs='*', help='scene names, or one .json file with a '
                        'list of names (default: all scenes of the version)')
    parser.add_argument('--occ-prefix', default='./data/nuscenes/gts')
    parser.add_argument('--flat', action='store_true', help='write a flat list of frames')
    args = parser.parse_args(argv)
    names = args.scenes
    if names and len(names) == 1 and names[0].endswith('.json'):
        with open(names[0]) as f:
            names = json.load(f)
    nusc = open_nuscenes(args.version, args.dataroot)
    infos = create_infos(nusc, names or None, args.occ_prefix)
    write_infos(args.out, infos, args.version, args.flat)
    print(f'wrote {sum(len(v) for v in infos.values())} frames of {len(infos)} scenes to '
          f'{args.out}')


if __name__ == '__main__':
    main()
