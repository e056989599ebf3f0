"""Turn metrics JSON files of ``tools/test.py --out`` into a markdown results table.

One row per JSON file, one column per selected metric, and under the table the command
that produced every row (``_command``, recorded by tools/test.py), so a README table says
how each number was made.

Examples:
    python tools/analysis_tools/results_table.py work_dirs/vae.json work_dirs/vae_d2442.json \
        --keys mIoU IoU --percent --names "DynamicCity VAE" "d2442"
    python tools/analysis_tools/results_table.py gen_*.json --keys FID KID precision recall \
        --out docs/tables/gen.md

A ``--keys`` entry selects a metric key equal to it or ending in ``/<entry>``
(``mIoU`` selects ``dynamiccity@valid_mask/mIoU``, ``FID`` selects ``gen3d@<version>/FID``);
without ``--keys`` every metric key of the files is a column. Keys starting with ``_``
are provenance (command, config, checkpoint, date), never metrics.
"""
import argparse
import json
import math
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence

from occworld4d.apis.cli import HelpFormatter
from occworld4d.utils import atomic_path


class TableError(SystemExit):
    """One clear message, exit code 2."""

    def __init__(self, message: str):
        print(f'error: {message}', file=sys.stderr)
        super().__init__(2)


def load_results(path: str) -> dict:
    """A metrics JSON object {key: value} as written by ``tools/test.py --out``."""
    if not osp.isfile(path):
        raise TableError(f'metrics file {path!r} does not exist')
    try:
        with open(path) as f:
            data = json.load(f)
    except json.JSONDecodeError as err:
        raise TableError(f'{path!r} is not valid JSON: {err}') from err
    if not isinstance(data, dict):
        raise TableError(f'{path!r} holds a JSON {type(data).__name__}; expected an object '
                         '{metric: value} written by tools/test.py --out')
    return data


def metric_keys(data: dict) -> List[str]:
    return [k for k in data if not k.startswith('_')]


def select(keys: Sequence[str], wanted: str) -> Optional[str]:
    """The key equal to ``wanted`` or ending in ``/wanted`` (None if absent)."""
    if wanted in keys:
        return wanted
    hits = [k for k in keys if k.endswith('/' + wanted)]
    if len(hits) > 1:
        raise TableError(f'--keys {wanted!r} matches several metrics {hits}; give the full key')
    return hits[0] if hits else None


def fmt(value, percent: bool, digits: int) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if math.isnan(value):
            return 'nan'
        value = 100 * value if percent else value
        return f'{value:.{digits}f}' if abs(value) >= 1e-3 or value == 0 else f'{value:.3g}'
    return '-' if value is None else str(value)


def build_table(paths: Sequence[str], keys: Optional[Sequence[str]] = None,
                names: Optional[Sequence[str]] = None, percent: bool = False,
                digits: int = 2) -> str:
    """Markdown table + the command list. See the module docstring."""
    if not paths:
        raise TableError('give at least one metrics JSON file')
    if names is not None and len(names) != len(paths):
        raise TableError(f'{len(names)} --names for {len(paths)} files')
    results = [load_results(p) for p in paths]
    if keys:
        columns = list(keys)
        found = [[select(metric_keys(r), k) for k in keys] for r in results]
        unused = [k for j, k in enumerate(keys) if all(row[j] is None for row in found)]
        if unused:
            raise TableError(f'--keys {unused} match no metric in {list(paths)}')
    else:
        columns = []
        for r in results:
            columns += [k for k in metric_keys(r) if k not in columns]
        found = [[k if k in r else None for k in columns] for r in results]
    rows: List[Dict[str, str]] = []
    for i, (path, r, row) in enumerate(zip(paths, results, found)):
        name = names[i] if names else osp.splitext(osp.basename(r.get('_config', path)))[0]
        cells = []
        for col, key in zip(columns, row):
            pct = percent and 'IoU' in col
            cells.append('-' if key is None else fmt(r[key], pct, digits))
        rows.append(dict(name=f'{name} [{i + 1}]', cells=cells))
    header = ['model'] + [f'{c} (%)' if percent and 'IoU' in c else c for c in columns]
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    lines += ['| ' + ' | '.join([row['name']] + row['cells']) + ' |' for row in rows]
    lines.append('')
    for i, (path, r) in enumerate(zip(paths, results)):
        cmd = r.get('_command')
        lines.append(f'[{i + 1}] `{cmd}`' if cmd else
                     f'[{i + 1}] {path} (no command recorded: not written by tools/test.py --out)')
    return '\n'.join(lines) + '\n'


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument('files', nargs='+', help='metrics JSON files (tools/test.py --out)')
    parser.add_argument('--keys', nargs='+', help='metric columns (full key or its last part)')
    parser.add_argument('--names', nargs='+', help='row names (default: the config name)')
    parser.add_argument('--percent', action='store_true',
                        help='show IoU columns (fractions in the JSON) in percent')
    parser.add_argument('--digits', type=int, default=2, help='decimals (default 2)')
    parser.add_argument('--out', help='write the table to this markdown file')
    args = parser.parse_args(argv)
    table = build_table(args.files, args.keys, args.names, args.percent, args.digits)
    if args.out:
        with atomic_path(args.out) as tmp, open(tmp, 'w') as f:
            f.write(table)
    print(table, end='')
    return table


if __name__ == '__main__':
    main()
