"""UniScene's BEV layout condition of a window, built in the data pipeline.

Output ``results['layout']``: float32 (T, h, w), one map a frame in the UniScene convention of
:func:`occworld4d.rendering.bev_layout.uniscene_layout`: 0 = empty, 1 + the index of the top
layout channel (``LAYOUT_CHANNELS``: objects over map) elsewhere, max-pooled to ``out_size``
(or at the full BEV resolution with ``out_size=None``; the OccDiT max-pools it itself).

Sources:
    ``'occupancy'``  the window's own semantic voxels (CarlaSC, Occ3D-Waymo, the synthetic
                     city: no boxes there): a column's channels are the class groups it holds.
    ``'infos'``      3D boxes (``gt_boxes`` / ``gt_names``, or mmdet3d v1.1 ``instances``) of the
                     nuScenes info frames whose tokens are the window's ``frame_ids``.
    ``'cache'``      per-frame files of ``tools/dataset_converters/create_layout_cache.py``:
                     ``{cache_dir}/{scene}/{frame_id}.npz`` (key ``layout``, bool (C, H, W));
                     the way to bring in map masks rasterized elsewhere.

Map masks: nuScenes' HD map needs the map-expansion package, which occworld4d does not
require; ``map_from_occupancy`` names layout channels (e.g. ``('road', 'sidewalk',
'ground')``) that are taken from the window's occupancy instead and OR-ed into a box layout.
That is a stand-in for the map (the flat classes of the ground truth), said so in the config.

Place it after spatial augmentations (it reads the final voxels) and before PackOccInputs.
"""
import os.path as osp
from typing import Dict, Optional, Sequence

import numpy as np

from occworld4d.registry import TRANSFORMS
from occworld4d.rendering.bev_layout import (LAYOUT_CHANNELS, BEVLayoutRasterizer,
                                             collapse_layout, layout_from_occupancy,
                                             uniscene_layout)
from occworld4d.structures.nuscenes_infos import load_info_frames
from occworld4d.utils.io import safe_file_name

SOURCES = ('occupancy', 'infos', 'cache')


@TRANSFORMS.register_module()
class UniSceneLayout:
    """Add ``layout`` float32 (T, h, w) to the window dict.

    Args:
        source: 'occupancy', 'infos' or 'cache' (see the module docstring).
        out_size: side of the pooled map (50 for Occ3D's 200 x 200 -> the 50 x 50 latent);
            None = the BEV grid's own resolution.
        ann_file: info pkl for ``source='infos'`` (absolute, or relative to ``data_root``).
        data_root: prefix of ``ann_file`` / ``cache_dir``.
        cache_dir: layout cache folder for ``source='cache'``.
        map_from_occupancy: layout channel names OR-ed in from the window's occupancy
            (a stand-in for map masks; 'infos' / 'cache' only).
        x_range, y_range, resolution: the BEV grid of 'infos' (Occ3D's by default).
        vocabulary: the voxels' vocabulary (default: ``results['vocabulary']``).
    """

    def __init__(self, source: str = 'occupancy', out_size: Optional[int] = 50,
                 ann_file: Optional[str] = None, data_root: str = '',
                 cache_dir: Optional[str] = None, map_from_occupancy: Sequence[str] = (),
                 x_range=(-40.0, 40.0), y_range=(-40.0, 40.0), resolution: float = 0.4,
                 vocabulary: Optional[str] = None):
        if source not in SOURCES:
            raise ValueError(f'UniSceneLayout: source must be one of {SOURCES}, got {source!r}')
        if source == 'infos' and not ann_file:
            raise ValueError('UniSceneLayout(source="infos") needs ann_file (an info pkl)')
        if source == 'cache' and not cache_dir:
            raise ValueError('UniSceneLayout(source="cache") needs cache_dir')
        channels = LAYOUT_CHANNELS
        bad = [c for c in map_from_occupancy if c not in channels]
        if bad:
            raise ValueError(f'UniSceneLayout: map_from_occupancy names unknown channels {bad}; '
                             f'expected some of {channels}')
        if map_from_occupancy and source == 'occupancy':
            raise ValueError('UniSceneLayout: map_from_occupancy only adds to a box layout '
                             '(source "infos" or "cache")')
        self.source = source
        self.out_size = int(out_size) if out_size else None
        self.ann_file = osp.join(data_root, ann_file) if ann_file and data_root and \
            not osp.isabs(ann_file) else ann_file
        self.cache_dir = osp.join(data_root, cache_dir) if cache_dir and data_root and \
            not osp.isabs(cache_dir) else cache_dir
        self.map_from_occupancy = tuple(map_from_occupancy)
        self.rasterizer = BEVLayoutRasterizer(x_range, y_range, resolution)
        self.vocabulary = vocabulary
        self._infos: Optional[Dict[str, dict]] = None

    # ------------------------------------------------------------- sources
    def _frame_infos(self) -> Dict[str, dict]:
        if self._infos is None:
            if not osp.isfile(self.ann_file):
                raise FileNotFoundError(f'UniSceneLayout: info file {self.ann_file!r} not found')
            infos = load_info_frames(self.ann_file)
            self._infos = {str(i.get('token', i.get('sample_idx'))): i for i in infos}
        return self._infos

    def _from_infos(self, results: dict) -> np.ndarray:
        infos = self._frame_infos()
        out = []
        for fid in results['frame_ids']:
            info = infos.get(str(fid))
            if info is None:
                raise KeyError(f'UniSceneLayout: frame {fid!r} of scene '
                               f'{results.get("scene")!r} is not in {self.ann_file}')
            out.append(self.rasterizer.from_info(info, source=f'{self.ann_file} frame {fid}'))
        return np.stack(out)  # (T, C, H, W)

    def _from_cache(self, results: dict) -> np.ndarray:
        out = []
        for fid in results['frame_ids']:
            # the names create_layout_cache.py writes (safe file names of scene and token)
            scene = str(results.get('scene', '') or '')
            path = osp.join(self.cache_dir, *([safe_file_name(scene)] if scene else []),
                            safe_file_name(fid, 'frame id') + '.npz')
            if not osp.isfile(path):
                raise FileNotFoundError(
                    f'UniSceneLayout: layout file {path} not found (write the cache with '
                    f'tools/dataset_converters/create_layout_cache.py)')
            with np.load(path) as z:
                if 'layout' not in z:
                    raise KeyError(f'{path}: no "layout" array; found {list(z.keys())}')
                lay = z['layout'].astype(bool)
            expected = (len(self.rasterizer.channels), ) + self.rasterizer.grid.shape
            if lay.shape != expected:
                raise ValueError(f'{path}: layout of shape {lay.shape}, expected {expected}')
            out.append(lay)
        return np.stack(out)  # (T, C, H, W)

    def _vocabulary(self, results: dict) -> str:
        voc = self.vocabulary or results.get('vocabulary')
        if voc is None:
            raise KeyError('UniSceneLayout: the window has no "vocabulary" key; pass '
                           'vocabulary=...')
        return voc

    def _from_occupancy(self, results: dict) -> np.ndarray:
        if 'semantics' not in results:
            raise KeyError(f'UniSceneLayout: the window has no "semantics"; found '
                           f'{sorted(results)}')
        return layout_from_occupancy(results['semantics'], self._vocabulary(results))

    # --------------------------------------------------------------- call
    def __call__(self, results: dict) -> dict:
        if self.source == 'occupancy':
            layout = self._from_occupancy(results)  # (T, C, X, Y)
        else:
            if 'frame_ids' not in results:
                raise KeyError('UniSceneLayout: the window has no "frame_ids" (frame tokens)')
            layout = self._from_infos(results) if self.source == 'infos' else \
                self._from_cache(results)  # (T, C, H, W)
            if self.map_from_occupancy:
                occ = self._from_occupancy(results)
                if occ.shape[-2:] != layout.shape[-2:]:
                    raise ValueError(f'UniSceneLayout: voxel grid {occ.shape[-2:]} differs from '
                                     f'the BEV grid {layout.shape[-2:]}')
                for name in self.map_from_occupancy:
                    c = self.rasterizer.channels.index(name)
                    layout[:, c] |= occ[:, c]
        num_t = len(results['semantics']) if 'semantics' in results else len(layout)
        if len(layout) != num_t:
            raise ValueError(f'UniSceneLayout: {len(layout)} layout frames for a window of '
                             f'{num_t} frames')
        if self.out_size:
            sem = uniscene_layout(layout, self.out_size)  # (T, out, out)
        else:
            sem = collapse_layout(layout).float()  # (T, H, W)
        results['layout'] = sem.numpy().astype(np.float32)
        return results

    def __repr__(self):
        return (f'{type(self).__name__}(source={self.source!r}, out_size={self.out_size}, '
                f'map_from_occupancy={self.map_from_occupancy})')
