"""OccVisualizationHook renders val predictions to the LocalVisBackend inside a real Runner."""
import os
import os.path as osp

import numpy as np
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from PIL import Image

from occworld4d.structures import OccDataSample


class _ShiftModel(BaseModel):
    """Predicts the GT with vehicles (10) turned into bicycles (11): a known error."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        vox = torch.stack(inputs['voxels']) if isinstance(inputs['voxels'], list) \
            else inputs['voxels']
        if mode == 'loss':
            return dict(loss=self.w.sum() * 0)
        for i, ds in enumerate(data_samples):
            ds.gt_semantics = vox[i].to(torch.uint8)
            ds.pred_semantics = torch.where(vox[i] == 10, 11, vox[i]).to(torch.uint8)
        return data_samples


class _ToyDataset(torch.utils.data.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        vox = torch.zeros(2, 6, 6, 2, dtype=torch.uint8)
        vox[:, :, :, 0] = 6  # road
        for t in range(2):
            vox[t, i, (i + t) % 6, 1] = 10  # a vehicle that moves
        ds = OccDataSample(metainfo=dict(vocabulary='dynamiccity_carlasc'))
        return dict(inputs=dict(voxels=vox), data_samples=ds)


def test_hook_draws_every_interval_batches(tmp_path):
    runner = Runner(
        model=_ShiftModel(), work_dir=str(tmp_path),
        val_dataloader=dict(dataset=_ToyDataset(), batch_size=1, num_workers=0,
                            sampler=dict(type='DefaultSampler', shuffle=False),
                            collate_fn=dict(type='pseudo_collate')),
        val_cfg=dict(), val_evaluator=dict(type='OccupancyMetric', _scope_='occworld4d',
                                           convention='dynamiccity',
                                           vocabulary='dynamiccity_carlasc'),
        custom_hooks=[dict(type='OccVisualizationHook', _scope_='occworld4d', interval=2,
                           vocabulary='occ3d_nuscenes', max_frames=2)],
        visualizer=dict(type='Visualizer', vis_backends=[dict(type='LocalVisBackend')],
                        name='h4_hook_test'),
        default_hooks=dict(logger=None, checkpoint=None), log_level='WARNING')
    metrics = runner.val()
    assert metrics['dynamiccity/mIoU'] == 0.5  # road 1, vehicle 0, bicycle absent
    files = sorted(f for d, _, fs in os.walk(tmp_path) for f in fs if f.endswith('.png'))
    # batches 0 and 2 of 4 are drawn (interval 2), one sample each
    assert files == ['val_batch0_sample0_0.png', 'val_batch2_sample0_0.png'], files
    path = [os.path.join(d, f) for d, _, fs in os.walk(tmp_path) for f in fs
            if f == 'val_batch2_sample0_0.png'][0]
    img = np.asarray(Image.open(path).convert('RGB'))
    # the sample's own vocabulary (dynamiccity_carlasc) is used: its vehicle colour appears
    from occworld4d.visualization import get_palette
    vehicle = get_palette('dynamiccity_carlasc')[10]
    assert (img == vehicle).all(axis=2).any()
    # the same picture as tools/visualize.py: panels of >= 512 px with the ego marker and the
    # difference row (vehicle -> bicycle is a wrong class)
    from occworld4d.visualization import EGO_COLOUR
    from occworld4d.visualization.figure import DIFF_PALETTE
    assert img.shape[0] > 3 * 512 and (img == EGO_COLOUR).all(axis=2).sum() > 50
    assert (img == DIFF_PALETTE[4]).all(axis=2).sum() > 80 * 80


def test_hook_writes_test_gifs(tmp_path):
    runner = Runner(
        model=_ShiftModel(), work_dir=str(tmp_path),
        test_dataloader=dict(dataset=_ToyDataset(), batch_size=2, num_workers=0,
                             sampler=dict(type='DefaultSampler', shuffle=False),
                             collate_fn=dict(type='pseudo_collate')),
        test_cfg=dict(), test_evaluator=dict(type='OccupancyMetric', _scope_='occworld4d',
                                             convention='ssc',
                                             vocabulary='dynamiccity_carlasc'),
        custom_hooks=[dict(type='OccVisualizationHook', _scope_='occworld4d', interval=1,
                           test_out_dir='vis_test', draw=True)],
        visualizer=dict(type='OccVisualizer', _scope_='occworld4d',
                        vis_backends=[dict(type='LocalVisBackend')], name='h4_hook_test2',
                        vocabulary='dynamiccity_carlasc', max_frames=2),
        default_hooks=dict(logger=None, checkpoint=None), log_level='WARNING')
    runner.test()
    gifs = sorted(os.listdir(tmp_path / 'vis_test'))
    assert gifs == ['batch00000_sample0.gif', 'batch00000_sample1.gif',
                    'batch00001_sample0.gif', 'batch00001_sample1.gif']
    gif = Image.open(tmp_path / 'vis_test' / 'batch00001_sample1.gif')
    assert gif.n_frames == 2  # one frame per time step
    pngs = [f for d, _, fs in os.walk(tmp_path) for f in fs if f.endswith('.png')]
    assert sorted(pngs) == ['test_batch0_sample0_0.png', 'test_batch1_sample0_0.png']


def test_save_samples_hook_writes_one_npz_per_sample(tmp_path):
    import pytest

    from occworld4d.engine.hooks import SaveOccSamplesHook

    class FakeRunner:
        work_dir = str(tmp_path)

    named = OccDataSample(metainfo=dict(scene='scene/7', frame_ids=['000010', '000011']))
    named.pred_semantics = torch.full((2, 3, 3, 2), 5, dtype=torch.uint8)
    named.gt_semantics = torch.zeros(2, 3, 3, 2, dtype=torch.uint8)
    named.command = torch.tensor(2)
    bare = dict(pred_semantics=torch.ones(2, 3, 3, 2, dtype=torch.uint8))
    hook = SaveOccSamplesHook(out_dir='gen', save_gt=True)
    hook.after_test_iter(FakeRunner(), 3, None, [named, bare])
    names = sorted(p.name for p in (tmp_path / 'gen').iterdir())
    assert names == ['rank0_batch00003_1.npz', 'scene_7_000010.npz']
    with np.load(tmp_path / 'gen' / 'scene_7_000010.npz') as f:
        assert (f['semantics'] == 5).all() and f['semantics'].dtype == np.uint8
        assert int(f['command']) == 2 and list(f['frame_ids']) == ['000010', '000011']
        assert (f['gt_semantics'] == 0).all()
    with pytest.raises(KeyError, match='pred_semantics'):
        hook.after_test_iter(FakeRunner(), 4, None, [dict(gt_semantics=torch.zeros(1))])


def _gif_frames(path):
    from PIL import Image, ImageSequence
    with Image.open(path) as im:
        return [np.asarray(f.convert('RGB')) for f in ImageSequence.Iterator(im)]


def test_save_samples_hook_records_the_vocabulary_and_draws_like_visualize(tmp_path):
    """The npz records vocabulary / class names / grid / frame rate from the sample's
    metainfo (else the config), render=True draws the pictures tools/visualize.py draws from
    that npz alone (pixel-identical), and a file without the keys (old format) still renders
    with the default vocabulary."""
    import sys

    from mmengine.config import Config

    from occworld4d.engine.hooks import SaveOccSamplesHook
    from occworld4d.structures import get_vocabulary
    sys.path.insert(0, osp.join(osp.dirname(__file__), '..', '..', 'tools'))
    import visualize

    class FakeRunner:
        work_dir = str(tmp_path)
        cfg = Config(dict(vocabulary='dynamiccity_carlasc'))

    rng = np.random.default_rng(0)
    sem = rng.integers(0, 12, (3, 16, 16, 4)).astype(np.uint8)
    sem[sem > 4] = 0
    s = OccDataSample(metainfo=dict(scene='s', frame_ids=['0', '1', '2'], frame_rate=10.0,
                                    pc_range=[-25.6, -25.6, -2.0, 25.6, 25.6, 1.0]))
    s.pred_semantics = torch.from_numpy(sem)
    s.gt_semantics = torch.from_numpy(np.roll(sem, 1, axis=1))
    hook = SaveOccSamplesHook(out_dir='gen', render=True)
    hook.after_test_iter(FakeRunner(), 0, None, [s])
    gen = tmp_path / 'gen'
    assert sorted(p.name for p in gen.iterdir()) == ['s_0.gif', 's_0.npz', 's_0_bev.png']
    with np.load(gen / 's_0.npz') as f:
        assert str(f['vocabulary']) == 'dynamiccity_carlasc'  # from the config
        assert tuple(f['class_names']) == get_vocabulary('dynamiccity_carlasc').classes
        assert int(f['free_label']) == 0 and float(f['frame_rate']) == 10.0
        np.testing.assert_allclose(f['voxel_size'], [3.2, 3.2, 0.75])
    out = str(tmp_path / 'vis.gif')
    visualize.main([str(gen / 's_0.npz'), '--out', out])
    mine, theirs = _gif_frames(gen / 's_0.gif'), _gif_frames(out)
    assert len(mine) == 3 and all(np.array_equal(a, b) for a, b in zip(mine, theirs))
    png = np.asarray(Image.open(gen / 's_0_bev.png').convert('RGB'))
    assert np.array_equal(png, mine[0]) and min(png.shape[:2]) >= 512
    # the metainfo's vocabulary wins over the config's; with save_gt: GT | sample | diff
    s.set_metainfo(dict(vocabulary='occ3d_nuscenes'))
    sem17 = np.where(sem == 0, 17, sem).astype(np.uint8)
    s.pred_semantics = torch.from_numpy(sem17)
    s.gt_semantics = torch.from_numpy(sem17)
    SaveOccSamplesHook(out_dir='gt', render=True, save_gt=True).after_test_iter(
        FakeRunner(), 0, None, [s])
    with np.load(tmp_path / 'gt' / 's_0.npz') as f:
        assert str(f['vocabulary']) == 'occ3d_nuscenes' and int(f['free_label']) == 17
    wide = np.asarray(Image.open(tmp_path / 'gt' / 's_0_bev.png'))
    assert wide.shape[1] > 2.5 * png.shape[1] - 400  # three panels
    # an old file: semantics only -> the default vocabulary, with a warning
    np.savez(tmp_path / 'old.npz', semantics=sem17)
    assert visualize.main([str(tmp_path / 'old.npz'), '--frame', '0']).endswith('.png')
    # only class_names recorded (a vocabulary name unknown to this version): drawn by name
    np.savez(tmp_path / 'names.npz', semantics=sem, vocabulary='my_city',
             class_names=np.array(['free', 'road', 'car', 'tree', 'wall']), free_label=0)
    assert visualize.main([str(tmp_path / 'names.npz'), '--frame', '0']).endswith('.png')
