"""The TensorBoard hint of configs/_base_/default_runtime.py works as written: a child config
that redefines ``vis_backends`` trains through tools/train.py and writes a real TensorBoard
event file whose ``loss`` scalars are the ones the LocalVisBackend logged."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools'))

CHILD = """_base_ = [{base!r}]
vis_backends = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]
"""


def test_child_vis_backends_reach_the_visualizer():
    from occworld4d.apis.cli import load_config
    base = osp.join(ROOT, 'configs/occworld/occworld_vqvae_tiny_synthetic-city.py')
    assert load_config(base).visualizer.vis_backends == [dict(type='LocalVisBackend')]


def test_tensorboard_event_file_from_a_child_config(tmp_path):
    pytest.importorskip('tensorboard')
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from occworld4d.apis.cli import load_config
    base = osp.join(ROOT, 'configs/occworld/occworld_vqvae_tiny_synthetic-city.py')
    child = tmp_path / 'tb_child.py'
    child.write_text(CHILD.format(base=base))
    cfg = load_config(str(child))
    assert [b['type'] for b in cfg.visualizer.vis_backends] == ['LocalVisBackend',
                                                                'TensorboardVisBackend']
    # an explicit (non-default) visualizer.vis_backends wins over the top-level list
    child2 = tmp_path / 'explicit.py'
    mine = [dict(type='LocalVisBackend'), dict(type='WandbVisBackend')]
    child2.write_text(CHILD.format(base=base) + f"visualizer = dict(vis_backends={mine!r})\n")
    assert load_config(str(child2)).visualizer.vis_backends == mine

    work = tmp_path / 'work'
    # a fresh process: mmengine's Visualizer is a process-wide singleton that an earlier test
    # of the same xdist worker may already hold
    subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'train.py'), str(child),
                    '--work-dir', str(work), '--cfg-options',
                    'train_dataloader.dataset.num_scenes=1',
                    'train_dataloader.dataset.num_frames=4', 'train_cfg.max_epochs=1',
                    'train_cfg.val_interval=5', 'default_hooks.logger.interval=1',
                    'default_hooks.checkpoint.interval=5'], check=True, cwd=ROOT)
    events = glob.glob(str(work / '*' / 'vis_data' / 'events.out.tfevents.*'))
    assert len(events) == 1, events
    acc = EventAccumulator(events[0])
    acc.Reload()
    assert 'loss' in acc.Tags()['scalars']
    tb = [(e.step, e.value) for e in acc.Scalars('loss')]
    (scalars, ) = glob.glob(str(work / '*' / 'vis_data' / 'scalars.json'))
    with open(scalars) as f:
        local = [json.loads(line) for line in f if line.strip()]
    local = [(r['step'], r['loss']) for r in local if 'loss' in r]
    assert len(tb) == len(local) >= 1
    for (s1, v1), (s2, v2) in zip(tb, local):
        assert s1 == s2 and v1 == pytest.approx(v2, rel=1e-5)


WANDB_CHILD = """_base_ = [{base!r}]
vis_backends = [dict(type='LocalVisBackend'),
                dict(type='WandbVisBackend', init_kwargs=dict(project='occworld4d',
                                                              mode='offline'))]
"""
TINY = ['train_dataloader.dataset.num_scenes=1', 'train_dataloader.dataset.num_frames=4',
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=5', 'default_hooks.logger.interval=1',
        'default_hooks.checkpoint.interval=5']


def test_missing_vis_backend_package_names_the_pip_command(monkeypatch, capsys):
    """Selecting W&B (or TensorBoard) without its package: one line with the pip command,
    before anything is built (mmengine would fail at the first logged value)."""
    from occworld4d.apis.cli import check_vis_backends, load_config
    base = osp.join(ROOT, 'configs/occworld/occworld_vqvae_tiny_synthetic-city.py')
    cfg = load_config(base)
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend'), dict(type='WandbVisBackend')]
    monkeypatch.setitem(sys.modules, 'wandb', None)  # wandb not importable
    with pytest.raises(SystemExit) as err:
        check_vis_backends(cfg)
    assert err.value.code == 2
    assert ('vis_backends selects WandbVisBackend, which needs the wandb package: run '
            '`pip install wandb`') in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, 'tensorboard', None)
    cfg.visualizer.vis_backends = [dict(type='TensorboardVisBackend')]
    with pytest.raises(SystemExit) as err:
        check_vis_backends(cfg)
    assert err.value.code == 2
    assert ('vis_backends selects TensorboardVisBackend, which needs the tensorboard package: '
            'run `pip install tensorboard`') in capsys.readouterr().err
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend')]
    check_vis_backends(cfg)  # nothing to install


def test_missing_wandb_message(monkeypatch, capsys):
    from occworld4d.apis.cli import check_vis_backends, load_config
    cfg = load_config(osp.join(ROOT, 'configs/occworld/occworld_vqvae_tiny_synthetic-city.py'))
    cfg.visualizer.vis_backends = [dict(type='WandbVisBackend')]
    monkeypatch.setitem(sys.modules, 'wandb', None)
    with pytest.raises(SystemExit):
        check_vis_backends(cfg)
    err = capsys.readouterr().err.strip()
    assert err.count('\n') == 0 and 'run `pip install wandb`' in err
    assert "mode='offline'" in err and 'WandbVisBackend' in err


def test_wandb_hint_of_default_runtime(tmp_path):
    """The W&B hint of default_runtime.py as written (offline mode): with wandb installed,
    a 1-iteration training writes an offline W&B run; without it, train.py stops before
    training with the pip command."""
    import importlib.util
    base = osp.join(ROOT, 'configs/occworld/occworld_vqvae_tiny_synthetic-city.py')
    child = tmp_path / 'wandb_child.py'
    child.write_text(WANDB_CHILD.format(base=base))
    work = tmp_path / 'work'
    env = dict(os.environ, WANDB_MODE='offline', WANDB_DIR=str(tmp_path),
               WANDB_SILENT='true', OMP_NUM_THREADS='1')
    res = subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'train.py'), str(child),
                          '--work-dir', str(work), '--cfg-options', *TINY], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=600)
    if importlib.util.find_spec('wandb') is None:
        assert res.returncode == 2, res.stderr[-2000:]
        assert 'run `pip install wandb`' in res.stderr
        assert 'Traceback' not in res.stderr and not glob.glob(str(work / '*.pth'))
        return
    assert res.returncode == 0, res.stderr[-2000:]
    runs = glob.glob(str(tmp_path / 'wandb' / 'offline-run-*'))
    assert len(runs) == 1, runs
    assert glob.glob(osp.join(runs[0], '*.wandb'))
