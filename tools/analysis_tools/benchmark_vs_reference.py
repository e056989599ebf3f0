"""occworld4d against the reference code: one training step, same input, interleaved runs.

For each row the tool runs our training step and the reference implementation's, each in a
fresh Python subprocess (so each peak RSS is its own), alternating ours / reference for
``--rounds`` rounds, and prints

    time ratio   = reference seconds per step / ours        (target >= 2)
    memory ratio = our peak RSS / the reference's            (target <= 0.5)

One step = forward + loss + backward (no optimizer step, as the reference step was timed in
issue 16), fp32, batch 1, ``--threads`` CPU threads, the same input on both sides (the real
Occ3D-nuScenes frame repeated over time when the shared sample data is present and the row has
its grid, else class ids drawn with seed 0: the same tensor on both sides). Seconds = median
of ``--iters`` timed steps after one warm-up step, per process; the ratio uses the median over
rounds of each side (the per-round ratios are printed too: on a shared CPU only ratios
measured in one run, interleaved, mean anything). Memory = the process's peak resident set
size (``ru_maxrss``: Python + torch + the model + the step; both sides pay the same interpreter
and torch baseline), and the peak RSS of the timed steps alone (``VmHWM`` after resetting it
with ``/proc/self/clear_refs`` once the model is built and warmed up).

The reference code runs from checkouts OUTSIDE this repository (``--reference-root DIR`` with
DIR/DynamicCity, DIR/OccWorld, ...: 3DTopia/DynamicCity, wzzheng/OccWorld, wzzheng/OccSora,
Arlo0o/UniScene-Unified-Occupancy-centric-Driving-Scene-Generation). Nothing of it enters this
project: the reference process imports it from DIR. The CPU shims it needs are applied in
that process at import time, in memory (files in DIR are not modified):

* ``flash_attn``: ``flash_attn_qkvpacked_func`` / ``flash_attn_kvpacked_func`` /
  ``flash_attn_func`` on ``torch.nn.functional.scaled_dot_product_attention`` (same dropout
  on the attention weights, same layout (B, N, H, D));
* ``timm``: ``timm.layers.Mlp`` / ``timm.models.vision_transformer.Mlp`` (fc1, act, drop,
  fc2, drop; the same parameters) and ``PatchEmbed`` (a strided Conv2d + flatten);
* ``wandb`` (an empty module) and ``omegaconf`` (``OmegaConf.load`` on PyYAML);
* ``skimage``, ``nuscenes``, ``scipy`` when not installed: modules whose attributes raise when
  called (the reference's planning metric imports them; its training step does not use them);
* ``Tensor.cuda`` returns the tensor unchanged (the reference calls ``.cuda()`` in forward).

Rows (``--rows``; default: every row this tool can build):

    dynamiccity_vae_8x64x64x8     DynamicCity HexPlane VAE, 8 x 64 x 64 x 8 window
    dynamiccity_vae_16x128x128x8  ... at the CarlaSC size
    occworld_vqvae_4x200x200x16   OccWorld VQ-VAE, 4 frames of 200 x 200 x 16
    occworld_wm_4+1               OccWorld world model, 4 + 1 frames (frozen random VQ-VAE)

The other rows of issue 16's table (DynamicCity DiT-DC/2, OccSora VQ tokenizer and DiT,
UniScene VAE and OccDiT) and its three inference rows are not built by this tool yet; it
says so when asked for them.

    python tools/analysis_tools/benchmark_vs_reference.py --reference-root /path/to/refs \\
        --rows dynamiccity_vae_8x64x64x8 occworld_wm_4+1 --rounds 2 --threads 1
"""
import argparse
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

ROWS = {
    'dynamiccity_vae_8x64x64x8': dict(ref='DynamicCity', frames=8, grid=(64, 64, 8)),
    'dynamiccity_vae_16x128x128x8': dict(ref='DynamicCity', frames=16, grid=(128, 128, 8)),
    'occworld_vqvae_4x200x200x16': dict(ref='OccWorld', frames=4, grid=(200, 200, 16)),
    'occworld_wm_4+1': dict(ref='OccWorld', frames=5, grid=(200, 200, 16)),
}
NOT_BUILT = ('dynamiccity_dit', 'occsora_vq_8x200x200x16', 'occsora_dit',
             'uniscene_vae_2x200x200x16', 'uniscene_dit', 'sample_25_steps_cfg',
             'forecast_rollout', 'tokenizer_encode_decode')
TIME_TARGET, MEMORY_TARGET = 2.0, 0.5


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--reference-root', required=False,
                   help='folder holding the reference checkouts (DynamicCity/, OccWorld/, ...)')
    p.add_argument('--rows', nargs='+', default=list(ROWS), help=f'rows: {sorted(ROWS)}')
    p.add_argument('--rounds', type=int, default=2, help='interleaved ours / reference rounds')
    p.add_argument('--iters', type=int, default=1, help='timed steps per process (after one '
                   'warm-up step)')
    p.add_argument('--threads', type=int, default=1, help='torch CPU threads per process')
    p.add_argument('--json', help='write the results to this JSON file')
    p.add_argument('--worker', nargs=2, metavar=('ROW', 'SIDE'), help=argparse.SUPPRESS)
    return p.parse_args(argv)


# ============================================================================ shared pieces
def row_input(row: str):
    """The (1, T, X, Y, Z) int64 clip both sides train on, and where it came from."""
    # local: a measured process imports only its own side (module docstring)
    import torch
    spec = ROWS[row]
    torch.manual_seed(0)
    if spec['ref'] == 'DynamicCity':  # CarlaSC vocabulary: 12 classes, random ids
        X, Y, Z = spec['grid']
        return torch.randint(0, 12, (1, spec['frames'], X, Y, Z)), 'random class ids (seed 0)'
    sys.path.insert(0, ROOT)
    # local: occworld4d after ROOT is on sys.path; the reference side never loads it
    from occworld4d.evaluation.benchmark import real_or_random_clip
    return real_or_random_clip(1, spec['frames'], spec['grid'], 18)


def measure(step, iters: int) -> dict:
    """Warm up once, reset the peak-RSS counter, time ``iters`` steps."""
    sys.path.insert(0, ROOT)
    # local: after ROOT is on sys.path (a reference process loads no occworld4d)
    from occworld4d.evaluation.benchmark import (_proc_status_kb, process_cpu_seconds,
                                                 process_peak_rss_mb, reset_peak_rss)
    rss_build = process_peak_rss_mb()
    step()  # warm-up (allocator, oneDNN primitives)
    reset = reset_peak_rss()
    times, cpu = [], []
    for _ in range(iters):
        t0, c0 = time.perf_counter(), process_cpu_seconds()
        step()
        times.append(time.perf_counter() - t0)
        cpu.append(process_cpu_seconds() - c0)
    hwm = _proc_status_kb('VmHWM')
    return dict(sec_per_iter=statistics.median(times), all_secs=times,
                cpu_sec_per_iter=statistics.median(cpu), peak_rss_mb=process_peak_rss_mb(),
                rss_after_build_mb=rss_build,
                step_peak_rss_mb=hwm / 1024 if (reset and hwm) else None)


def backward_step(fn):
    """step() = fn() -> scalar loss, backward, grads dropped."""
    def step():
        loss = fn()
        loss.backward()
        return float(loss.detach())
    return step


def clear_grads(model):
    for p in model.parameters():
        p.grad = None


# ============================================================================ our side
def ours(row: str):
    # local: the ours-side process only; the reference one never loads occworld4d
    import torch
    sys.path.insert(0, ROOT)
    # local: after ROOT is on sys.path, in the ours-side process only
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    import occworld4d  # noqa: F401
    from occworld4d.registry import MODELS
    voxels, source = row_input(row)
    spec = ROWS[row]
    if row.startswith('dynamiccity_vae'):
        cfg = Config.fromfile(osp.join(ROOT, 'configs/dynamiccity/'
                                       'dynamiccity_vae_8xb1-100e_carlasc.py'))
        mcfg = cfg.model.copy()
        mcfg.update(num_frames=spec['frames'], spatial_size=spec['grid'])
    elif row.startswith('occworld_vqvae'):
        mcfg = Config.fromfile(osp.join(ROOT, 'configs/occworld/'
                                        'occworld_vqvae_8xb1-200e_occ3d-nuscenes.py')).model.copy()
    elif row.startswith('occworld_wm'):
        mcfg = Config.fromfile(osp.join(ROOT, 'configs/occworld/'
                                        'occworld_wm_8xb1-200e_occ3d-nuscenes.py')).model.copy()
        mcfg.update(tokenizer_ckpt=None, allow_random_tokenizer=True)
    else:
        raise SystemExit(f'benchmark_vs_reference: no builder for row {row!r}')
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('occworld4d'):
        model = MODELS.build(mcfg).train()
    inputs = dict(voxels=voxels)
    if row.startswith('occworld_wm'):
        T = voxels.shape[1]
        traj = torch.zeros(1, T, 3)
        traj[..., 0] = torch.arange(T, dtype=torch.float32) * 1.5
        inputs.update(trajectory=traj, command=torch.ones(1, dtype=torch.long))

    def loss():
        clear_grads(model)
        out = model.loss(inputs)
        return sum(v for k, v in out.items() if k.startswith('loss'))

    res = measure(backward_step(loss), ITERS)
    res.update(params=sum(p.numel() for p in model.parameters()),
               trainable=sum(p.numel() for p in model.parameters() if p.requires_grad),
               input=list(voxels.shape), input_source=source, model=type(model).__name__)
    return res


# ============================================================================ reference side
def install_shims():
    """In-memory CPU shims for the reference code (see the module docstring)."""
    # local: in the reference-side process only (module docstring)
    import types

    import torch
    import torch.nn.functional as F
    from torch import nn

    def _sdpa(q, k, v, dropout_p=0.0, causal=False, softmax_scale=None):
        # flash-attn layout (B, N, H, D) -> SDPA (B, H, N, D)
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2),
                                             v.transpose(1, 2), dropout_p=dropout_p,
                                             is_causal=causal, scale=softmax_scale)
        return out.transpose(1, 2)

    def qkvpacked(qkv, dropout_p=0.0, softmax_scale=None, causal=False, **kw):
        q, k, v = qkv.unbind(2)  # (B, N, 3, H, D)
        return _sdpa(q, k, v, dropout_p, causal, softmax_scale)

    def kvpacked(q, kv, dropout_p=0.0, softmax_scale=None, causal=False, **kw):
        k, v = kv.unbind(2)  # (B, M, 2, H, D)
        return _sdpa(q, k, v, dropout_p, causal, softmax_scale)

    def plain(q, k, v, dropout_p=0.0, softmax_scale=None, causal=False, **kw):
        return _sdpa(q, k, v, dropout_p, causal, softmax_scale)

    flash = types.ModuleType('flash_attn')
    flash.flash_attn_qkvpacked_func = qkvpacked
    flash.flash_attn_kvpacked_func = kvpacked
    flash.flash_attn_func = plain
    sys.modules['flash_attn'] = flash

    class Mlp(nn.Module):  # timm's Mlp: fc1 -> act -> drop -> (norm) -> fc2 -> drop
        def __init__(self, in_features, hidden_features=None, out_features=None,
                     act_layer=nn.GELU, norm_layer=None, bias=True, drop=0.0, **kw):
            super().__init__()
            out_features = out_features or in_features
            hidden_features = hidden_features or in_features
            self.fc1 = nn.Linear(in_features, hidden_features, bias=bias)
            self.act = act_layer()
            self.drop1 = nn.Dropout(drop)
            self.norm = norm_layer(hidden_features) if norm_layer else nn.Identity()
            self.fc2 = nn.Linear(hidden_features, out_features, bias=bias)
            self.drop2 = nn.Dropout(drop)

        def forward(self, x):
            return self.drop2(self.fc2(self.norm(self.drop1(self.act(self.fc1(x))))))

    class PatchEmbed(nn.Module):  # timm's PatchEmbed: strided conv, (B, N, C) tokens
        def __init__(self, img_size=224, patch_size=16, in_chans=3, embed_dim=768,
                     norm_layer=None, flatten=True, bias=True, **kw):
            super().__init__()
            img = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
            patch = (patch_size, patch_size) if isinstance(patch_size, int) else tuple(patch_size)
            self.img_size, self.patch_size = img, patch
            self.grid_size = (img[0] // patch[0], img[1] // patch[1])
            self.num_patches = self.grid_size[0] * self.grid_size[1]
            self.flatten = flatten
            self.proj = nn.Conv2d(in_chans, embed_dim, patch, patch, bias=bias)
            self.norm = norm_layer(embed_dim) if norm_layer else nn.Identity()

        def forward(self, x):
            x = self.proj(x)
            if self.flatten:
                x = x.flatten(2).transpose(1, 2)
            return self.norm(x)

    timm = types.ModuleType('timm')
    layers = types.ModuleType('timm.layers')
    models = types.ModuleType('timm.models')
    vit = types.ModuleType('timm.models.vision_transformer')
    layers.Mlp = vit.Mlp = Mlp
    layers.PatchEmbed = vit.PatchEmbed = PatchEmbed
    timm.layers, timm.models, models.vision_transformer = layers, models, vit
    sys.modules.update({'timm': timm, 'timm.layers': layers, 'timm.models': models,
                        'timm.models.vision_transformer': vit})

    sys.modules['wandb'] = types.ModuleType('wandb')

    def unavailable(modname):
        def getattr_(attr):
            if attr.startswith('__'):
                raise AttributeError(attr)

            def missing(*a, **k):
                raise RuntimeError(f'{modname}.{attr} is a benchmark_vs_reference stub (the '
                                   'package is not installed; the training step does not use it)')
            return missing
        return getattr_

    # local: see above
    import importlib.util
    for name in ('skimage', 'skimage.draw', 'nuscenes', 'nuscenes.utils',
                 'nuscenes.utils.data_classes', 'scipy', 'scipy.spatial',
                 'scipy.spatial.transform'):
        top = name.split('.')[0]
        if top not in sys.modules and importlib.util.find_spec(top) is not None:
            continue  # installed: the real package
        mod = types.ModuleType(name)
        mod.__getattr__ = unavailable(name)
        mod.__path__ = []
        sys.modules[name] = mod
        if '.' in name:  # the parent (stubbed just before) holds its child
            parent, _, child = name.rpartition('.')
            setattr(sys.modules[parent], child, mod)

    class AttrDict(dict):
        __getattr__ = dict.__getitem__

    def to_attr(obj):
        if isinstance(obj, dict):
            return AttrDict({k: to_attr(v) for k, v in obj.items()})
        if isinstance(obj, list):
            return [to_attr(v) for v in obj]
        return obj

    def load(path):
        # local: the reference-side process only
        import yaml
        with open(path) as f:
            return to_attr(yaml.safe_load(f) or {})

    omegaconf = types.ModuleType('omegaconf')
    omegaconf.OmegaConf = types.SimpleNamespace(load=load, create=to_attr)
    sys.modules['omegaconf'] = omegaconf
    torch.Tensor.cuda = lambda self, *a, **k: self
    return load


def reference(row: str, ref_root: str):
    # local: the reference-side process only (module docstring)
    import numpy as np
    import torch
    load = install_shims()
    voxels, source = row_input(row)
    spec = ROWS[row]
    folder = osp.join(ref_root, spec['ref'])
    if not osp.isdir(folder):
        raise SystemExit(f'benchmark_vs_reference: {folder} not found (expected the '
                         f'{spec["ref"]} reference checkout under --reference-root)')
    os.chdir(folder)  # the reference reads some files relative to its root
    sys.path.insert(0, folder)
    torch.manual_seed(0)
    if spec['ref'] == 'DynamicCity':
        # local: the reference checkout, on sys.path from here
        from dynamic_city.utils.loss_utils import build_losses
        from dynamic_city.vae.vae import DynamicCityAE
        conf = load('conf/vae/model/vae.yaml')
        data = load('conf/vae/dataset/carlasc.yaml')
        data.update(sequence_length=spec['frames'], spatial_size=list(spec['grid']))
        conf = type(conf)(model=conf, dataset=data)
        model = DynamicCityAE(conf).train()
        losses = build_losses(conf.model, ce_weight=None)
        weights = dict(conf.model.loss_weights)
        K = data.num_classes

        def loss():
            clear_grads(model)
            out = model(voxels)
            parts = dict(ce=losses['ce'](out['pred'].permute(0, 5, 1, 2, 3, 4), voxels),
                         lovasz=losses['lovasz'](out['pred'].reshape(-1, K), voxels.reshape(-1)),
                         kl=losses['kl'](out['mus'], out['logvars']))
            return sum(weights[k] * v for k, v in parts.items())
    elif spec['ref'] == 'OccWorld':
        # local: the reference checkout, on sys.path from here
        from mmengine.config import Config
        from mmengine.registry import MODELS
        import model as _models  # noqa: F401  (registers VAERes2D, TransVQVAE, ...)
        from loss import OPENOCC_LOSS
        if row.startswith('occworld_vqvae'):
            cfg = Config.fromfile('config/train_vqvae.py')
        else:
            cfg = Config.fromfile('config/occworld.py')
            cfg.model.num_frames = spec['frames'] - 1
            cfg.model.transformer.num_frames = spec['frames'] - 1
        model = MODELS.build(cfg.model).train()
        loss_fn = OPENOCC_LOSS.build(cfg.loss)
        if row.startswith('occworld_wm'):  # frozen tokenizer, as in the reference training
            for p in model.vae.parameters():
                p.requires_grad_(False)
            T = spec['frames']
            steps = np.zeros((T, 2), dtype=np.float32)
            steps[:, 0] = 1.5  # the same ego steps as our side's trajectory
            mode = np.zeros((T, 3), dtype=np.float32)
            mode[:, 1] = 1.0
            metas = [dict(rel_poses=steps, gt_mode=mode)]
        else:
            metas = None

        def loss():
            clear_grads(model)
            out = model(x=voxels, metas=metas)
            li = {'inputs': voxels}
            for key, val in cfg.loss_input_convertion.items():
                li[key] = out[val]
            total, _ = loss_fn(li)
            return total
    else:
        raise SystemExit(f'benchmark_vs_reference: no reference builder for row {row!r}')
    res = measure(backward_step(loss), ITERS)
    res.update(params=sum(p.numel() for p in model.parameters()),
               trainable=sum(p.numel() for p in model.parameters() if p.requires_grad),
               input=list(voxels.shape), input_source=source, model=type(model).__name__)
    return res


ITERS = 1


# ============================================================================ driver
def run_side(args, row: str, side: str) -> dict:
    cmd = [sys.executable, osp.abspath(__file__), '--worker', row, side, '--iters',
           str(args.iters), '--threads', str(args.threads)]
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
               ours_params=ok[0]['ours']['params'], reference_params=ok[0]['reference']['params'])
    if all(v is not None for v in step_mem['ours'] + step_mem['reference']):
        out['step_memory_ratio'] = (statistics.median(step_mem['ours']) /
                                    statistics.median(step_mem['reference']))
    out['met'] = out['time_ratio'] >= TIME_TARGET and out['memory_ratio'] <= MEMORY_TARGET
    return out


def main(argv=None):
    global ITERS
    args = parse_args(argv)
    ITERS = args.iters
    if args.worker:
        row, side = args.worker
        # local: the parent process never loads torch; each worker one side
        import torch
        torch.set_num_threads(args.threads)
        res = ours(row) if side == 'ours' else reference(row, args.reference_root)
        print(json.dumps(res))
        return None
    if not args.reference_root:
        raise SystemExit('benchmark_vs_reference: give --reference-root DIR (the folder with '
                         'the reference checkouts)')
    unknown = [r for r in args.rows if r not in ROWS]
    for r in unknown:
        print(f'{r}: not measured: ' + ('this tool has no builder for that row yet'
                                         if r in NOT_BUILT else f'unknown row; rows: '
                                         f'{sorted(ROWS)}'))
    results = []
    print(f'{args.threads} thread(s), fp32, batch 1, forward + loss + backward; median of '
          f'{args.iters} step(s) after 1 warm-up per process, {args.rounds} interleaved '
          f'round(s); time ratio = reference / ours, memory ratio = our peak RSS / theirs',
          flush=True)
    for row in [r for r in args.rows if r in ROWS]:
        rounds = []
        for k in range(args.rounds):
            rnd = {}
            for side in (('ours', 'reference') if k % 2 == 0 else ('reference', 'ours')):
                rnd[side] = run_side(args, row, side)
                r = rnd[side]
                print(f'  {row} round {k + 1} {side:9s}: ' + (
                    r['error'][:300] if 'error' in r else
                    f'{r["sec_per_iter"]:.2f} s/step (CPU {r["cpu_sec_per_iter"]:.2f} s), '
                    f'peak RSS {r["peak_rss_mb"]:.0f} MiB (after build '
                    f'{r["rss_after_build_mb"]:.0f}), {r["params"]:,} params'), flush=True)
            rounds.append(rnd)
        s = summarise(row, rounds)
        results.append(s)
        if 'error' in s:
            print(f'{row}: FAILED {s["error"][:500]}')
        else:
            print(f'{row}: time ratio {s["time_ratio"]:.2f} (per round '
                  + ', '.join(f'{x:.2f}' for x in s['time_ratio_per_round'])
                  + f'; CPU-time ratio {s["cpu_time_ratio"]:.2f}), memory ratio '
                  f'{s["memory_ratio"]:.2f} (steps only '
                  f'{s.get("step_memory_ratio", float("nan")):.2f}): '
                  f'{"met" if s["met"] else "not met"}', flush=True)
    if args.json:
        sys.path.insert(0, ROOT)
        # local: after ROOT is on sys.path (the parent loads no occworld4d otherwise)
        from occworld4d.utils import save_json_atomic
        save_json_atomic(args.json, dict(
            date=time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()), threads=args.threads,
            rounds=args.rounds, iters=args.iters, load_average=os.getloadavg(),
            rows=results))
    return results


if __name__ == '__main__':
    main()
