"""``OccVisualizer``: mmengine Visualizer that draws occupancy samples to its backends."""
from typing import Optional

import numpy as np
from mmengine.visualization import Visualizer

from occworld4d.registry import VISUALIZERS
from occworld4d.structures import get_vocabulary

from .io import save_frames, save_png, side_by_side, tile_rows
from .render import render_sequence


def _get(sample, key):
    """Field of an OccDataSample or of its ``to_dict()`` form (None when absent)."""
    if isinstance(sample, dict):
        return sample.get(key)
    return getattr(sample, key, None) if key in sample else None


def _meta(sample) -> dict:
    if isinstance(sample, dict):
        return sample
    return sample.metainfo


def _render_kwargs(vocabulary: str, mode: str, scale: int, voxel_px: int,
                   height_shading: bool) -> dict:
    voc = get_vocabulary(vocabulary)
    kw = dict(palette=vocabulary, free_label=voc.free_label)
    if mode == 'bev':
        kw.update(scale=scale, height_shading=height_shading)
    else:
        kw.update(voxel_px=voxel_px)
    return kw


def _sequences(data_sample, draw_gt: bool, draw_pred: bool, vocabulary: str, mode: str,
               max_frames: Optional[int], **style):
    """Rendered frames of GT / prediction (lists of images) and their titles."""
    vocabulary = _meta(data_sample).get('vocabulary') or vocabulary
    kw = _render_kwargs(vocabulary, mode, **style)
    seqs, titles = [], []
    for key, title, on in (('gt_semantics', 'GT', draw_gt), ('pred_semantics', 'pred', draw_pred)):
        value = _get(data_sample, key)
        if on and value is not None:
            seqs.append(render_sequence(value, mode, max_frames, **kw))
            titles.append(title)
    if not seqs:
        raise ValueError('data sample has neither gt_semantics nor pred_semantics to draw')
    return seqs, titles


def draw_occ_sample(data_sample, vocabulary: str = 'occ3d_nuscenes', mode: str = 'bev',
                    max_frames: Optional[int] = 8, draw_gt: bool = True, draw_pred: bool = True,
                    scale: int = 2, voxel_px: int = 2, height_shading: bool = True
                    ) -> np.ndarray:
    """One image of a sample: rows GT / prediction, columns frames (uint8 (H, W, 3)).

    ``data_sample`` is an OccDataSample or its ``to_dict()``; its metainfo ``vocabulary``
    wins over the argument.
    """
    seqs, titles = _sequences(data_sample, draw_gt, draw_pred, vocabulary, mode, max_frames,
                              scale=scale, voxel_px=voxel_px, height_shading=height_shading)
    return tile_rows(seqs, titles)


def occ_animation_frames(data_sample, vocabulary: str = 'occ3d_nuscenes', mode: str = 'bev',
                         draw_gt: bool = True, draw_pred: bool = True, scale: int = 2,
                         voxel_px: int = 2, height_shading: bool = True) -> list:
    """One image per frame with GT and prediction side by side (for GIF / MP4)."""
    seqs, titles = _sequences(data_sample, draw_gt, draw_pred, vocabulary, mode, None,
                              scale=scale, voxel_px=voxel_px, height_shading=height_shading)
    return [side_by_side(list(frames), titles) for frames in zip(*seqs)]


@VISUALIZERS.register_module()
class OccVisualizer(Visualizer):
    """Render ground truth and prediction of an occupancy window as one image.

    The image has one row per drawn field (GT, prediction) and one column per frame
    (at most ``max_frames``, evenly subsampled). It goes to every configured backend
    (LocalVisBackend, TensorboardVisBackend, WandbVisBackend) through ``add_image``.

    Args:
        vocabulary: vocabulary name used when a sample carries none in its metainfo.
        mode: 'bev' or 'iso'.
        max_frames: frames per row.
        scale: BEV pixels per voxel. voxel_px: iso pixels per voxel edge.
        height_shading: BEV height shading.
        Other args: as :class:`mmengine.visualization.Visualizer`.
    """

    def __init__(self, name: str = 'visualizer', vis_backends: Optional[list] = None,
                 save_dir: Optional[str] = None, vocabulary: str = 'occ3d_nuscenes',
                 mode: str = 'bev', max_frames: int = 8, scale: int = 2, voxel_px: int = 2,
                 height_shading: bool = True, **kwargs):
        super().__init__(name=name, vis_backends=vis_backends, save_dir=save_dir, **kwargs)
        get_vocabulary(vocabulary)  # fail early on a bad name
        if mode not in ('bev', 'iso'):
            raise ValueError(f'OccVisualizer: mode must be "bev" or "iso", got {mode!r}')
        self.vocabulary = vocabulary
        self.mode = mode
        self.max_frames = max_frames
        self.style = dict(scale=scale, voxel_px=voxel_px, height_shading=height_shading)

    def draw_sample(self, data_sample, draw_gt: bool = True, draw_pred: bool = True
                    ) -> np.ndarray:
        """Image (H, W, 3) uint8: rows GT / prediction, columns frames."""
        return draw_occ_sample(data_sample, self.vocabulary, self.mode, self.max_frames,
                               draw_gt, draw_pred, **self.style)

    def animation_frames(self, data_sample, draw_gt: bool = True, draw_pred: bool = True
                         ) -> list:
        """One image per frame: GT and prediction side by side."""
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
