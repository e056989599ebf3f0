"""Issue 15, item 8: tools/dist_train.sh / dist_test.sh (torchrun, mmengine's 'pytorch'
launcher) run on a CPU with gloo (occworld4d/apis/launcher.py), 2 processes of 1 thread each.

- each rank trains on different samples (the two ranks' samples of an epoch are disjoint and
  cover the training set), and the ranks' weights are identical after training, with a
  dead-code restart of the VQ-VAE in every step (a synchronised, non-gradient update);
- killing torchrun itself (kill -9) stops both workers (SIGTERM from PR_SET_PDEATHSIG: they
  save iter_N.pth), and ``--resume`` under 2 processes continues to the same final checkpoint,
  bit for bit, as the uninterrupted run, on the same samples per rank;
- killing one worker (kill -9) tears the group down: torchrun fails and no worker survives;
- dist_test.sh evaluates with 2 processes to the metrics of one process.

The hook that records each rank's samples and weights is tests/test_engine/dist_toys.py.
"""
import json
import os
import os.path as osp
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from helpers import ROOT, tool_main
from occworld4d.utils.compat import checkpoint_is_intact, load_checkpoint_file

BASE = osp.join(ROOT, 'configs', 'occworld', 'occworld_vqvae_tiny_synthetic-city.py')
# 4 scenes of 2 frames, batch 1 per rank, 2 ranks: 2 iterations an epoch, 2 epochs; no
# validation while training (the test split: 4 scenes of 2 frames)
CONFIG = f"""_base_ = [{BASE!r}]
custom_imports = dict(imports=['dist_toys'], allow_failed_imports=False)
custom_hooks = [dict(type='RankRecordHook')]
train_dataloader = dict(batch_size=1, dataset=dict(num_scenes=4, num_frames=2))
val_dataloader = dict(batch_size=1, dataset=dict(num_frames=2))
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=2, val_interval=100)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))
model = dict(quantizer=dict(dead_window=1))  # a dead-code restart every step
"""
TIMEOUT = 300  # whole runs; the teardown checks use their own, shorter limits


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _env():
    path = osp.join(ROOT, 'tests', 'test_engine')
    return dict(os.environ, OMP_NUM_THREADS='1', PYTHON=sys.executable, PORT=str(_free_port()),
                PYTHONPATH=os.pathsep.join([path] + [p for p in [os.environ.get('PYTHONPATH')]
                                                     if p]))


def _launch(script, log, *args):
    """Start a dist_*.sh script; its output goes to the file ``log`` (not a pipe, which a
    worker could block on once torchrun, its reader's side, is gone)."""
    with open(log, 'w') as out:
        proc = subprocess.Popen(['bash', osp.join('tools', script), *map(str, args)],
                                cwd=ROOT, env=_env(), text=True, stdout=out,
                                stderr=subprocess.STDOUT)
    proc.log = log
    return proc


def _finish(proc, ok=True, timeout=TIMEOUT):
    proc.wait(timeout=timeout)
    out = open(proc.log).read()
    if ok:
        assert proc.returncode == 0, out[-4000:]
    return out


def _records(work_dir, rank):
    path = osp.join(work_dir, f'rank{rank}_samples.jsonl')
    with open(path) as f:
        return [json.loads(line) for line in f]


def _wait_for(predicate, timeout, what):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f'timed out after {timeout} s waiting for {what}')


def _alive(pid):
    """A running (not zombie) process."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except FileNotFoundError:
        return False


def _processes_of(work_dir):
    """Live processes whose command line names ``work_dir`` (torchrun and its workers)."""
    found = []
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            with open(f'/proc/{pid}/cmdline', 'rb') as f:
                cmd = f.read().decode(errors='replace')
        except OSError:
            continue
        if str(work_dir) in cmd and _alive(pid):
            found.append(int(pid))
    return found


def _worker_pids(work_dir):
    _wait_for(lambda: all(osp.isfile(osp.join(work_dir, f'rank{r}_samples.jsonl'))
                          for r in (0, 1)), TIMEOUT, 'both ranks to train')
    return [int(open(osp.join(work_dir, f'rank{r}_pid')).read()) for r in (0, 1)]


def _reap(work_dir):
    """Kill what the test started and left behind (only after a failure: orphans)."""
    for pid in _processes_of(work_dir):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _weights(path):
    return load_checkpoint_file(str(path))['state_dict']


def _same(a, b):
    assert a.keys() == b.keys()
    return [k for k in a if not torch.equal(a[k], b[k])]


def _config(tmp):
    cfg = tmp / 'cfg.py'
    cfg.write_text(CONFIG)
    return cfg


def _check_data_and_weights(full):
    rec = [_records(full, r) for r in (0, 1)]
    assert [len(r) for r in rec] == [4, 4]  # 2 epochs of 2 iterations on each rank
    everything = {f'synthetic-0-{i:05d}' for i in range(4)}
    for epoch in (0, 1):
        seen = [[s for line in r if line['epoch'] == epoch for s in line['scenes']] for r in rec]
        assert len(seen[0]) == len(seen[1]) == 2
        assert not set(seen[0]) & set(seen[1]), seen  # different samples on each rank
        assert set(seen[0]) | set(seen[1]) == everything  # together: the whole set
    w0 = torch.load(full / 'rank0_final.pth', weights_only=True)
    w1 = torch.load(full / 'rank1_final.pth', weights_only=True)
    assert not _same(w0, w1)  # the ranks agree exactly
    assert not _same(_weights(full / 'epoch_2.pth'), w0)  # and rank 0 saved them
    assert any(not torch.equal(v, _weights(full / 'epoch_1.pth')[k]) for k, v in w0.items())


def _signal_torchrun(proc, work_dir, sig, exit_timeout, worker_timeout, check_started=False):
    """Send ``sig`` to torchrun (dist_train.sh execs it) once both ranks train in
    ``work_dir``; wait for it and every worker to stop and check that no worker outlives it.
    Returns torchrun's exit code."""
    try:
        pids = _worker_pids(work_dir)  # training has started on both ranks
        if check_started:
            assert all(_alive(p) for p in pids)
        os.kill(proc.pid, sig)
        proc.wait(timeout=exit_timeout)
        _wait_for(lambda: not any(_alive(p) for p in pids), worker_timeout,
                  f'workers {pids} to stop')
        assert not _processes_of(work_dir), f'a worker outlived torchrun ({sig.name})'
        return proc.returncode
    finally:
        proc.kill()
        _reap(work_dir)


def _check_kill_torchrun_then_resume(cfg, tmp, full):
    cut = tmp / 'cut'
    proc = _launch('dist_train.sh', tmp / 'cut.log', cfg, 2, '--work-dir', cut)
    _signal_torchrun(proc, cut, signal.SIGKILL, 10, 60, check_started=True)
    out = open(proc.log).read()
    assert 'interrupted by SIGTERM' in out, out[-4000:]  # each rank saved and stopped cleanly
    saved = open(cut / 'last_checkpoint').read().strip()
    assert osp.basename(saved).startswith('iter_') and osp.isfile(saved)
    done = len(_records(cut, 0))

    _finish(_launch('dist_train.sh', tmp / 'resume.log', cfg, 2, '--work-dir', cut,
                    '--resume'))
    assert not _same(_weights(full / 'epoch_2.pth'), _weights(cut / 'epoch_2.pth'))
    w0 = torch.load(cut / 'rank0_final.pth', weights_only=True)
    assert not _same(w0, torch.load(cut / 'rank1_final.pth', weights_only=True))
    for r in (0, 1):  # the resumed run trained each rank on the uninterrupted run's samples
        got = _records(cut, r)
        assert got == _records(full, r), f'rank {r}, stopped after {done} iteration(s)'


def _check_dist_test(cfg, tmp, full):
    ckpt = full / 'epoch_2.pth'
    out2, out1 = tmp / 'two.json', tmp / 'one.json'
    _finish(_launch('dist_test.sh', tmp / 'two.log', cfg, ckpt, 2, '--work-dir',
                    tmp / 'test2', '--out', out2))
    tool_main('tools/test.py', cfg, ckpt, '--work-dir', tmp / 'test1', '--out', out1)
    two, one = json.loads(out2.read_text()), json.loads(out1.read_text())
    metrics = {k for k in one if not k.startswith('_')}
    assert metrics and metrics == {k for k in two if not k.startswith('_')}
    for k in metrics:
        assert two[k] == pytest.approx(one[k], rel=1e-6, abs=1e-9), k


def test_two_processes_data_weights_kill_torchrun_resume_and_dist_test(tmp_path):
    """One test (one pytest-xdist worker): the later checks compare with the first run."""
    cfg = _config(tmp_path)
    full = tmp_path / 'full'
    _finish(_launch('dist_train.sh', tmp_path / 'full.log', cfg, 2, '--work-dir', full))
    _check_data_and_weights(full)
    _check_kill_torchrun_then_resume(cfg, tmp_path, full)
    _check_dist_test(cfg, tmp_path, full)


def test_killing_one_worker_tears_down_the_group(tmp_path):
    cfg = _config(tmp_path)
    work = tmp_path / 'kill_worker'
    proc = _launch('dist_train.sh', tmp_path / 'kill_worker.log', cfg, 2, '--work-dir', work,
                   '--cfg-options', 'train_cfg.max_epochs=100')
    try:
        pids = _worker_pids(work)
        os.kill(pids[1], signal.SIGKILL)
        out = _finish(proc, ok=False, timeout=90)  # torchrun notices and exits
        assert proc.returncode != 0 and 'exitcode  : -9' in out, out[-4000:]
        _wait_for(lambda: not _alive(pids[0]), 30, f'rank 0 (pid {pids[0]}) to stop')
        assert not _processes_of(work), 'a worker kept training'
    finally:
        proc.kill()
        _reap(work)
    assert len(_records(work, 0)) < 100 * 2  # it did not train on


def _check_complete_files(work_dir):
    """Only complete files under atomic names: no temporaries of a save, every checkpoint an
    intact archive that the safe loader reads, ``last_checkpoint`` naming one of them."""
    names = sorted(os.listdir(work_dir))
    assert not [n for n in names if n.endswith('.tmp') or '.tmp' in n], names
    ckpts = [n for n in names if n.endswith('.pth') and not n.startswith('rank')]
    for name in ckpts:
        path = osp.join(work_dir, name)
        assert checkpoint_is_intact(path), f'{path} is not a complete checkpoint'
        assert load_checkpoint_file(path)['meta']['iter'] >= 1
    saved = open(osp.join(work_dir, 'last_checkpoint')).read().strip()
    assert osp.basename(saved) in ckpts, (saved, ckpts)
    return ckpts, saved


def test_sigterm_to_torchrun_stops_every_worker_with_complete_checkpoints(tmp_path):
    """SIGTERM (a scheduler's stop) sent to torchrun itself, not to a worker: torchrun
    forwards it to its workers, each rank stops at the same iteration through
    SignalCheckpointHook (iter_N.pth, exit 143), torchrun exits, no worker outlives it, and
    the work dir holds only complete checkpoints."""
    cfg = _config(tmp_path)
    work = tmp_path / 'sigterm'
    proc = _launch('dist_train.sh', tmp_path / 'sigterm.log', cfg, 2, '--work-dir', work,
                   '--cfg-options', 'train_cfg.max_epochs=100')
    # torchrun waits up to 30 s for its workers, then SIGKILLs them
    assert _signal_torchrun(proc, work, signal.SIGTERM, 90, 10) != 0
    out = open(proc.log).read()
    # every rank stopped cleanly (not torchrun's SIGKILL after its 30 s grace)
    assert out.count('interrupted: training interrupted by SIGTERM') == 2, out[-4000:]
    assert 'forcefully exiting' not in out, out[-4000:]
    ckpts, saved = _check_complete_files(work)
    done = [len(_records(work, r)) for r in (0, 1)]
    assert done[0] == done[1] < 100 * 2  # the ranks stopped at the same iteration
    assert osp.basename(saved) == f'iter_{done[0]}.pth', (saved, done)


def test_slurm_or_mpi_launcher_without_cuda_is_one_error(capsys):
    from mmengine.config import Config

    from occworld4d.apis.launcher import setup_distributed
    if torch.cuda.is_available():
        pytest.skip('the CPU path only')
    for launcher in ('slurm', 'mpi'):
        with pytest.raises(SystemExit) as info:
            setup_distributed(Config(dict(env_cfg=dict(dist_cfg=dict(backend='nccl')))),
                              launcher)
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith(f'error: --launcher {launcher} needs CUDA') and 'torchrun' in err
    cfg = Config(dict(env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    setup_distributed(cfg, 'none')  # one process: nothing changes
    assert cfg.env_cfg.dist_cfg.backend == 'nccl' and 'model_wrapper_cfg' not in cfg
