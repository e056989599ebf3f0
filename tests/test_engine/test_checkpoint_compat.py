"""mmengine 0.10.7 + torch >= 2.6: save, load_from and resume must work (compat module)."""
import os
import os.path as osp

import pytest
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn

import occworld4d  # noqa: F401  (applies the compat fixes)
from occworld4d.utils.compat import load_trusted_local_checkpoint
from occworld4d.utils.io import is_temporary


class ToyModel(BaseModel):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(inputs)
        if mode == 'loss':
            return dict(loss_mse=((out - data_samples) ** 2).mean())
        return out


class ToyData(torch.utils.data.Dataset):
    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(16, 4, generator=g)
        self.y = self.x.sum(1, keepdim=True)

    def __len__(self):
        return 16

    def __getitem__(self, i):
        return dict(inputs=self.x[i], data_samples=self.y[i])


def make_runner(work_dir, max_epochs, **kwargs):
    return Runner(
        model=ToyModel(), work_dir=work_dir,
        train_dataloader=dict(dataset=ToyData(), batch_size=4, num_workers=0,
                              sampler=dict(type='DefaultSampler', shuffle=True),
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='Adam', lr=0.1)),
        param_scheduler=[dict(type='MultiStepLR', milestones=[1, 2], gamma=0.5, by_epoch=True)],
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1),
                           logger=dict(type='LoggerHook', interval=100)),
        randomness=dict(seed=0), default_scope='occworld4d', **kwargs)


def test_save_load_from_and_resume(tmp_path):
    work = str(tmp_path / 'work')
    runner = make_runner(work, max_epochs=2)
    runner.train()
    ckpt = osp.join(work, 'epoch_2.pth')
    assert osp.isfile(ckpt)
    assert not [f for f in os.listdir(work) if is_temporary(f)], 'temporary file left behind'
    saved = load_trusted_local_checkpoint(ckpt)
    assert saved['meta']['iter'] == 8 and saved['meta']['epoch'] == 2
    lr_saved = runner.optim_wrapper.get_lr()['lr'][0]
    opt_state_saved = runner.optim_wrapper.optimizer.state_dict()

    # load_from: weights only, a fresh schedule.
    r2 = make_runner(str(tmp_path / 'w2'), max_epochs=2, load_from=ckpt)
    r2.load_or_resume()
    for a, b in zip(r2.model.parameters(), runner.model.parameters()):
        assert torch.equal(a, b)
    assert r2.iter == 0

    # resume: identical optimizer step and LR, then training continues.
    r3 = make_runner(str(tmp_path / 'w3'), max_epochs=3, load_from=ckpt, resume=True)
    r3.load_or_resume()
    assert r3.iter == 8 and r3.epoch == 2
    assert r3.optim_wrapper.get_lr()['lr'][0] == pytest.approx(lr_saved)
    opt_state = r3.optim_wrapper.optimizer.state_dict()
    for k, v in opt_state_saved['state'].items():
        assert opt_state['state'][k]['step'] == v['step']
        assert torch.equal(opt_state['state'][k]['exp_avg'], v['exp_avg'])
    r3.train()
    assert r3.iter == 12


def test_corrupt_checkpoint_names_the_file(tmp_path):
    bad = tmp_path / 'bad.pth'
    bad.write_bytes(b'not a checkpoint')
    with pytest.raises(RuntimeError, match='bad.pth'):
        load_trusted_local_checkpoint(str(bad))
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        load_trusted_local_checkpoint(str(tmp_path / 'missing.pth'))
