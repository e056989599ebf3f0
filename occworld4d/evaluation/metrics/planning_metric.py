"""``PlanningMetric``: L2 error of planned ego trajectories at 1 / 2 / 3 s, and forecast FPS."""
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log

from occworld4d.registry import METRICS


def _field(sample, key: str):
    if isinstance(sample, dict):
        return sample.get(key)
    return getattr(sample, key) if key in sample else None


@METRICS.register_module()
class PlanningMetric(BaseMetric):
    """Planning L2 in the ST-P3 / UniAD / OccWorld convention.

    For each sample, ``d_k = || pred_k - gt_k ||_2`` (metres) for the future steps
    k = 1..F (xy positions, both in the same frame, e.g. relative to the last history
    frame). At horizon s seconds (n = s x frames_per_second steps):

    * ``L2_<s>s`` = mean over samples of the mean of d_1..d_n (the average displacement up
      to the horizon: what OccWorld and ST-P3 report as "L2 at s");
    * ``L2_<s>s_final`` = mean over samples of d_n (the error at the horizon);
    * ``L2_avg`` = mean of the ``L2_<s>s``.

    With the model's per-sample wall time (``time_key``), ``FPS`` = forecast frames / seconds
    over the whole set. Results are per-sample arrays, gathered across ranks by mmengine.

    Args:
        frames_per_second: frame rate of the forecast steps (2 for Occ3D-nuScenes).
        horizons: horizons in seconds ((1, 2, 3)).
        pred_key, gt_key: sample fields with (F, 2+) trajectories.
        time_key: sample field with the forecast seconds (None to skip FPS).
        collect_device, prefix: as :class:`mmengine.evaluator.BaseMetric`.
    """

    default_prefix = 'plan'

    def __init__(self, frames_per_second: float = 2.0, horizons: Sequence[float] = (1, 2, 3),
                 pred_key: str = 'pred_ego_trajectory', gt_key: str = 'gt_ego_trajectory',
                 time_key: Optional[str] = 'forecast_seconds', collect_device: str = 'cpu',
                 prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        if frames_per_second <= 0:
            raise ValueError(f'PlanningMetric: frames_per_second must be > 0, got '
                             f'{frames_per_second}')
        steps = [s * frames_per_second for s in horizons]
        if not horizons or any(n < 1 or abs(n - round(n)) > 1e-6 for n in steps):
            raise ValueError(f'PlanningMetric: horizons {tuple(horizons)} s at '
                             f'{frames_per_second} Hz must be whole numbers (>= 1) of steps')
        self.fps_data = float(frames_per_second)
        self.horizons = tuple(horizons)
        self.steps = tuple(int(round(n)) for n in steps)
        self.pred_key, self.gt_key, self.time_key = pred_key, gt_key, time_key

    def process(self, data_batch, data_samples: Sequence) -> None:
        """Keep each sample's per-step L2 (F,) and its forecast time."""
        for i, sample in enumerate(data_samples):
            pred, gt = _field(sample, self.pred_key), _field(sample, self.gt_key)
            if pred is None or gt is None:
                missing = self.pred_key if pred is None else self.gt_key
                keys = sorted(sample) if isinstance(sample, dict) else sample.keys()
                raise KeyError(f'PlanningMetric: data sample {i} lacks {missing!r} (keys: '
                               f'{keys}); is the model a forecaster with the future frames '
                               'in the window?')
            pred = torch.as_tensor(pred, dtype=torch.float64).cpu()
            gt = torch.as_tensor(gt, dtype=torch.float64).cpu()
            if pred.ndim != 2 or pred.shape[-1] < 2 or pred.shape[0] != gt.shape[0]:
                raise ValueError(f'PlanningMetric: sample {i} {self.pred_key} '
                                 f'{tuple(pred.shape)} vs {self.gt_key} {tuple(gt.shape)}; '
                                 'expected (F, 2) each')
            dist = (pred[:, :2] - gt[:, :2]).norm(dim=-1).numpy()  # (F,)
            seconds = _field(sample, self.time_key) if self.time_key else None
            self.results.append(dict(l2=dist, seconds=None if seconds is None
                                     else float(seconds)))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        lengths = {len(r['l2']) for r in results}
        if len(lengths) != 1:
            raise ValueError(f'PlanningMetric: samples have different numbers of future '
                             f'steps {sorted(lengths)}')
        l2 = np.stack([r['l2'] for r in results])  # (S, F)
        F = l2.shape[1]
        if max(self.steps) > F:
            raise ValueError(f'PlanningMetric: horizon {max(self.horizons)} s = '
                             f'{max(self.steps)} steps at {self.fps_data} Hz > {F} forecast '
                             'steps')
        out = {}
        for s, n in zip(self.horizons, self.steps):
            tag = f'{s:g}s'
            out[f'L2_{tag}'] = float(l2[:, :n].mean(1).mean())
            out[f'L2_{tag}_final'] = float(l2[:, n - 1].mean())
        out['L2_avg'] = float(np.mean([out[f'L2_{s:g}s'] for s in self.horizons]))
        seconds = [r['seconds'] for r in results]
        if self.time_key and all(t is not None for t in seconds) and sum(seconds) > 0:
            out['FPS'] = float(l2.size / sum(seconds))
        print_log('PlanningMetric (L2 in m, mean up to the horizon | at the horizon): '
                  + ', '.join(f'{s:g}s {out[f"L2_{s:g}s"]:.3f} | {out[f"L2_{s:g}s_final"]:.3f}'
                              for s in self.horizons)
                  + (f'; forecast {out["FPS"]:.2f} frames/s' if 'FPS' in out else ''),
                  logger=MMLogger.get_current_instance())
        return out
