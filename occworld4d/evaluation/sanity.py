"""Check a trained feature extractor: how the generation metrics react to known perturbations.

Reference windows come from the config's training dataset with seed 1; the "generated"
windows are the same dataset with seed 2, unchanged (same distribution) or perturbed
(voxel label noise, one class removed, frames shuffled in time, frame 0 repeated). A
useful extractor gives a small FID for the unchanged set and larger values for the
perturbations; TC must drop for shuffled frames and be 1 for a repeated frame.

Example:
    python -m occworld4d.evaluation.sanity \
        configs/evaluation/feature_extractor_2d_1xb2-10e_synthetic-city-tiny.py \
        work_dirs/fe2d/epoch_10.pth --num-scenes 32
"""
import argparse

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.utils import import_modules_from_strings


def _windows(cfg, seed: int, num_scenes: int):
    from occworld4d.registry import DATASETS
    ds = DATASETS.build(dict(cfg.train_dataloader.dataset, seed=seed, num_scenes=num_scenes))
    items = [ds[i] for i in range(len(ds))]
    return (torch.stack([it['inputs']['voxels'] for it in items]),  # (N, T, X, Y, Z)
            torch.stack([it['inputs']['command'] for it in items]))  # (N,)


def perturbations(voxels: torch.Tensor, num_classes: int, free_label: int, drop_class: int,
                  seed: int = 0) -> dict:
    """Named perturbed copies of windows (N, T, X, Y, Z)."""
    g = torch.Generator().manual_seed(seed)
    noisy = voxels.clone()
    flip = torch.rand(voxels.shape, generator=g) < 0.05
    noisy[flip] = torch.randint(0, num_classes, (int(flip.sum()),), generator=g,
                                dtype=noisy.dtype)
    dropped = torch.where(voxels == drop_class, torch.full_like(voxels, free_label), voxels)
    shuffled = voxels[:, torch.randperm(voxels.shape[1], generator=g)]
    repeated = voxels[:, :1].expand_as(voxels).clone()
    return {'unchanged (other seed)': voxels, '5% voxel label noise': noisy,
            f'class {drop_class} removed': dropped, 'frames shuffled in time': shuffled,
            'frame 0 repeated': repeated}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='feature extractor config')
    parser.add_argument('checkpoint')
    parser.add_argument('--num-scenes', type=int, default=32)
    parser.add_argument('--drop-class', type=int, default=10, help='class id to remove')
    args = parser.parse_args(argv)
    cfg = Config.fromfile(args.config)
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.get('default_scope', 'occworld4d'))
    from occworld4d.evaluation import GenerationMetric
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
