"""Accuracy vs network calls of the diffusion samplers, on Gaussian data with an exact denoiser.

Data x0 ~ N(mu, Sigma) in D dimensions (default D = 4, Sigma with eigenvalues 0.06 .. 1.46).
The denoiser is the closed-form MMSE predictor (occworld4d.diffusion.analytic), so every
difference between the samples and N(mu, Sigma) is the sampler's own error plus the
Monte-Carlo noise of a finite sample, which the ``exact`` row measures (direct samples of
N(mu, Sigma), same count). All samplers start from the same x_T (same seed).

Columns: mean_err = ||m - mu||, cov_rel = ||S - Sigma||_F / ||Sigma||_F, w2 = Gaussian
2-Wasserstein distance between N(m, S) and N(mu, Sigma), law_w2 = the W2 of the sampler's
EXACT output law, the discretisation error with no sampling noise at all: the deterministic
samplers (DDIM eta=0, DPM-Solver++) are affine maps of x_T, so their law is N(b, M M^T)
(probed with D + 1 inputs); ancestral DDPM's law is propagated step by step
(m <- A m + c, C <- A C A^T + sigma^2 I). tp_w2 = law_w2 of the deterministic samplers
started from the TRUE marginal at t = T instead of N(0, I) (abar_T > 0 for the linear
schedule): the solver's own error without the prior mismatch that an ODE cannot forget. calls = network calls; speedup = 1000 / calls
(DDPM-1000 makes 1000).
Wall times on a shared CPU are noisy; compare rows of one run.

Example:
    python tools/analysis_tools/benchmark_diffusion.py --num-samples 50000 --json bench.json
"""
import argparse
import json
import time

import torch

from occworld4d.diffusion import GaussianDiffusion
from occworld4d.diffusion.analytic import (GaussianDataDenoiser, gaussian_distances,
                                           gaussian_w2)
from occworld4d.utils import atomic_path

# name, sampler, num_steps, eta
DEFAULT_RUNS = (
    ('ddpm-1000', 'ddpm', 1000, 0.0),
    ('ddpm-250', 'ddpm', 250, 0.0),
    ('ddim-50', 'ddim', 50, 0.0),
    ('ddim-100', 'ddim', 100, 0.0),
    ('ddim-ddim50', 'ddim', 'ddim50', 0.0),
    ('dpmpp_2m-20', 'dpmpp_2m', 20, 0.0),
    ('dpmpp_2m-10', 'dpmpp_2m', 10, 0.0),
    ('dpmpp_2m-20-quad', 'dpmpp_2m', 'quad20', 0.0),
    ('dpmpp_2m-20-cubic', 'dpmpp_2m', 'cubic20', 0.0),
    ('dpmpp_2m-20-uniform', 'dpmpp_2m', '20', 0.0),
    ('ddim-1000', 'ddim', 1000, 0.0),
)


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


def ode_law_w2(engine, model, sampler, steps, mean, cov, device, true_prior=False):
    """W2 between N(mean, cov) and the exact output law of a deterministic sampler.

    With ``true_prior`` x_T is drawn from the true marginal N(a_T mean, a_T^2 cov + s_T^2 I)
    instead of N(0, I): what remains is the solver's own discretisation error.
    """
    dim = mean.numel()
    probes = torch.cat([torch.zeros(1, dim), torch.eye(dim)]).double().to(device)  # (D+1, D)
    out = engine.sample(model, probes.shape, sampler=sampler, num_steps=steps, x_T=probes,
                        dtype=torch.float64, device=device).cpu()
    offset = out[0]
    linear = (out[1:] - offset).T  # column j = image of e_j: (D, D)
    if not true_prior:
        return gaussian_w2(offset, linear @ linear.T, mean, cov)
    a_T = engine.schedule.sqrt_alphas_cumprod[-1]
    prior_cov = a_T**2 * cov + (1 - a_T**2) * torch.eye(dim, dtype=torch.float64)
    return gaussian_w2(linear @ (a_T * mean) + offset, linear @ prior_cov @ linear.T, mean,
                       cov)


def ddpm_law_w2(engine, model, steps, mean, cov, device):
    """W2 between N(mean, cov) and the exact output law of ancestral DDPM.

    With the exact Gaussian denoiser each step is x_{i-1} = A_i x_i + c_i + sigma_i z, so the
    law stays Gaussian: m <- A m + c, C <- A C A^T + sigma_i^2 I, from N(0, I) at x_T.
    A_i and c_i are probed through the engine's own ``p_mean_variance``.
    """
    dim = mean.numel()
    chain = engine.schedule_for(steps)
    probes = torch.cat([torch.zeros(1, dim), torch.eye(dim)]).double().to(device)  # (D+1, D)
    law_mean = torch.zeros(dim, dtype=torch.float64)
    law_cov = torch.eye(dim, dtype=torch.float64)
    for i in range(chain.num_steps - 1, -1, -1):
        index = torch.full((dim + 1, ), i, dtype=torch.int64, device=device)
        t = torch.full((dim + 1, ), int(chain.timesteps[i]), dtype=torch.int64, device=device)
        p = engine.p_mean_variance(model(probes, t), probes, index, chain)
        offset = p['mean'][0].cpu()
        linear = (p['mean'][1:].cpu() - offset).T  # (D, D)
        law_mean = linear @ law_mean + offset
        law_cov = linear @ law_cov @ linear.T
        if i > 0:
            law_cov = law_cov + p['variance'][0].cpu().reshape(()) * torch.eye(dim).double()
    return gaussian_w2(law_mean, law_cov, mean, cov)


def run_benchmark(num_samples=50000, dim=4, runs=DEFAULT_RUNS, device='cpu', seed=0,
                  progress=False, beta_schedule='linear'):
    """Distances to N(mu, Sigma), wall time and network calls of each sampler.

    Returns:
        dict(problem=..., rows=[dict(name, sampler, num_steps, calls, speedup, seconds,
        mean_err, cov_fro, cov_rel, w2, law_w2), ...]) with an ``exact`` row first.
    """
    mean, cov = gaussian_problem(dim)
    engine = GaussianDiffusion(beta_schedule=beta_schedule)
    model = GaussianDataDenoiser(engine.schedule, mean, cov)
    torch.manual_seed(seed + 1)
    exact = torch.distributions.MultivariateNormal(mean, cov).sample((num_samples, ))
    rows = [dict(name='exact', sampler='-', num_steps=0, calls=0, speedup=None, seconds=0.0,
                 law_w2=0.0, law_w2_true_prior=0.0, **gaussian_distances(exact, mean, cov))]
    for name, sampler, steps, eta in runs:
        model.calls = 0
        gen = torch.Generator(device=device).manual_seed(seed)
        start = time.perf_counter()
        x = engine.sample(model, (num_samples, dim), sampler=sampler, num_steps=steps, eta=eta,
                          generator=gen, dtype=torch.float64, device=device,
                          progress=progress)
        if device != 'cpu':
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        calls = model.calls
        law = law_tp = None
        if sampler == 'dpmpp_2m' or (sampler == 'ddim' and eta == 0):
            law = ode_law_w2(engine, model, sampler, steps, mean, cov, device)
            law_tp = ode_law_w2(engine, model, sampler, steps, mean, cov, device, True)
        elif sampler == 'ddpm':
            law = ddpm_law_w2(engine, model, steps, mean, cov, device)
        rows.append(dict(name=name, sampler=sampler, num_steps=str(steps), calls=calls,
                         speedup=round(engine.num_timesteps / calls, 1),
                         seconds=round(seconds, 3), law_w2=law, law_w2_true_prior=law_tp,
                         **gaussian_distances(x.cpu(), mean, cov)))
    return dict(problem=dict(dim=dim, num_samples=num_samples, mean=mean.tolist(),
                             cov_eigenvalues=torch.linalg.eigvalsh(cov).tolist(),
                             schedule=f'{beta_schedule}, 1000 steps', device=str(device)),
                rows=rows)


def format_table(result) -> str:
    head = (f'{"sampler":<22}{"calls":>6}{"speedup":>8}{"seconds":>9}{"mean_err":>10}'
            f'{"cov_rel":>9}{"w2":>8}{"law_w2":>8}{"tp_w2":>8}')
    lines = [head, '-' * len(head)]
    for r in result['rows']:
        law = '-' if r['law_w2'] is None else f'{r["law_w2"]:.4f}'
        law_tp = '-' if r['law_w2_true_prior'] is None else f'{r["law_w2_true_prior"]:.4f}'
        speed = '-' if r['speedup'] is None else f'{r["speedup"]:.0f}x'
        lines.append(f'{r["name"]:<22}{r["calls"]:>6}{speed:>8}{r["seconds"]:>9.2f}'
                     f'{r["mean_err"]:>10.4f}{r["cov_rel"]:>9.4f}{r["w2"]:>8.4f}{law:>8}{law_tp:>8}')
    return '\n'.join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--num-samples', type=int, default=50000)
    parser.add_argument('--dim', type=int, default=4)
    parser.add_argument('--beta-schedule', default='linear',
                        choices=['linear', 'cosine', 'scaled_linear'])
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int, default=1, help='torch.set_num_threads')
    parser.add_argument('--progress', action='store_true')
    parser.add_argument('--runs', nargs='+', choices=[r[0] for r in DEFAULT_RUNS],
                        help='only these rows (default: all)')
    parser.add_argument('--json', help='also write the result as JSON to this path')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    runs = [r for r in DEFAULT_RUNS if args.runs is None or r[0] in args.runs]
    result = run_benchmark(args.num_samples, args.dim, runs, device=args.device,
                           seed=args.seed, progress=args.progress,
                           beta_schedule=args.beta_schedule)
    print(f'N(mu, Sigma) in {args.dim}-D, {args.num_samples} samples, {args.beta_schedule} '
          f'schedule, exact denoiser, device {args.device}')
    print(format_table(result))
    if args.json:
        with atomic_path(args.json) as tmp:
            with open(tmp, 'w') as f:
                json.dump(result, f, indent=2)
    return result


if __name__ == '__main__':
    main()
