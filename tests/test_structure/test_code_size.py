"""No file of the package over 600 lines, no function over 80 unless it says why (issue 18).

Every ``occworld4d/**/*.py`` is parsed with :mod:`ast` (nothing is imported). A file counts
its physical lines; a function (or method, or nested function) counts the lines from its
``def`` to its last statement. A function over the limit passes only when its docstring has
a paragraph that starts with ``Length:`` and gives the reason in at least five words, e.g.
``Length: one branch per sampler, kept together so that they read as a table.``
"""
import ast
import os
import os.path as osp
import re
from typing import List, Tuple

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MAX_FILE_LINES = 600
MAX_FUNCTION_LINES = 80
# a docstring paragraph 'Length: <reason of five words or more>'
_REASON = re.compile(r'(?:^|\n\s*\n)\s*Length:\s*((?:\S+\s+){4,}\S+)')


def python_files(root: str, package: str = 'occworld4d') -> List[str]:
    """Every ``.py`` file under ``root/package``, sorted."""
    found = []
    for folder, dirs, files in os.walk(osp.join(root, package)):
        dirs[:] = sorted(d for d in dirs if d != '__pycache__')
        found += [osp.join(folder, f) for f in sorted(files) if f.endswith('.py')]
    return found


def explains_length(func: ast.AST) -> bool:
    """Whether the docstring of ``func`` has a ``Length: <reason>`` paragraph."""
    doc = ast.get_docstring(func, clean=True)
    return bool(doc and _REASON.search(doc))


def size_violations(path: str, text: str) -> List[Tuple[str, int]]:
    """``[(what, lines), ...]`` over the limits in one file: the file itself (``what`` the
    path) and each long function without a reason (``what`` ``path:line name``)."""
    rel = osp.relpath(path, REPO) if osp.isabs(path) else path
    bad = []
    num_lines = len(text.splitlines())
    if num_lines > MAX_FILE_LINES:
        bad.append((rel, num_lines))
    for node in ast.walk(ast.parse(text, filename=path)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            if length > MAX_FUNCTION_LINES and not explains_length(node):
                bad.append((f'{rel}:{node.lineno} {node.name}', length))
    return sorted(bad)


def test_no_file_or_function_of_the_package_is_too_long():
    files = python_files(REPO)
    assert len(files) > 100, f'expected the whole package, found {len(files)} files'
    bad = []
    for path in files:
        with open(path, encoding='utf-8') as f:
            bad += size_violations(path, f.read())
    assert not bad, (f'over {MAX_FILE_LINES} lines per file / {MAX_FUNCTION_LINES} per function '
                     '(a long function needs a "Length: <why>" paragraph in its docstring):\n'
                     + '\n'.join(f'{what}: {n} lines' for what, n in bad))


def _function(name: str, body_lines: int, doc: str = '') -> str:
    head = f'def {name}():\n' + (f'    """{doc}"""\n' if doc else '')
    return head + ''.join(f'    x{i} = {i}\n' for i in range(body_lines))


def test_the_checker_finds_long_files_and_unexplained_long_functions():
    ok = _function('short', MAX_FUNCTION_LINES - 1)
    assert size_violations('m.py', ok) == []
    long = _function('long', MAX_FUNCTION_LINES)  # def line + 80 body lines = 81
    assert size_violations('m.py', long) == [('m.py:1 long', MAX_FUNCTION_LINES + 1)]
    nested = 'class A:\n    def f(self):\n' + ''.join(
        f'        y{i} = {i}\n' for i in range(MAX_FUNCTION_LINES + 5))
    assert size_violations('m.py', nested) == [('m.py:2 f', MAX_FUNCTION_LINES + 6)]
    reason = 'Sum two numbers.\n\n    Length: one branch per case, kept as a table.\n    '
    assert size_violations('m.py', _function('why', 90, reason)) == []
    for weak in ('Sum. Length: one branch per case, kept as a table.',  # not a paragraph
                 'Sum.\n\n    Length: because.\n    ',  # no reason given
                 'Sum.\n\n    This is long because of the cases in it.\n    '):  # no marker
        assert size_violations('m.py', _function('weak', 90, weak)) != [], weak
    big = ''.join(f'x{i} = {i}\n' for i in range(MAX_FILE_LINES + 1))
    assert size_violations('big.py', big) == [('big.py', MAX_FILE_LINES + 1)]
