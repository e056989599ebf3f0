"""occworld4d against the reference code: a training step or inference, same input, interleaved.

For each row the tool runs our training step (or inference) and the reference implementation's,
each in a fresh Python subprocess (so each peak RSS is its own), alternating ours / reference for
``--rounds`` rounds, and prints

    time ratio   = reference seconds per step / ours        (target >= 2; sampling >= 5)
    memory ratio = our peak RSS / the reference's            (target <= 0.5)

One step = forward + loss + backward (no optimizer step, as the reference step was timed in
issue 16), batch 1 (OccSora DiT: 2, below), ``--threads`` CPU threads, the same input on both
sides (the real Occ3D-nuScenes frame repeated over time when the shared sample data is present
and the row has its grid, else class ids drawn with seed 0: the same tensor on both sides).
Precision: fp32 on both sides; ``--amp`` runs our forward + loss under
``torch.autocast('cpu', dtype=torch.bfloat16)`` (backward outside it; the CPU fast path where
the CPU has AVX512-BF16 / AMX), the reference stays fp32 as it ships; the header line and the
JSON (``precision``) say which. Seconds = median of ``--iters`` timed steps after one warm-up
step, per process; the ratio uses the median over rounds of each side (the per-round ratios
are printed too: on a shared CPU only ratios measured in one run, interleaved, mean anything).
Memory = the process's peak resident set size (``ru_maxrss``: Python + torch + the model + the
step; both sides pay the same interpreter and torch baseline; neither process imports the
other side's code), and the peak RSS of the timed steps alone (``VmHWM`` after resetting it
with ``/proc/self/clear_refs`` once the model is built and warmed up).

Generator rows (DiT): the tokenizer is frozen and random (ours: ``allow_random_tokenizer=True``)
and one forward + loss + backward of the denoiser runs, at the same timestep and noise on both
sides (drawn with seed 0), from what the reference's training script feeds it: a cached
latent (DynamicCity, OccSora: drawn with seed 0; our LatentDiffusion holds its frozen
tokenizer anyway, the reference scripts build none) or the clip encoded in the step by the
frozen VAE (UniScene; the reference adds 0.03 x the frame-0 latent to the noise, as its
training does, ours trains on the plain noise: one addition apart). ``params`` is the trained
network on both sides (generators: the denoiser; ``frozen_tokenizer_params`` apart); the two
sides agree on every row (checked on the checkouts; the test keeps ours at those counts). The
world-model row runs 4 context frames on both sides (the transformer's ``num_frames``).

Rows (``--rows``; default: every row this tool can build). Ours: the config named; the
reference: its own config / training script, imported from the checkout:

    dynamiccity_vae_8x64x64x8     DynamicCity HexPlane VAE, 8 x 64 x 64 x 8 window
    dynamiccity_vae_16x128x128x8  ... at the CarlaSC size (dynamiccity_vae_8xb1-100e_carlasc;
                                  ref: conf/vae/*.yaml)
    dynamiccity_dit               DiT-DC/2 on the 76 x 76 rollout of a 16 x 128 x 128 x 8
                                  window, every condition off (dynamiccity_dit_reference_carlasc;
                                  ref: conf/dit/model/dit.yaml + DiTTrainer.forward_step)
    occsora_vq_8x200x200x16       OccSora 4D VQ tokenizer, 8 frames (the reference trains on
                                  32; no weight depends on T) (occsora_vqvae_8xb1-150e;
                                  ref: config/train_vqvae.py, see the VQ note below)
    occsora_dit                   OccSora trajectory DiT on 128 x 4 x 25 x 25 tokens, batch 2:
                                  the reference's forward hard-codes batch 2
                                  (occsora_dit_reference; ref: train_2.py, DiT-XL/2 default)
    occworld_vqvae_4x200x200x16   OccWorld VQ-VAE, 4 frames of 200 x 200 x 16
                                  (occworld_vqvae_8xb1-200e; ref: config/train_vqvae.py)
    occworld_wm_4+1               OccWorld world model, 4 + 1 frames, frozen random VQ-VAE
                                  (occworld_wm_8xb1-200e; ref: config/occworld.py)
    uniscene_vae_2x200x200x16     UniScene KL-VAE, 2 frames (uniscene_vae_reference;
                                  ref: occupancy_gen/config/train_vae_4_DwT_L_me.py)
    uniscene_dit                  UniScene OccDiT, 5 frames, in-step VAE encode, layout + meta
                                  (uniscene_dit_reference; ref: train_OccDiT.py main())

Inference rows (issue 16's table; no grad, eval mode, random weights: timing, not quality;
``sample_25_steps_cfg`` and ``tokenizer_encode_decode`` name their variants below):

    sample_25_steps_cfg_uniscene     one 5-frame UniScene scene: ours DPM-Solver++ 2M, 25 steps,
                                     CFG 4 on layout + meta (uniscene_dit_reference); ref:
                                     eval_OccDiT.py, create_diffusion('ddim50'),
                                     ddim_sample_loop(forward_with_cfg); + the VAE decode
    sample_25_steps_cfg_dynamiccity  one 16 x 128 x 128 x 8 window: ours DPM-Solver++ 2M, 25
                                     steps, no CFG (the reference conf has no condition: one
                                     network call a step); ref: infer_dit.py, 1000 DDPM steps,
                                     forward_with_cfg on the doubled batch (cfg 4, all dropped);
                                     + the HexPlane VAE decode
    sample_25_steps_cfg_occsora      one 32-frame scene: ours DPM-Solver++ 2M, 25 steps, CFG 4 on
                                     the trajectory; ref: sample.py, 1000 DDPM steps,
                                     p_sample_loop(forward_with_cfg); + the VQ-VAE decode
    forecast_rollout                 OccWorld 5 -> 6 frames (occworld_wm_8xb1-200e): ours
                                     tokenize + KV-cached forecast + decode; ref: config/
                                     occworld.py's TransVQVAE.forward_autoreg_with_pose (start 0,
                                     mid 5, end 11: encodes all 11 frames, no cache), as
                                     eval_metric_stp3.py; the whole forecast timed; FPS =
                                     future frames / seconds, both sides
    tokenizer_encode_decode_uniscene UniScene KL-VAE, 5 frames: encode (a posterior sample) +
                                     decode -> argmax; ref: VAERes2D_DwT.encode + generate
    tokenizer_encode_decode_occworld OccWorld VQ-VAE, 5 frames: encode (quantized) + decode ->
                                     argmax; ref: forward_encoder + vqvae + forward_decoder

How a sampling row is timed: a 1000-step loop is too long on a CPU, so each side runs ITS OWN
sampling loop (the reference's respaced to ``TIMED_STEPS`` = 2 steps by its own
create_diffusion, ours ``LatentDiffusion.sample(num_steps=2)``; the same per-step work as the
whole loop: one network call on the doubled CFG batch where the side guides, plus the solver
update), decodes its result, and the whole sampling time is ESTIMATED as (loop seconds / 2) x
the sampler's step count + decode seconds (ours 25, the references' 50 DDIM / 1000 DDPM as
their scripts run). The output and the JSON give the steps, samplers, seconds per step of
each side and the per-step ratio, so the reader sees how much of the time ratio comes from
fewer steps (which count only if the sample quality holds at 25 steps). Start noise x_T and
the conditions are the same tensors on both sides (seed 0). The forecast and tokenizer rows
time the whole inference. Each part is warmed up once per process; ``--iters`` timed runs.
Targets: sampling time ratio >= 5, the other inference rows as the training rows.

The reference code runs from checkouts OUTSIDE this repository (``--reference-root DIR`` with
DIR/DynamicCity, DIR/OccWorld, DIR/OccSora, DIR/UniScene: 3DTopia/DynamicCity eaf0c6e,
wzzheng/OccWorld 1ee7f77, wzzheng/OccSora 9f8d1f0, Arlo0o/UniScene-Unified-Occupancy-centric-
Driving-Scene-Generation e98413d). Nothing of it enters this project: the reference process
(``vs_reference_refs.py``; ours: ``vs_reference_ours.py``) imports it from DIR, with these
CPU shims applied in that process, in memory (files in DIR are neither modified nor
byte-compiled):

* ``flash_attn``: ``flash_attn_qkvpacked_func`` / ``flash_attn_kvpacked_func`` /
  ``flash_attn_func`` on ``torch.nn.functional.scaled_dot_product_attention`` (same dropout
  on the attention weights, same layout (B, N, H, D));
* ``timm``: ``Mlp`` (fc1, act, drop, fc2, drop), ``PatchEmbed`` (a strided Conv2d + flatten)
  and ``Attention`` (qkv Linear, optional q / k norm, fused SDPA, proj), in ``timm.layers``
  and ``timm.models.vision_transformer``, with timm's parameters;
* ``wandb`` (an empty module) and ``omegaconf`` (``OmegaConf.load`` on PyYAML);
* ``skimage``, ``nuscenes``, ``scipy``, ``skvideo``, ``torchvision`` when not installed:
  modules whose attributes raise when called (imported by the references' metrics, video
  writers and an unused BEV ResNet; no training step here uses them);
* ``Tensor.cuda`` returns the tensor unchanged (the reference calls ``.cuda()`` in forward);
* three source fixes, applied as the module is compiled from its source (each text must be
  found exactly once, else the import fails naming the file): two syntax errors of the shipped
  code, OccSora ``model/VAE/vae_2d_resnet.py`` (a line holding only ``)`` in
  ``VAERes2D.forward``) and UniScene ``occupancy_gen/loss/recon_loss.py`` (the ``__future__``
  name ``print_functiona``); and DynamicCity ``dynamic_city/diffusion/models.py``
  ``DiT.unpatchify``, whose padding buffer is cast to half for its fp16-autocast training: it
  takes the output's dtype (fp32) instead.

OccSora VQ note: the reference's ``VAERes2D.forward`` replaces the quantized latent by a fixed
array loaded from ``/samples_array.npy`` before decoding (a leftover, OccSora issue #4), so
its training step cannot run as shipped; the reference step here is that forward without the
override (``forward_encoder`` -> ``vqvae`` -> ``forward_decoder``, the config's MultiLoss).

Development option ``--size`` (hidden): ``small`` = reduced grids both sides build (the
OccSora DiT and the UniScene OccDiT hard-code their token counts, so their small sizes keep
them: the UniScene sample row runs 1 frame, the OccSora one decodes a 128 x 1 x 8 x 8 crop of
its sample; the forecast and tokenizer rows run 64 x 64 x 16 grids), ``tiny`` = our side only
(the tests); ``full`` (default) is the table's.

    python tools/analysis_tools/benchmark_vs_reference.py --reference-root /path/to/refs \\
        --rounds 2 --threads 1 --json work_dirs/vs_reference.json [--amp]
    python tools/analysis_tools/benchmark_vs_reference.py --reference-root /path/to/refs \\
        --rows sample_25_steps_cfg forecast_rollout tokenizer_encode_decode --rounds 2
"""
import argparse
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import time

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(osp.dirname(HERE))
if HERE not in sys.path:  # the sibling modules (vs_reference_*.py)
    sys.path.insert(0, HERE)
from vs_reference_inference import (INFERENCE_KINDS, INFERENCE_ROWS,  # noqa: E402
                                    KIND_TIME_TARGET, NOT_BUILT, ROW_GROUPS, TIMED_STEPS,
                                    extra_line, inference_detail)

# kind: vae / vq / vqvae (tokenizer), wm (world model), dit (generator). 'small' (both sides)
# and 'tiny' (ours only: tests) are reduced sizes of the hidden --size option.
ROWS = {
    'dynamiccity_vae_8x64x64x8': dict(ref='DynamicCity', kind='vae', frames=8,
                                      grid=(64, 64, 8)),
    'dynamiccity_vae_16x128x128x8': dict(ref='DynamicCity', kind='vae', frames=16,
                                         grid=(128, 128, 8)),
    'dynamiccity_dit': dict(ref='DynamicCity', kind='dit', frames=16, grid=(128, 128, 8),
                            latent=(16, 76, 76),
                            small=dict(frames=8, grid=(32, 32, 8), latent=(16, 24, 24))),
    'occsora_vq_8x200x200x16': dict(ref='OccSora', kind='vq', frames=8, grid=(200, 200, 16),
                                    small=dict(grid=(64, 64, 16)),
                                    tiny=dict(grid=(16, 16, 16))),
    'occsora_dit': dict(ref='OccSora', kind='dit', frames=32, grid=(200, 200, 16), batch=2,
                        latent=(128, 4, 25, 25), small=dict(),  # the reference's only size
                        tiny=dict(latent=(128, 1, 5, 5))),
    'occworld_vqvae_4x200x200x16': dict(ref='OccWorld', kind='vqvae', frames=4,
                                        grid=(200, 200, 16)),
    'occworld_wm_4+1': dict(ref='OccWorld', kind='wm', frames=5, grid=(200, 200, 16)),
    'uniscene_vae_2x200x200x16': dict(ref='UniScene', kind='vae', frames=2,
                                      grid=(200, 200, 16), small=dict(grid=(64, 64, 16)),
                                      tiny=dict(grid=(32, 32, 16))),
    'uniscene_dit': dict(ref='UniScene', kind='dit', frames=5, grid=(200, 200, 16),
                         latent=(4, 5, 50, 50), small=dict(frames=2, latent=(4, 2, 50, 50)),
                         tiny=dict(frames=2, grid=(32, 32, 16), latent=(4, 2, 8, 8))),
}
ROWS.update(INFERENCE_ROWS)
SIZES = ('full', 'small', 'tiny')
TIME_TARGET, MEMORY_TARGET = 2.0, 0.5
# The real frame of occworld4d.evaluation.benchmark.REAL_OCC3D_FRAME (a test checks they
# agree), under $OCCWORLD4D_REAL_DATA or <repo>/../shared/data/real as real_data_root().
REAL_OCC3D_FRAME = ('occ3d_nuscenes', 'gts', 'scene-1077', '29796060110c4163b07f06eff4af0753',
                    'labels.npz')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--reference-root', required=False,
                   help='folder holding the reference checkouts (DynamicCity/, OccWorld/, ...)')
    p.add_argument('--rows', nargs='+', default=list(ROWS), help=f'rows: {sorted(ROWS)} '
                   f'({", ".join(ROW_GROUPS)}: each its variants)')
    p.add_argument('--rounds', type=int, default=2, help='interleaved ours / reference rounds')
    p.add_argument('--iters', type=int, default=1, help='timed steps per process (after one '
                   'warm-up step)')
    p.add_argument('--threads', type=int, default=1, help='torch CPU threads per process')
    p.add_argument('--amp', action='store_true', help='our forward + loss under CPU bf16 '
                   'autocast (the reference stays fp32)')
    p.add_argument('--json', help='write the results to this JSON file')
    # development: reduced sizes ('small': both sides, 'tiny': ours only), see ROWS
    p.add_argument('--size', default='full', choices=SIZES, help=argparse.SUPPRESS)
    p.add_argument('--worker', nargs=2, metavar=('ROW', 'SIDE'), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.rounds < 1 or args.iters < 1 or args.threads < 1:
        p.error('--rounds, --iters and --threads must be >= 1')
    return args


# ============================================================================ shared pieces
def has_size(row: str, size: str) -> bool:
    return size == 'full' or size in ROWS[row] or (size == 'tiny' and 'small' in ROWS[row])


def row_spec(row: str, size: str = 'full') -> dict:
    """The row's spec at ``size`` (the full spec with that size's overrides)."""
    base = ROWS[row]
    spec = dict(batch=1, classes=12 if base['ref'] == 'DynamicCity' else 18)
    spec.update({k: v for k, v in base.items() if k not in ('small', 'tiny')})
    if size == 'tiny' and 'tiny' not in base:
        size = 'small'  # no smaller size of its own
    if size != 'full':
        if size not in base:
            raise SystemExit(f'benchmark_vs_reference: row {row!r} has no {size!r} size; '
                             f'rows with reduced sizes: '
                             f'{sorted(r for r in ROWS if "small" in ROWS[r])}')
        spec.update(base[size])
    spec['size'] = size
    if spec['kind'] == 'sample':
        spec['timed_steps'] = TIMED_STEPS
    return spec


def expand_rows(rows: list) -> list:
    """Rows with each name of :data:`ROW_GROUPS` replaced by its variants."""
    out = []
    for r in rows:
        out += (sorted(v for v in list(ROWS) + list(NOT_BUILT) if v.startswith(r + '_'))
                if r in ROW_GROUPS else [r])
    return out


def real_frame_path() -> str:
    root = os.environ.get('OCCWORLD4D_REAL_DATA',
                          osp.join(ROOT, '..', 'shared', 'data', 'real'))
    return osp.join(osp.abspath(root), *REAL_OCC3D_FRAME)


def row_data(spec: dict) -> dict:
    """The tensors both sides train on (the same on both sides: seed 0)."""
    # local: a measured process imports only its own side (module docstring)
    import numpy as np
    import torch
    g = torch.Generator().manual_seed(0)
    B, T, (X, Y, Z) = spec['batch'], spec['frames'], spec['grid']
    data = {}
    if spec['classes'] == 18 and (X, Y, Z) == (200, 200, 16) and osp.isfile(real_frame_path()):
        frame = torch.from_numpy(np.load(real_frame_path())['semantics'].astype(np.int64))
        data.update(voxels=frame.expand(B, T, X, Y, Z).contiguous(),
                    input_source='real Occ3D frame, repeated')
    else:
        data.update(voxels=torch.randint(0, spec['classes'], (B, T, X, Y, Z), generator=g),
                    input_source='random class ids (seed 0)')
    data['input'] = list(data['voxels'].shape)
    if spec['kind'] in ('dit', 'sample'):
        shape = (B, ) + tuple(spec['latent'])
        data['latent'] = torch.randn(shape, generator=g)
        data['t'] = torch.randint(0, 1000, (B, ), generator=g)
        data['noise'] = torch.randn(shape, generator=g)
        traj = torch.zeros(B, T, 3)
        traj[..., 0] = torch.arange(T, dtype=torch.float32) * 1.5  # straight, 1.5 m a frame
        data['trajectory'] = traj
        data['layout'] = torch.randint(0, 13, (B, T, X, Y), generator=g)  # 0 empty, 1..12
        data['meta'] = torch.rand(B, 4, generator=g)
        if spec['kind'] == 'sample':  # x_T = noise, the conditions
            data.update(input_source='x_T and conditions drawn with seed 0', input=list(shape))
        elif spec['ref'] != 'UniScene':  # trained from a cached latent, not the voxels
            data.update(input_source='random latent (seed 0)', input=list(shape))
    return data


def _load_procfs():
    """occworld4d/utils/procfs.py loaded by its path: the same measurements on both sides,
    without importing the occworld4d package into the reference process."""
    # local: importlib only here; the file is standard-library only
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        '_vs_reference_procfs', osp.join(ROOT, 'occworld4d', 'utils', 'procfs.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_procfs = _load_procfs()
_status_kb, _reset_peak_rss = _procfs.proc_status_kb, _procfs.reset_peak_rss


def _usage():
    """(CPU seconds, peak RSS MiB) of this process so far."""
    return _procfs.process_cpu_seconds(), _procfs.process_peak_rss_mb()


def measure(step, iters: int) -> dict:
    """Warm up once, reset the peak-RSS counter, time ``iters`` steps."""
    rss_build = _usage()[1]
    step()  # warm-up (allocator, oneDNN primitives)
    reset = _reset_peak_rss()
    times, cpu = [], []
    for _ in range(iters):
        t0, c0 = time.perf_counter(), _usage()[0]
        step()
        times.append(time.perf_counter() - t0)
        cpu.append(_usage()[0] - c0)
    hwm = _status_kb('VmHWM')
    return dict(sec_per_iter=statistics.median(times), all_secs=times,
                cpu_sec_per_iter=statistics.median(cpu), peak_rss_mb=_usage()[1],
                rss_after_build_mb=rss_build,
                step_peak_rss_mb=hwm / 1024 if (reset and hwm) else None)


def measure_parts(parts, iters: int) -> dict:
    """Inference rows: ``parts`` = [(name, fn, timed_units, whole_units)]. Warm up each part
    once, reset the peak-RSS counter, time each ``iters`` times (no grad); the whole =
    sum over parts of median seconds x whole_units / timed_units."""
    # local: the measured processes only
    import torch
    with torch.no_grad():
        rss_build = _usage()[1]
        for _, fn, _, _ in parts:
            fn()
        reset = _reset_peak_rss()
        secs = {name: [] for name, *_ in parts}
        cpu = {name: [] for name, *_ in parts}
        for _ in range(iters):
            for name, fn, _, _ in parts:
                t0, c0 = time.perf_counter(), _usage()[0]
                fn()
                secs[name].append(time.perf_counter() - t0)
                cpu[name].append(_usage()[0] - c0)
    hwm = _status_kb('VmHWM')
    out = {}
    for name, _, k, n in parts:
        med = statistics.median(secs[name])
        out[name] = dict(timed_units=k, whole_units=n, sec_per_unit=med / k, sec=med * n / k,
                         cpu_sec=statistics.median(cpu[name]) * n / k, all_secs=secs[name])
    return dict(sec_per_iter=sum(p['sec'] for p in out.values()), parts=out,
                cpu_sec_per_iter=sum(p['cpu_sec'] for p in out.values()),
                peak_rss_mb=_usage()[1], rss_after_build_mb=rss_build,
                step_peak_rss_mb=hwm / 1024 if (reset and hwm) else None)


def backward_step(fn):
    """step() = fn() -> scalar loss, backward, grads dropped."""
    def step():
        loss = fn()
        loss.backward()
        return float(loss.detach())
    return step


def worker(args) -> dict:
    """One side of one row, in this (fresh) process: build, then measure."""
    row, side = args.worker
    # local: the parent process never loads torch; each worker one side's code
    import torch
    torch.set_num_threads(args.threads)
    spec = row_spec(row, args.size)
    inference = spec['kind'] in INFERENCE_KINDS
    if side == 'ours':
        # local: the ours-side process only (occworld4d)
        import vs_reference_ours as builder
        if inference:
            import vs_reference_infer_ours as builder  # local: ours-side process only
        data = row_data(spec)
        loss, info = builder.build(row, spec, data, amp=args.amp)
    elif side == 'reference':
        if spec['size'] == 'tiny' and 'tiny' in ROWS[row]:
            raise SystemExit(f'benchmark_vs_reference: the tiny size of {row!r} is for our '
                             'side only (tests); the reference checks use --size small')
        # local: the reference-side process only (shims, then the checkout)
        import vs_reference_refs
        vs_reference_refs.enter_checkout(spec['ref'], args.reference_root)  # clear error first
        vs_reference_refs.install_shims()
        builder = vs_reference_refs
        if inference:
            import vs_reference_infer_refs as builder  # local: reference process only
        data = row_data(spec)
        loss, info = builder.build(row, spec, data)
    else:
        raise SystemExit(f'benchmark_vs_reference: unknown side {side!r}')
    res = measure_parts(loss, args.iters) if inference else measure(backward_step(loss),
                                                                    args.iters)
    res.update(info, input=data['input'], input_source=data['input_source'], size=spec['size'])
    if spec['kind'] == 'forecast':
        res['fps'] = spec['batch'] * res['future'] / res['sec_per_iter']
    if inference:
        res['detail'] = inference_detail(spec['kind'], res)
    return res


# ============================================================================ driver
def run_side(args, row: str, side: str) -> dict:
    cmd = [sys.executable, osp.abspath(__file__), '--worker', row, side, '--iters',
           str(args.iters), '--threads', str(args.threads), '--size', args.size]
    if args.amp:
        cmd.append('--amp')
    if args.reference_root:
        cmd += ['--reference-root', osp.abspath(args.reference_root)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        return dict(error=f'{side} {row}: exit {out.returncode}: '
                         + ' | '.join(out.stderr.strip().splitlines()[-3:])[-1500:])
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res['process_wall_s'] = time.perf_counter() - t0
    return res


def summarise(row: str, rounds: list) -> dict:
    ok = [r for r in rounds if 'error' not in r['ours'] and 'error' not in r['reference']]
    out = dict(row=row, rounds=rounds)
    if not ok:
        out['error'] = '; '.join(r[s]['error'] for r in rounds for s in ('ours', 'reference')
                                 if 'error' in r[s])[:3000]
        return out
    med = {s: statistics.median(r[s]['sec_per_iter'] for r in ok) for s in ('ours', 'reference')}
    cpu = {s: statistics.median(r[s]['cpu_sec_per_iter'] for r in ok)
           for s in ('ours', 'reference')}
    mem = {s: statistics.median(r[s]['peak_rss_mb'] for r in ok) for s in ('ours', 'reference')}
    step_mem = {s: [r[s]['step_peak_rss_mb'] for r in ok] for s in ('ours', 'reference')}
    out.update(ours_s=med['ours'], reference_s=med['reference'],
               time_ratio=med['reference'] / med['ours'],
               cpu_time_ratio=cpu['reference'] / cpu['ours'],
               time_ratio_per_round=[r['reference']['sec_per_iter'] / r['ours']['sec_per_iter']
                                     for r in ok],
               ours_peak_rss_mb=mem['ours'], reference_peak_rss_mb=mem['reference'],
               memory_ratio=mem['ours'] / mem['reference'],
               ours_params=ok[0]['ours']['params'], reference_params=ok[0]['reference']['params'],
               precision={s: ok[0][s].get('precision', 'fp32') for s in ('ours', 'reference')})
    if all(v is not None for v in step_mem['ours'] + step_mem['reference']):
        out['step_memory_ratio'] = (statistics.median(step_mem['ours']) /
                                    statistics.median(step_mem['reference']))
    first = {s: ok[0][s] for s in ('ours', 'reference')}
    if 'loop' in first['ours'].get('parts', {}):  # sampling: where the ratio comes from
        per_step = {s: statistics.median(r[s]['parts']['loop']['sec_per_unit'] for r in ok)
                    for s in ('ours', 'reference')}
        out.update(steps={s: first[s]['steps'] for s in first},
                   samplers={s: first[s]['sampler'] for s in first},
                   sec_per_step=per_step,
                   per_step_time_ratio=per_step['reference'] / per_step['ours'])
    if 'fps' in first['ours']:
        out['fps'] = {s: statistics.median(r[s]['fps'] for r in ok) for s in first}
    # issue 16's targets: training rows time >= 2 and memory <= 0.5; sampling time >= 5 (no
    # memory target); the forecast and tokenizer rows are reported without a target
    kind = ROWS[row]['kind']
    out['time_target'] = KIND_TIME_TARGET.get(kind, TIME_TARGET if kind not in INFERENCE_KINDS
                                              else None)
    out['memory_target'] = None if kind in INFERENCE_KINDS else MEMORY_TARGET
    if out['time_target'] is None:
        out['met'] = None
    else:
        out['met'] = out['time_ratio'] >= out['time_target'] and (
            out['memory_target'] is None or out['memory_ratio'] <= out['memory_target'])
    return out


def side_line(row: str, k: int, side: str, r: dict) -> str:
    if 'error' in r:
        return f'  {row} round {k + 1} {side:9s}: {r["error"][:300]}'
    frozen = r.get('frozen_tokenizer_params')
    unit = dict(sample='scene', forecast='forecast', codec='encode+decode').get(
        ROWS.get(row, {}).get('kind'), 'step')
    return (f'  {row} round {k + 1} {side:9s}: {r["sec_per_iter"]:.2f} s/{unit} (CPU '
            f'{r["cpu_sec_per_iter"]:.2f} s), peak RSS {r["peak_rss_mb"]:.0f} MiB (after build '
            f'{r["rss_after_build_mb"]:.0f}), {r["params"]:,} params ({r["trainable"]:,} '
            'trainable' + (f'; frozen tokenizer {frozen:,}' if frozen is not None else '')
            + f'), {r.get("precision", "fp32")}'
            + (f'\n      {r["detail"]}' if r.get('detail') else ''))


def row_line(row: str, s: dict) -> str:
    if 'error' in s:
        return f'{row}: FAILED {s["error"][:500]}'
    same = 'equal' if s['ours_params'] == s['reference_params'] else 'DIFFER'
    return (f'{row}: time ratio {s["time_ratio"]:.2f} (per round '
            + ', '.join(f'{x:.2f}' for x in s['time_ratio_per_round'])
            + f'; CPU-time ratio {s["cpu_time_ratio"]:.2f}), memory ratio '
            f'{s["memory_ratio"]:.2f} (steps only {s.get("step_memory_ratio", float("nan")):.2f})'
            f'; params {s["ours_params"]:,} / {s["reference_params"]:,} ({same}): '
            + verdict(s) + extra_line(s))


def verdict(s: dict) -> str:
    if s.get('met') is None:
        return 'no target (reported)'
    targets = [f'time >= {s["time_target"]:g}']
    if s.get('memory_target') is not None:
        targets.append(f'memory <= {s["memory_target"]:g}')
    return f'{"met" if s["met"] else "not met"} (target {", ".join(targets)})'


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return None
    if not args.reference_root:
        raise SystemExit('benchmark_vs_reference: give --reference-root DIR (the folder with '
                         'the reference checkouts)')
    args.rows = expand_rows(args.rows)
    for r in [r for r in args.rows if r not in ROWS]:
        print(f'{r}: not measured: ' + ('this tool has no builder for that row yet'
                                         if r in NOT_BUILT else f'unknown row; rows: '
                                         f'{sorted(ROWS)}'))
    for r in [r for r in args.rows if r in ROWS and not has_size(r, args.size)]:
        print(f'{r}: not measured: no {args.size!r} size')
    rows = [r for r in args.rows if r in ROWS and has_size(r, args.size)]
    precision = dict(ours='bf16-autocast' if args.amp else 'fp32', reference='fp32')
    print(f'{args.threads} thread(s), ours {precision["ours"]} / reference fp32, batch 1 '
          f'(occsora_dit 2), training rows: forward + loss + backward, inference rows: no grad '
          f'(sampling: {TIMED_STEPS} timed solver steps x the sampler\'s step count + decode); '
          f'median of {args.iters} run(s) after 1 warm-up per process, {args.rounds} '
          f'interleaved round(s); time ratio = reference / ours, memory ratio = our peak RSS '
          f'/ theirs'
          + ('' if args.size == 'full' else f'; {args.size.upper()} SIZES (development)'),
          flush=True)
    results = []
    for row in rows:
        rounds = []
        for k in range(args.rounds):
            rnd = {}
            for side in (('ours', 'reference') if k % 2 == 0 else ('reference', 'ours')):
                rnd[side] = run_side(args, row, side)
                print(side_line(row, k, side, rnd[side]), flush=True)
            rounds.append(rnd)
        results.append(summarise(row, rounds))
        print(row_line(row, results[-1]), flush=True)
    if args.json:
        sys.path.insert(0, ROOT)
        # local: after ROOT is on sys.path (the parent loads no occworld4d otherwise)
        from occworld4d.utils import save_json_atomic
        save_json_atomic(args.json, dict(
            date=time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()), threads=args.threads,
            rounds=args.rounds, iters=args.iters, size=args.size, precision=precision,
            load_average=os.getloadavg(), rows=results))
    return results


if __name__ == '__main__':
    main()
