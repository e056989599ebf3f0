"""The public sampling interface (issue 18, item 3): the request object, the sampler
registry, the one index space (original timesteps), no cross-module calls of the engine's
private methods, and the 'Adding a sampler' example of docs/diffusion.md run as written."""
import ast
import glob
import os.path as osp
import re

import pytest
import torch

from occworld4d.diffusion import (SAMPLERS, DDIMStep, GaussianDiffusion, Guidance, Inpainting,
                                  SampleRequest, SamplerStep, build_step, register_sampler)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DOC = osp.join(ROOT, 'docs', 'diffusion.md')


def model(x, t, mu=None, drop=None):
    """A smooth nonlinear stand-in: 0.3 x + 0.2 tanh(x + sin(t / 50)) [+ mu], CFG-droppable."""
    out = 0.3 * x + 0.2 * torch.tanh(x + torch.sin(t.to(x.dtype) / 50).view(-1, 1, 1, 1))
    if mu is not None:
        keep = torch.ones(x.shape[0], dtype=torch.bool) if drop is None else ~drop['mu']
        out = out + (keep[:, None] * mu.to(x.dtype))[:, :, None, None]
    return out


def _doc_example() -> str:
    text = open(DOC).read()
    section = text[text.index('## Adding a sampler'):]
    match = re.search(r'```python\n(.*?)```', section, re.S)
    assert match, f'{DOC}: no python block under "## Adding a sampler"'
    return match.group(1)


def test_doc_example_registers_a_sampler_that_works():
    engine_before = GaussianDiffusion()  # built before the sampler exists
    assert 'euler' not in SAMPLERS
    namespace = {}
    try:
        exec(compile(_doc_example(), DOC, 'exec'), namespace)
        assert SAMPLERS['euler'] is namespace['EulerStep']
        x0 = namespace['x0']
        assert x0.shape == (2, 4, 8, 8) and torch.isfinite(x0).all()
        # the registered spacing applies, also to an engine built before the registration
        assert engine_before.steps_for('euler', 20) == 'trailing20'
        assert namespace['engine'].steps_for('euler', 20) == 'trailing20'
        # Euler in (x / a, s / a) is DDIM (eta = 0): same chain, same x_T, float64
        engine = GaussianDiffusion()
        x_T = torch.randn(3, 2, 4, 4, generator=torch.Generator().manual_seed(1),
                          dtype=torch.float64)
        kw = dict(num_steps='trailing15', x_T=x_T, dtype=torch.float64)
        euler = engine.sample(model, x_T.shape, sampler='euler', **kw)
        ddim = engine.sample(model, x_T.shape, sampler='ddim', **kw)
        torch.testing.assert_close(euler, ddim, rtol=0, atol=1e-6)
        assert (euler - x_T).abs().max() > 0.1  # it did move
        # the loop gives it CFG, inpainting and padding without any change
        known = torch.full((2, 2, 4, 4), 0.7)
        mask = torch.zeros(2, 2, 4, 4, dtype=torch.bool)
        mask[..., 0] = True
        valid = torch.ones(1, 1, 4, 4, dtype=torch.bool)
        valid[..., 3] = False
        out = engine.sample(model, (2, 2, 4, 4), sampler='euler', num_steps=8,
                            cond=dict(mu=torch.ones(2, 2)), guidance_scale=3.0, known=known,
                            known_mask=mask, valid_mask=valid,
                            generator=torch.Generator().manual_seed(0))
        assert torch.equal(out[..., 0], known[..., 0]) and not out[..., 3].any()
    finally:
        SAMPLERS.pop('euler', None)


def test_request_is_the_keyword_form():
    engine = GaussianDiffusion(num_timesteps=200)
    known = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(2))
    mask = torch.zeros(2, 3, 4, 4, dtype=torch.bool)
    mask[:, :, :2] = True
    mu = torch.tensor([[0.5, -0.2, 0.1], [0.0, 0.3, -0.4]])
    kw = dict(sampler='unipc', num_steps=9, cond=dict(mu=mu), guidance_scale=2.0,
              known=known, known_mask=mask, resample_jumps=2, resample_steps=2, clip_x0=2.0)
    by_keywords = engine.sample(model, (2, 3, 4, 4), solver_order=2,
                                generator=torch.Generator().manual_seed(5), **kw)
    request = SampleRequest(shape=[2, 3, 4, 4], sampler='unipc', num_steps=9, cond=dict(mu=mu),
                            options=dict(order=2), guidance=Guidance(scale=2.0),
                            inpainting=Inpainting(known, mask, 2, 2), clip_x0=2.0,
                            generator=torch.Generator().manual_seed(5))
    assert request.shape == (2, 3, 4, 4)
    assert torch.equal(engine.sample_request(model, request), by_keywords)
    with pytest.raises(ValueError, match='expected a SampleRequest, found dict'):
        engine.sample_request(model, dict(shape=(2, 3)))
    with pytest.raises(ValueError, match=r"sampler 'ddim' \(DDIMStep\) does not take the "
                                         r"options \['order'\]"):
        engine.sample_request(model, SampleRequest((2, 3, 4, 4), 'ddim', 5,
                                                   options=dict(order=2)))
    with pytest.raises(ValueError, match="unknown sampler 'heun'"):
        engine.sample_request(model, SampleRequest((2, 3, 4, 4), 'heun'))


def test_registry_rules():
    assert list(SAMPLERS) == ['ddpm', 'ddim', 'dpmpp_2m', 'dpmpp_3m', 'unipc']
    assert SAMPLERS['dpmpp_2m'].schedule_spacing == dict(linear='cubic', scaled_linear='quad',
                                                         cosine='trailing')
    assert SAMPLERS['dpmpp_3m'].schedule_spacing == {}  # not inherited from 2M
    assert [SAMPLERS[n].default_spacing for n in SAMPLERS] == [
        'linspace', 'linspace', 'cubic', 'logsnr', 'logsnr']
    assert isinstance(build_step('unipc', options=dict(order=1)), SAMPLERS['unipc'])
    with pytest.raises(ValueError, match="'ddim' is already registered"):
        register_sampler('ddim')(type('Other', (SamplerStep, ), {}))
    with pytest.raises(ValueError, match='is not a SamplerStep subclass'):
        register_sampler('nope')(object)
    with pytest.raises(ValueError, match=r"spacing \{'default': 'zigzag'\} not among"):
        register_sampler('nope', default_spacing='zigzag')
    assert register_sampler('ddim')(DDIMStep) is DDIMStep  # re-registering itself is fine
    assert 'nope' not in SAMPLERS


def test_one_index_space_original_timesteps():
    engine = GaussianDiffusion(num_timesteps=100)
    chain = engine.schedule_for('ddim10')  # timesteps 0, 10, ..., 90
    assert chain.timesteps.tolist() == list(range(0, 100, 10))
    t = torch.tensor([90, 30, 0])
    assert chain.positions(t).tolist() == [9, 3, 0]
    x0 = torch.randn(3, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x_t = engine.q_sample(x0, t, generator=torch.Generator().manual_seed(1))
    mean, var, _ = engine.q_posterior_mean_variance(x0, x_t, t, chain)
    # closed form with the chain's previous kept timestep: abar_prev = abar[t - 10]
    abar = engine.schedule.alphas_cumprod
    for row, step in enumerate(t.tolist()):
        a_t = abar[step]
        a_prev = abar[step - 10] if step else torch.tensor(1.0, dtype=torch.float64)
        beta = 1 - a_t / a_prev
        expect_mean = (a_prev.sqrt() * beta * x0[row] + (1 - beta).sqrt() * (1 - a_prev) *
                       x_t[row]) / (1 - a_t)
        torch.testing.assert_close(mean[row], expect_mean)
        torch.testing.assert_close(var[row, 0], beta * (1 - a_prev) / (1 - a_t))
    # p_mean_variance at the same original timesteps; x0 of an eps prediction
    eps = torch.randn(3, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    p = engine.p_mean_variance(eps, x_t, t, chain)
    torch.testing.assert_close(p['x0'], engine.predict_x0_from_eps(x_t, t, eps))
    torch.testing.assert_close(p['mean'], engine.q_posterior_mean_variance(
        p['x0'], x_t, t, chain)[0])
    with pytest.raises(ValueError, match=r'timesteps \[35\] are not on this chain'):
        engine.p_mean_variance(eps, x_t, torch.tensor([90, 35, 0]), chain)
    with pytest.raises(ValueError, match=r't must be integer indices in \[0, 99\]'):
        engine.p_mean_variance(eps, x_t, torch.tensor([90, 100, 0]), chain)


def _private_engine_methods():
    tree = ast.parse(open(osp.join(ROOT, 'occworld4d', 'diffusion',
                                   'gaussian_diffusion.py')).read())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef)
               and n.name == 'GaussianDiffusion')
    return {n.name for n in cls.body if isinstance(n, ast.FunctionDef)
            and n.name.startswith('_') and not n.name.startswith('__')}


def test_no_module_calls_private_engine_methods():
    private = _private_engine_methods()
    assert '_check_t' in private  # the scan sees them
    offenders = []
    paths = [p for top in ('occworld4d', 'tools', 'projects', 'tests')
             for p in glob.glob(osp.join(ROOT, top, '**', '*.py'), recursive=True)]
    assert len(paths) > 100
    for path in paths:
        rel = osp.relpath(path, ROOT)
        if rel == osp.join('occworld4d', 'diffusion', 'gaussian_diffusion.py'):
            continue
        for node in ast.walk(ast.parse(open(path).read(), rel)):
            if isinstance(node, ast.Attribute) and node.attr in private:
                offenders.append(f'{rel}:{node.lineno} .{node.attr}')
    assert not offenders, offenders


def test_sampler_options_reach_the_step_from_the_engine_and_the_generator():
    import sys
    sys.path.insert(0, osp.join(ROOT, 'tests', 'test_apis'))
    from tiny_models import tiny_model_cfg

    from occworld4d.registry import MODELS

    engine = GaussianDiffusion()
    x_T = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(3))
    a = engine.sample(model, x_T.shape, sampler='unipc', num_steps=6, x_T=x_T,
                      sampler_options=dict(order=1))
    assert torch.equal(a, engine.sample(model, x_T.shape, sampler='unipc', num_steps=6,
                                        x_T=x_T, solver_order=1))
    assert not torch.equal(a, engine.sample(model, x_T.shape, sampler='unipc', num_steps=6,
                                            x_T=x_T))
    with pytest.raises(ValueError, match='solver_order=2 and sampler_options order=1 disagree'):
        engine.sample(model, x_T.shape, sampler='unipc', solver_order=2,
                      sampler_options=dict(order=1))
    # LatentDiffusion passes sample_cfg['sampler_options'] through
    outs = []
    for extra in (dict(sampler_options=dict(order=1)), dict(solver_order=1), {}):
        torch.manual_seed(0)
        gen = MODELS.build(tiny_model_cfg(
            sample_cfg=dict(sampler='unipc', num_steps=4, guidance_scale=1.0, **extra)))
        g = torch.Generator().manual_seed(3)
        with torch.no_grad():  # seeded weights instead of the zero init
            for p in gen.denoiser.parameters():
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
        outs.append(gen.sample(1, generator=torch.Generator().manual_seed(1)))
    assert torch.equal(outs[0], outs[1]) and not torch.equal(outs[0], outs[2])
