"""The TensorBoard hint of configs/_base_/default_runtime.py works as written: a child config
that redefines ``vis_backends`` trains through tools/train.py and writes a real TensorBoard
event file whose ``loss`` scalars are the ones the LocalVisBackend logged."""
import glob
import json
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
