"""Accuracy vs network calls of the diffusion samplers, on Gaussian data with an exact denoiser.

Data x0 ~ N(mu, Sigma) in D dimensions (default D = 4, Sigma with eigenvalues 0.06 .. 1.46).
The denoiser is the closed-form MMSE predictor (occworld4d.diffusion.analytic), so every
difference between the samples and N(mu, Sigma) is the sampler's own error plus the
Monte-Carlo noise of a finite sample. The ``exact`` row is that noise floor: direct samples of
N(mu, Sigma), same count, same seeds.

Columns: NFE = network calls; speedup = 1000 / NFE (DDPM-1000 makes 1000); seconds = wall
time of one run (mean over seeds); mean_err = ||m - mu||, cov_rel = ||S - Sigma||_F /
||Sigma||_F and w2 = Gaussian 2-Wasserstein distance between N(m, S) and N(mu, Sigma) of the
samples' moments (mean over --seeds, w2 also +- its std: compare with the exact row);
law_w2 = the W2 of the sampler's EXACT output law (occworld4d.diffusion.analytic.sampler_law:
no sampling noise at all, the pure discretisation error). A sampler matches DDPM-1000 when its
law_w2 is no larger than DDPM-1000's, or far below the floor's w2 (then its samples are
indistinguishable at this sample size).

``law/ddpm`` = law_w2 / law_w2 of DDPM-1000 (<= 1: matches DDPM-1000; printed when the
ddpm-1000 row is run); ``note`` = the solver's order. DDIM is a first-order solver of the
probability-flow ODE: its error falls as 1 / K, so DDIM-50 cannot match DDPM-1000 (it is
printed because the issue's comparison names it); DPM-Solver++(2M) is second order,
DPM-Solver++(3M) third order, UniPC a third-order predictor with a corrector.

Rows named ``-no-zero-snr`` turn the engine's zero-SNR start off (x_T ~ N(0, I) read as the
marginal at abar_T > 0, the old behaviour); ``-<spacing>`` rows force a timestep spacing;
``unipc2`` is UniPC with solver_order=2. Wall times on a shared CPU are noisy; compare rows of
one run.

Example:
    python tools/analysis_tools/benchmark_diffusion.py --num-samples 50000 --seeds 3
    python tools/analysis_tools/benchmark_diffusion.py --beta-schedule cosine --prediction-type v
"""
import argparse
import time

import torch

from occworld4d.diffusion import GaussianDiffusion
from occworld4d.diffusion.analytic import (GaussianDataDenoiser, gaussian_distances,
                                           sampler_law_w2)
from occworld4d.utils import save_json_atomic
from occworld4d.apis.cli import HelpFormatter, add_device_argument, resolve_device

# name, sampler, num_steps, eta, extra sample() arguments (the three rows first)
DEFAULT_RUNS = (
    ('ddpm-1000', 'ddpm', 1000, 0.0, {}),
    ('ddim-50', 'ddim', 50, 0.0, {}),
    ('dpmpp_2m-20', 'dpmpp_2m', 20, 0.0, {}),
    ('dpmpp_3m-20', 'dpmpp_3m', 20, 0.0, {}),
    ('dpmpp_3m-30', 'dpmpp_3m', 30, 0.0, {}),
    ('dpmpp_3m-50', 'dpmpp_3m', 50, 0.0, {}),
    ('unipc-20', 'unipc', 20, 0.0, {}),
    ('ddpm-250', 'ddpm', 250, 0.0, {}),
    ('ddim-1000', 'ddim', 1000, 0.0, {}),
    ('ddim-100', 'ddim', 100, 0.0, {}),
    ('ddim-50-quad', 'ddim', 'quad50', 0.0, {}),
    ('ddim-50-trailing', 'ddim', 'trailing50', 0.0, {}),
    ('dpmpp_2m-50', 'dpmpp_2m', 50, 0.0, {}),
    ('dpmpp_2m-20-no-zero-snr', 'dpmpp_2m', 20, 0.0, dict(start_at_zero_snr=False)),
    ('dpmpp_2m-20-linspace', 'dpmpp_2m', 'linspace20', 0.0, {}),
    ('dpmpp_2m-20-logsnr', 'dpmpp_2m', 'logsnr20', 0.0, {}),
    ('dpmpp_2m-10', 'dpmpp_2m', 10, 0.0, {}),
    ('dpmpp_3m-20-no-zero-snr', 'dpmpp_3m', 20, 0.0, dict(start_at_zero_snr=False)),
    ('dpmpp_3m-20-cubic', 'dpmpp_3m', 'cubic20', 0.0, {}),
    ('dpmpp_3m-10', 'dpmpp_3m', 10, 0.0, {}),
    ('unipc-50', 'unipc', 50, 0.0, {}),
    ('unipc-20-no-zero-snr', 'unipc', 20, 0.0, dict(start_at_zero_snr=False)),
    ('unipc2-20', 'unipc', 20, 0.0, dict(solver_order=2)),
    ('unipc-10', 'unipc', 10, 0.0, {}),
)

# the note column: what kind of solver a row is
ORDER_NOTES = dict(ddpm='ancestral', ddim='1st order', dpmpp_2m='2nd order',
                   dpmpp_3m='3rd order', unipc='UniP-3 + UniC')


def order_note(sampler: str, eta: float = 0.0, extra=None) -> str:
    """The ``note`` of a row: the solver's order (DDIM with eta > 0 is stochastic)."""
    if sampler == 'unipc':
        return f'UniP-{(extra or {}).get("solver_order", 3)} + UniC'
    if sampler == 'ddim' and eta > 0:
        return f'1st order, eta={eta:g}'
    return ORDER_NOTES[sampler]


def gaussian_problem(dim: int = 4):
    """The benchmark's data law: mean (D,) and an SPD covariance (D, D), fixed."""
    gen = torch.Generator().manual_seed(1234)
    if dim == 4:
        a = torch.tensor([[1.0, 0.3, 0.0, 0.0], [0.2, 0.7, 0.1, 0.0], [0.0, 0.4, 0.5, 0.2],
                          [0.1, 0.0, 0.3, 0.3]])
        mean = torch.tensor([1.0, -0.5, 0.3, 2.0])
    else:
        a = torch.randn(dim, dim, generator=gen) / dim**0.5
        mean = torch.randn(dim, generator=gen)
    return mean.double(), (a @ a.T + 0.05 * torch.eye(dim)).double()


def _summary(dists, seconds):
    w2 = torch.tensor([d['w2'] for d in dists], dtype=torch.float64)
    return dict(seconds=round(sum(seconds) / len(seconds), 3),
                mean_err=sum(d['mean_err'] for d in dists) / len(dists),
                cov_rel=sum(d['cov_rel'] for d in dists) / len(dists),
                w2=float(w2.mean()), w2_std=float(w2.std()) if len(dists) > 1 else 0.0)


def run_benchmark(num_samples=50000, dim=4, runs=DEFAULT_RUNS, device='cpu', seeds=(0, ),
                  progress=False, beta_schedule='linear', prediction_type='eps'):
    """Distances to N(mu, Sigma), wall time and network calls of each sampler.

    Returns:
        dict(problem=..., rows=[dict(name, sampler, num_steps, calls, speedup, seconds,
        mean_err, cov_rel, w2, w2_std, law_w2, law_vs_ddpm, note), ...]) with the ``exact``
        row first; ``law_vs_ddpm`` = law_w2 / law_w2 of the ``ddpm-1000`` row (None
        without that row).
    """
    mean, cov = gaussian_problem(dim)
    engine = GaussianDiffusion(beta_schedule=beta_schedule, prediction_type=prediction_type)
    model = GaussianDataDenoiser(engine.schedule, mean, cov, prediction_type=prediction_type)
    root = torch.linalg.cholesky(cov)
    exact = []
    for seed in seeds:
        gen = torch.Generator().manual_seed(10_000 + seed)
        draws = mean + torch.randn(num_samples, dim, generator=gen, dtype=torch.float64) @ root.T
        exact.append(gaussian_distances(draws, mean, cov))
    rows = [dict(name='exact', sampler='-', num_steps='-', calls=0, speedup=None, law_w2=0.0,
                 note='N(mu, Sigma) draws', **_summary(exact, [0.0]))]
    for name, sampler, steps, eta, extra in runs:
        dists, seconds = [], []
        for seed in seeds:
            model.calls = 0
            gen = torch.Generator(device=device).manual_seed(seed)
            start = time.perf_counter()
            x = engine.sample(model, (num_samples, dim), sampler=sampler, num_steps=steps,
                              eta=eta, generator=gen, dtype=torch.float64, device=device,
                              progress=progress, **extra)
            if str(device).startswith('cuda'):
                torch.cuda.synchronize()
            seconds.append(time.perf_counter() - start)
            calls = model.calls
            dists.append(gaussian_distances(x.cpu(), mean, cov))
        law = sampler_law_w2(engine, model, sampler, steps, eta, **extra)
        rows.append(dict(name=name, sampler=sampler, num_steps=str(steps), calls=calls,
                         speedup=round(engine.num_timesteps / calls, 1), law_w2=law,
                         note=order_note(sampler, eta, extra), **_summary(dists, seconds)))
    ddpm = [r['law_w2'] for r in rows if r['name'] == 'ddpm-1000']
    for r in rows:
        r['law_vs_ddpm'] = r['law_w2'] / ddpm[0] if ddpm and ddpm[0] > 0 else None
    return dict(problem=dict(dim=dim, num_samples=num_samples, seeds=list(seeds),
                             mean=mean.tolist(),
                             cov_eigenvalues=torch.linalg.eigvalsh(cov).tolist(),
                             schedule=f'{beta_schedule}, 1000 steps',
                             prediction_type=prediction_type, device=str(device),
                             engine=repr(engine)),
                rows=rows)


def format_table(result) -> str:
    head = (f'{"sampler":<25}{"NFE":>5}{"speedup":>8}{"seconds":>9}{"mean_err":>10}'
            f'{"cov_rel":>9}{"w2 (+- std)":>18}{"law_w2":>9}{"law/ddpm":>9}  note')
    lines = [head, '-' * (len(head) + 14)]
    for r in result['rows']:
        speed = '-' if r['speedup'] is None else f'{r["speedup"]:.0f}x'
        w2 = f'{r["w2"]:.4f} +- {r["w2_std"]:.4f}'
        ratio = '-' if r.get('law_vs_ddpm') is None else f'{r["law_vs_ddpm"]:.2f}'
        lines.append(f'{r["name"]:<25}{r["calls"]:>5}{speed:>8}{r["seconds"]:>9.2f}'
                     f'{r["mean_err"]:>10.4f}{r["cov_rel"]:>9.4f}{w2:>18}{r["law_w2"]:>9.4f}'
                     f'{ratio:>9}  {r["note"]}')
    return '\n'.join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument('--num-samples', type=int, default=50000)
    parser.add_argument('--seeds', type=int, default=3, help='repeat the sampling this often')
    parser.add_argument('--dim', type=int, default=4)
    parser.add_argument('--beta-schedule', default='linear',
                        choices=['linear', 'cosine', 'scaled_linear'])
    parser.add_argument('--prediction-type', default='eps', choices=['eps', 'x0', 'v'])
    add_device_argument(parser)
    parser.add_argument('--threads', type=int, default=1, help='torch.set_num_threads')
    parser.add_argument('--progress', action='store_true')
    parser.add_argument('--runs', nargs='+', choices=[r[0] for r in DEFAULT_RUNS],
                        help='only these rows (default: all)')
    parser.add_argument('--json', help='also write the result as JSON to this path')
    args = parser.parse_args(argv)
    if args.num_samples < 2 or args.seeds < 1:
        parser.error(f'--num-samples must be >= 2 and --seeds >= 1, found '
                     f'{args.num_samples} and {args.seeds}')
    return args


def main(argv=None):
    args = parse_args(argv)
    args.device = resolve_device(args.device)
    torch.set_num_threads(args.threads)
    runs = [r for r in DEFAULT_RUNS if args.runs is None or r[0] in args.runs]
    result = run_benchmark(args.num_samples, args.dim, runs, device=args.device,
                           seeds=tuple(range(args.seeds)), progress=args.progress,
                           beta_schedule=args.beta_schedule,
                           prediction_type=args.prediction_type)
    print(f'N(mu, Sigma) in {args.dim}-D, {args.num_samples} samples x {args.seeds} seeds, '
          f'{args.beta_schedule} schedule, {args.prediction_type} prediction, exact denoiser, '
          f'device {args.device}')
    print(format_table(result))
    if args.json:
        save_json_atomic(args.json, result)
    return result


if __name__ == '__main__':
    main()
