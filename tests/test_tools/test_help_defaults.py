"""Every command-line tool shows its options' defaults in ``--help`` (issue 17): each tool is
run up to its ``parse_args`` (in this process, nothing else runs) and its parser's help is
checked."""
import argparse
import glob
import os.path as osp
import runpy
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = sorted(p for p in glob.glob(osp.join(ROOT, 'tools', '**', '*.py'), recursive=True)
               if 'ArgumentParser(' in open(p).read() or 'converter_parser(' in open(p).read())
# publish_model.py is being edited in another change; it gets its formatter there.
PENDING = set()  # tools whose formatter is still to come (none)


class _Parsed(Exception):
    def __init__(self, parser):
        super().__init__()
        self.parser = parser


def _parser_of(path, monkeypatch):
    def stop(self, *args, **kwargs):
        raise _Parsed(self)

    monkeypatch.setattr(argparse.ArgumentParser, 'parse_args', stop)
    monkeypatch.setattr(argparse.ArgumentParser, 'parse_known_args', stop)
    monkeypatch.setattr(sys, 'argv', [path])
    monkeypatch.syspath_prepend(osp.dirname(path))
    try:
        runpy.run_path(path, run_name='__main__')
    except _Parsed as parsed:
        return parsed.parser
    pytest.fail(f'{path} finished without parsing its arguments')


def _shown_default(action) -> bool:
    return action.option_strings and action.help != argparse.SUPPRESS and not (
        action.default is None or action.default is False or
        action.default == argparse.SUPPRESS or isinstance(action, argparse._HelpAction))


@pytest.mark.parametrize('path', TOOLS, ids=lambda p: osp.relpath(p, ROOT))
def test_help_shows_defaults(path, monkeypatch):
    rel = osp.relpath(path, ROOT)
    if rel in PENDING:
        pytest.skip(f'{rel}: formatter added by its pending change')
    parser = _parser_of(path, monkeypatch)
    assert issubclass(parser.formatter_class, argparse.ArgumentDefaultsHelpFormatter), (
        f'{rel}: ArgumentParser(formatter_class=occworld4d.apis.cli.HelpFormatter) shows '
        'the defaults in --help')
    text = ' '.join(parser.format_help().split())
    for action in parser._actions:
        if _shown_default(action) and action.help and 'default' not in action.help:
            assert f'(default: {action.default})' in text or (
                f'(default: {" ".join(str(action.default).split())})' in text), (
                f'{rel}: --help does not show the default of {action.option_strings[0]}')
