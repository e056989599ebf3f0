"""Stage-2 latent cache: tokenizer outputs saved per window, read back as a dataset.

Layout of a cache folder::

    <dir>/index.json          {"format": "occworld4d-latent-cache-v1", "latent_keys": [...],
                               "windows": [{"file": "000000.npz", "scene": ..., "frame_ids": [...]}]}
    <dir>/NNNNNN.npz          latent arrays + conditions of one window

A latent that is one tensor is stored under ``latent``; a dict of tensors (HexPlane:
``xy, xz, yz, tx, ty, tz``) under ``latent.<key>``. Conditions: ``trajectory`` float32
(T, 3), ``command`` int64 (), and ``layout`` float32 (T, h, w) when the dataset made one.
"""
import json
import os.path as osp
from typing import Dict, List, Optional, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from occworld4d.registry import DATASETS
from occworld4d.structures import OccDataSample
from occworld4d.utils import atomic_path, save_npz_atomic
from .base import DataFormatError

LATENT_CACHE_FORMAT = 'occworld4d-latent-cache-v1'
CONDITION_KEYS = ('trajectory', 'command', 'layout')


def latent_to_arrays(latent: Union[torch.Tensor, Dict[str, torch.Tensor]]
                     ) -> Dict[str, np.ndarray]:
    """One window's latent (no batch axis) -> ``{'latent' | 'latent.<key>': array}``."""
    if isinstance(latent, torch.Tensor):
        return {'latent': latent.detach().cpu().numpy()}
    if isinstance(latent, dict):
        out = {}
        for key, value in latent.items():
            if not isinstance(value, torch.Tensor):
                raise TypeError(f'latent[{key!r}] is {type(value).__name__}, expected a tensor')
            out[f'latent.{key}'] = value.detach().cpu().numpy()
        return out
    raise TypeError(f'a latent must be a tensor or a dict of tensors, got '
                    f'{type(latent).__name__}')


def write_latent_window(path: str, latent, conditions: Dict[str, np.ndarray]) -> None:
    """Write one window's latent arrays and conditions to ``path`` (npz, atomically)."""
    arrays = latent_to_arrays(latent)
    for key in CONDITION_KEYS:
        if key in conditions and conditions[key] is not None:
            value = conditions[key]
            arrays[key] = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) \
                else np.asarray(value)
    save_npz_atomic(path, compressed=False, **arrays)


def write_latent_index(out_dir: str, windows: List[dict], latent_keys: List[str],
                       extra: Optional[dict] = None) -> None:
    index = dict(format=LATENT_CACHE_FORMAT, latent_keys=list(latent_keys), windows=windows)
    index.update(extra or {})
    with atomic_path(osp.join(out_dir, 'index.json')) as tmp:
        with open(tmp, 'w') as f:
            json.dump(index, f, indent=1)


@DATASETS.register_module()
class LatentCacheDataset(Dataset):
    """Windows of cached tokenizer latents with their conditions.

    ``dataset[i]`` -> ``dict(inputs=dict(latent=tensor or dict of tensors,
    trajectory=float32 (T, 3), command=int64 (), [layout=float32 (T, h, w)]),
    data_samples=OccDataSample(metainfo: scene, frame_ids, ...))``; after
    ``default_collate`` every latent tensor gains a leading batch axis B.

    Args:
        cache_dir: folder written by ``tools/dataset_converters/cache_latents.py``.
    """

    def __init__(self, cache_dir: str, pipeline=(), test_mode: bool = False):
        self.cache_dir = cache_dir
        path = osp.join(cache_dir, 'index.json')
        if not osp.isfile(path):
            raise DataFormatError(f'{path}: latent-cache index not found (write it with '
                                  'tools/dataset_converters/cache_latents.py)')
        with open(path) as f:
            self.index = json.load(f)
        if self.index.get('format') != LATENT_CACHE_FORMAT:
            raise DataFormatError(f'{path}: format {self.index.get("format")!r}, expected '
                                  f'{LATENT_CACHE_FORMAT!r}')
        self.windows = self.index['windows']
        self.latent_keys = self.index['latent_keys']
        self.metainfo = {k: v for k, v in self.index.items()
                         if k not in ('windows', 'latent_keys', 'format')}

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, idx: int) -> dict:
        entry = self.windows[idx]
        path = osp.join(self.cache_dir, entry['file'])
        if not osp.isfile(path):
            raise DataFormatError(f'{path}: latent file not found')
        try:
            with np.load(path) as data:
                arrays = {k: data[k] for k in data.files}
        except Exception as err:
            raise DataFormatError(f'{path}: not a readable npz ({err})') from err
        expected = (['latent'] if self.latent_keys == ['latent'] else
                    [f'latent.{k}' for k in self.latent_keys]) + ['trajectory', 'command']
        missing = [k for k in expected if k not in arrays]
        if missing:
            raise DataFormatError(f'{path}: missing key(s) {missing}; found {sorted(arrays)}')
        if self.latent_keys == ['latent']:
            latent = torch.from_numpy(arrays['latent'])
        else:
            latent = {k: torch.from_numpy(arrays[f'latent.{k}']) for k in self.latent_keys}
        inputs = dict(latent=latent, trajectory=torch.from_numpy(arrays['trajectory']),
                      command=torch.tensor(int(arrays['command']), dtype=torch.int64))
        if 'layout' in arrays:
            inputs['layout'] = torch.from_numpy(arrays['layout'])
        meta = dict(self.metainfo, scene=entry.get('scene'), frame_ids=entry.get('frame_ids'))
        sample = OccDataSample(metainfo=meta)
        sample.trajectory, sample.command = inputs['trajectory'], inputs['command']
        return dict(inputs=inputs, data_samples=sample)
