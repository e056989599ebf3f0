"""OccDataPreprocessor: stacking of pseudo-collated batches, dtypes, label range check."""
import pytest
import torch
from mmengine.dataset import default_collate, pseudo_collate

from occworld4d.models.data_preprocessors import OccDataPreprocessor


def _samples():
    return [dict(inputs=dict(voxels=torch.full((2, 4, 4, 2), i, dtype=torch.uint8),
                             trajectory=torch.zeros(2, 3, dtype=torch.float64),
                             latent=dict(xy=torch.full((3, 4, 4), float(i)),
                                         tz=torch.full((3, 1, 2), float(i)))))
            for i in range(2)]


@pytest.mark.parametrize('collate', [pseudo_collate, default_collate])
def test_stacks_tensors_and_nested_latent_dicts(collate):
    out = OccDataPreprocessor(num_classes=3)(collate(_samples()))['inputs']
    assert out['voxels'].shape == (2, 2, 4, 4, 2) and out['voxels'].dtype == torch.int64
    assert out['trajectory'].shape == (2, 2, 3) and out['trajectory'].dtype == torch.float32
    # A dict of per-sample planes (the latent cache) is stacked per key, in sample order.
    assert out['latent']['xy'].shape == (2, 3, 4, 4)
    assert out['latent']['tz'].shape == (2, 3, 1, 2)
    assert out['latent']['xy'][:, 0, 0, 0].tolist() == [0.0, 1.0]


def test_label_range_error_names_the_problem():
    batch = pseudo_collate(_samples())
    with pytest.raises(ValueError, match=r'span \[0, 1\] but the model has 1 classes'):
        OccDataPreprocessor(num_classes=1)(batch)
