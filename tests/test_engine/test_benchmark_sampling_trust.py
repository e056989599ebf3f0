"""tools/analysis_tools/benchmark_sampling.py --checkpoint follows the safe-loading rules
(docs/reliability.md, section 1): a crafted pickle is refused with one error line and does not
run, --trust-checkpoint allows it (with the warning), and the tool's own checkpoints load."""
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from helpers import ROOT, load_tool
from occworld4d.registry import MODELS
from occworld4d.utils.compat import set_trust_checkpoint
from test_safe_checkpoint_loading import write_evil

CONFIG = osp.join(ROOT, 'configs/dynamiccity/dynamiccity_dit_tiny_synthetic-city.py')
FAST = ['--steps', '2', '--repeats', '1', '--threads', '1', '--device', 'cpu']


@pytest.fixture(autouse=True)
def _untrusted():
    set_trust_checkpoint(False)
    yield
    set_trust_checkpoint(False)


def test_payload_refused_and_trust_flag_allows_it(tmp_path, capsys):
    tool = load_tool('tools/analysis_tools/benchmark_sampling.py')
    marker = tmp_path / 'pwned.txt'
    evil = write_evil(tmp_path / 'evil.pth', marker)
    with pytest.raises(SystemExit) as info:
        tool.main([CONFIG, '--checkpoint', evil, *FAST])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and 'evil.pth' in err and '--trust-checkpoint' in err
    assert not marker.exists()
    # trusted: a full pickle (the payload runs, with the warning naming the file); then its
    # empty state dict does not match the model: one error line, no traceback
    with pytest.warns(UserWarning, match='evil.pth'):
        with pytest.raises(SystemExit) as info:
            tool.main([CONFIG, '--checkpoint', evil, '--trust-checkpoint', *FAST])
    assert info.value.code == 2 and marker.exists()
    assert 'does not match the model' in capsys.readouterr().err


def test_own_checkpoint_loads_safely(tmp_path, capsys):
    cfg = Config.fromfile(CONFIG)
    init_default_scope('occworld4d')
    model = MODELS.build(dict(cfg.model, tokenizer_ckpt=None))
    path = tmp_path / 'dit.pth'
    # what mmengine writes: state dict + meta with numpy / HistoryBuffer-free scalars
    torch.save(dict(state_dict=model.state_dict(), meta=dict(epoch=1, iter=4)), path)
    tool = load_tool('tools/analysis_tools/benchmark_sampling.py')
    tool.main([CONFIG, '--checkpoint', str(path), *FAST])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out['steps'] == 2 and out['sample_s'] > 0
