"""Imports inside functions say why they are not at the top (issue 18, item 5).

An import that guards no cycle belongs at the top of its module. Every ``import`` statement
inside a function of ``occworld4d/**/*.py`` and ``tools/**/*.py`` (parsed with :mod:`ast`,
nothing is imported) must carry its reason as a comment: on its own line, on the line just
before it, or, for a run of consecutive imports (blank lines between their groups allowed), on
the first import of the run or the line before that (e.g. ``import pyarrow as pa  # optional
package: parquet only`` followed by ``import pyarrow.parquet as pq``). An
``except ImportError:  # numpy < 2`` line counts as the line before.
"""
import ast
import os
import os.path as osp
from typing import List

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def python_files(root: str, package: str = 'occworld4d') -> List[str]:
    """Every ``.py`` file under ``root/package``, sorted."""
    found = []
    for folder, dirs, files in os.walk(osp.join(root, package)):
        dirs[:] = sorted(d for d in dirs if d != '__pycache__')
        found += [osp.join(folder, f) for f in sorted(files) if f.endswith('.py')]
    return found


def _has_comment(line: str) -> bool:
    return '#' in line


def unexplained_local_imports(path: str, text: str) -> List[str]:
    """``['path:line: statement', ...]`` of the in-function imports without a reason."""
    rel = osp.relpath(path, REPO) if osp.isabs(path) else path
    lines = text.splitlines()
    tree = ast.parse(text, filename=path)
    found = []
    for func in ast.walk(tree):
        if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(func):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            n = node.lineno  # 1-based; walk back over a run of consecutive imports
            while True:
                if _has_comment(lines[n - 1]):
                    break
                prev = lines[n - 2].strip() if n >= 2 else ''
                if not prev and n >= 3 and lines[n - 3].strip().startswith(('import ', 'from ')):
                    n -= 2  # a blank line between the groups of one import block
                    continue
                if prev.startswith(('import ', 'from ')):
                    n -= 1
                    continue
                if _has_comment(prev):
                    break
                found.append(f'{rel}:{node.lineno}: {lines[node.lineno - 1].strip()}')
                break
    return found


def test_rule_on_examples():
    bad = 'def f():\n    import json\n    return json\n'
    assert unexplained_local_imports('x.py', bad) == ['x.py:2: import json']
    ok = ('def f():\n    import pa  # optional package\n    import pa.pq\n'
          'def g():\n    # local: engine does not import apis\n    from a import b\n'
          'def h():\n    try:  # local: moved in numpy 2\n        from np._core import x\n'
          '    except ImportError:  # numpy < 2\n        from np.core import x\n')
    assert unexplained_local_imports('x.py', ok) == []
    grouped = 'def f():\n    # local: optional\n    import os\n\n    import torch\n'
    assert unexplained_local_imports('x.py', grouped) == []
    late = 'def f():\n    import os  # local: why\n    x = 1\n\n    import torch\n'
    assert unexplained_local_imports('x.py', late) == ['x.py:5: import torch']
    top = 'import json\n\n\ndef f():\n    return json\n'
    assert unexplained_local_imports('x.py', top) == []


def test_every_local_import_of_the_package_and_tools_says_why():
    problems = []
    for path in python_files(REPO) + python_files(REPO, 'tools'):
        with open(path, encoding='utf-8') as f:
            problems += unexplained_local_imports(path, f.read())
    assert not problems, ('imports inside functions without a reason (move them to the top of '
                          'the module, or say why on the line):\n' + '\n'.join(problems))
