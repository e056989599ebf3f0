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


def test_cache_latents_dataset_key_for_a_config_that_trains_from_the_cache(tmp_path, capsys):
    """A stage-2 config whose train set IS the cache names its voxel dataset by a key."""
    data = str(tmp_path / 'data')
    _write_data(data)
    model = _PlaneTokenizer(planes=False)
    ckpt = str(tmp_path / 'tok.pth')
    torch.save(dict(state_dict=model.state_dict(), meta={}), ckpt)
    out = str(tmp_path / 'latents')
    source = (f"dict(type='CarlaSCDataset', data_root={data!r}, num_frames=2, window_stride=2, "
              f"pipeline=[dict(type='MakeLayout')])")
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(
        "model = dict(type='_PlaneTokenizer', planes=False)\n"
        f"latent_source_dataset = {source}\n"
        f"train_dataloader = dict(batch_size=1, dataset=dict(type='LatentCacheDataset', "
        f"cache_dir={out!r}))\n")
    with pytest.raises(SystemExit) as err:  # the train set is the cache itself
        _tool().main([str(cfg), ckpt, '--out', out, '--device', 'cpu'])
    assert err.value.code == 2 and 'is itself a latent cache' in capsys.readouterr().err
    with pytest.raises(SystemExit) as err:
        _tool().main([str(cfg), ckpt, '--out', out, '--device', 'cpu', '--dataset-key', 'nope'])
    assert err.value.code == 2 and "--dataset-key 'nope' names no dataset" in \
        capsys.readouterr().err
    _tool().main([str(cfg), ckpt, '--out', out, '--device', 'cpu',
                  '--dataset-key', 'latent_source_dataset'])
    cache = LatentCacheDataset(out)
    assert len(cache) == 2 and cache[0]['inputs']['layout'] is not None


def test_latent_cache_errors(tmp_path):
    with pytest.raises(DataFormatError, match='latent-cache index not found'):
        LatentCacheDataset(str(tmp_path))


def _small_cache(root, num=4):
    """A hand-written latent cache of ``num`` windows (latent k = k everywhere)."""
    from occworld4d.datasets.latent_cache import write_latent_index, write_latent_window
    windows = []
    for k in range(num):
        name = f'{k:06d}.npz'
        write_latent_window(osp.join(root, name), torch.full((2, 3), float(k)),
                            dict(trajectory=np.zeros((2, 3), np.float32), command=k % 4))
        windows.append(dict(file=name, scene='s', frame_ids=[str(k), str(k + 1)]))
    write_latent_index(str(root), windows, ['latent'], dict(config='cfg.py'))


def test_latent_cache_pipeline_and_test_mode(tmp_path):
    from occworld4d.registry import TRANSFORMS
    _small_cache(tmp_path)

    @TRANSFORMS.register_module(force=True)
    class _ScaleLatent:
        def __call__(self, results):
            return dict(results, latent=results['latent'] * 10)

    def drop_odd(results):
        return None if int(results['frame_ids'][0]) % 2 else results

    cache = LatentCacheDataset(str(tmp_path), pipeline=[dict(type='_ScaleLatent')])
    item = cache[3]
    torch.testing.assert_close(item['inputs']['latent'], torch.full((2, 3), 30.0))
    assert int(item['inputs']['command']) == 3
    meta = item['data_samples'].metainfo
    assert meta['config'] == 'cfg.py' and meta['frame_ids'] == ['3', '4']
    # training: a filtered window is replaced by another (mmengine's refetch)
    train = LatentCacheDataset(str(tmp_path), pipeline=[drop_odd])
    assert all(float(train[1]['inputs']['latent'][0, 0]) in (0.0, 2.0) for _ in range(5))
    # test mode: a filtered window is an error
    test = LatentCacheDataset(str(tmp_path), pipeline=[drop_odd], test_mode=True)
    test[0]
    with pytest.raises(Exception, match='should not get `None`'):
        test[1]
    # BaseDataset features: indices, lazy init
    sub = LatentCacheDataset(str(tmp_path), indices=[2, 3])
    assert len(sub) == 2 and float(sub[0]['inputs']['latent'][0, 0]) == 2.0
    lazy = LatentCacheDataset(str(tmp_path), lazy_init=True)
    assert not lazy._fully_initialized and len(lazy) == 4
    # broken index / window files are named
    (tmp_path / '000002.npz').write_bytes(b'junk')
    with pytest.raises(DataFormatError, match=r'000002\.npz: not a readable npz'):
        cache[2]
    (tmp_path / 'index.json').write_text('{"format": "other"}')
    with pytest.raises(DataFormatError, match=r"index\.json: format 'other', expected"):
        LatentCacheDataset(str(tmp_path))
