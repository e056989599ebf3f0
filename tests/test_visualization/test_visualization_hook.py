"""OccVisualizationHook renders val predictions to the LocalVisBackend inside a real Runner."""
import os

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
