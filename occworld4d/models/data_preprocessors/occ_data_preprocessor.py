"""Stacks a batch of occupancy windows, moves it to the device, checks dtypes."""
from typing import Any, Dict, Sequence

import torch
from mmengine.model import BaseDataPreprocessor

from occworld4d.registry import MODELS


@MODELS.register_module()
class OccDataPreprocessor(BaseDataPreprocessor):
    """Turn a collated batch into model inputs.

    Accepts batches from mmengine's ``default_collate`` (tensors already stacked) or
    ``pseudo_collate`` (lists of tensors, stacked here). ``inputs['voxels']`` becomes
    int64 (B, T, X, Y, Z); float conditions become float32.

    Args:
        num_classes: if given, voxel ids outside [0, num_classes) raise an error
            naming the samples (a vocabulary / remap mistake in the config).
    """

    def __init__(self, num_classes: int = None, non_blocking: bool = False):
        super().__init__(non_blocking=non_blocking)
        self.num_classes = num_classes

    def forward(self, data: Dict[str, Any], training: bool = False) -> Dict[str, Any]:
        inputs = data['inputs']
        if not isinstance(inputs, dict):
            raise TypeError(f'expected batch["inputs"] to be a dict of tensors, got '
                            f'{type(inputs).__name__}')
        stacked = {key: _stack(value, key == 'voxels') for key, value in inputs.items()}
        voxels = stacked.get('voxels')
        if self.num_classes is not None and isinstance(voxels, torch.Tensor) and voxels.numel():
            lo, hi = int(voxels.min()), int(voxels.max())
            if lo < 0 or hi >= self.num_classes:
                names = [getattr(ds, 'metainfo', {}).get('scene', '?')
                         for ds in data.get('data_samples') or []]
                raise ValueError(f'voxel labels span [{lo}, {hi}] but the model has '
                                 f'{self.num_classes} classes (scenes {names}); check the '
                                 'dataset vocabulary / RemapClasses in the config')
        return dict(inputs=self.cast_data(stacked),
                    data_samples=self.cast_data(data.get('data_samples')))


def _stack(value: Any, is_voxels: bool = False) -> Any:
    """A list of per-sample tensors -> one (B, ...) tensor; dicts (e.g. the six HexPlane
    planes of ``inputs['latent']``) are stacked per key. Voxels become int64, other float
    tensors float32."""
    if isinstance(value, dict):
        return {k: _stack(v) for k, v in value.items()}
    if isinstance(value, Sequence) and value and isinstance(value[0], torch.Tensor):
        value = torch.stack(list(value))
    if isinstance(value, torch.Tensor):
        if is_voxels:
            value = value.long()
        elif value.is_floating_point():
            value = value.float()
    return value
