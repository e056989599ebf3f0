"""``OccVisualizer``: mmengine Visualizer that draws occupancy samples to its backends."""
from typing import Optional

import numpy as np
from mmengine.visualization import Visualizer

from occworld4d.registry import VISUALIZERS
from occworld4d.structures import get_vocabulary

from .figure import (SceneInfo, auto_scale, compose_grid, frame_label, legend_for,
                     render_difference, render_panel, scene_frames, scene_info)
from .io import save_frames, save_png


def _get(sample, key):
    """Field of an OccDataSample or of its ``to_dict()`` form (None when absent)."""
    if isinstance(sample, dict):
        return sample.get(key)
    return getattr(sample, key, None) if key in sample else None


def _meta(sample) -> dict:
    if isinstance(sample, dict):
        return sample
    return sample.metainfo


def _numpy(value):
    if value is None:
        return None
    if hasattr(value, 'detach'):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def sample_info(data_sample, vocabulary: str, grid_shape) -> SceneInfo:
    """:class:`SceneInfo` of a sample: its metainfo vocabulary (else ``vocabulary``),
    ``pc_range`` / ``voxel_size`` / ``frame_rate`` and its ``trajectory`` when present."""
    meta = _meta(data_sample)
    traj = _numpy(_get(data_sample, 'trajectory'))
    if traj is not None and traj.ndim != 2:
        traj = None
    return scene_info(meta.get('vocabulary') or vocabulary, grid_shape, meta.get('pc_range'),
                      meta.get('voxel_size'), meta.get('frame_rate'), traj)


def _fields(data_sample, draw_gt: bool, draw_pred: bool):
    gt = _numpy(_get(data_sample, 'gt_semantics')) if draw_gt else None
    pred = _numpy(_get(data_sample, 'pred_semantics')) if draw_pred else None
    if gt is None and pred is None:
        raise ValueError('data sample has neither gt_semantics nor pred_semantics to draw')
    gt, pred = (None if a is None else (a[None] if a.ndim == 3 else a) for a in (gt, pred))
    if gt is not None and pred is not None and gt.shape != pred.shape:
        # a forecast: the prediction covers the last frames of the window
        if pred.shape[1:] == gt.shape[1:] and pred.shape[0] < gt.shape[0]:
            gt = gt[gt.shape[0] - pred.shape[0]:]
        else:
            raise ValueError(f'gt_semantics {gt.shape} and pred_semantics {pred.shape} differ')
    return gt, pred


def draw_occ_sample(data_sample, vocabulary: str = 'occ3d_nuscenes', mode: str = 'bev',
                    max_frames: Optional[int] = 8, draw_gt: bool = True, draw_pred: bool = True,
                    scale: Optional[int] = None, voxel_px: Optional[int] = None,
                    height_shading: bool = True, min_size: int = 512,
                    layout: Optional[dict] = None) -> np.ndarray:
    """One picture of a sample: rows GT / prediction / difference, columns frames.

    Every panel has the ego marker and a scale bar; the frame index (and time, with a
    ``frame_rate`` in the metainfo) is above each column, the class legend on the right.
    ``data_sample`` is an OccDataSample or its ``to_dict()``; its metainfo ``vocabulary``
    wins over the argument.
    """
    gt, pred = _fields(data_sample, draw_gt, draw_pred)
    ref = gt if gt is not None else pred
    T = ref.shape[0]
    info = sample_info(data_sample, vocabulary, ref.shape[1:])
    idx = list(range(T))
    if max_frames is not None and T > max_frames:
        idx = [int(i) for i in np.linspace(0, T - 1, max_frames).round()]
    s = (scale if mode == 'bev' else voxel_px) or auto_scale(ref.shape[1:], mode, min_size)
    rows = []
    for name, seq in (('GT', gt), ('pred', pred)):
        if seq is not None:
            rows.append([(f'{name}  {frame_label(info, t, T)}', render_panel(
                seq[t], info, mode, s, height_shading=height_shading, t=t)) for t in idx])
    if gt is not None and pred is not None:
        rows.append([(f'difference  frame {t}', render_difference(gt[t], pred[t], info, mode,
                                                                  s, t)) for t in idx])
    legend, boxes = legend_for(info, compare=len(rows) == 3)
    header = f'{info.vocabulary_name}: ' + ' / '.join(
        n for n, seq in (('GT', gt), ('prediction', pred), ('difference', pred if gt is not
                                                            None else None)) if seq is not None)
    img = compose_grid(rows, legend, header, layout)
    if layout is not None:
        layout['legend_boxes'] = boxes
        layout['scale'] = s
        layout['info'] = info
    return img


def occ_animation_frames(data_sample, vocabulary: str = 'occ3d_nuscenes', mode: str = 'bev',
                         draw_gt: bool = True, draw_pred: bool = True,
                         scale: Optional[int] = None, voxel_px: Optional[int] = None,
                         height_shading: bool = True, min_size: int = 512) -> list:
    """One picture per frame (for GIF / MP4): GT | prediction | difference, or the one
    field drawn, with legend, scale bar, ego marker, frame index and time."""
    gt, pred = _fields(data_sample, draw_gt, draw_pred)
    ref = gt if gt is not None else pred
    info = sample_info(data_sample, vocabulary, ref.shape[1:])
    s = scale if mode == 'bev' else voxel_px
    kw = dict(scale=s, min_size=min_size, height_shading=height_shading)
    if gt is not None and pred is not None:
        return scene_frames(pred, info, mode, gt=gt, **kw)
    return scene_frames(ref, info, mode, **kw)


@VISUALIZERS.register_module()
class OccVisualizer(Visualizer):
    """Render ground truth, prediction and their difference of an occupancy window.

    The image has one row per drawn field (GT, prediction, difference) and one column
    per frame (at most ``max_frames``, evenly subsampled), drawn by
    :func:`draw_occ_sample` (legend, scale bar, ego marker, frame index and time). It goes to every configured backend
    (LocalVisBackend, TensorboardVisBackend, WandbVisBackend) through ``add_image``.

    Args:
        vocabulary: vocabulary name used when a sample carries none in its metainfo.
        mode: 'bev' or 'iso'.
        max_frames: frames per row.
        scale: BEV pixels per voxel. voxel_px: iso pixels per voxel edge (default: enough
            for panels of ``min_size`` pixels).
        height_shading: BEV height shading.
        min_size: smallest panel side in pixels when scale / voxel_px are not given.
        Other args: as :class:`mmengine.visualization.Visualizer`.
    """

    def __init__(self, name: str = 'visualizer', vis_backends: Optional[list] = None,
                 save_dir: Optional[str] = None, vocabulary: str = 'occ3d_nuscenes',
                 mode: str = 'bev', max_frames: int = 8, scale: Optional[int] = None,
                 voxel_px: Optional[int] = None, height_shading: bool = True,
                 min_size: int = 512, **kwargs):
        super().__init__(name=name, vis_backends=vis_backends, save_dir=save_dir, **kwargs)
        get_vocabulary(vocabulary)  # fail early on a bad name
        if mode not in ('bev', 'iso'):
            raise ValueError(f'OccVisualizer: mode must be "bev" or "iso", got {mode!r}')
        self.vocabulary = vocabulary
        self.mode = mode
        self.max_frames = max_frames
        self.style = dict(scale=scale, voxel_px=voxel_px, height_shading=height_shading,
                          min_size=min_size)

    def draw_sample(self, data_sample, draw_gt: bool = True, draw_pred: bool = True
                    ) -> np.ndarray:
        """Image (H, W, 3) uint8: rows GT / prediction / difference, columns frames."""
        return draw_occ_sample(data_sample, self.vocabulary, self.mode, self.max_frames,
                               draw_gt, draw_pred, **self.style)

    def animation_frames(self, data_sample, draw_gt: bool = True, draw_pred: bool = True
                         ) -> list:
        """One image per frame: GT | prediction | difference."""
        return occ_animation_frames(data_sample, self.vocabulary, self.mode, draw_gt,
                                    draw_pred, **self.style)

    def add_datasample(self, name: str, image: Optional[np.ndarray] = None, data_sample=None,
                       draw_gt: bool = True, draw_pred: bool = True, show: bool = False,
                       wait_time: float = 0, out_file: Optional[str] = None, step: int = 0
                       ) -> np.ndarray:
        """Draw ``data_sample`` (image argument unused: occupancy has no input image).

        Without ``out_file`` the image goes to the backends (``add_image``). ``out_file``
        ending in .png writes the image; .gif / .mp4 writes one frame per time step with
        GT and prediction side by side.
        """
        drawn = self.draw_sample(data_sample, draw_gt, draw_pred)
        self.set_image(drawn)
        if show:
            self.show(drawn, win_name=name, wait_time=wait_time)
        if out_file is not None:
            if out_file.lower().endswith('.png'):
                save_png(drawn, out_file)
            else:
                save_frames(self.animation_frames(data_sample, draw_gt, draw_pred), out_file)
        else:
            self.add_image(name, drawn, step)
        return drawn
