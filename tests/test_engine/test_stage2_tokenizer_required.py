"""Issue 15, item 5b: a stage-2 model trained without ``model.tokenizer_ckpt`` is an error
naming the key, unless a random tokenizer is asked for (``model.allow_random_tokenizer=True``)
or the Runner loads the whole model (``load_from`` / ``resume``). Building the model (tests,
tools/test.py, tools/sample.py from a full checkpoint) never needs it."""
import glob
import os.path as osp
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

import occworld4d  # noqa: F401
from occworld4d.models.tokenizers.base import MissingTokenizerCheckpointError
from occworld4d.registry import MODELS

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'test_apis'))
from helpers import ROOT, tool_main  # noqa: E402
from tiny_models import tiny_model_cfg  # noqa: E402,F401  (registers TinyHexTokenizer)

DIT_CFG = 'configs/dynamiccity/dynamiccity_dit_tiny_synthetic-city.py'
STAGE2_CFGS = ['configs/dynamiccity/dynamiccity_dit_tiny_synthetic-city.py',
               'configs/occworld/occworld_wm_tiny_synthetic-city.py',
               'configs/uniscene/uniscene_dit_tiny_synthetic-city.py',
               'configs/occsora/occsora_dit_tiny_synthetic-city.py']


def _build(config, **overrides):
    cfg = Config.fromfile(osp.join(ROOT, config)).model
    cfg.tokenizer_ckpt = None
    cfg.update(overrides)
    with DefaultScope.overwrite_default_scope('occworld4d'):
        return MODELS.build(cfg)


@pytest.mark.parametrize('config', STAGE2_CFGS, ids=lambda c: osp.basename(c)[:-3])
def test_init_weights_without_tokenizer_ckpt_is_an_error(config):
    torch.set_num_threads(1)
    model = _build(config)  # building alone is fine (test / sample load a full checkpoint)
    with pytest.raises(MissingTokenizerCheckpointError) as err:
        model.init_weights()
    msg = str(err.value)
    assert 'model.tokenizer_ckpt' in msg and 'model.allow_random_tokenizer=True' in msg
    assert type(model).__name__ in msg

    model = _build(config, allow_random_tokenizer=True)
    with pytest.warns(UserWarning, match='randomly initialised tokenizer'):
        model.init_weights()


def test_tokenizer_ckpt_still_loads(tmp_path):
    src = MODELS.build(tiny_model_cfg())
    path = str(tmp_path / 'tok.pth')
    torch.save({'state_dict': src.tokenizer.state_dict()}, path)
    model = MODELS.build(tiny_model_cfg(tokenizer_ckpt=path))
    model.init_weights()
    for k, v in src.tokenizer.state_dict().items():
        assert torch.equal(model.tokenizer.state_dict()[k], v)


def _runner(work_dir, **model_overrides):
    cfg = Config.fromfile(osp.join(ROOT, DIT_CFG))
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = cfg.visualizer.name = osp.basename(str(work_dir))
    cfg.train_dataloader.dataset.num_scenes = 2
    cfg.train_dataloader.batch_size = 2
    cfg.train_cfg.max_epochs = 1
    cfg.default_hooks.checkpoint.interval = 1
    cfg.log_level = 'WARNING'
    cfg.model.update(model_overrides)
    return cfg


def test_runner_train_refuses_then_full_checkpoint_needs_no_tokenizer_ckpt(tmp_path):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    with pytest.raises(MissingTokenizerCheckpointError, match='model.tokenizer_ckpt'):
        Runner.from_cfg(_runner(tmp_path / 'refused')).train()
    assert not glob.glob(str(tmp_path / 'refused' / '*.pth'))  # nothing trained

    Runner.from_cfg(_runner(tmp_path / 'random', allow_random_tokenizer=True)).train()
    full = str(tmp_path / 'random' / 'epoch_1.pth')
    assert osp.isfile(full)
    # fine-tuning from the full stage-2 checkpoint: its tokenizer weights are used, no error
    cfg = _runner(tmp_path / 'finetune')
    cfg.load_from = full
    runner = Runner.from_cfg(cfg)
    runner.train()
    saved = torch.load(full, map_location='cpu', weights_only=False)['state_dict']
    tok = {k: v for k, v in runner.model.state_dict().items() if k.startswith('tokenizer.')}
    assert tok and all(torch.equal(v, saved[k]) for k, v in tok.items())


def test_train_py_one_error_line(tmp_path, capfd):
    """tools/train.py's ``main(argv)`` in this process (what ``python tools/train.py`` runs; a
    traceback would be an exception other than SystemExit escaping it), not a subprocess that
    paid ~8 s CPU of interpreter + mmengine start-up for one line."""
    with pytest.raises(SystemExit) as exc:
        tool_main('tools/train.py', DIT_CFG, '--work-dir', tmp_path / 'w', '--cfg-options',
                  'train_dataloader.dataset.num_scenes=2')
    err = capfd.readouterr().err
    assert exc.value.code == 2, err[-2000:]
    assert 'model.tokenizer_ckpt is not set' in err
    assert 'Traceback' not in err
