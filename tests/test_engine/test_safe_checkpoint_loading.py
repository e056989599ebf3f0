"""Safe checkpoint loading: weights_only=True by default, a crafted pickle never runs, the
project's own checkpoints still load, --trust-checkpoint / trust_checkpoint=True allow a full
pickle with a warning naming the file, .safetensors weights are accepted."""
import os.path as osp

import pytest
import torch
from engine_toys import ToyModel, make_runner
from mmengine.runner import load_checkpoint
from mmengine.runner.checkpoint import _load_checkpoint

from occworld4d.utils.compat import (UntrustedCheckpointError, checkpoint_safe_globals,
                                     load_checkpoint_file, set_trust_checkpoint,
                                     trust_checkpoint_enabled, trusted_checkpoints)


@pytest.fixture(autouse=True)
def _untrusted():
    set_trust_checkpoint(False)
    yield
    set_trust_checkpoint(False)


class Payload:
    """Unpickling this writes ``marker`` (what a malicious shared .pth would do)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f'open({self.marker!r}, "w").write("pwned")',))


def write_evil(path, marker, state=None):
    torch.save({'state_dict': state if state is not None else {}, 'meta': Payload(marker)},
               str(path))
    return str(path)


def equal(a, b):
    import numpy as np
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b, equal_nan=True)
    if hasattr(a, '__dict__') and not isinstance(a, type):
        return type(a) is type(b) and equal(vars(a), vars(b))
    return a == b or (a != a and b != b)


def test_own_checkpoints_load_safely_and_identically(tmp_path):
    """epoch / best checkpoints with optimizer, scheduler, message hub (HistoryBuffer, numpy
    scores) and EMA: the safe load equals the full pickle."""
    runner = make_runner(tmp_path / 'w', max_epochs=2, val=True,
                         checkpoint=dict(save_best='toy/score', rule='greater'),
                         custom_hooks=[dict(type='EMAHook', momentum=0.1)])
    runner.train()
    files = sorted(p for p in (tmp_path / 'w').iterdir() if p.suffix == '.pth')
    assert {p.name for p in files} >= {'epoch_1.pth', 'epoch_2.pth'}
    assert any(p.name.startswith('best_') for p in files)
    for path in files:
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
        assert unsafe, 'mmengine checkpoints hold non-tensor types: the allow-list is needed'
        safe = load_checkpoint_file(str(path))
        full = torch.load(str(path), weights_only=False)
        assert equal(safe, full), path.name
    assert 'ema_state_dict' in load_checkpoint_file(str(tmp_path / 'w' / 'epoch_2.pth'))


def test_allow_list_is_needed_and_small():
    names = {g[1] if isinstance(g, tuple) else f'{g.__module__}.{g.__qualname__}'
             for g in checkpoint_safe_globals()}
    assert 'mmengine.logging.history_buffer.HistoryBuffer' in names
    assert not any('posix' in n or 'os.' in n or 'subprocess' in n or 'eval' in n
                   or 'exec' in n for n in names)
    assert len(names) < 30


def test_crafted_payload_does_not_run_by_default(tmp_path):
    marker = tmp_path / 'pwned.txt'
    evil = write_evil(tmp_path / 'evil.pth', marker)
    for load in (lambda: load_checkpoint_file(evil),
                 lambda: _load_checkpoint(evil),  # load_from / resume / tokenizer_ckpt path
                 lambda: load_checkpoint(torch.nn.Linear(4, 1), evil, strict=False)):
        with pytest.raises(UntrustedCheckpointError) as info:
            load()
        assert 'evil.pth' in str(info.value) and '--trust-checkpoint' in str(info.value)
        assert not marker.exists()


def test_trust_allows_full_pickle_with_a_warning(tmp_path):
    marker = tmp_path / 'pwned.txt'
    evil = write_evil(tmp_path / 'evil.pth', marker)
    with trusted_checkpoints():
        assert trust_checkpoint_enabled()
        with pytest.warns(UserWarning, match='evil.pth'):
            load_checkpoint_file(evil)
    assert marker.exists()  # the flag really means full pickle
    assert not trust_checkpoint_enabled()


def test_test_tool_refuses_payload_and_flag_allows_it(tmp_path, capsys):
    """tools/test.py CONFIG EVIL.pth: exit 2 naming the file and the flag, payload not run."""
    from helpers import load_tool
    test_tool = load_tool('tools/test.py')
    marker = tmp_path / 'pwned.txt'
    evil = write_evil(tmp_path / 'evil.pth', marker)
    config = 'configs/occworld/occworld_vqvae_tiny_synthetic-city.py'
    with pytest.raises(SystemExit) as info:
        test_tool.main([config, evil, '--work-dir', str(tmp_path / 'w')])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert 'evil.pth' in err and '--trust-checkpoint' in err
    assert not marker.exists()
    # with the flag: a full pickle (the payload runs), then the empty state dict is refused
    with pytest.warns(UserWarning, match='evil.pth'):
        with pytest.raises(SystemExit):
            test_tool.main([config, evil, '--work-dir', str(tmp_path / 'w'),
                            '--trust-checkpoint'])
    err = capsys.readouterr().err
    assert f"checkpoint '{evil}' does not match the model of the config" in err
    assert marker.exists()


def test_cache_latents_and_tokenizer_ckpt_refuse_payload(tmp_path):
    from helpers import load_tool
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from occworld4d.registry import MODELS
    cache = load_tool('tools/dataset_converters/cache_latents.py')
    marker = tmp_path / 'pwned.txt'
    evil = write_evil(tmp_path / 'evil.pth', marker)
    cfg = Config.fromfile('configs/dynamiccity/dynamiccity_dit_tiny_synthetic-city.py')
    init_default_scope('occworld4d')
    with pytest.raises(UntrustedCheckpointError, match='evil.pth'):
        cache.build_tokenizer(cfg, evil, 'cpu')  # stage-2 config: reads the prefix first
    model_cfg = cfg.model.copy()
    model_cfg['tokenizer_ckpt'] = evil
    model = MODELS.build(model_cfg)
    with pytest.raises(UntrustedCheckpointError, match='evil.pth'):
        model.init_weights()
    assert not marker.exists()


def test_safetensors_weights_are_accepted(tmp_path):
    from safetensors.torch import save_file
    src = ToyModel()
    path = str(tmp_path / 'weights.safetensors')
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, path)
    dst = ToyModel()
    load_checkpoint(dst, path, strict=True)
    assert all(torch.equal(a, b) for a, b in zip(src.parameters(), dst.parameters()))
    # as load_from of a Runner (strict key check included)
    runner = make_runner(tmp_path / 'w', max_epochs=1, load_from=path)
    runner.train()
    assert osp.isfile(tmp_path / 'w' / 'epoch_1.pth')
    # resume needs optimizer / iteration state: a clear error
    from occworld4d.utils.compat import CheckpointLoadError
    with pytest.raises(CheckpointLoadError, match='safetensors'):
        make_runner(tmp_path / 'w2', max_epochs=1, load_from=path, resume=True).train()
    bad = tmp_path / 'bad.safetensors'
    bad.write_bytes(b'\x10\x00')
    with pytest.raises(CheckpointLoadError, match='bad.safetensors'):
        load_checkpoint_file(str(bad))


def test_trust_config_key_and_flag():
    import argparse

    from mmengine.config import Config

    from occworld4d.apis.cli import add_trust_checkpoint_argument, apply_trust_checkpoint
    parser = argparse.ArgumentParser()
    add_trust_checkpoint_argument(parser)
    apply_trust_checkpoint(parser.parse_args([]), Config(dict()))
    assert not trust_checkpoint_enabled()
    apply_trust_checkpoint(parser.parse_args([]), Config(dict(trust_checkpoint=True)))
    assert trust_checkpoint_enabled()
    set_trust_checkpoint(False)
    apply_trust_checkpoint(parser.parse_args(['--trust-checkpoint']), Config(dict()))
    assert trust_checkpoint_enabled()


def test_test_tool_unreadable_checkpoint_is_not_a_mismatch(tmp_path, capsys):
    from helpers import load_tool
    test_tool = load_tool('tools/test.py')
    ckpt = tmp_path / 'epoch_1.pth'
    torch.save({'state_dict': {'w': torch.zeros(1000)}}, str(ckpt))
    with open(ckpt, 'r+b') as f:
        f.truncate(200)
    with pytest.raises(SystemExit) as info:
        test_tool.main(['configs/occworld/occworld_vqvae_tiny_synthetic-city.py', str(ckpt),
                        '--work-dir', str(tmp_path / 'w')])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert 'epoch_1.pth' in err and 'could not be read' in err and 'does not match' not in err
