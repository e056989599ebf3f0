"""Stage-2 latent cache: tokenizer outputs saved per window, read back as a dataset.

Layout of a cache folder::

    <dir>/index.json          {"format": "occworld4d-latent-cache-v1", "latent_keys": [...],
                               "windows": [{"file": "000000.npz", "scene": ...,
                                            "frame_ids": [...]}]}
    <dir>/NNNNNN.npz          latent arrays + conditions of one window

A latent that is one tensor is stored under ``latent``; a dict of tensors (HexPlane:
``xy, xz, yz, tx, ty, tz``) under ``latent.<key>``. Conditions: ``trajectory`` float32
(T, 3), ``command`` int64 (), and ``layout`` float32 (T, h, w) when the dataset made one.
"""
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.dataset import BaseDataset

from occworld4d.registry import DATASETS, TRANSFORMS
from occworld4d.structures.errors import DataFormatError
from occworld4d.utils import atomic_path, save_npz_atomic
from .transforms import PackLatentInputs

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
class LatentCacheDataset(BaseDataset):
    """Windows of cached tokenizer latents with their conditions (an mmengine BaseDataset).

    ``dataset[i]`` runs ``pipeline`` on the window dict ``latent`` (array, or dict of arrays
    for HexPlane-style latents), ``trajectory`` float32 (T, 3), ``command`` int,
    [``layout`` float32 (T, h, w)], ``scene``, ``frame_ids`` and the cache's metadata
    (``index.json`` keys such as ``config`` / ``checkpoint``); the pipeline always ends in
    :class:`~occworld4d.datasets.transforms.PackLatentInputs` (appended when left out), giving
    ``dict(inputs=dict(latent=tensor or dict of tensors, trajectory, command, [layout]),
    data_samples=OccDataSample)``; after ``default_collate`` every latent tensor gains a
    leading batch axis B.

    mmengine semantics: in training a pipeline that returns ``None`` (a filter) makes
    ``__getitem__`` fetch another random window (up to ``max_refetch`` times); with
    ``test_mode=True`` that is an error. ``indices`` / ``get_subset`` / ``lazy_init`` work as
    in ``BaseDataset``.

    Args:
        cache_dir: folder written by ``tools/dataset_converters/cache_latents.py``.
        pipeline: transforms (config dicts or callables) on the window dict.
        test_mode, indices, lazy_init, max_refetch, metainfo: as in mmengine's BaseDataset.
    """
    METAINFO: dict = dict(dataset='latent_cache')

    def __init__(self, cache_dir: str, pipeline: Sequence = (), test_mode: bool = False,
                 indices=None, lazy_init: bool = False, max_refetch: int = 100,
                 metainfo: Optional[dict] = None):
        self.cache_dir = cache_dir
        self.latent_keys: List[str] = []
        built = [TRANSFORMS.build(t) if isinstance(t, dict) else t for t in pipeline]
        if not built or not isinstance(built[-1], PackLatentInputs):
            built.append(PackLatentInputs())
        super().__init__(ann_file=osp.join(cache_dir, 'index.json'), metainfo=metainfo,
                         data_root='', data_prefix=dict(), indices=indices,
                         serialize_data=False, pipeline=built, test_mode=test_mode,
                         lazy_init=lazy_init, max_refetch=max_refetch)

    def load_data_list(self) -> List[dict]:
        path = self.ann_file
        if not osp.isfile(path):
            raise DataFormatError(f'{path}: latent-cache index not found (write it with '
                                  'tools/dataset_converters/cache_latents.py)')
        try:
            with open(path) as f:
                index = json.load(f)
        except Exception as err:
            raise DataFormatError(f'{path}: not a readable JSON index ({err})') from err
        if not isinstance(index, dict) or index.get('format') != LATENT_CACHE_FORMAT:
            found = index.get('format') if isinstance(index, dict) else type(index).__name__
            raise DataFormatError(f'{path}: format {found!r}, expected '
                                  f'{LATENT_CACHE_FORMAT!r}')
        missing = [k for k in ('windows', 'latent_keys') if k not in index]
        if missing:
            raise DataFormatError(f'{path}: missing key(s) {missing}; found {sorted(index)}')
        self.latent_keys = list(index['latent_keys'])
        self._metainfo.update({k: v for k, v in index.items()
                               if k not in ('windows', 'latent_keys', 'format')})
        return [dict(entry) for entry in index['windows']]

    def load_window(self, info: dict) -> dict:
        """The pipeline's input for one window (numpy arrays + metadata)."""
        path = osp.join(self.cache_dir, info['file'])
        if not osp.isfile(path):
            raise DataFormatError(f'{path}: latent file not found')
        try:
            with np.load(path) as data:
                arrays = {k: data[k] for k in data.files}
        except Exception as err:
            raise DataFormatError(f'{path}: not a readable npz ({err})') from err
        single = self.latent_keys == ['latent']
        expected = (['latent'] if single else [f'latent.{k}' for k in self.latent_keys]) + \
            ['trajectory', 'command']
        missing = [k for k in expected if k not in arrays]
        if missing:
            raise DataFormatError(f'{path}: missing key(s) {missing}; found {sorted(arrays)}')
        results = dict(self.metainfo, scene=info.get('scene'), frame_ids=info.get('frame_ids'))
        results['latent'] = arrays['latent'] if single else \
            {k: arrays[f'latent.{k}'] for k in self.latent_keys}
        results['trajectory'] = arrays['trajectory']
        results['command'] = int(arrays['command'])
        if 'layout' in arrays:
            results['layout'] = arrays['layout']
        return results

    def prepare_data(self, idx: int):
        return self.pipeline(self.load_window(self.get_data_info(idx)))
