"""cache_latents tool + LatentCacheDataset: tensor and HexPlane-style dict latents."""
import importlib.util
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.dataset import default_collate

from occworld4d.datasets import DataFormatError, LatentCacheDataset
from occworld4d.datasets.writers import write_carlasc_sequence
from occworld4d.models.data_preprocessors import OccDataPreprocessor
from occworld4d.models.tokenizers.base import BaseTokenizer
from occworld4d.registry import MODELS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _tool():
    path = osp.join(ROOT, 'tools', 'dataset_converters', 'cache_latents.py')
    spec = importlib.util.spec_from_file_location('cache_latents', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@MODELS.register_module(force=True)
class _PlaneTokenizer(BaseTokenizer):
    """Test double: a learned scale times class-mean planes (HexPlane-like keys)."""

    def __init__(self, num_classes=12, planes=True, data_preprocessor=None):
        super().__init__(num_classes, data_preprocessor or OccDataPreprocessor())
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.planes = planes

    def encode(self, voxels, **cond):
        v = voxels.float()  # (B, T, X, Y, Z)
        if not self.planes:
            return self.scale * v.mean(dim=(2, 3, 4))  # (B, T)
        return dict(xy=self.scale * v.mean(dim=(1, 4)),  # (B, X, Y)
                    tz=self.scale * v.mean(dim=(2, 3)))  # (B, T, Z)

    def decode(self, latent, **cond):
        raise NotImplementedError

    def loss(self, inputs, data_samples=None):
        return dict(loss_zero=self.scale * 0)


def _write_data(root, num=5):
    rng = np.random.default_rng(0)
    poses = np.tile(np.eye(4), (num, 1, 1))
    poses[:, 0, 3] = np.arange(num)
    write_carlasc_sequence(osp.join(root, 'Cartesian', 'Train', 'Town01_Heavy', 'cartesian'),
                           rng.integers(0, 23, (num, 128, 128, 8)), np.ones((num, 128, 128, 8)),
                           poses, write_points=False)


@pytest.mark.parametrize('planes', [True, False])
def test_cache_latents_round_trip(tmp_path, planes):
    data = str(tmp_path / 'data')
    _write_data(data)
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(
        f"model = dict(type='_PlaneTokenizer', planes={planes})\n"
        f"train_dataloader = dict(batch_size=1, dataset=dict(type='CarlaSCDataset', "
        f"data_root={data!r}, num_frames=2, window_stride=2, "
        f"pipeline=[dict(type='MakeLayout')]), collate_fn=dict(type='default_collate'))\n")
    model = _PlaneTokenizer(planes=planes)
    with torch.no_grad():
        model.scale.fill_(3.0)
    ckpt = str(tmp_path / 'tok.pth')
    torch.save(dict(state_dict=model.state_dict(), meta={}), ckpt)
    out = str(tmp_path / 'latents')
    _tool().main([str(cfg), ckpt, '--out', out, '--batch-size', '2', '--device', 'cpu'])
    cache = LatentCacheDataset(out)
    from occworld4d.datasets import CarlaSCDataset
    ds = CarlaSCDataset(data, num_frames=2, window_stride=2, pipeline=[dict(type='MakeLayout')])
    assert len(cache) == len(ds) == 2
    for i in range(2):
        item, ref = cache[i], ds[i]
        vox = ref['inputs']['voxels'].long()[None]
        expect = model.encode(vox)
        if planes:
            assert set(item['inputs']['latent']) == {'xy', 'tz'}
            for k in ('xy', 'tz'):  # the checkpoint's scale 3 was loaded
                torch.testing.assert_close(item['inputs']['latent'][k], expect[k][0].detach())
        else:
            torch.testing.assert_close(item['inputs']['latent'], expect[0].detach())
        assert torch.equal(item['inputs']['trajectory'], ref['inputs']['trajectory'])
        assert torch.equal(item['inputs']['layout'], ref['inputs']['layout'])
        assert int(item['inputs']['command']) == int(ref['inputs']['command'])
        assert item['data_samples'].metainfo['frame_ids'] == \
            ref['data_samples'].metainfo['frame_ids']
    batch = default_collate([cache[0], cache[1]])
    lat = batch['inputs']['latent']
    assert (lat['xy'].shape == (2, 128, 128)) if planes else (lat.shape == (2, 2))


def test_latent_cache_errors(tmp_path):
    with pytest.raises(DataFormatError, match='latent-cache index not found'):
        LatentCacheDataset(str(tmp_path))
