"""Check a trained feature extractor: how the generation metrics react to known perturbations.

Reference windows come from the config's training dataset with seed 1; the "generated"
windows are the same dataset with seed 2, unchanged (same distribution) or perturbed
(voxel label noise at 1 / 2 / 5 / 10 %, one class removed (vehicles by default), frames
shuffled in time, frame 0 repeated). A useful extractor gives a small FID for the
unchanged set, FID growing with the noise rate, a clearly larger FID without vehicles or
with a frozen world; TC must drop for shuffled frames and be 1 for a repeated frame.

Example:
    python -m occworld4d.evaluation.sanity \
        configs/evaluation/feature_extractor_2d_1xb2-10e_synthetic-city-tiny.py \
        work_dirs/fe2d/epoch_10.pth --num-scenes 32
"""
import argparse
from typing import Sequence

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.utils import import_modules_from_strings

from occworld4d.evaluation import GenerationMetric
from occworld4d.registry import DATASETS


def _windows(cfg, seed: int, num_scenes: int):
    ds = DATASETS.build(dict(cfg.train_dataloader.dataset, seed=seed, num_scenes=num_scenes))
    items = [ds[i] for i in range(len(ds))]
    return (torch.stack([it['inputs']['voxels'] for it in items]),  # (N, T, X, Y, Z)
            torch.stack([it['inputs']['command'] for it in items]))  # (N,)


def label_noise(voxels: torch.Tensor, rate: float, num_classes: int,
                seed: int = 0) -> torch.Tensor:
    """Copy of ``voxels`` with a fraction ``rate`` of voxels redrawn uniformly from the K
    classes (so (K-1)/K of them change)."""
    g = torch.Generator().manual_seed(seed)
    noisy = voxels.clone()
    flip = torch.rand(voxels.shape, generator=g) < rate
    noisy[flip] = torch.randint(0, num_classes, (int(flip.sum()),), generator=g,
                                dtype=noisy.dtype)
    return noisy


def perturbations(voxels: torch.Tensor, num_classes: int, free_label: int, drop_class: int,
                  seed: int = 0, noise_rates: Sequence[float] = (0.01, 0.02, 0.05, 0.1)
                  ) -> dict:
    """Named perturbed copies of windows (N, T, X, Y, Z).

    Keys: ``'unchanged (other seed)'``, ``'<p>% voxel label noise'`` for every rate,
    ``'class <c> removed'`` (set to free), ``'frames shuffled in time'``,
    ``'frame 0 repeated'``.
    """
    g = torch.Generator().manual_seed(seed)
    out = {'unchanged (other seed)': voxels}
    for rate in noise_rates:
        out[f'{100 * rate:g}% voxel label noise'] = label_noise(voxels, rate, num_classes, seed)
    out[f'class {drop_class} removed'] = torch.where(
        voxels == drop_class, torch.full_like(voxels, free_label), voxels)
    out['frames shuffled in time'] = voxels[:, torch.randperm(voxels.shape[1], generator=g)]
    out['frame 0 repeated'] = voxels[:, :1].expand_as(voxels).clone()
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='feature extractor config')
    parser.add_argument('checkpoint')
    parser.add_argument('--num-scenes', type=int, default=32)
    parser.add_argument('--drop-class', type=int, default=10,
                        help='class id to remove (10 = vehicle in dynamiccity_carlasc)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, e.g. model.local_parts=[]')
    args = parser.parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.get('default_scope', 'occworld4d'))
    real, command = _windows(cfg, 1, args.num_scenes)
    other, _ = _windows(cfg, 2, args.num_scenes)
    metric = GenerationMetric(extractor=cfg.model.to_dict(), checkpoint=args.checkpoint,
                              kid_subsets=50, kid_subset_size=100, is_splits=4)
    table = {}
    for name, fake in perturbations(other, cfg.model.num_classes, cfg.model.free_label,
                                    args.drop_class).items():
        metric.results.clear()
        metric.process(None, [dict(pred_semantics=f, gt_semantics=r)
                              for f, r in zip(fake, real)])
        table[name] = metric.compute_metrics(metric.results)
        print(f'{name:<26}' + '  '.join(f'{k}={v:.4f}' for k, v in table[name].items()))
    probs = metric.extractor.extract(real.to(next(metric.extractor.parameters()).device))
    acc = float((probs['probs'].argmax(-1).cpu() == command).float().mean())
    print(f'command accuracy on the reference windows: {acc:.3f}; extractor version '
          f'{metric.version}')
    table['command_accuracy'] = acc
    return table


if __name__ == '__main__':
    main()
