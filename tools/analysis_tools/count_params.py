"""Print the parameters of a config's model per top-level submodule (total/trainable/frozen).

Example:
    python tools/analysis_tools/count_params.py CONFIG [--cfg-options ...] [--json OUT]
"""
import argparse
import sys

from mmengine.config import DictAction
from mmengine.registry import init_default_scope
from mmengine.utils import import_modules_from_strings

import occworld4d  # noqa: F401  (registries, compat fixes)
from occworld4d.apis.cli import HelpFormatter, load_config
from occworld4d.evaluation.benchmark import count_parameters, format_param_table
from occworld4d.registry import MODELS
from occworld4d.utils import save_json_atomic


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description='Count the parameters of a config model',
                                     formatter_class=HelpFormatter)
    parser.add_argument('config')
    parser.add_argument('--json', help='also write the table as JSON')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.get('default_scope', 'occworld4d'))
    model = MODELS.build(cfg.model)
    rows = count_parameters(model)
    print(f'{type(model).__name__} ({args.config})')
    print(format_param_table(rows))
    if args.json:
        save_json_atomic(args.json, rows)
    return rows


if __name__ == '__main__':
    sys.exit(0 if main() else 1)
