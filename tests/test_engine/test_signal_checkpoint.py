"""Issue 15, item 2 (signals): SIGTERM / SIGINT during training save a checkpoint and stop
cleanly (SignalCheckpointHook); --resume continues mid-epoch to the same weights, bit for bit,
as the uninterrupted run."""
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
import torch
from mmengine.hooks import Hook

from engine_toys import make_runner
from helpers import ROOT, tool_main
from occworld4d.engine.hooks import TrainingInterrupted
from occworld4d.utils.compat import load_checkpoint_file

VQ_CFG = 'configs/occworld/occworld_vqvae_tiny_synthetic-city.py'
# 8 scenes / batch 2 = 4 iterations an epoch, 2 epochs; a log line every iteration
OPTS = ['train_dataloader.dataset.num_scenes=8', 'train_cfg.max_epochs=2',
        'default_hooks.logger.interval=1', 'log_level=INFO']


class KillAt(Hook):
    def __init__(self, it, signum):
        self.it, self.signum = it, signum

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.it:
            os.kill(os.getpid(), self.signum)


def _weights(path):
    return load_checkpoint_file(str(path))['state_dict']


def test_sigint_in_process_saves_and_resumes_mid_epoch(tmp_path):
    torch.manual_seed(0)  # the toy model is initialised before the Runner seeds
    full = make_runner(tmp_path / 'full', max_epochs=2)
    full.train()
    ref = {k: v.clone() for k, v in full.model.state_dict().items()}

    torch.manual_seed(0)
    runner = make_runner(tmp_path / 'cut', max_epochs=2)
    runner.register_hook(KillAt(2, signal.SIGINT))  # iteration 2 of 4 in epoch 1
    before = signal.getsignal(signal.SIGINT)  # not always the default one (pytest-xdist)
    with pytest.raises(TrainingInterrupted) as err:
        runner.train()
    assert err.value.exit_code == 130 and 'SIGINT' in str(err.value)
    ckpt = tmp_path / 'cut' / 'iter_2.pth'
    assert err.value.checkpoint == str(ckpt) and ckpt.is_file()
    assert (tmp_path / 'cut' / 'last_checkpoint').read_text() == str(ckpt)
    meta = load_checkpoint_file(str(ckpt))['meta']
    assert (meta['epoch'], meta['iter']) == (0, 2)
    assert signal.getsignal(signal.SIGINT) is before  # the handler is put back

    resumed = make_runner(tmp_path / 'cut', max_epochs=2, resume=True)
    resumed.train()
    assert resumed.iter == 8  # 2 + the 2 untrained batches of epoch 1 + 4, not 2 + 4 + 4
    assert all(torch.equal(ref[k], v) for k, v in resumed.model.state_dict().items())


def _train(work_dir, *extra):
    return [sys.executable, 'tools/train.py', VQ_CFG, '--work-dir', str(work_dir), *extra,
            '--cfg-options', *OPTS]


def test_sigterm_tools_train_saves_exits_143_and_resume_is_bit_identical(tmp_path):
    """Only the interrupted run is a process of its own (SIGTERM, exit 143); the reference and
    the resume run tools/train.py's ``main(argv)`` in this process (a subprocess each paid
    ~8 s CPU of start-up; resuming in a fresh process after kill -9 is test_kill9_resume.py)."""
    env = dict(os.environ, OMP_NUM_THREADS='1')
    tool_main(*_train(tmp_path / 'full')[1:])

    proc = subprocess.Popen(_train(tmp_path / 'cut'), cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = ''
    deadline = time.time() + 300
    while 'Epoch(train) [1][1/4]' not in seen and time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen += line
    assert 'Epoch(train) [1][1/4]' in seen, seen[-2000:]
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 143, err[-3000:]
    assert 'Traceback' not in err and 'interrupted by SIGTERM' in err
    saved = open(tmp_path / 'cut' / 'last_checkpoint').read().strip()
    n = int(osp.basename(saved)[len('iter_'):-len('.pth')])
    assert 1 <= n < 8 and osp.isfile(saved) and not osp.isfile(tmp_path / 'cut' / 'epoch_2.pth')

    tool_main(*_train(tmp_path / 'cut', '--resume')[1:])
    ref, got = _weights(tmp_path / 'full' / 'epoch_2.pth'), _weights(tmp_path / 'cut' / 'epoch_2.pth')
    bad = [k for k in ref if not torch.equal(ref[k], got[k])]
    assert not bad, f'stopped after iteration {n}: {len(bad)} of {len(ref)} tensors differ'
