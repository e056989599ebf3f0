"""Issue 15, item 3: resume is bit-identical on CPU (RNGStateHook): the configs, the run
helpers and :func:`check_in_process_resume`; the per-model tests live in test_kill9_resume.py,
where one uninterrupted run per model is the reference of both this in-process check and the
kill -9 check (one reference training instead of two).

For a tokenizer with dead-code restarts (tiny OccWorld VQ-VAE, iteration-based loop, so the
resume replays the data of the finished iterations), a VAE (tiny DynamicCity HexPlane VAE, with
a validation between the checkpoint and the next epoch) and a DiT (tiny DynamicCity DiT): run N
steps uninterrupted; run the same config, stop after N/2 (the process's RNGs then scrambled),
resume from the work dir and run to N. The final model and optimizer states equal the
uninterrupted run's bit for bit. Control: resuming the same checkpoint without the hook
diverges (the test has teeth)."""
import os.path as osp
import random
import shutil

import numpy as np
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

import occworld4d  # noqa: F401
from occworld4d.engine.hooks.rng_state_hook import capture_rng_state, restore_rng_state

from helpers import ROOT

_RUNS = iter(range(10 ** 6))


class StopAfter(Hook):
    """Stops the loop after step ``k`` (the checkpoint hook still saves that step)."""

    priority = 'HIGHEST'

    def __init__(self, k, by_epoch):
        self.k, self.by_epoch = k, by_epoch

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if not self.by_epoch and runner.iter + 1 >= self.k:
            runner.train_loop.stop_training = True

    def after_train_epoch(self, runner):
        if self.by_epoch and runner.epoch + 1 >= self.k:
            runner.train_loop.stop_training = True


def vqvae_cfg():  # dead-code restarts every step a code is unused; iteration-based loop
    cfg = Config.fromfile(osp.join(ROOT, 'configs/occworld/occworld_vqvae_tiny_synthetic-city.py'))
    cfg.model.quantizer.dead_window = 1
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=6, val_interval=1000)
    cfg.param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
                                end=6)]
    cfg.default_hooks.checkpoint.update(by_epoch=False, interval=3)
    cfg.log_processor = dict(by_epoch=False)
    cfg.train_dataloader.dataset.num_scenes = 4  # 2 batches an epoch: crosses epochs
    return cfg, 6, False


def vae_cfg():  # validation after the epoch-2 checkpoint, which the resumed run does not redo
    cfg = Config.fromfile(osp.join(ROOT, 'configs/dynamiccity/dynamiccity_vae_tiny_synthetic-city.py'))
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=4, val_interval=2)
    cfg.param_scheduler = [dict(type='MultiStepLR', by_epoch=True, milestones=[3], gamma=0.5)]
    cfg.default_hooks.checkpoint.update(interval=2, max_keep_ckpts=3)
    cfg.train_dataloader.dataset.num_scenes = 4
    cfg.val_dataloader.dataset.num_scenes = 2
    return cfg, 4, True


def dit_cfg():  # random timesteps, noise and condition dropout every step
    cfg = Config.fromfile(osp.join(ROOT, 'configs/dynamiccity/dynamiccity_dit_tiny_synthetic-city.py'))
    cfg.model.allow_random_tokenizer = True
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=4, val_interval=100)
    cfg.default_hooks.checkpoint.update(interval=2)
    cfg.train_dataloader.dataset.num_scenes = 4
    return cfg, 4, True


def _run(make, work_dir, stop_after=None, resume=False, rng_hook=True):
    cfg, _, by_epoch = make()
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = cfg.visualizer.name = f'resume_{osp.basename(str(work_dir))}_{next(_RUNS)}'
    cfg.log_level = 'WARNING'
    cfg.default_hooks.logger.interval = 1000
    cfg.resume = resume
    if not rng_hook:
        cfg.default_hooks.pop('rng_state')
    runner = Runner.from_cfg(cfg)
    if stop_after is not None:
        runner.register_hook(StopAfter(stop_after, by_epoch))
    runner.train()
    return runner


def _states(runner):
    model = {k: v.detach().clone() for k, v in runner.model.state_dict().items()}
    optim = runner.optim_wrapper.state_dict()['state']
    optim = {(i, k): v.clone() for i, s in optim.items() for k, v in s.items()
             if torch.is_tensor(v)}
    return model, optim


def _equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _scramble():
    torch.manual_seed(12345)
    np.random.seed(12345)
    random.seed(12345)


def check_in_process_resume(make, tmp_path, full):
    """Stop ``make``'s run after N/2 in this process, scramble the RNGs, resume in this process
    to N: the final model and optimizer states equal ``full`` (the uninterrupted run's
    ``_states``) bit for bit; for the VQ-VAE, resuming without RNGStateHook diverges."""
    full_model, full_optim = full
    _, n, _ = make()
    _run(make, tmp_path / 'cut', stop_after=n // 2)
    step_ckpt = 'iter_3.pth' if make is vqvae_cfg else 'epoch_2.pth'
    assert osp.isfile(tmp_path / 'cut' / step_ckpt)
    assert not osp.isfile(tmp_path / 'cut' / ('iter_6.pth' if make is vqvae_cfg else 'epoch_4.pth'))
    if make is vqvae_cfg:  # control: same checkpoint, no RNGStateHook
        shutil.copytree(tmp_path / 'cut', tmp_path / 'control')
    _scramble()
    resumed = _run(make, tmp_path / 'cut', resume=True)
    assert resumed.iter == (n if make is vqvae_cfg else 2 * n)
    model, optim = _states(resumed)
    bad = [k for k in full_model if not torch.equal(full_model[k], model[k])]
    assert not bad, f'{len(bad)} of {len(full_model)} tensors differ after resume: {bad[:5]}'
    assert _equal(full_optim, optim)

    if make is vqvae_cfg:
        _scramble()
        control, _ = _states(_run(make, tmp_path / 'control', resume=True, rng_hook=False))
        assert not _equal(full_model, control), 'resume without RNG states should diverge'


def test_rng_state_round_trip_and_weights_only(tmp_path):
    _scramble()
    state = capture_rng_state()
    path = str(tmp_path / 'rng.pth')
    torch.save({'rng_state': {'ranks': [state], 'world_size': 1}}, path)
    a = (torch.rand(3), np.random.rand(3), random.random())
    loaded = torch.load(path, weights_only=True)['rng_state']['ranks'][0]  # no allow-list
    restore_rng_state(loaded)
    b = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
    np.random.randn()  # a cached Gaussian survives too
    state = capture_rng_state()
    x = np.random.randn()
    restore_rng_state(state)
    assert np.random.randn() == x
