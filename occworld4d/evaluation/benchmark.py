"""Speed, memory and parameter counts of a model / dataset built from a config.

The command-line front ends are ``tools/analysis_tools/benchmark.py`` and
``tools/analysis_tools/count_params.py``; the functions here do the work so tests can
call them in-process. The helpers under "inputs" and "subprocesses" are shared by
the tools that measure each setting in a fresh process (benchmark_tokenizer.py,
benchmark_forecast.py).
"""
import contextlib
import inspect
import json
import os
import os.path as osp
import platform
import statistics
import subprocess
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.dataset import default_collate, pseudo_collate
from mmengine.optim import OptimWrapper, build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.utils import import_modules_from_strings
from torch import nn

from occworld4d.registry import DATASETS, MODELS
from occworld4d.utils import real_data_root
from occworld4d.utils.procfs import (process_cpu_seconds, process_peak_rss_mb,  # noqa: F401
                                     proc_status_kb, reset_peak_rss)

TASKS = ('train', 'infer', 'sample', 'data')


# ---------------------------------------------------------------------------- parameters
def count_parameters(model: nn.Module) -> Dict[str, Dict[str, int]]:
    """Parameters per top-level submodule: {name: {total, trainable, frozen}} + 'total'.

    Parameters registered directly on the model (not in a child) appear as '(own)'.
    Shared parameters are counted once, in the first child that holds them.
    """
    rows: Dict[str, Dict[str, int]] = {}
    seen = set()

    def add(name, params):
        total = trainable = 0
        for p in params:
            if id(p) in seen:
                continue
            seen.add(id(p))
            total += p.numel()
            trainable += p.numel() if p.requires_grad else 0
        rows[name] = dict(total=total, trainable=trainable, frozen=total - trainable)

    for name, child in model.named_children():
        add(name, child.parameters())
    add('(own)', model.parameters(recurse=False))
    if rows['(own)']['total'] == 0:
        del rows['(own)']
    rows['total'] = {k: sum(r[k] for r in rows.values()) for k in ('total', 'trainable',
                                                                  'frozen')}
    return rows


def format_param_table(rows: Dict[str, Dict[str, int]]) -> str:
    """Fixed-width text table of :func:`count_parameters`' result."""
    width = max(12, max(len(n) for n in rows) + 2)
    lines = [f'{"module":<{width}}{"total":>14}{"trainable":>14}{"frozen":>14}']
    for name, r in rows.items():
        if name == 'total':
            lines.append('-' * (width + 42))
        lines.append(f'{name:<{width}}{r["total"]:>14,}{r["trainable"]:>14,}{r["frozen"]:>14,}')
    return '\n'.join(lines)


# ---------------------------------------------------------------------------- memory
class MemoryProbe:
    """Peak memory over a region: CUDA max allocated, or CPU peak RSS (VmHWM)."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == 'cuda'

    def start(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.scope = 'timed iterations'
        else:
            self.scope = 'timed iterations' if reset_peak_rss() else 'whole process'

    def peak(self) -> Dict[str, object]:
        if self.cuda:
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated() / 2**20
            return dict(kind='cuda_max_allocated', peak_mb=peak, scope=self.scope)
        hwm = proc_status_kb('VmHWM')
        return dict(kind='cpu_peak_rss', peak_mb=None if hwm is None else hwm / 1024,
                    scope=self.scope)


# ---------------------------------------------------------------------------- inputs
# One real Occ3D-nuScenes frame of the shared sample data (relative to ``real_data_root()``).
REAL_OCC3D_FRAME = ('occ3d_nuscenes', 'gts', 'scene-1077', '29796060110c4163b07f06eff4af0753',
                    'labels.npz')


def real_or_random_clip(batch: int, frames: int, size: Sequence[int],
                        num_classes: int) -> Tuple[torch.Tensor, str]:
    """A (B, T, X, Y, Z) int64 clip of class ids to time a model on, and where it came from.

    The real Occ3D-nuScenes frame (``REAL_OCC3D_FRAME``) repeated over B and T when the shared
    sample data is present and the model has its vocabulary and grid (18 classes,
    200 x 200 x 16); otherwise class ids drawn from torch's global generator (seed it first).
    """
    X, Y, Z = size
    frame = osp.join(real_data_root(), *REAL_OCC3D_FRAME)
    if num_classes == 18 and (X, Y, Z) == (200, 200, 16) and osp.isfile(frame):
        sem = torch.from_numpy(np.load(frame)['semantics'].astype(np.int64))  # (X, Y, Z)
        return sem.expand(batch, frames, X, Y, Z).contiguous(), 'real Occ3D frame, repeated'
    return torch.randint(0, num_classes, (batch, frames, X, Y, Z)), 'random class ids'


# ---------------------------------------------------------------------------- subprocesses
def run_json_child(cmd: List[str], threads: int, what: str) -> dict:
    """Run ``cmd`` (a measuring child process) with ``threads`` OpenMP / MKL threads.

    Returns:
        The JSON object the child printed as its last stdout line.

    Raises:
        SystemExit: naming ``what`` with the child's exit code and stderr tail if it failed.
    """
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f'{what} failed (exit {out.returncode}):\n{out.stderr[-3000:]}')
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------- timing
def time_iterations(fn: Callable[[], object], iters: int, warmup: int,
                    device: torch.device) -> List[float]:
    """Run ``fn`` ``warmup`` times untimed, then ``iters`` times; seconds of each timed run."""
    sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return times


def _collate_fn(loader_cfg):
    name = (loader_cfg.get('collate_fn') or {}).get('type', 'pseudo_collate')
    fns = dict(default_collate=default_collate, pseudo_collate=pseudo_collate)
    if name not in fns:
        raise ValueError(f'benchmark: unsupported collate_fn {name!r}; expected {sorted(fns)}')
    return fns[name]


def _sample_call(model, data, batch_size: int, decode: bool = True):
    """(callable, name) of what the 'sample' task times.

    A generator with ``sample`` gets the arguments it accepts among ``inputs``,
    ``data_samples``, ``batch_size``, ``num_samples`` and ``cond`` (the batch's conditions,
    from ``model.conditions_from_inputs`` when it has one, so guidance runs as in
    generation). If it also has ``decode_latent`` and ``decode`` is True, the latents are
    decoded too (a scene, not a latent, is what sampling produces). Without ``sample``:
    ``mode='predict'``.
    """
    fn = getattr(model, 'sample', None)
    if not callable(fn):
        return (lambda: model(**data, mode='predict')), 'predict'
    params = inspect.signature(fn).parameters
    avail = dict(inputs=data['inputs'], data_samples=data.get('data_samples'),
                 batch_size=batch_size, num_samples=batch_size)
    if 'cond' in params and callable(getattr(model, 'conditions_from_inputs', None)):
        inputs = data['inputs']
        if callable(getattr(model, 'split_context', None)):
            inputs = model.split_context(inputs)
        avail['cond'] = model.conditions_from_inputs(inputs)
    kwargs = {k: v for k, v in avail.items() if k in params and v is not None}
    dec = getattr(model, 'decode_latent', None)
    if decode and callable(dec):
        return (lambda: dec(fn(**kwargs))), 'sample+decode_latent'
    return (lambda: fn(**kwargs)), 'sample'


def run_benchmark(cfg, task: str, iters: int = 10, warmup: int = 2,
                  batch_size: Optional[int] = None, device: str = 'cpu',
                  decode: bool = True) -> Dict[str, object]:
    """Benchmark ``task`` for the model / dataset of ``cfg`` (an mmengine Config).

    Tasks: 'train' = ``model.train_step`` (forward + loss + backward + optimizer step)
    with the config's optim wrapper (AdamW 1e-4 if none); 'infer' = ``model.val_step``;
    'sample' = the model's ``sample`` method if it has one (followed by ``decode_latent``
    when the model has it and ``decode`` is True; the decoding alone is also timed as
    ``decode_sec_per_iter``), else ``mode='predict'``;
    'data' = ``dataset[i]`` (one sample per iteration). One fixed batch is reused so
    the model tasks exclude data loading.

    Returns:
        JSON-serialisable dict: seconds per iteration (median of ``iters`` after
        ``warmup``; all timings too), samples per second, peak memory, parameters.
    """
    if task not in TASKS:
        raise ValueError(f'benchmark: unknown task {task!r}; expected one of {TASKS}')
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.get('default_scope', 'occworld4d'))
    dev = torch.device(device)
    dataset, loader_cfg = _benchmark_dataset(cfg, task)
    bs = batch_size or loader_cfg.get('batch_size', 1)
    result = dict(task=task, device=str(dev), batch_size=bs, iters=iters, warmup=warmup,
                  torch=torch.__version__, python=platform.python_version(),
                  num_threads=torch.get_num_threads(), dataset=type(dataset).__name__,
                  dataset_len=len(dataset))
    if task == 'data':
        probe = MemoryProbe(dev)
        counter = iter(range(10**12))
        probe.start()
        times = time_iterations(lambda: dataset[next(counter) % len(dataset)], iters, warmup,
                                dev)
        per_sample = 1
    else:
        model = MODELS.build(cfg.model).to(dev)
        result['model'] = type(model).__name__
        result['params'] = count_parameters(model)
        batch = _collate_fn(loader_cfg)([dataset[i % len(dataset)] for i in range(bs)])
        fn, data = _model_task(cfg, task, model, batch, bs, decode, result)
        probe = MemoryProbe(dev)
        probe.start()
        with torch.no_grad() if task != 'train' else contextlib.nullcontext():
            times = time_iterations(fn, iters, warmup, dev)
        per_sample = bs
    memory = probe.peak()  # of the timed iterations only
    if task == 'sample' and result.get('sample_fn') == 'sample+decode_latent':
        with torch.no_grad():  # the decoder alone, on one drawn latent batch
            latent = _sample_call(model, data, bs, decode=False)[0]()
            dec = time_iterations(lambda: model.decode_latent(latent), iters, min(warmup, 1),
                                  dev)
        result.update(decode_sec_per_iter=statistics.median(dec), decode_sec_per_iter_all=dec)
    med = statistics.median(times)
    result.update(sec_per_iter=med, sec_per_iter_all=times,
                  samples_per_sec=per_sample / med if med > 0 else float('inf'),
                  memory=memory, pid=os.getpid())
    return result


def _benchmark_dataset(cfg, task: str):
    """(dataset, loader config) of the split ``task`` reads: train for 'train', else val
    when the config has one."""
    loader_key = 'train_dataloader' if task == 'train' or not cfg.get('val_dataloader') \
        else 'val_dataloader'
    loader_cfg = cfg.get(loader_key)
    if loader_cfg is None:
        raise KeyError(f'benchmark: config has no {loader_key} (needed to build the data)')
    dataset = DATASETS.build(loader_cfg['dataset'])
    if len(dataset) == 0:
        raise ValueError(f'benchmark: {loader_key}.dataset is empty')
    return dataset, loader_cfg


def _model_task(cfg, task: str, model, batch, batch_size: int, decode: bool, result: dict):
    """(the callable timed for a model task, the preprocessed batch or None); the model is
    put in train / eval mode and ``result['sample_fn']`` set for 'sample'."""
    if task == 'train':
        model.train()
        if cfg.get('optim_wrapper'):
            wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
        else:
            wrapper = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-4))
        return (lambda: model.train_step(batch, wrapper)), None
    model.eval()
    if task == 'infer':
        return (lambda: model.val_step(batch)), None
    data = model.data_preprocessor(batch, False)
    fn, result['sample_fn'] = _sample_call(model, data, batch_size, decode)
    return fn, data
