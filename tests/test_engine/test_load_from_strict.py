"""load_from with a checkpoint of another model is an error listing the missing / unexpected /
mismatched keys, unless load_from_strict=False asks for a partial load."""
import pytest
import torch
from engine_toys import ToyModel, make_runner
from torch import nn

from occworld4d.engine.hooks import LoadFromMismatchError


class OtherModel(ToyModel):
    def __init__(self):
        super().__init__(out_features=2)
        self.head = nn.Linear(2, 1)


@pytest.fixture
def other_ckpt(tmp_path):
    path = str(tmp_path / 'other.pth')
    torch.save({'state_dict': OtherModel().state_dict()}, path)
    return path


def test_mismatch_is_an_error_listing_keys(tmp_path, other_ckpt):
    runner = make_runner(tmp_path / 'w', max_epochs=1, load_from=other_ckpt)
    with pytest.raises(LoadFromMismatchError) as info:
        runner.train()
    msg = str(info.value)
    assert 'other.pth' in msg
    assert '2 unexpected key(s)' in msg and 'head.weight' in msg and 'head.bias' in msg
    assert 'linear.weight (2, 4) vs model (1, 4)' in msg
    assert 'load_from_strict=False' in msg
    assert runner.iter == 0  # nothing trained


def test_missing_keys_listed(tmp_path):
    path = str(tmp_path / 'partial.pth')
    torch.save({'state_dict': {'linear.weight': torch.zeros(1, 4)}}, path)
    with pytest.raises(LoadFromMismatchError, match=r'1 missing key\(s\).*linear\.bias'):
        make_runner(tmp_path / 'w', max_epochs=1, load_from=path).train()


def test_non_strict_when_asked(tmp_path):
    path = str(tmp_path / 'partial.pth')
    torch.save({'state_dict': {'linear.weight': torch.full((1, 4), 0.5)}}, path)
    runner = make_runner(tmp_path / 'w', max_epochs=1, load_from=path, lr=0.0,
                         cfg=dict(load_from_strict=False))
    runner.train()
    assert torch.equal(runner.model.linear.weight, torch.full((1, 4), 0.5))


def test_matching_checkpoint_loads(tmp_path):
    src = ToyModel()
    path = str(tmp_path / 'same.pth')
    torch.save({'state_dict': {'module.' + k: v for k, v in src.state_dict().items()}}, path)
    runner = make_runner(tmp_path / 'w', max_epochs=1, load_from=path, lr=0.0)
    runner.train()
    assert torch.equal(runner.model.linear.weight, src.linear.weight)
