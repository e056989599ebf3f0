"""Helpers shared by the command-line tools (train / test / sample / benchmark)."""
import argparse
import importlib.util
import os
import os.path as osp
import sys
from typing import Optional

import torch
from mmengine.config import Config, DictAction  # noqa: F401  (DictAction re-exported)

from occworld4d.engine.hooks import (LoadFromMismatchError, NonFiniteCheckpointError,
                                     NonFiniteLossError)
from occworld4d.models.tokenizers.base import MissingTokenizerCheckpointError
from occworld4d.utils.compat import (CheckpointLoadError, resolve_checkpoint,
                                     set_trust_checkpoint)


class CLIError(SystemExit):
    """A user-facing error: one clear message, exit code 2, no traceback."""

    def __init__(self, message: str):
        print(f'error: {message}', file=sys.stderr)
        super().__init__(2)


class KeyValueAction(DictAction):
    """mmengine's ``DictAction`` (``--cfg-options KEY=VALUE ...``) whose malformed items
    (no ``=``) are one argparse error naming the item, not a ``ValueError`` traceback."""

    def __call__(self, parser, namespace, values, option_string=None):
        for kv in values:
            if '=' not in kv or not kv.split('=', 1)[0]:
                parser.error(f'{option_string} {kv!r}: expected KEY=VALUE, e.g. '
                             'train_cfg.max_epochs=2')
        super().__call__(parser, namespace, values, option_string)


def _config_value(cfg, dotted: str):
    node = cfg
    for part in dotted.split('.'):
        if isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif hasattr(node, 'get') and part in node:
            node = node[part]
        else:
            raise KeyError(dotted)
    return node


def check_option_types(cfg, cfg_options: dict, path: str) -> None:
    """``--cfg-options`` values whose type cannot stand for the config's (a word for a
    number): one ``CLIError`` naming the key, the value and what was expected."""
    for key, value in cfg_options.items():
        try:
            old = _config_value(cfg, key)
        except KeyError:
            continue  # a new key
        # a word where the config has a number (bools may become strings, e.g. save_best)
        if (isinstance(old, (int, float)) and not isinstance(old, bool)
                and isinstance(value, str)):
            raise CLIError(f'--cfg-options {key}={value!r}: expected a number like the value '
                           f'of {key} in {path} ({old!r})')


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """Load a config file with clear errors; apply ``--cfg-options``."""
    if not osp.isfile(path):
        raise CLIError(f'config file {path!r} does not exist')
    # `custom_imports` of projects/ (projects.<name>...) resolve from the working directory,
    # as in OpenMMLab repositories; tools/ is sys.path[0] when run as a script.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        cfg = Config.fromfile(path)
    except Exception as err:  # syntax errors, a missing _base_ file, ...
        raise CLIError(f'could not parse config {path!r}: {err}') from err
    if cfg_options:
        check_option_types(cfg, cfg_options, path)
        try:
            cfg.merge_from_dict(cfg_options)
        except (TypeError, KeyError, IndexError, ValueError) as err:
            raise CLIError(f'--cfg-options {" ".join(f"{k}={v}" for k, v in cfg_options.items())}'
                           f' do not fit config {path!r} ({type(err).__name__}: {err}); a list '
                           'entry is addressed by its index, e.g. test_evaluator.0.checkpoint='
                           ) from err
    cfg.setdefault('default_scope', 'occworld4d')
    sync_vis_backends(cfg)
    return cfg


DEFAULT_VIS_BACKENDS = [dict(type='LocalVisBackend')]  # configs/_base_/default_runtime.py


def sync_vis_backends(cfg: Config) -> None:
    """A child config's top-level ``vis_backends`` reaches the visualizer.

    ``default_runtime.py`` builds ``visualizer = dict(vis_backends=vis_backends)`` when it is
    read, so redefining ``vis_backends`` in a child config alone would change nothing. When
    the visualizer still holds the runtime's default backends and ``vis_backends`` differs,
    the visualizer takes ``vis_backends``; a config that sets ``visualizer.vis_backends``
    itself keeps it.
    """
    top, vis = cfg.get('vis_backends'), cfg.get('visualizer')
    if top is None or not isinstance(vis, dict):
        return
    current = [dict(b) for b in (vis.get('vis_backends') or [])]
    wanted = [dict(b) for b in top]
    if current == DEFAULT_VIS_BACKENDS and wanted != current:
        vis['vis_backends'] = top


# Visualization backends that need a package mmengine does not install: (module, pip command).
VIS_BACKEND_PACKAGES = {
    'WandbVisBackend': ('wandb', 'pip install wandb'),
    'TensorboardVisBackend': ('tensorboard', 'pip install tensorboard'),
    'MLflowVisBackend': ('mlflow', 'pip install mlflow'),
}


def check_vis_backends(cfg: Config) -> None:
    """One ``CLIError`` naming the pip command when a selected visualization backend's
    package is missing (mmengine would fail only at the first logged value, mid-run)."""
    vis = cfg.get('visualizer')
    backends = (vis.get('vis_backends') if isinstance(vis, dict) else None) or []
    for b in backends:
        kind = b.get('type') if isinstance(b, dict) else None
        name = kind if isinstance(kind, str) else getattr(kind, '__name__', '')
        if name not in VIS_BACKEND_PACKAGES:
            continue
        module, pip = VIS_BACKEND_PACKAGES[name]
        try:
            missing = importlib.util.find_spec(module) is None
        except ValueError:  # sys.modules[module] is None: import blocked
            missing = True
        if missing:
            offline = (" (no account: init_kwargs=dict(project='occworld4d', mode='offline') "
                       'or WANDB_MODE=offline)') if module == 'wandb' else ''
            raise CLIError(f'vis_backends selects {name}, which needs the {module} package: '
                           f'run `{pip}`{offline}, or remove {name} from vis_backends')


def default_work_dir(config_path: str) -> str:
    return osp.join('work_dirs', osp.splitext(osp.basename(config_path))[0])


def check_checkpoint(path: Optional[str]) -> None:
    if path is not None and not osp.isfile(path):
        raise CLIError(f'checkpoint {path!r} does not exist')


def resolve_checkpoint_arg(path: Optional[str], what: str = 'checkpoint') -> Optional[str]:
    """A checkpoint argument of a tool: a file, or a work dir standing for its latest
    checkpoint (:func:`occworld4d.utils.compat.resolve_checkpoint`, which logs the choice).
    A missing path or a folder without a checkpoint is one ``CLIError``."""
    if path is None:
        return None
    try:
        return resolve_checkpoint(path)
    except FileNotFoundError as err:
        raise CLIError(f'{what}: {err.args[0]}') from err


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter,
                    argparse.RawDescriptionHelpFormatter):
    """``--help`` shows every option's default (options without a help text too; not for
    ``None`` / flags, nor where the help text already names its default) and keeps the
    description's line breaks."""

    def _format_action(self, action):
        default = action.default
        if not action.help and action.option_strings and not (
                default is None or default is False or default == argparse.SUPPRESS):
            action.help = '(default: %(default)s)'
        return super()._format_action(action)

    def _get_help_string(self, action):
        text = action.help or ''
        if action.default is None or action.default is False or 'default' in text:
            return text
        return super()._get_help_string(action).strip()


def resolve_device(name: Optional[str]) -> str:
    """``auto`` (or None) -> ``cuda`` when a GPU is visible, else ``cpu``; other names pass
    through after a check that CUDA is there when asked for."""
    name = 'auto' if name is None else str(name)
    if name == 'auto':
        return 'cuda' if torch.cuda.is_available() else 'cpu'
    if name.startswith('cuda') and not torch.cuda.is_available():
        raise CLIError(f'--device {name}: CUDA is not available on this machine (torch '
                       f'{torch.__version__}); use --device cpu or auto')
    return name


def add_device_argument(parser, default: str = 'auto', help_extra: str = '') -> None:
    """``--device auto|cpu|cuda|cuda:N`` (auto = CUDA if available, else CPU), the same in
    every tool; read it with :func:`resolve_device`."""
    parser.add_argument('--device', default=default,
                        help='auto (CUDA if available, else CPU), cpu, cuda or cuda:N'
                        + help_extra)


def setup_launcher_env(launcher: str) -> None:
    """torchrun sets LOCAL_RANK in the environment; older launchers passed --local-rank."""
    if launcher != 'none' and 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = '0'


def add_trust_checkpoint_argument(parser) -> None:
    """``--trust-checkpoint``: allow full-pickle checkpoints (docs/reliability.md)."""
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help='load checkpoints as full pickles (torch.load weights_only=False), '
                        'which can run code: only for files you trust. Default: safe loading '
                        '(weights_only=True with the mmengine checkpoint types allow-listed)')


def apply_trust_checkpoint(args, cfg=None) -> None:
    """``--trust-checkpoint`` or the config key ``trust_checkpoint=True`` allow full pickles."""
    trust = bool(getattr(args, 'trust_checkpoint', False))
    if cfg is not None and cfg.get('trust_checkpoint', False):
        trust = True
    if trust:
        set_trust_checkpoint(True)


def checkpoint_errors() -> tuple:
    """Exceptions of checkpoint loading / saving / training that the tools report in one line."""
    return (CheckpointLoadError, LoadFromMismatchError, NonFiniteCheckpointError,
            NonFiniteLossError, MissingTokenizerCheckpointError)
