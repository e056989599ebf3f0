"""Crash-proof checkpoints (SafeCheckpointHook, the default): a save that dies leaves the older
checkpoint and last_checkpoint intact; rotation and save_best remove old files only after the
new one is complete; --resume falls back to the newest intact checkpoint with a warning; stale
temporaries are cleaned."""
import os
import os.path as osp
import subprocess
import sys
import textwrap

import pytest
import torch
from engine_toys import make_runner
from mmengine.registry import HOOKS, DefaultScope

from occworld4d.engine.hooks.checkpoint_hook import SafeCheckpointHook, find_intact_checkpoint
from occworld4d.utils.compat import checkpoint_is_intact, load_checkpoint_file
from occworld4d.utils.io import is_temporary, temporary_target

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


class Killed(BaseException):
    """Stands for the process dying in the middle of torch.save."""


def failing_save(monkeypatch, fail_on):
    """torch.save writes half a checkpoint and dies on the ``fail_on``-th call (1-based)."""
    real_save, calls = torch.save, []

    def save(obj, f, *args, **kwargs):
        calls.append(1)
        if len(calls) == fail_on:
            f.write(b'PK\x03\x04 half a checkpoint')
            raise Killed('killed during the write')
        return real_save(obj, f, *args, **kwargs)
    monkeypatch.setattr(torch, 'save', save)


def last_checkpoint(work):
    with open(osp.join(work, 'last_checkpoint')) as f:
        return f.read().strip()


def test_default_hook_is_the_safe_one():
    with DefaultScope.overwrite_default_scope('occworld4d'):
        assert type(HOOKS.build(dict(type='CheckpointHook'))) is SafeCheckpointHook
        assert type(HOOKS.build(dict(type='SafeCheckpointHook'))) is SafeCheckpointHook


def test_kill_during_rotation_keeps_previous_checkpoint(tmp_path, monkeypatch):
    """max_keep_ckpts=1: mmengine deleted epoch_1.pth before writing epoch_2.pth."""
    work = str(tmp_path / 'w')
    failing_save(monkeypatch, fail_on=2)  # the epoch-2 save dies
    runner = make_runner(work, max_epochs=3, checkpoint=dict(max_keep_ckpts=1))
    with pytest.raises(Killed):
        runner.train()
    assert checkpoint_is_intact(osp.join(work, 'epoch_1.pth'))
    assert last_checkpoint(work) == osp.join(work, 'epoch_1.pth')
    assert not osp.exists(osp.join(work, 'epoch_2.pth'))
    assert not [f for f in os.listdir(work) if '.tmp' in f]
    # the rotation state was not advanced: after a good save epoch_1 goes, epoch_2 stays
    monkeypatch.undo()
    r2 = make_runner(work, max_epochs=2, checkpoint=dict(max_keep_ckpts=1), resume=True)
    r2.train()
    assert r2.iter == 8
    assert sorted(f for f in os.listdir(work) if f.endswith('.pth')) == ['epoch_2.pth']
    assert last_checkpoint(work) == osp.join(work, 'epoch_2.pth')


def test_kill_during_best_save_keeps_previous_best(tmp_path, monkeypatch):
    work = str(tmp_path / 'w')
    # saves per epoch: epoch_N, best (score improves every epoch at lr 0.1), epoch_N again
    failing_save(monkeypatch, fail_on=5)  # epoch 2's best save
    runner = make_runner(work, max_epochs=3, val=True,
                         checkpoint=dict(max_keep_ckpts=1, save_best='toy/score',
                                         rule='greater'))
    with pytest.raises(Killed):
        runner.train()
    best = [f for f in os.listdir(work) if f.startswith('best_')]
    assert best == ['best_toy_score_epoch_1.pth'], best
    assert checkpoint_is_intact(osp.join(work, best[0]))
    assert checkpoint_is_intact(last_checkpoint(work))


def test_rotation_and_best_after_success(tmp_path):
    work = str(tmp_path / 'w')
    make_runner(work, max_epochs=3, val=True,
                checkpoint=dict(max_keep_ckpts=2, save_best='toy/score', rule='greater')).train()
    names = sorted(os.listdir(work))
    assert [n for n in names if n.startswith('epoch_')] == ['epoch_2.pth', 'epoch_3.pth']
    assert len([n for n in names if n.startswith('best_')]) == 1
    assert last_checkpoint(work) == osp.join(work, 'epoch_3.pth')
    assert not [n for n in names if '.tmp' in n]


def test_truncated_last_checkpoint_falls_back_with_warning(tmp_path):
    work = str(tmp_path / 'w')
    make_runner(work, max_epochs=2).train()
    newest = osp.join(work, 'epoch_2.pth')
    with open(newest, 'r+b') as f:  # a save cut short (e.g. disk full, copied half)
        f.truncate(osp.getsize(newest) // 2)
    for name in ('epoch_3.tmp999.pth', 'epoch_3.pth.tmp'):  # killed saves' leftovers (+ old name)
        with open(osp.join(work, name), 'wb') as f:
            f.write(b'partial')
    runner = make_runner(work, max_epochs=3, resume=True)
    with pytest.warns(UserWarning, match='epoch_2.pth') as rec:
        runner.train()
    msg = next(str(w.message) for w in rec if 'auto-resume' in str(w.message))
    assert 'epoch_2.pth (truncated or corrupt)' in msg
    assert 'resuming from ' + osp.join(work, 'epoch_1.pth') in msg
    assert runner.iter == 12  # resumed at iteration 4 (epoch 1), trained epochs 2 and 3
    assert not [n for n in os.listdir(work) if is_temporary(n)]
    assert load_checkpoint_file(osp.join(work, 'epoch_3.pth'))['meta']['iter'] == 12


def test_empty_or_dangling_last_checkpoint(tmp_path):
    work = str(tmp_path / 'w')
    make_runner(work, max_epochs=2).train()
    with open(osp.join(work, 'last_checkpoint'), 'w') as f:
        f.write('')
    path, skipped = find_intact_checkpoint(work)
    assert path == osp.join(work, 'epoch_2.pth') and 'empty' in skipped[0]
    with open(osp.join(work, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(work, 'epoch_9.pth'))
    path, skipped = find_intact_checkpoint(work)
    assert path == osp.join(work, 'epoch_2.pth') and 'epoch_9.pth (missing)' in skipped[0]
    for name in ('epoch_1.pth', 'epoch_2.pth'):
        open(osp.join(work, name), 'wb').close()
    path, skipped = find_intact_checkpoint(work)
    assert path is None and len(skipped) == 3
    # nothing intact: trains from scratch with a warning instead of dying
    runner = make_runner(work, max_epochs=1, resume=True)
    with pytest.warns(UserWarning, match='auto-resume skipped'):
        runner.train()
    assert runner.iter == 4


def test_kill_minus_9_during_save_then_resume(tmp_path):
    """A real SIGKILL in the middle of the epoch-2 write (max_keep_ckpts=1)."""
    work = str(tmp_path / 'w')
    script = textwrap.dedent(f'''
        import os, sys, torch
        sys.path.insert(0, {osp.join(ROOT, 'tests', 'test_engine')!r})
        torch.set_num_threads(1)
        from engine_toys import make_runner
        real, n = torch.save, [0]
        def save(obj, f, *a, **k):
            n[0] += 1
            if n[0] == 2:
                f.write(b'PK half'); f.flush()
                os.kill(os.getpid(), 9)
            return real(obj, f, *a, **k)
        torch.save = save
        make_runner({work!r}, max_epochs=3, checkpoint=dict(max_keep_ckpts=1)).train()
    ''')
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, '-c', script], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    left = [n for n in os.listdir(work) if is_temporary(n)]  # what the kill left
    assert [temporary_target(n) for n in left] == ['epoch_2.pth'], left
    assert last_checkpoint(work) == osp.join(work, 'epoch_1.pth')
    assert checkpoint_is_intact(osp.join(work, 'epoch_1.pth'))
    runner = make_runner(work, max_epochs=3, checkpoint=dict(max_keep_ckpts=1), resume=True)
    runner.train()
    assert runner.iter == 12
    assert not [n for n in os.listdir(work) if is_temporary(n)]
    assert sorted(f for f in os.listdir(work) if f.endswith('.pth')) == ['epoch_3.pth']


def test_train_cli_resume_falls_back(tmp_path, capsys):
    """tools/train.py CONFIG --resume with a truncated newest checkpoint."""
    from helpers import load_tool
    train = load_tool('tools/train.py')
    work = str(tmp_path / 'w')
    config = 'configs/occworld/occworld_vqvae_tiny_synthetic-city.py'
    opts = ['--cfg-options', 'train_cfg.max_epochs=2', 'default_hooks.checkpoint.interval=1',
            'train_cfg.val_interval=100', 'train_dataloader.dataset.num_scenes=2']
    train.main([config, '--work-dir', work] + opts)
    with open(osp.join(work, 'epoch_2.pth'), 'r+b') as f:
        f.truncate(100)
    with pytest.warns(UserWarning, match='epoch_2.pth'):
        train.main([config, '--work-dir', work, '--resume'] + opts)
    assert checkpoint_is_intact(osp.join(work, 'epoch_2.pth'))  # rewritten by the resumed run
    assert load_checkpoint_file(osp.join(work, 'epoch_2.pth'))['meta']['epoch'] == 2
