"""NaN / Inf guard (NonFiniteGuardHook, on by default): a non-finite loss stops training with
the iteration and the loss terms named, before any checkpoint of the bad state is written or
rotated; max_skip_batches=N skips N bad batches; the checkpoint hook refuses NaN weights."""
import os
import os.path as osp

import pytest
import torch
from engine_toys import ToyModel, make_runner, params_finite

from occworld4d.engine.hooks import NonFiniteCheckpointError, NonFiniteLossError


def checkpoints(work):
    return sorted(f for f in os.listdir(work) if f.endswith('.pth'))


def test_huge_lr_stops_with_iteration_and_terms(tmp_path):
    work = str(tmp_path / 'w')
    runner = make_runner(work, by_epoch=False, max_iters=40, lr=1e12, optimizer='SGD',
                         checkpoint=dict(interval=1, max_keep_ckpts=2))
    with pytest.raises(NonFiniteLossError) as info:
        runner.train()
    msg = str(info.value)
    assert 'iteration ' in msg and 'loss_mse' in msg, msg
    bad_iter = int(msg.split('iteration ')[1].split()[0])
    assert 1 < bad_iter < 40
    names = checkpoints(work)
    assert names, 'the iterations before the NaN were checkpointed'
    # nothing saved at or after the bad iteration; what is kept is finite
    assert all(int(n[len('iter_'):-len('.pth')]) < bad_iter for n in names), (names, bad_iter)
    assert all(params_finite(osp.join(work, n)) for n in names)
    with open(osp.join(work, 'last_checkpoint')) as f:
        assert params_finite(f.read().strip())


def test_skip_bad_batches(tmp_path):
    # sample 5 is in one batch per epoch: 2 bad batches in 2 epochs
    work = str(tmp_path / 'w')
    runner = make_runner(work, max_epochs=2, model=ToyModel(nan_at=[5]),
                         nan_guard=dict(max_skip_batches=2))
    runner.train()
    assert runner.iter == 8
    assert all(torch.isfinite(p).all() for p in runner.model.parameters())
    assert checkpoints(work) == ['epoch_1.pth', 'epoch_2.pth']
    assert all(params_finite(osp.join(work, n)) for n in checkpoints(work))
    # one allowed skip: the second bad batch stops
    work2 = str(tmp_path / 'w2')
    runner = make_runner(work2, max_epochs=2, model=ToyModel(nan_at=[5]),
                         nan_guard=dict(max_skip_batches=1))
    with pytest.raises(NonFiniteLossError, match=r'loss_mse.*epoch 2.*1 bad batch'):
        runner.train()
    assert checkpoints(work2) == ['epoch_1.pth']


def test_default_stops_at_first_bad_batch(tmp_path):
    runner = make_runner(tmp_path / 'w', max_epochs=1, model=ToyModel(nan_at=[5]))
    expected = r"\['loss_mse'\] \(loss=nan, loss_mse=nan\) at iteration \d"
    with pytest.raises(NonFiniteLossError, match=expected):
        runner.train()
    assert checkpoints(tmp_path / 'w') == []
    assert all(torch.isfinite(p).all() for p in runner.model.parameters())


def test_checkpoint_hook_refuses_non_finite_weights(tmp_path):
    work = str(tmp_path / 'w')
    runner = make_runner(work, max_epochs=2, checkpoint=dict(max_keep_ckpts=1),
                         nan_guard=dict(check_params=False))
    runner.train()
    hook = next(h for h in runner.hooks if type(h).__name__ == 'SafeCheckpointHook')
    with torch.no_grad():
        runner.model.linear.weight[0, 0] = float('inf')
    with pytest.raises(NonFiniteCheckpointError, match='linear.weight'):
        hook._save_checkpoint(runner)
    assert checkpoints(work) == ['epoch_2.pth']  # nothing written, nothing rotated
    assert params_finite(osp.join(work, 'epoch_2.pth'))


def test_train_cli_exits_nonzero_on_nan(tmp_path, capsys):
    """tools/train.py with lr=1e12: exit code 2, one message, no checkpoint after the NaN."""
    from helpers import load_tool
    train = load_tool('tools/train.py')
    work = str(tmp_path / 'w')
    with pytest.raises(SystemExit) as info:
        train.main(['configs/occworld/occworld_vqvae_tiny_synthetic-city.py', '--work-dir', work,
                    '--cfg-options', 'optim_wrapper.optimizer.lr=1e12',
                    'train_cfg.max_epochs=3', 'default_hooks.checkpoint.interval=1',
                    'train_cfg.val_interval=100'])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert 'NonFiniteGuardHook' in err and 'iteration' in err and 'loss' in err, err
    for name in checkpoints(work):
        assert params_finite(osp.join(work, name))
