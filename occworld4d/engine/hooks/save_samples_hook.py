"""``SaveOccSamplesHook``: write the test loop's predictions (e.g. generated scenes) as npz."""
import os.path as osp
import re
from typing import Optional, Sequence

import numpy as np
import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook

from occworld4d.registry import HOOKS
from occworld4d.structures import VOCABULARIES
from occworld4d.utils import save_npz_atomic
from occworld4d.visualization import info_from_meta, picture_meta, save_scene_pictures


def _get(sample, key: str):
    if isinstance(sample, dict):
        return sample.get(key)
    return getattr(sample, key) if key in sample else None


def _numpy(value):
    if torch.is_tensor(value):
        return value.detach().cpu().numpy()
    return np.asarray(value)


@HOOKS.register_module()
class SaveOccSamplesHook(Hook):
    """Write every test prediction to ``<work_dir>/<out_dir>/<name>.npz`` (atomically).

    One file per data sample, named after its window (``<scene>_<first frame id>``, as
    in the dataset's metainfo) or, without metainfo, ``rank<r>_batch<b>_<i>``. Keys:
    ``semantics`` = ``pred_semantics`` uint8 (T, X, Y, Z) (what ``tools/visualize.py``
    reads), plus the sample's conditions when present (``command`` (), ``trajectory``
    (T, 3), ``layout``) and ``frame_ids``, and what a later tool needs to draw the scene
    without the config (:func:`occworld4d.visualization.picture_meta`): ``vocabulary``
    (name = palette name), ``class_names``, ``free_label``, ``pc_range``, ``voxel_size`` and
    ``frame_rate``, from the sample's metainfo (the dataset's), else the runner's config.
    With ``save_gt=True`` also ``gt_semantics``. With ``render=True`` each sample also gets
    the pictures of ``tools/visualize.py`` (``<name>_bev.png`` of frame 0 and ``<name>.gif``;
    with ``save_gt``, GT | sample | difference), drawn by
    :func:`occworld4d.visualization.save_scene_pictures`.

    The DynamicCity / OccSora / UniScene generation configs set it as
    ``default_hooks.save_samples`` (see ``configs/_base_/generation_eval.py``), so
    ``tools/test.py`` writes the scenes it scores; ``tools/test.py --sample-dir`` moves them.

    Args:
        out_dir: folder, relative to the runner's work dir (or absolute).
        save_gt: also store the ground truth of the window.
        enabled: switch the hook off without removing it from the config.
        render: also write the pictures (``tools/test.py ... --cfg-options
            default_hooks.save_samples.render=True``).
        mode: picture view, ``'bev'`` or ``'iso'``.
    """

    priority = 'LOW'
    COND_KEYS = ('command', 'trajectory', 'layout')

    def __init__(self, out_dir: str = 'samples', save_gt: bool = False, enabled: bool = True,
                 render: bool = False, mode: str = 'bev'):
        if not out_dir:
            raise ValueError('SaveOccSamplesHook: out_dir must be a non-empty folder name')
        if mode not in ('bev', 'iso'):
            raise ValueError(f'SaveOccSamplesHook: mode must be "bev" or "iso", got {mode!r}')
        self.out_dir, self.save_gt, self.enabled = out_dir, save_gt, enabled
        self.render, self.mode = render, mode
        self.written = 0

    @staticmethod
    def picture_meta(sample, runner, grid_shape) -> dict:
        """The drawing metadata of a sample: its metainfo's, else the runner config's."""
        # local: apis builds on engine (apis.cli imports engine.hooks), not the reverse
        from occworld4d.apis.inferencer import config_picture_meta
        cfg = getattr(runner, 'cfg', None)
        meta = config_picture_meta(cfg, grid_shape) if cfg is not None else {}
        voc = _get(sample, 'vocabulary')
        recorded = picture_meta(voc if voc in VOCABULARIES else None, _get(sample, 'pc_range'),
                                _get(sample, 'voxel_size'), _get(sample, 'frame_rate'),
                                grid_shape)
        meta.update(recorded)
        return meta

    def folder(self, runner) -> str:
        return osp.join(runner.work_dir, self.out_dir)  # an absolute out_dir wins in join

    @staticmethod
    def sample_name(sample, batch_idx: int, i: int) -> str:
        scene, frames = _get(sample, 'scene'), _get(sample, 'frame_ids')
        if scene is not None and frames:
            name = f'{scene}_{frames[0]}'
        else:
            name = f'rank{get_rank()}_batch{batch_idx:05d}_{i}'
        return re.sub(r'[^A-Za-z0-9._-]+', '_', str(name))

    def before_test(self, runner) -> None:
        self.written = 0

    def after_test_iter(self, runner, batch_idx: int, data_batch=None,
                        outputs: Optional[Sequence] = None) -> None:
        if not self.enabled or not outputs:
            return
        folder = self.folder(runner)
        for i, sample in enumerate(outputs):
            pred = _get(sample, 'pred_semantics')
            if pred is None:
                raise KeyError(f'SaveOccSamplesHook: test output {i} of batch {batch_idx} has no '
                               'pred_semantics (the model must return data samples with it)')
            sem = _numpy(pred).astype(np.uint8)
            arrays = dict(semantics=sem)
            arrays.update(self.picture_meta(sample, runner, sem.shape[-3:]))
            for key in self.COND_KEYS:
                value = _get(sample, key)
                if value is not None:
                    arrays[key] = _numpy(value)
            frames = _get(sample, 'frame_ids')
            if frames:
                arrays['frame_ids'] = np.array([str(f) for f in frames])
            if self.save_gt and _get(sample, 'gt_semantics') is not None:
                arrays['gt_semantics'] = _numpy(_get(sample, 'gt_semantics')).astype(np.uint8)
            name = osp.join(folder, self.sample_name(sample, batch_idx, i))
            save_npz_atomic(name + '.npz', **arrays)
            if self.render:
                self.draw(arrays, name)
            self.written += 1

    def draw(self, arrays: dict, prefix: str) -> list:
        """The pictures of one written sample (as tools/visualize.py draws its npz)."""
        sem = arrays['semantics']
        traj = arrays.get('trajectory')
        meta = dict(arrays, trajectory=traj if traj is not None and np.ndim(traj) == 2 and
                    len(traj) >= (sem.shape[0] if sem.ndim == 4 else 1) else None)
        if 'vocabulary' not in meta and 'class_names' not in meta:
            raise ValueError('SaveOccSamplesHook(render=True): neither the samples\' metainfo '
                             'nor the config names a vocabulary; set `vocabulary` in the config')
        info = info_from_meta(meta, sem.shape[-3:])
        gt = arrays.get('gt_semantics')
        if gt is not None and np.shape(gt) != sem.shape:
            gt = gt[-sem.shape[0]:] if gt.shape[1:] == sem.shape[1:] else None  # a forecast
        return save_scene_pictures(sem, info, prefix, self.mode, gt=gt,
                                   title=osp.basename(prefix) + '.npz')

    def after_test(self, runner) -> None:
        if self.enabled and self.written:
            runner.logger.info(f'SaveOccSamplesHook: {self.written} samples written to '
                               f'{self.folder(runner)}')
