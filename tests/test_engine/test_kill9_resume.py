"""Issue 15, item 3, both resume checks per model, on ONE uninterrupted reference run each: for
the tokenizer with dead-code restarts (tiny OccWorld VQ-VAE), the VAE (tiny DynamicCity VAE) and
the DiT (tiny DynamicCity DiT) of test_bit_identical_resume.py,

* in process: stopped after N/2, RNGs scrambled, resumed in this process
  (test_bit_identical_resume.check_in_process_resume, with its no-RNGStateHook control);
* with a real ``kill -9``: a training process is killed with SIGKILL in the middle of the run
  (one iteration after the half-way checkpoint, so it dies with work that no checkpoint holds),
  a fresh process resumes from the work dir. Unlike the in-process check, nothing but the files
  survives the kill (no Python state, no RNG, no data-loader iterator).

Both final model and optimizer states equal the uninterrupted run's bit for bit.
"""
import os
import os.path as osp
import subprocess
import sys
import textwrap

import pytest
import torch

from helpers import ROOT

HERE = osp.dirname(osp.abspath(__file__))
sys.path.insert(0, HERE)  # the sibling test module, whatever pytest's --import-mode
from test_bit_identical_resume import (_run, _states, check_in_process_resume,  # noqa: E402
                                       dit_cfg, vae_cfg, vqvae_cfg)
CONFIGS = dict(vqvae=vqvae_cfg, vae=vae_cfg, dit=dit_cfg)

PROLOGUE = f"""
import os, sys, signal, torch
sys.path[:0] = [{HERE!r}, {osp.dirname(HERE)!r}]
torch.set_num_threads(1)
from mmengine.hooks import Hook
import test_bit_identical_resume as T
from test_bit_identical_resume import _run, _states
make = getattr(T, sys.argv[1] + '_cfg')
work = sys.argv[2]
"""

KILL = """
class KillMidRun(Hook):
    priority = 'LOWEST'

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        # the VQ-VAE saves iter_3.pth, the epoch-based runs epoch_2.pth; die one iteration
        # later, inside the next epoch / interval, before anything else is saved
        if (runner.iter == 4 if sys.argv[1] == 'vqvae' else
                runner.epoch == 2 and batch_idx == 1):
            os.kill(os.getpid(), signal.SIGKILL)

_run_cfg = T.Runner.from_cfg

def from_cfg(cfg):
    runner = _run_cfg(cfg)
    runner.register_hook(KillMidRun())
    return runner

T.Runner.from_cfg = from_cfg
_run(make, work)
"""

RESUME = """
runner = _run(make, work, resume=True)
model, optim = _states(runner)
torch.save(dict(model=model, optim=optim, iter=runner.iter), sys.argv[3])
"""


def _python(code, *args):
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code), *map(str, args)],
                          cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS='1'),
                          capture_output=True, text=True, timeout=600)


def check_kill_minus_9_resume(name, tmp_path, full):
    """SIGKILL a training process of ``name`` one iteration after its half-way checkpoint,
    resume in a fresh process: the final states equal ``full`` (the uninterrupted run's)."""
    full_model, full_optim = full
    _, n, _ = CONFIGS[name]()
    work = tmp_path / 'killed'
    killed = _python(PROLOGUE + KILL, name, work)
    assert killed.returncode == -9, killed.stderr[-3000:]
    saved = open(work / 'last_checkpoint').read().strip()
    half = 'iter_3.pth' if name == 'vqvae' else 'epoch_2.pth'
    assert osp.basename(saved) == half, saved  # the kill came after it, before the next save
    assert not osp.exists(work / ('iter_6.pth' if name == 'vqvae' else 'epoch_4.pth'))

    out = tmp_path / 'resumed.pth'
    resumed = _python(PROLOGUE + RESUME, name, work, out)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    got = torch.load(out, weights_only=True)
    assert got['iter'] == (n if name == 'vqvae' else 2 * n)
    bad = [k for k in full_model if not torch.equal(full_model[k], got['model'][k])]
    assert not bad, f'{len(bad)} of {len(full_model)} tensors differ after kill -9: {bad[:5]}'
    assert full_optim.keys() == got['optim'].keys()
    assert all(torch.equal(full_optim[k], got['optim'][k]) for k in full_optim)


@pytest.mark.parametrize('name', list(CONFIGS))
def test_resume_in_process_and_after_kill_minus_9_is_bit_identical(name, tmp_path):
    torch.set_num_threads(1)
    make = CONFIGS[name]
    full = _states(_run(make, tmp_path / 'full'))  # the reference of both checks
    check_in_process_resume(make, tmp_path, full)
    check_kill_minus_9_resume(name, tmp_path, full)
