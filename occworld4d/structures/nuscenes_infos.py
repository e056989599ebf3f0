"""The one reader of nuScenes info pkls (temporal infos, converter output, mmdet3d v1.1).

Every consumer (``Occ3DNuScenesDataset``, the BEV layout rasterizer, the camera loader,
``tools/dataset_converters/create_layout_cache.py``) goes through these two functions:

* :func:`load_info_frames` -> every frame dict in file order (for per-frame consumers);
* :func:`load_nuscenes_infos` -> ``{scene: [frame, ...]}`` in time order (for sequences).

Accepted layouts of the pickled object:

* OccWorld's scene dict ``{'infos': {scene_name: [frame, ...]}, 'metadata': ...}``
  (``nuscenes_infos_*_temporal_v3_scene.pkl``);
* the flat VAD-style list ``{'infos': [frame, ...]}`` whose frames carry ``scene_token`` (the
  real 81-frame v1.0-mini example) or ``scene_name`` (our converter with ``--flat``);
* mmdetection3d v1.1 info files ``{'metainfo': ..., 'data_list': [frame, ...]}``;
* a bare list of frame dicts.

Each returned frame is a shallow copy of the stored dict with two private keys added:
``_scene`` (scene name: ``scene_name``, else the folder of ``occ_path``, else
``scene_token``; for mmdet3d files without either, the file's stem; absent if unknown) and,
for mmdet3d v1.1 files, ``_categories`` (label id -> class name from ``metainfo``).
"""
import os.path as osp
import pickle
from collections import OrderedDict
from typing import Dict, List, Optional

import numpy as np

from .errors import DataFormatError
from .geometry import pose_matrix, pose_problem


def frame_scene_name(info: dict) -> Optional[str]:
    """Scene of a frame: ``scene_name``, else the folder in ``occ_path``, else ``scene_token``."""
    if info.get('scene_name'):
        return str(info['scene_name'])
    occ_path = str(info.get('occ_path') or '').replace('\\', '/').rstrip('/')
    if occ_path:
        parts = occ_path.split('/')
        if len(parts) >= 2:
            return parts[-2]
    if info.get('scene_token'):
        return str(info['scene_token'])
    return None


def _read_pickle(path: str):
    if not osp.isfile(path):
        raise DataFormatError(f'{path}: info file not found')
    try:
        with open(path, 'rb') as f:
            return pickle.load(f)
    except Exception as err:
        raise DataFormatError(f'{path}: not a readable pickle ({type(err).__name__}: '
                              f'{err})') from err


def _check_frame(path: str, where: str, frame) -> dict:
    if not isinstance(frame, dict):
        raise DataFormatError(f'{path}: {where} is a {type(frame).__name__}, expected a frame '
                              'dict')
    return frame


def load_info_frames(path: str) -> List[dict]:
    """Every frame of an info pkl, in file order (scene dicts: scene by scene).

    Raises:
        DataFormatError: naming ``path`` when the file is missing, not a pickle, or not one of
            the layouts in the module docstring (expected vs found keys / type).
    """
    data = _read_pickle(path)
    if isinstance(data, dict) and 'data_list' in data and 'infos' not in data:
        frames = data['data_list']
        if not isinstance(frames, (list, tuple)):
            raise DataFormatError(f'{path}: "data_list" is a {type(frames).__name__}, expected '
                                  'a list of frame dicts (mmdet3d v1.1 infos)')
        metainfo = data.get('metainfo') or {}
        cats = {int(v): str(k) for k, v in (metainfo.get('categories') or {}).items()}
        stem = osp.splitext(osp.basename(path))[0]
        out = []
        for i, frame in enumerate(frames):
            frame = _check_frame(path, f'data_list[{i}]', frame)
            out.append(dict(frame, _scene=frame_scene_name(frame) or stem, _categories=cats))
        return out
    if isinstance(data, dict) and 'infos' in data:
        infos = data['infos']
    elif isinstance(data, (list, tuple)):
        infos = data
    else:
        found = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise DataFormatError(f'{path}: expected a dict with key "infos" (OccWorld / VAD '
                              'temporal infos) or "data_list" (mmdet3d v1.1), or a list of '
                              f'frames; found {found}')
    if isinstance(infos, dict):  # scene name -> time-ordered frames
        out = []
        for scene, frames in infos.items():
            if not isinstance(frames, (list, tuple)):
                raise DataFormatError(f'{path}: infos[{scene!r}] is a '
                                      f'{type(frames).__name__}, expected a list of frames')
            for i, frame in enumerate(frames):
                frame = _check_frame(path, f'infos[{scene!r}][{i}]', frame)
                out.append(dict(frame, _scene=str(scene)))
        return out
    if isinstance(infos, (list, tuple)):
        out = []
        for i, frame in enumerate(infos):
            frame = dict(_check_frame(path, f'infos[{i}]', frame))
            scene = frame_scene_name(frame)
            if scene is not None:
                frame['_scene'] = scene
            out.append(frame)
        return out
    raise DataFormatError(f'{path}: "infos" is a {type(infos).__name__}, expected a list of '
                          'frames or a dict of scene -> list')


def load_nuscenes_infos(path: str) -> Dict[str, List[dict]]:
    """Frames of an info pkl grouped by scene: ``{scene: [frame, ...]}``.

    Scene dicts keep their order; frames of flat lists are grouped by ``_scene`` (first
    appearance order) and sorted by ``timestamp`` when every frame has one. Every frame must
    carry a ``token`` and a known scene.
    """
    scenes: Dict[str, List[dict]] = OrderedDict()
    for i, frame in enumerate(load_info_frames(path)):
        if frame.get('_scene') is None:
            raise DataFormatError(f'{path}: frame {i} has no scene_name, occ_path or '
                                  f'scene_token; cannot tell its scene (keys '
                                  f'{sorted(frame)[:12]})')
        scenes.setdefault(frame['_scene'], []).append(frame)
    for scene, frames in scenes.items():
        if all('timestamp' in f for f in frames):
            frames.sort(key=lambda f: f['timestamp'])  # stable: scene-dict order kept on ties
        for i, frame in enumerate(frames):
            if 'token' not in frame:
                raise DataFormatError(f'{path}: frame {i} of scene {scene!r} has no "token"; '
                                      f'keys {sorted(frame)[:12]}')
    return scenes


def info_pose(info: dict, where: str = 'info') -> Optional[np.ndarray]:
    """World-from-ego (4, 4) of a frame (quaternion + translation, or a 4 x 4); else None.

    Raises:
        DataFormatError: naming ``where`` when the pose fields have the wrong size.
    """
    try:
        if 'ego2global_rotation' in info and 'ego2global_translation' in info:
            rot = np.asarray(info['ego2global_rotation'], np.float64)
            trans = np.asarray(info['ego2global_translation'], np.float64)
            if rot.shape not in ((4,), (3, 3)) or trans.shape != (3,):
                raise ValueError(f'ego2global_rotation {rot.shape} / translation {trans.shape}, '
                                 'expected (4,) quaternion w, x, y, z or (3, 3) / (3,)')
            pose = pose_matrix(rot, trans)
            problem = pose_problem(pose)
            if problem:
                raise ValueError(f'ego pose from ego2global_rotation {rot.tolist()} / '
                                 f'translation {trans.tolist()} {problem}')
            return pose
        for key in ('global_from_ego', 'ego2global'):
            if key in info:
                mat = np.asarray(info[key], np.float64)
                if mat.size != 16:
                    raise ValueError(f'{key} has shape {mat.shape}, expected (4, 4)')
                problem = pose_problem(mat.reshape(4, 4))
                if problem:
                    raise ValueError(f'{key} {problem}')
                return mat.reshape(4, 4)
    except (TypeError, ValueError) as err:
        raise DataFormatError(f'{where}: {err}') from err
    return None
