"""Seeded sampling outputs pinned to the values recorded before the sampling-API refactor
(issue 18, item 3): every sampler and every option of the loop (guidance, inpainting with
RePaint moves, padding masks, learned variance, respaced chains, zero-SNR start, x_T, the
three prediction types, float32 and float64), and the generator path
(``LatentDiffusion.sample`` with a tiny RolloutDiT), must give the same tensors.

Each case is reduced to three checksums of the float64 sample: its sum, a sum weighted by a
fixed ramp, and its sum of squares. The EXPECTED values were printed by ``_checksums`` on
the engine as it was before the refactor (this file was committed first, in 67673cb, and
passed there) and must match to 1e-6.
"""
import os.path as osp
import sys

import pytest
import torch
from torch import nn

from occworld4d.diffusion import GaussianDiffusion

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'test_apis'))
from tiny_models import tiny_model_cfg  # noqa: E402

from occworld4d.registry import MODELS  # noqa: E402

SHAPE = (2, 3, 4, 4)  # B, C, H, W


class TinyDenoiser(nn.Module):
    """The exact prediction for N(0, I) data plus a fixed nonlinear perturbation.

    For x0 ~ N(0, I): eps* = s_t x_t, x0* = a_t x_t, v* = 0. The output adds
    0.2 tanh(W x + sin(t / 97) u + b [+ mu]) per cell (deterministic from ``seed``); ``mu``
    (B, C) is a condition that CFG can drop (``drop['mu']`` True = null it). With
    ``learn_sigma`` the last C channels are tanh(...) (the learned-range values).
    Output (B, C or 2C, H, W).
    """

    def __init__(self, engine: GaussianDiffusion, channels: int = 3, seed: int = 0):
        super().__init__()
        self.engine = engine
        out = 2 * channels if engine.learn_sigma else channels
        g = torch.Generator().manual_seed(seed)
        self.w = nn.Parameter(0.4 * torch.randn(out, channels, generator=g, dtype=torch.float64))
        self.u = nn.Parameter(torch.randn(out, generator=g, dtype=torch.float64))
        self.b = nn.Parameter(0.1 * torch.randn(out, generator=g, dtype=torch.float64))
        self.channels = channels

    def forward(self, x, t, mu=None, drop=None):
        w, u, b = (p.to(x.dtype) for p in (self.w, self.u, self.b))
        h = torch.einsum('oc,bchw->bohw', w, x)  # (B, O, H, W)
        h = h + torch.sin(t.to(x.dtype) / 97)[:, None, None, None] * u[None, :, None, None]
        h = h + b[None, :, None, None]
        if mu is not None:
            m = mu.to(x.dtype)  # (B, C)
            if drop is not None and 'mu' in drop:
                m = torch.where(drop['mu'][:, None], torch.zeros_like(m), m)
            m = nn.functional.pad(m, (0, h.shape[1] - m.shape[1]))  # (B, O): mu on eps only
            h = h + m[:, :, None, None]
        h = torch.tanh(h)
        schedule = self.engine.schedule
        a = schedule.sqrt_alphas_cumprod[t.cpu()].to(x.dtype)[:, None, None, None]  # (B,1,1,1)
        s = schedule.sqrt_one_minus_alphas_cumprod[t.cpu()].to(x.dtype)[:, None, None, None]
        exact = dict(eps=s * x, x0=a * x, v=torch.zeros_like(x))[self.engine.prediction_type]
        pred = exact + 0.2 * h[:, :self.channels]
        if self.engine.learn_sigma:
            return torch.cat([pred, h[:, self.channels:]], 1)
        return pred


def _ramp(n):
    return torch.linspace(-1.0, 2.0, n, dtype=torch.float64)


def _checksums(x):
    x = x.detach().to(torch.float64).flatten()
    return [float(x.sum()), float((x * _ramp(x.numel())).sum()), float((x * x).sum())]


def _known():
    g = torch.Generator().manual_seed(11)
    known = torch.randn(SHAPE, generator=g)
    mask = torch.zeros(SHAPE, dtype=torch.bool)
    mask[:, :, :2] = True  # keep the top half rows
    return known, mask


def _valid():
    valid = torch.ones(1, 1, 4, 4, dtype=torch.bool)
    valid[..., 3] = False  # last column is padding
    return valid


SAMPLERS = ('ddpm', 'ddim', 'dpmpp_2m', 'dpmpp_3m', 'unipc')


def _cases():
    """name -> (engine kwargs, denoiser kwargs, sample kwargs without model / shape)."""
    mu = torch.tensor([[0.5, -0.3, 0.2], [-0.4, 0.1, 0.6]])
    known, mask = _known()
    cases = {}
    for s in SAMPLERS:
        cases[f'{s}-plain'] = ({}, {}, dict(sampler=s, num_steps=10))
        cases[f'{s}-f64'] = ({}, {}, dict(sampler=s, num_steps=12, dtype=torch.float64))
        cases[f'{s}-nozerosnr'] = ({}, {}, dict(sampler=s, num_steps=8,
                                                start_at_zero_snr=False))
        cases[f'{s}-cfg'] = ({}, {}, dict(sampler=s, num_steps=6, cond=dict(mu=mu),
                                          guidance_scale=2.5))
        cases[f'{s}-repaint'] = ({}, {}, dict(sampler=s, num_steps=6, known=known,
                                              known_mask=mask, resample_jumps=2,
                                              resample_steps=2))
        cases[f'{s}-valid'] = ({}, {}, dict(sampler=s, num_steps=5, valid_mask=_valid()))
        cases[f'{s}-sigma'] = (dict(learn_sigma=True, loss_type='hybrid',
                                    beta_schedule='cosine'), {},
                               dict(sampler=s, num_steps=7, clip_x0=1.0))
        cases[f'{s}-v'] = (dict(prediction_type='v', beta_schedule='scaled_linear',
                                num_timesteps=200), {}, dict(sampler=s, num_steps='trailing9'))
        cases[f'{s}-x0'] = (dict(prediction_type='x0', fixed_variance='small'), {},
                            dict(sampler=s, num_steps=[0, 100, 300, 600, 999]))
    cases['ddim-eta'] = ({}, {}, dict(sampler='ddim', num_steps=10, eta=0.7))
    cases['ddim-xT'] = ({}, {}, dict(sampler='ddim', num_steps=5,
                                     x_T=torch.linspace(-2, 2, 96).reshape(SHAPE)))
    cases['unipc-order2'] = ({}, {}, dict(sampler='unipc', num_steps=10, solver_order=2))
    cases['unipc-order1'] = ({}, {}, dict(sampler='unipc', num_steps=10, solver_order=1))
    cases['ddpm-respacing'] = (dict(timestep_respacing='ddim5', num_timesteps=100), {},
                               dict(sampler='ddpm'))
    cases['ddpm-full'] = (dict(num_timesteps=30), {}, dict(sampler='ddpm'))
    cases['dpmpp_2m-spacing'] = (dict(timestep_spacing='logsnr'), {},
                                 dict(sampler='dpmpp_2m', num_steps=8))
    cases['ddim-sections'] = (dict(num_timesteps=100), {},
                              dict(sampler='ddim', num_steps='3,2,4'))
    return cases


CASES = _cases()


def run_case(name):
    engine_kw, model_kw, sample_kw = CASES[name]
    engine = GaussianDiffusion(**engine_kw)
    model = TinyDenoiser(engine, **model_kw)
    return engine.sample(model, SHAPE, generator=torch.Generator().manual_seed(0), **sample_kw)


def run_generator(sampler):
    """``LatentDiffusion.sample`` of a tiny DynamicCity-style model (RolloutDiT with padding,
    learned sigma, CFG on a command) whose weights are seeded noise (not the zero init)."""
    torch.manual_seed(0)
    model = MODELS.build(tiny_model_cfg()).eval()
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in model.denoiser.parameters():
            p.copy_(0.05 * torch.randn(p.shape, generator=g))
    return model.sample(2, cond=dict(command=torch.tensor([1, 2])), sampler=sampler,
                        num_steps=5, generator=torch.Generator().manual_seed(4))


EXPECTED = {
    'ddim-cfg': [-62.22207374218851, -75.26947026097854, 231.54516868320928],
    'ddim-eta': [12.341020888765343, 5.571367800577642, 73.18401944023748],
    'ddim-f64': [10.957424173639401, 16.067582200199986, 115.94581889441744],
    'ddim-nozerosnr': [13.679556090384722, 4.319835681487856, 122.74715204555869],
    'ddim-plain': [13.938545673154294, 4.776731982768365, 136.42810266199845],
    'ddim-repaint': [-3.9734265822917223, -5.809171093235671, 69.07516031081403],
    'ddim-sections': [12.845954479882494, 8.083037717625695, 125.29694073676683],
    'ddim-sigma': [3.1749737984500825, 2.812769530076336, 45.638822635386184],
    'ddim-v': [12.267498038709164, 8.078078522131241, 117.21450998427561],
    'ddim-valid': [8.90715242549777, 1.9126258790885151, 121.90857592127719],
    'ddim-x0': [0.02202725224196911, 6.520798258718692, 52.35785232808317],
    'ddim-xT': [78.82585095241666, 101.75615214652528, 197.53382031885542],
    'ddpm-cfg': [-11.162897546309978, -25.557990781369767, 135.78781996170932],
    'ddpm-f64': [15.795757875393054, 11.596465158739894, 90.23445175937516],
    'ddpm-full': [6.490668350830674, 5.949902722651236, 79.51017886259692],
    'ddpm-nozerosnr': [15.754413902759552, 15.621329799019978, 121.27562687103179],
    'ddpm-plain': [3.892116531729698, 1.4938172805270078, 119.50726591590258],
    'ddpm-repaint': [-4.785616086795926, 2.373575478537304, 92.75205099939694],
    'ddpm-respacing': [14.540115618146956, 4.5101801405709825, 67.79825255067773],
    'ddpm-sigma': [13.481887421570718, 7.253779290773367, 38.86000051660649],
    'ddpm-v': [16.081169046461582, 8.217232523603657, 81.12318810493963],
    'ddpm-valid': [31.904852813109756, 7.480250752383941, 92.33864793746704],
    'ddpm-x0': [0.044314561411738396, 1.8967475164289538, 26.616729581037596],
    'dpmpp_2m-cfg': [-106.39506759867072, -112.23158204775108, 808.7276501107408],
    'dpmpp_2m-f64': [14.613367185023614, 19.006192846991446, 123.49917536958003],
    'dpmpp_2m-nozerosnr': [18.020086611621082, 10.185928255623503, 173.56004481178215],
    'dpmpp_2m-plain': [21.187065253034234, 9.844090907530564, 148.75237741329943],
    'dpmpp_2m-repaint': [-16.582797521725297, -19.40898476370463, 198.75191295970967],
    'dpmpp_2m-sigma': [3.754078387049958, 2.7283427887204064, 50.387940181725256],
    'dpmpp_2m-spacing': [0.5234937220811844, 6.244967799045537, 112.314459340789],
    'dpmpp_2m-v': [12.986683138646185, 8.703165153129712, 136.69467858956205],
    'dpmpp_2m-valid': [-25.399835117161274, -5.813783255141027, 786.0307467397504],
    'dpmpp_2m-x0': [-2.125917598605156, 10.352427021217974, 141.721427598182],
    'dpmpp_3m-cfg': [-1273.562124080956, -383.5890534195461, 118338.36574625733],
    'dpmpp_3m-f64': [12.52286047856775, 21.376042894533505, 197.07922317938448],
    'dpmpp_3m-nozerosnr': [-31.255614139139652, 1.4314226003854067, 2300.4404583883206],
    'dpmpp_3m-plain': [15.912503755651414, 4.619356505249284, 419.58777106614616],
    'dpmpp_3m-repaint': [-69.64079133979976, -43.03366939752902, 486.50675371599755],
    'dpmpp_3m-sigma': [1.6611875479575247, -1.9184965556953113, 55.50073062103612],
    'dpmpp_3m-v': [12.689291692338884, 8.511764270047609, 130.48509424762554],
    'dpmpp_3m-valid': [-1288.6902301311493, -255.19749135092678, 87396.58398918893],
    'dpmpp_3m-x0': [-0.48665260523557663, 12.0423881052356, 184.68762727420858],
    'unipc-cfg': [-1410.1405589282513, -527.605172454056, 141664.88970561308],
    'unipc-f64': [12.841554546289805, 19.6777963865689, 154.03491475504293],
    'unipc-nozerosnr': [50.65649269707501, 14.916115333492815, 815.0046871745399],
    'unipc-order1': [11.44010439957492, 4.797488185927566, 131.64810311326656],
    'unipc-order2': [11.078772251494229, 6.8766921890311385, 164.84465084926376],
    'unipc-plain': [23.44205280439928, 6.346676323533451, 225.86553305823173],
    'unipc-repaint': [-66.33689015544951, -41.04876495052717, 468.19593902079305],
    'unipc-sigma': [-4.5849192794412374, -4.579063707766562, 45.42234225473328],
    'unipc-v': [9.97322598285973, 6.8685507608871745, 77.23330550079552],
    'unipc-valid': [-1982.1331936120987, -393.8187445377049, 235096.81509247902],
    'unipc-x0': [-8.135016061365604, 16.402827493846416, 366.3402066628388],
}
EXPECTED_GENERATOR = {
    'ddpm': [-49.96046693914104, -38.44778163261394, 746.1354384270854],
    'ddim': [-29.386902366764843, -26.09696632666956, 1163.315429886625],
    'dpmpp_2m': [-28.803630121983588, -25.263721125151758, 1101.2137051692812],
    'dpmpp_3m': [-25.296521863900125, -21.64920912202029, 831.6527550288771],
    'unipc': [-25.05650958791375, -21.407083296900325, 814.8092341038018],
}


@pytest.mark.parametrize('name', sorted(CASES))
def test_seeded_sample_is_pinned(name):
    got = _checksums(run_case(name))
    assert got == pytest.approx(EXPECTED[name], rel=1e-6, abs=1e-6), name


@pytest.mark.parametrize('sampler', SAMPLERS)
def test_generator_sample_is_pinned(sampler):
    got = _checksums(run_generator(sampler))
    assert got == pytest.approx(EXPECTED_GENERATOR[sampler], rel=1e-6, abs=1e-6), sampler


if __name__ == '__main__':  # print the table (how EXPECTED was recorded)
    torch.set_num_threads(1)
    print('EXPECTED = {')
    for case in sorted(CASES):
        print(f'    {case!r}: {_checksums(run_case(case))!r},')
    print('}')
    print('EXPECTED_GENERATOR = {')
    for s in SAMPLERS:
        print(f'    {s!r}: {_checksums(run_generator(s))!r},')
    print('}')
