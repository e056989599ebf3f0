"""One GPU check, ready to run: training step, MFU, forecasting FPS, sampling time, flash-attn.

Run on one H100 / H200 (about 5 to 8 minutes) and keep the JSON it writes:

    pip install -e .          # plus `pip install flash-attn` for the flash-attn rows
    python tools/analysis_tools/gpu_check.py --out work_dirs/gpu_check.json

    python tools/analysis_tools/gpu_check.py --dry-run --out /tmp/gpu_check.json  # CPU, tiny

Sections of the JSON (every row carries its own ``error`` instead of numbers when it failed
or timed out, so one failure never loses the rest; the file is rewritten atomically after
every row):

* ``env``: device, torch / CUDA versions, flash-attn availability, the peak bf16 FLOP/s used
  for MFU and where it came from (``PEAK_BF16_FLOPS``, dense, no sparsity).
* ``train``: the eight reference-size models (DynamicCity HexPlane VAE + DiT-DC/2, OccSora
  VQ tokenizer + DiT, OccWorld VQ-VAE + world model, UniScene VAE + OccDiT) built from the
  reference-size configs through the registry. One step = ``model.train_step`` (data
  preprocessor, forward, loss, backward, optimizer step) with the config's optimizer under
  bf16 autocast (``AmpOptimWrapper(dtype='bfloat16')`` on CUDA, ``CPUAutocastOptimWrapper``
  on CPU); synthetic inputs of the shapes the configs train on (class ids for the
  tokenizers and the world model, latents + conditions for the DiTs, i.e. training from a
  latent cache), batch = the config's per-GPU batch (batch 1 is retried after an
  out-of-memory error). s/iter = median of ``--iters`` steps after ``--warmup``
  (``occworld4d.evaluation.benchmark.time_iterations``); peak memory = CUDA
  ``max_memory_allocated`` of the timed steps (``MemoryProbe``; CPU: peak RSS).
* ``mfu``: the three DiTs. FLOPs of one training step counted with
  ``torch.utils.flop_counter.FlopCounterMode`` (forward + backward of ``model.loss``: matmuls,
  convolutions, attention), divided by the measured s/iter and by the peak bf16 FLOP/s.
* ``forecast``: OccWorld at the reference size, 5 history -> 6 future frames, batch 1, the
  KV-cached roll-out (``benchmark_forecast.py``'s measuring code), fp32 and bf16 autocast.
  FPS = future frames / seconds of the whole forecast (encode + roll-out + decode); the
  OccWorld definition (1 / (encode + roll-out / F)) too. Goal >= 60 FPS; the OccWorld paper
  reports 14.8 FPS, I2-World 37.
* ``sampling``: seconds per scene of the three generators: ``--sample-steps`` (25) DPM-Solver++
  (2M) steps with classifier-free guidance (scale 4, every condition the denoiser takes), then
  ``decode_latent``; bf16 autocast.
* ``flash_attn``: the three DiTs' training step and one denoiser forward with every
  ``occworld4d.models.layers.Attention`` on ``backend='sdpa'`` versus ``'flash'``; rows say
  why they are skipped when flash-attn is not installed or the device is not CUDA.

``--dry-run`` runs every section with the tiny synthetic-city configs on the CPU (1 step, no
warm-up, 4 solver steps) in well under a minute: the test suite's check of this tool.
"""
import argparse
import contextlib
import gc
import importlib.util
import os
import os.path as osp
import platform
import signal
import statistics
import sys
import time
import traceback

import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from torch.utils.flop_counter import FlopCounterMode

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

# (name, reference-size config, tiny config of the dry run)
MODELS_8 = [
    ('dynamiccity_vae', 'configs/dynamiccity/dynamiccity_vae_8xb1-100e_carlasc.py',
     'configs/dynamiccity/dynamiccity_vae_tiny_synthetic-city.py'),
    ('dynamiccity_dit', 'configs/dynamiccity/dynamiccity_dit_8xb16-1200e_carlasc.py',
     'configs/dynamiccity/dynamiccity_dit_tiny_synthetic-city.py'),
    ('occsora_vq', 'configs/occsora/occsora_vqvae_8xb1-150e_occ3d-nuscenes.py',
     'configs/occsora/occsora_vqvae_tiny_synthetic-city.py'),
    ('occsora_dit', 'configs/occsora/occsora_dit_8xb2-1200k_occ3d-nuscenes.py',
     'configs/occsora/occsora_dit_tiny_synthetic-city.py'),
    ('occworld_vqvae', 'configs/occworld/occworld_vqvae_8xb1-200e_occ3d-nuscenes.py',
     'configs/occworld/occworld_vqvae_tiny_synthetic-city.py'),
    ('occworld_wm', 'configs/occworld/occworld_wm_8xb1-200e_occ3d-nuscenes.py',
     'configs/occworld/occworld_wm_tiny_synthetic-city.py'),
    ('uniscene_vae', 'configs/uniscene/uniscene_vae_8xb1-200e_occ3d-nuscenes.py',
     'configs/uniscene/uniscene_vae_tiny_synthetic-city.py'),
    ('uniscene_dit', 'configs/uniscene/uniscene_dit_8xb4-1200e_occ3d-nuscenes.py',
     'configs/uniscene/uniscene_dit_tiny_synthetic-city.py'),
]
DITS = ('dynamiccity_dit', 'occsora_dit', 'uniscene_dit')

# Dense (no structured sparsity) bf16 tensor-core peak per GPU, FLOP/s, from NVIDIA's data
# sheets; the first name fragment found in torch.cuda.get_device_name() wins.
PEAK_BF16_FLOPS = [
    ('H200', 989e12),
    ('H100 PCIe', 756e12),
    ('H100 NVL', 835e12),
    ('H100', 989e12),  # SXM5
    ('H800', 989e12),
    ('A100', 312e12),
    ('L40S', 362e12),
]

# Seconds each section may take in the full run (no limit in the dry run); a row that would
# start after its section's budget is recorded as skipped, a row still running when the
# budget is spent (at least 30 s after it started) is interrupted (SIGALRM) and recorded.
SECTION_BUDGET_S = dict(train=180, mfu=30, forecast=45, sampling=60, flash_attn=45)


class RowTimeout(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise :class:`RowTimeout` in the main thread after ``seconds`` (SIGALRM, Unix)."""
    if seconds is None or not hasattr(signal, 'SIGALRM'):
        yield
        return

    def handler(signum, frame):
        raise RowTimeout(f'timed out after {seconds:.0f} s')

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, max(float(seconds), 1.0))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--out', default='work_dirs/gpu_check.json', help='JSON to write')
    p.add_argument('--dry-run', action='store_true',
                   help='tiny configs on the CPU, 1 step: checks the tool, measures nothing')
    p.add_argument('--device', default=None, help='default: cuda if available, else cpu')
    p.add_argument('--iters', type=int, default=None, help='timed steps (default 10; dry 1)')
    p.add_argument('--warmup', type=int, default=None, help='untimed steps (default 3; dry 0)')
    p.add_argument('--batch-size', type=int, default=None,
                   help='training batch of every model (default: each config\'s per-GPU batch)')
    p.add_argument('--sample-steps', type=int, default=None, help='solver steps (default 25; '
                   'dry 4)')
    p.add_argument('--peak-tflops', type=float, default=None,
                   help='peak bf16 TFLOP/s for MFU (default: from PEAK_BF16_FLOPS by device name)')
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    p.add_argument('--dtype', choices=['bfloat16', 'float32'], default=None,
                   help='bfloat16 = bf16 autocast (default); float32 (default of --dry-run: '
                   'a CPU without bf16 units emulates bf16, many times slower)')
    p.add_argument('--sections', nargs='+', default=list(SECTION_BUDGET_S),
                   choices=list(SECTION_BUDGET_S), help='subset of sections to run')
    p.add_argument('--models', nargs='+', default=None, choices=[m[0] for m in MODELS_8],
                   help='subset of the eight models (train / mfu / sampling / flash rows)')
    return p.parse_args(argv)


# ----------------------------------------------------------------------------- helpers
def _load_tool(name: str):
    """Import tools/analysis_tools/<name>.py (a script, not a package) as a module."""
    path = osp.join(ROOT, 'tools', 'analysis_tools', name + '.py')
    spec = importlib.util.spec_from_file_location(f'_occworld4d_tool_{name}', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def peak_bf16_flops(device: torch.device, override_tflops=None):
    """(FLOP/s, source text) of the device's dense bf16 peak, or (None, why) if unknown."""
    if override_tflops:
        return override_tflops * 1e12, f'--peak-tflops {override_tflops}'
    if device.type != 'cuda':
        return None, 'no peak for a CPU (give --peak-tflops)'
    name = torch.cuda.get_device_name(device)
    for frag, flops in PEAK_BF16_FLOPS:
        if frag.lower() in name.lower():
            return flops, f'PEAK_BF16_FLOPS[{frag!r}] (dense bf16, NVIDIA data sheet)'
    return None, f'{name!r} not in PEAK_BF16_FLOPS (give --peak-tflops)'


DTYPE = dict(amp=True)  # set by main(): False = float32 everywhere (--dtype float32)


def autocast(device: torch.device, enabled: bool = True):
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16,
                          enabled=enabled and DTYPE['amp'])


# --dry-run only: the tiny HexPlane VAE made smaller still (its CPU step dominated the run)
DRY_MODEL_OVERRIDES = {
    'configs/dynamiccity/dynamiccity_vae_tiny_synthetic-city.py':
        dict(num_frames=4, spatial_size=(16, 16, 8)),
}


def load_model_cfg(path: str, dry_run: bool = False):
    cfg = Config.fromfile(osp.join(ROOT, path))
    mcfg = cfg.model.copy()
    if dry_run:
        mcfg.update(DRY_MODEL_OVERRIDES.get(path, {}))
    if 'tokenizer' in mcfg:  # stage 2: random frozen tokenizer, no checkpoint to load
        mcfg['tokenizer_ckpt'] = None
        mcfg['allow_random_tokenizer'] = True
    return cfg, mcfg


def build_model(mcfg, device):
    # local (as every occworld4d import here): the package is importable once the __main__
    # block has put ROOT on sys.path (a bare checkout on a GPU machine, no pip install)
    import occworld4d  # noqa: F401  (registries)
    from occworld4d.registry import MODELS
    with DefaultScope.overwrite_default_scope('occworld4d'):
        return MODELS.build(mcfg).to(device)


def window_frames(cfg) -> int:
    d = cfg.train_dataloader.dataset
    while d.get('num_frames') is None and isinstance(d.get('dataset'), dict):
        d = d['dataset']
    return d.get('num_frames')


def grid_size(cfg, model):
    if hasattr(model, 'spatial_size'):  # HexPlane VAE: a fixed window
        return tuple(model.spatial_size)
    if cfg.get('grid_size'):
        return tuple(cfg.grid_size)
    raise ValueError('gpu_check: cannot tell the voxel grid (no grid_size in the config)')


def dit_conditions(model, B: int, device) -> dict:
    """Synthetic conditions of every key the denoiser of a generator takes."""
    den = model.denoiser
    T = getattr(den, 'num_frames', None)
    cond = {}
    for key in model.condition_keys:
        if key == 'trajectory':
            traj = torch.zeros(B, T, 3, device=device)
            traj[..., 0] = torch.arange(T, device=device, dtype=torch.float32) * 1.5
            cond[key] = traj
        elif key == 'command':
            cond[key] = torch.full((B, ), 1, dtype=torch.long, device=device)
        elif key == 'layout':
            if hasattr(den, 'input_size'):  # UniScene: the latent's H x W (or a multiple)
                h, w = den.input_size
            else:  # RolloutDiT: the voxel grid's BEV
                h, w = model.adapter.voxel_shape[1:3]
            L = getattr(den, 'layout_classes', 12)
            cond[key] = torch.randint(0, L + 1, (B, T, h, w), device=device).float()
        elif key == 'hexplane':
            cond[key] = torch.randn(model.latent_shape(B), device=device)
        else:
            raise ValueError(f'gpu_check: no synthetic input for the condition {key!r}')
    return cond


def synthetic_batch(name, cfg, model, B: int, device, max_frames=None) -> dict:
    """A batch as the dataloader would give it: {'inputs': {...}, 'data_samples': None}."""
    if hasattr(model, 'denoiser'):  # training from a latent cache
        inputs = dict(latent=torch.randn(model.latent_shape(B), device=device) /
                      model.latent_scale)
        inputs.update(dit_conditions(model, B, device))
        return dict(inputs=inputs, data_samples=None)
    K = model.tokenizer.num_classes if hasattr(model, 'transformer') else model.num_classes
    T = model.num_frames if hasattr(model, 'spatial_size') else window_frames(cfg)
    if hasattr(model, 'transformer'):  # world model: at most num_frames + 1
        T = min(T, model.transformer.num_frames + 1)
    if max_frames and not hasattr(model, 'spatial_size'):
        T = min(T, max_frames)
    X, Y, Z = grid_size(cfg, model)
    voxels = torch.randint(0, K, (B, T, X, Y, Z), device=device)
    inputs = dict(voxels=voxels)
    if hasattr(model, 'transformer'):
        traj = torch.zeros(B, T, 3, device=device)
        traj[..., 0] = torch.arange(T, device=device, dtype=torch.float32) * 1.5
        inputs.update(trajectory=traj, command=torch.ones(B, dtype=torch.long, device=device))
    return dict(inputs=inputs, data_samples=None)


def optim_wrapper(model, cfg, device):
    ow = (cfg.get('optim_wrapper') or dict(optimizer=dict(type='AdamW', lr=1e-4))).copy()
    ow.pop('paramwise_cfg', None)
    ow.pop('clip_grad', None)
    ow.pop('loss_scale', None)
    ow.pop('dtype', None)
    if not DTYPE['amp']:
        ow.update(type='OptimWrapper')
    elif device.type == 'cuda':
        ow.update(type='AmpOptimWrapper', dtype='bfloat16')
    else:
        ow.update(type='CPUAutocastOptimWrapper', dtype='bfloat16')
    with DefaultScope.overwrite_default_scope('occworld4d'):
        return build_optim_wrapper(model, ow)


def free(device):
    gc.collect()
    if device.type == 'cuda':
        torch.cuda.empty_cache()


def is_oom(exc) -> bool:
    return isinstance(exc, torch.cuda.OutOfMemoryError) or 'out of memory' in str(exc).lower()


def set_attention_backend(model, backend: str) -> int:
    from occworld4d.models.layers import Attention  # local: see build_model
    n = 0
    for m in model.modules():
        if isinstance(m, Attention):
            m.backend = backend
            n += 1
    return n


# ----------------------------------------------------------------------------- sections
class Check:
    def __init__(self, args):
        self.args = args
        dry = args.dry_run
        self.device = torch.device(args.device or ('cpu' if dry or not torch.cuda.is_available()
                                                   else 'cuda'))
        self.iters = args.iters or (1 if dry else 10)
        self.warmup = args.warmup if args.warmup is not None else (0 if dry else 3)
        self.sample_steps = args.sample_steps or (4 if dry else 25)
        self.models = [m for m in MODELS_8 if not args.models or m[0] in args.models]
        self.result = dict(tool='tools/analysis_tools/gpu_check.py', dry_run=dry,
                           started=time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()))
        self.t0 = time.perf_counter()
        self._trained = {}  # name -> (model, cfg, batch, wrapper) of the DiTs for mfu / flash

    def save(self):
        from occworld4d.utils import save_json_atomic  # local: see build_model
        self.result['elapsed_s'] = round(time.perf_counter() - self.t0, 2)
        out = self.args.out
        if osp.dirname(out):
            os.makedirs(osp.dirname(out), exist_ok=True)
        save_json_atomic(out, self.result)

    def rows(self, section: str, items, fn):
        """Run ``fn(item)`` per item under the section's budget; one dict row per item."""
        budget = None if self.args.dry_run else SECTION_BUDGET_S[section]
        start = time.perf_counter()
        rows = self.result.setdefault(section, {})
        for key, item in items:
            left = None if budget is None else budget - (time.perf_counter() - start)
            if left is not None and left <= 0:
                rows[key] = dict(error=f'skipped: the {section} section\'s budget of '
                                 f'{budget:.0f} s was spent')
                self.save()
                continue
            t = time.perf_counter()
            try:
                with time_limit(None if left is None else max(left, 30.0)):
                    rows[key] = fn(item)
            except Exception as e:  # noqa: BLE001  (one failure never loses the JSON)
                rows[key] = dict(error=f'{type(e).__name__}: {e}'[:2000],
                                 traceback=traceback.format_exc(limit=4)[-2000:])
            rows[key]['wall_s'] = round(time.perf_counter() - t, 2)
            free(self.device)
            self.save()
            print(f'[gpu_check] {section}/{key}: {_brief(rows[key])}', flush=True)

    # -------------------------------------------------------------- env
    def env(self):
        from occworld4d.models.layers import flash_available  # local: see build_model
        dev = self.device
        peak, src = peak_bf16_flops(dev, self.args.peak_tflops)
        env = dict(device=str(dev), torch=torch.__version__, python=platform.python_version(),
                   cuda=torch.version.cuda, num_threads=torch.get_num_threads(),
                   flash_attn_installed=flash_available(), peak_bf16_flops=peak,
                   peak_bf16_flops_source=src, iters=self.iters, warmup=self.warmup,
                   sample_steps=self.sample_steps,
                   dtype='bfloat16 autocast' if DTYPE['amp'] else 'float32',
                   peak_bf16_flops_table={k: v for k, v in PEAK_BF16_FLOPS})
        if dev.type == 'cuda':
            props = torch.cuda.get_device_properties(dev)
            env.update(gpu=torch.cuda.get_device_name(dev),
                       gpu_memory_gib=round(props.total_memory / 2**30, 1),
                       cudnn=torch.backends.cudnn.version())
        else:
            env.update(cpu=platform.processor() or platform.machine())
        self.result['env'] = env
        self.save()

    # -------------------------------------------------------------- train
    def _train_row(self, item, batch_size=None):
        # local: see build_model
        from occworld4d.evaluation.benchmark import MemoryProbe, count_parameters, time_iterations
        name, ref_cfg, tiny_cfg = item
        path = tiny_cfg if self.args.dry_run else ref_cfg
        cfg, mcfg = load_model_cfg(path, self.args.dry_run)
        dev = self.device
        torch.manual_seed(0)
        model = build_model(mcfg, dev).train()
        B = (batch_size or self.args.batch_size or (1 if self.args.dry_run else None)
             or cfg.train_dataloader.get('batch_size', 1))
        try:
            batch = synthetic_batch(name, cfg, model, B, dev,
                                    max_frames=2 if self.args.dry_run else None)
            wrapper = optim_wrapper(model, cfg, dev)
            probe = MemoryProbe(dev)
            probe.start()
            times = time_iterations(lambda: model.train_step(batch, wrapper), self.iters,
                                    self.warmup, dev)
            mem = probe.peak()
        except Exception as e:  # noqa: BLE001
            if is_oom(e) and B > 1 and batch_size is None:
                del model
                free(dev)
                row = self._train_row(item, batch_size=1)
                row['note'] = f'batch {B} ran out of memory; batch 1 measured'
                return row
            raise
        med = statistics.median(times)
        inputs = {k: list(v.shape) for k, v in batch['inputs'].items()}
        row = dict(config=path, model=type(model).__name__, batch_size=B, inputs=inputs,
                   sec_per_iter=med, sec_per_iter_all=times, samples_per_sec=B / med,
                   peak_mem_mib=mem['peak_mb'], peak_mem_kind=mem['kind'],
                   params=count_parameters(model)['total']['total'],
                   trainable_params=count_parameters(model)['total']['trainable'])
        if name in DITS:
            self._trained[name] = (model, cfg, batch, wrapper, path)
        return row

    def train(self):
        self.rows('train', [(m[0], m) for m in self.models], self._train_row)

    # -------------------------------------------------------------- mfu
    def _mfu_row(self, name):
        if name not in self._trained:
            raise RuntimeError(f'no training row of {name} to divide by (train section '
                               'failed or not run)')
        model, cfg, batch, wrapper, path = self._trained[name]
        train = self.result['train'][name]
        data = model.data_preprocessor(batch, True)
        counter = FlopCounterMode(display=False)
        with counter:
            with autocast(self.device):
                losses = model(**data, mode='loss')
            total = sum(v for k, v in losses.items() if k.startswith('loss'))
            total.backward()
        model.zero_grad(set_to_none=True)
        flops = counter.get_total_flops()
        peak, src = peak_bf16_flops(self.device, self.args.peak_tflops)
        achieved = flops / train['sec_per_iter']
        return dict(flops_per_step=flops, batch_size=train['batch_size'],
                    sec_per_iter=train['sec_per_iter'], achieved_flops=achieved,
                    peak_bf16_flops=peak, peak_source=src,
                    mfu=None if peak is None else achieved / peak,
                    counted='FlopCounterMode: forward + backward of model.loss (matmul, conv, '
                            'attention); the optimizer step and element-wise ops are not counted')

    def mfu(self):
        self.rows('mfu', [(n, n) for n in DITS if any(m[0] == n for m in self.models)],
                  self._mfu_row)

    # -------------------------------------------------------------- forecast
    def _forecast_row(self, amp):
        bf = _load_tool('benchmark_forecast')
        path = 'configs/occworld/' + ('occworld_wm_tiny_synthetic-city.py' if self.args.dry_run
                                      else 'occworld_wm_8xb1-200e_occ3d-nuscenes.py')
        hf = 2 if self.args.dry_run else None
        ns = argparse.Namespace(config=path, child='cached', history=hf, future=hf, batch=1,
                                device=str(self.device), threads=torch.get_num_threads(),
                                iters=max(self.iters // 2, 1) if not self.args.dry_run else 1,
                                warmup=min(self.warmup, 2))
        with autocast(self.device, enabled=amp):
            r = bf._child(ns)
        r.pop('codes', None)
        r['dtype'] = 'bfloat16 autocast' if amp and DTYPE['amp'] else 'float32'
        r['goal_fps'] = 60
        r['reference_fps'] = dict(occworld_paper=14.8, i2_world=37)
        return r

    def forecast(self):
        self.rows('forecast', [('kv_cached_fp32', False), ('kv_cached_bf16', True)],
                  self._forecast_row)

    # -------------------------------------------------------------- sampling
    def _sample_row(self, item):
        # local: see build_model
        from occworld4d.evaluation.benchmark import MemoryProbe, time_iterations
        name, ref_cfg, tiny_cfg = item
        path = tiny_cfg if self.args.dry_run else ref_cfg
        cfg, mcfg = load_model_cfg(path, self.args.dry_run)
        dev = self.device
        torch.manual_seed(0)
        model = self._trained.get(name, (None, ))[0] or build_model(mcfg, dev)
        model.eval()
        cond = dit_conditions(model, 1, dev)
        cond.pop('hexplane', None)  # a scene from scratch, not a roll-out continuation
        steps = self.sample_steps

        def draw():
            return model.sample(1, cond=cond, sampler='dpmpp_2m', num_steps=steps,
                                guidance_scale=4.0)

        probe = MemoryProbe(dev)
        probe.start()
        with torch.no_grad(), autocast(dev):
            t_s = time_iterations(draw, max(self.iters // 3, 1), min(self.warmup, 1), dev)
            x0 = draw()
            t_d = time_iterations(lambda: model.decode_latent(x0).argmax(1),
                                  max(self.iters // 3, 1), min(self.warmup, 1), dev)
        mem = probe.peak()
        s, d = statistics.median(t_s), statistics.median(t_d)
        model.train()
        return dict(config=path, sampler='dpmpp_2m', steps=steps, guidance_scale=4.0,
                    conditions=sorted(cond), sample_s=s, decode_s=d, sec_per_scene=s + d,
                    peak_mem_mib=mem['peak_mb'], peak_mem_kind=mem['kind'])

    def sampling(self):
        self.rows('sampling', [(m[0], m) for m in self.models if m[0] in DITS],
                  self._sample_row)

    # -------------------------------------------------------------- flash-attn
    def _flash_row(self, name):
        from occworld4d.evaluation.benchmark import time_iterations  # local: see build_model
        from occworld4d.models.layers import flash_available  # local: see build_model
        if name not in self._trained:
            raise RuntimeError(f'no trained {name} model (train section failed or not run)')
        model, cfg, batch, wrapper, path = self._trained[name]
        dev = self.device
        can_flash = flash_available() and dev.type == 'cuda'
        row = dict(flash_attn_installed=flash_available(), device=str(dev))
        data = model.data_preprocessor(batch, True)
        x0 = model.latents_from_inputs(data['inputs'])
        t = torch.full((x0.shape[0], ), 500, device=dev, dtype=torch.long)
        cond = model.conditions_from_inputs(data['inputs'])

        def fwd():
            with torch.no_grad(), autocast(dev):
                return model.denoiser(x0, t, **cond)

        for backend in ('sdpa', 'flash'):
            if backend == 'flash' and not can_flash:
                row['flash'] = None
                row['skipped'] = ('flash-attn is not installed' if not flash_available()
                                  else 'flash-attn needs a CUDA device')
                continue
            row['attention_layers'] = set_attention_backend(model, backend)
            train = time_iterations(lambda: model.train_step(batch, wrapper), self.iters,
                                    self.warmup, dev)
            fw = time_iterations(fwd, self.iters, self.warmup, dev)
            row[backend] = dict(train_sec_per_iter=statistics.median(train),
                                forward_sec=statistics.median(fw))
        set_attention_backend(model, 'auto')
        if row.get('flash'):
            row['train_speedup_flash_vs_sdpa'] = (row['sdpa']['train_sec_per_iter'] /
                                                  row['flash']['train_sec_per_iter'])
            row['forward_speedup_flash_vs_sdpa'] = (row['sdpa']['forward_sec'] /
                                                    row['flash']['forward_sec'])
        return row

    def flash_attn(self):
        self.rows('flash_attn', [(n, n) for n in DITS if any(m[0] == n for m in self.models)],
                  self._flash_row)


def _brief(row: dict) -> str:
    if 'error' in row:
        return 'ERROR ' + row['error'].splitlines()[0][:200]
    keys = ('sec_per_iter', 'peak_mem_mib', 'mfu', 'fps', 'sec_per_scene',
            'train_speedup_flash_vs_sdpa', 'skipped')
    return ', '.join(f'{k}={row[k]:.4g}' if isinstance(row[k], float) else f'{k}={row[k]}'
                     for k in keys if k in row and row[k] is not None) or 'ok'


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    elif args.dry_run:
        torch.set_num_threads(1)
    DTYPE['amp'] = (args.dtype or ('float32' if args.dry_run else 'bfloat16')) == 'bfloat16'
    check = Check(args)
    check.env()
    for section in SECTION_BUDGET_S:  # train first: mfu / flash_attn reuse its models
        if section in args.sections:
            getattr(check, section)()
    check._trained.clear()
    check.result['finished'] = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())
    check.save()
    print(f'[gpu_check] wrote {args.out} in {check.result["elapsed_s"]:.1f} s')
    return check.result


if __name__ == '__main__':
    sys.path.insert(0, ROOT)
    main()
