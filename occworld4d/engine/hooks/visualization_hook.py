"""``OccVisualizationHook``: render validation / test predictions to the visualizer backends."""
import os.path as osp
from typing import Optional, Sequence

from mmengine.hooks import Hook

from occworld4d.registry import HOOKS
from occworld4d.visualization import (OccVisualizer, draw_occ_sample, occ_animation_frames,
                                      save_frames)


@HOOKS.register_module()
class OccVisualizationHook(Hook):
    """Draw GT, ``pred_semantics`` and their difference of every ``interval``-th val / test
    batch.

    The picture is the one ``tools/visualize.py`` draws (rows GT / prediction / difference,
    columns frames, with the class legend, scale bar, ego marker, frame index and time;
    :func:`occworld4d.visualization.draw_occ_sample`); it goes to ``runner.visualizer``'s
    backends (LocalVisBackend, TensorboardVisBackend, WandbVisBackend) with
    ``step = runner.iter``. If the runner's visualizer is a plain mmengine Visualizer the
    image is drawn here and passed to its ``add_image``.

    Args:
        interval: draw every ``interval``-th batch (by batch index in the loop).
        max_samples: samples drawn per drawn batch.
        vocabulary: used when a sample has no ``vocabulary`` in its metainfo.
        mode: 'bev' or 'iso'. max_frames: frames per row.
        test_out_dir: if set, test predictions are also written as animations under
            ``<work_dir>/<test_out_dir>/`` (one per sample, GT | prediction | difference
            per frame).
        test_out_format: 'gif' or 'mp4' (needs imageio-ffmpeg).
        draw: switch the hook off without removing it from the config.
    """

    priority = 'NORMAL'

    def __init__(self, interval: int = 50, max_samples: int = 1,
                 vocabulary: str = 'occ3d_nuscenes', mode: str = 'bev', max_frames: int = 8,
                 test_out_dir: Optional[str] = None, draw: bool = True,
                 test_out_format: str = 'gif'):
        if interval < 1:
            raise ValueError(f'OccVisualizationHook: interval must be >= 1, got {interval}')
        self.interval, self.max_samples = interval, max_samples
        self.vocabulary, self.mode, self.max_frames = vocabulary, mode, max_frames
        if test_out_format not in ('gif', 'mp4'):
            raise ValueError(f'OccVisualizationHook: test_out_format must be "gif" or "mp4", '
                             f'got {test_out_format!r}')
        self.test_out_dir, self.draw, self.test_out_format = test_out_dir, draw, test_out_format

    def _draw(self, runner, prefix: str, batch_idx: int, outputs: Sequence) -> None:
        if not self.draw or batch_idx % self.interval != 0 or not outputs:
            return
        vis = runner.visualizer
        for i, sample in enumerate(list(outputs)[:self.max_samples]):
            if isinstance(vis, OccVisualizer):
                image = vis.draw_sample(sample)
            else:
                image = draw_occ_sample(sample, self.vocabulary, self.mode, self.max_frames)
            vis.add_image(f'{prefix}_batch{batch_idx}_sample{i}', image, step=runner.iter)

    def after_val_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._draw(runner, 'val', batch_idx, outputs)

    def after_test_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._draw(runner, 'test', batch_idx, outputs)
        if self.draw and self.test_out_dir and outputs:
            for i, sample in enumerate(outputs):
                path = osp.join(runner.work_dir, self.test_out_dir,
                                f'batch{batch_idx:05d}_sample{i}.{self.test_out_format}')
                save_frames(occ_animation_frames(sample, self.vocabulary, self.mode), path)
