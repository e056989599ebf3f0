"""``DataSkipReportHook``: log how many corrupt windows the datasets skipped, per epoch."""
from typing import Dict, Iterator, Optional

from mmengine.hooks import Hook

from occworld4d.registry import HOOKS


def skip_reporting_datasets(dataset) -> Iterator:
    """The datasets under ``dataset`` that report skips (``report_skipped()``), each once.

    Unwraps dataset wrappers: mmengine / torch ``ConcatDataset`` (``.datasets``),
    ``RepeatDataset`` / ``ClassBalancedDataset`` / torch ``Subset`` (``.dataset``), nested
    in any order. A dataset that has ``skip_corrupt=False`` raises on a corrupt window
    instead of skipping it, so it is left out.
    """
    seen, stack = set(), [dataset]
    while stack:
        ds = stack.pop(0)
        if ds is None or id(ds) in seen:
            continue
        seen.add(id(ds))
        if callable(getattr(ds, 'report_skipped', None)):
            if getattr(ds, 'skip_corrupt', True):
                yield ds
            continue
        children = getattr(ds, 'datasets', None)
        if isinstance(children, (list, tuple)):
            stack.extend(children)
        elif getattr(ds, 'dataset', None) is not None:
            stack.append(ds.dataset)


@HOOKS.register_module()
class DataSkipReportHook(Hook):
    """Call ``report_skipped()`` of the train / val / test datasets and log the summary.

    Datasets built with ``skip_corrupt=True`` (``occworld4d/datasets/base.py``) log each
    skipped window when it happens and count the skips of all DataLoader workers (of this
    rank); this hook makes the count visible once per loop: after every training epoch (an
    ``IterBasedTrainLoop`` has one, at its end; ``train_interval`` adds a report every that
    many iterations), after every validation run and at the end of the test. For each such
    dataset it logs the dataset's summary (``report_skipped``: total and distinct errors)
    and one line with the number skipped since the previous report. Datasets without
    ``skip_corrupt`` (they raise on a corrupt window) are ignored; wrappers
    (``ConcatDataset``, ``RepeatDataset``, ...) are unwrapped.

    It is ``default_hooks.data_skip`` in ``configs/_base_/default_runtime.py``;
    ``default_hooks = dict(data_skip=None)`` removes it.

    Args:
        train_interval: optional: also report the training dataset every this many
            iterations (useful for iteration-based training).
    """

    priority = 'VERY_LOW'

    def __init__(self, train_interval: Optional[int] = None):
        if train_interval is not None and (not isinstance(train_interval, int)
                                           or train_interval <= 0):
            raise ValueError(f'DataSkipReportHook: train_interval must be a positive number '
                             f'of iterations or None, got {train_interval!r}')
        self.train_interval = train_interval
        self._last: Dict[tuple, int] = {}  # (phase, id(dataset)) -> total at the last report
        self.reports: Dict[str, int] = {}  # phase -> windows skipped since its previous report

    def report(self, runner, phase: str, when: str) -> int:
        """Report the datasets of the ``phase`` loop; return the skips since the last report."""
        loader = getattr(runner, f'{phase}_dataloader', None)
        new_total = 0
        for ds in skip_reporting_datasets(getattr(loader, 'dataset', None)):
            key = (phase, id(ds))
            total = ds.report_skipped()  # logs the summary: total and the distinct errors
            new = total - self._last.get(key, 0)
            self._last[key] = total
            new_total += new
            runner.logger.info(f'DataSkipReportHook: {phase} dataset {type(ds).__name__}: '
                               f'{new} corrupt window(s) skipped {when}, {total} in total')
        self.reports[phase] = new_total
        return new_total

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self.train_interval and self.every_n_train_iters(runner, self.train_interval):
            self.report(runner, 'train', f'in the last {self.train_interval} iterations')

    def after_train_epoch(self, runner) -> None:
        iter_based = type(runner.train_loop).__name__ == 'IterBasedTrainLoop'
        if not iter_based:
            when = f'in epoch {runner.epoch + 1}'
        else:
            when = 'since the previous report' if self.train_interval else 'in training'
        self.report(runner, 'train', when)

    def after_val_epoch(self, runner, metrics=None) -> None:
        self.report(runner, 'val', 'in this validation')

    def after_test_epoch(self, runner, metrics=None) -> None:
        self.report(runner, 'test', 'in the test')
