"""The package has no import cycle (issue 18, item 1).

Every module of ``occworld4d`` is parsed with :mod:`ast` (nothing is imported) and the graph
of its module-level imports is built: statements that run when the module is imported (the
module body, ``if`` / ``try`` / ``with`` blocks and class bodies; not function bodies, not
``if TYPE_CHECKING:``). An edge ``a -> b`` means importing ``a`` runs ``b``:

* ``import p.q.r`` / ``from p.q.r import x`` -> ``p.q.r`` and the packages ``p``, ``p.q`` on the
  way (their ``__init__`` runs too), except the importer's own ancestor packages, which are
  always initialised before it;
* ``from p.q import r`` where ``r`` is a submodule -> ``p.q.r`` (and ``p.q`` when it is not an
  ancestor);
* ``from <ancestor> import name`` of a non-module name -> the ancestor's ``__init__`` (a real
  dependency on what it has defined so far).

Any strongly connected component with more than one module is a cycle; the test names one
path through it (``a -> b -> c -> a``).
"""
import ast
import os
import os.path as osp
import subprocess
import sys
from typing import Dict, List, Set

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def package_modules(root: str, package: str) -> Dict[str, tuple]:
    """{dotted module name: (file path, is_package)} for every ``.py`` under ``root/package``."""
    mods = {}
    for folder, dirs, files in os.walk(osp.join(root, package)):
        dirs[:] = sorted(d for d in dirs if d != '__pycache__')
        for name in sorted(files):
            if not name.endswith('.py'):
                continue
            path = osp.join(folder, name)
            dotted = osp.relpath(path, root)[:-3].replace(os.sep, '.')
            is_pkg = dotted.endswith('.__init__')
            mods[dotted[:-len('.__init__')] if is_pkg else dotted] = (path, is_pkg)
    return mods


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == 'TYPE_CHECKING') or (
        isinstance(test, ast.Attribute) and test.attr == 'TYPE_CHECKING')


def import_time_imports(body: List[ast.stmt]) -> List[ast.stmt]:
    """The ``import`` statements of ``body`` that run when the module is imported."""
    found = []
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                found += import_time_imports(node.body)
            found += import_time_imports(node.orelse)
        elif isinstance(node, ast.Try) or type(node).__name__ == 'TryStar':
            found += import_time_imports(node.body) + import_time_imports(node.orelse)
            found += import_time_imports(node.finalbody)
            for handler in node.handlers:
                found += import_time_imports(handler.body)
        elif isinstance(node, (ast.With, ast.ClassDef)):
            found += import_time_imports(node.body)
    return found


def import_graph(root: str, package: str) -> Dict[str, Set[str]]:
    """{module: modules its import runs} over the package (see the module docstring)."""
    mods = package_modules(root, package)
    graph = {}
    for name, (path, is_pkg) in mods.items():
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read(), filename=path)
        here = name if is_pkg else name.rpartition('.')[0]  # the package relative imports use
        targets, direct = set(), set()
        for node in import_time_imports(tree.body):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    targets.add(alias.name)
                    direct.add(alias.name)
                continue
            if node.level:
                parts = here.split('.')
                if node.level - 1 > len(parts) - 1:
                    raise ValueError(f'{path}:{node.lineno}: relative import beyond the package')
                base = '.'.join(parts[:len(parts) - (node.level - 1)])
                module = f'{base}.{node.module}' if node.module else base
            else:
                module = node.module
            targets.add(module)
            subs = [a.name for a in node.names if f'{module}.{a.name}' in mods]
            targets.update(f'{module}.{s}' for s in subs)
            if len(subs) < len(node.names):  # names defined by module itself
                direct.add(module)
        edges = set()
        for target in targets:
            parts = target.split('.')
            if parts[0] != package:
                continue
            for i in range(1, len(parts) + 1):
                mod = '.'.join(parts[:i])
                ancestor = name.startswith(mod + '.')
                if mod in mods and mod != name and (not ancestor or mod in direct):
                    edges.add(mod)
        graph[name] = edges
    return graph


def find_cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """One cycle (``[a, b, ..., a]``) per strongly connected component of > 1 module, or per
    module importing itself. Iterative Tarjan, deterministic order."""
    index, low, on_stack, stack, comps = {}, {}, set(), [], []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    comp.append(top)
                    if top == node:
                        break
                if len(comp) > 1 or node in graph.get(node, ()):
                    comps.append(sorted(comp))
    return [_cycle_path(graph, set(c)) for c in comps]


def _cycle_path(graph: Dict[str, Set[str]], comp: Set[str]) -> List[str]:
    """A shortest path from the first module of ``comp`` back to itself, inside ``comp``."""
    start = min(comp)
    parents, frontier = {start: None}, [start]
    while frontier:
        nxt = []
        for node in frontier:
            for child in sorted(graph[node] & comp):
                if child == start:
                    path = [node]
                    while parents[path[-1]] is not None:
                        path.append(parents[path[-1]])
                    return path[::-1] + [start]  # start -> ... -> node -> start
                if child not in parents:
                    parents[child] = node
                    nxt.append(child)
        frontier = nxt
    raise AssertionError(f'no cycle through {start} in {sorted(comp)}')


def test_occworld4d_has_no_import_cycle():
    graph = import_graph(REPO, 'occworld4d')
    assert len(graph) > 100, f'expected the whole package, parsed {len(graph)} modules'
    assert 'occworld4d.structures.geometry' in graph['occworld4d.datasets.base']
    cycles = find_cycles(graph)
    assert not cycles, 'import cycle(s) in occworld4d:\n' + '\n'.join(
        ' -> '.join(c) for c in cycles)


def test_structures_imports_no_package_above_it():
    """The low layer (geometry, info loading, data errors, vocabularies) depends only on
    itself and the registry: datasets/ and rendering/ build on it, never the reverse."""
    graph = import_graph(REPO, 'occworld4d')
    allowed = ('occworld4d.structures', 'occworld4d.registry')
    bad = {m: sorted(d for d in deps if not d.startswith(allowed))
           for m, deps in graph.items() if m.startswith('occworld4d.structures')}
    bad = {m: d for m, d in bad.items() if d}
    assert not bad, f'occworld4d.structures imports packages above it: {bad}'
    rendering = {m: sorted(d for d in deps if d.startswith('occworld4d.datasets'))
                 for m, deps in graph.items() if m.startswith('occworld4d.rendering')}
    assert not {m: d for m, d in rendering.items() if d}, rendering


def _write(root, rel, text):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_a_cycle_is_found_and_named(tmp_path):
    """The detector itself: the cycle of issue 18 (base -> transforms -> bev_layout ->
    nuscenes_infos -> base) in a toy package, found through a package ``__init__``; the same
    import inside a function is not an edge; an ancestor import of a submodule is not one."""
    _write(tmp_path, 'pkg/__init__.py', '')
    _write(tmp_path, 'pkg/data/__init__.py', 'from .base import Base\n')
    _write(tmp_path, 'pkg/data/base.py', 'from .transforms import T\nclass Base: pass\n')
    _write(tmp_path, 'pkg/data/infos.py', 'from .base import Base\n')
    _write(tmp_path, 'pkg/data/transforms.py',
           'import os\ntry:\n    from pkg.render.bev import B\nexcept ImportError:\n    B = 0\n')
    _write(tmp_path, 'pkg/render/__init__.py', 'from . import bev\n')
    _write(tmp_path, 'pkg/render/bev.py', 'from pkg.data.infos import Base\nB = 1\n')
    _write(tmp_path, 'pkg/lazy.py', 'def f():\n    from pkg import cyc\n')
    _write(tmp_path, 'pkg/cyc.py', 'from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n'
           '    from pkg import lazy\n')
    graph = import_graph(str(tmp_path), 'pkg')
    assert graph['pkg.render.bev'] == {'pkg.data', 'pkg.data.infos'}
    assert graph['pkg.lazy'] == set() and graph['pkg.cyc'] == set()
    cycles = find_cycles(graph)
    assert len(cycles) == 1, cycles
    cycle = cycles[0]
    assert cycle[0] == cycle[-1] and set(cycle) == {
        'pkg.data', 'pkg.data.base', 'pkg.data.transforms', 'pkg.render.bev'}, cycle
    for a, b in zip(cycle, cycle[1:]):
        assert b in graph[a], (a, b)
    # the same import made lazy (inside a function) is no edge: no cycle
    _write(tmp_path, 'pkg/render/bev.py', 'def f():\n    from pkg.data.infos import Base\n')
    assert find_cycles(import_graph(str(tmp_path), 'pkg')) == []


def test_self_import_and_ancestor_names_are_cycles(tmp_path):
    _write(tmp_path, 'pkg/__init__.py', 'from .sub.mod import X\nY = 1\n')
    _write(tmp_path, 'pkg/sub/__init__.py', '')
    _write(tmp_path, 'pkg/sub/mod.py', 'from pkg import Y\nX = Y\n')  # Y is not defined yet
    cycles = find_cycles(import_graph(str(tmp_path), 'pkg'))
    assert cycles == [['pkg', 'pkg.sub.mod', 'pkg']], cycles
    _write(tmp_path, 'pkg/sub/mod.py', 'from pkg.sub import other\nX = 1\n')
    _write(tmp_path, 'pkg/sub/other.py', '')
    assert find_cycles(import_graph(str(tmp_path), 'pkg')) == []


@pytest.mark.parametrize('module', ['occworld4d.structures.nuscenes_infos',
                                    'occworld4d.rendering.bev_layout',
                                    'occworld4d.datasets.transforms.uniscene_layout'])
def test_modules_of_the_old_cycle_import_first_in_a_fresh_interpreter(module):
    """Each module that the cycle used to join imports on its own, as the first import of a
    process (an order-dependent partial import would fail here)."""
    proc = subprocess.run([sys.executable, '-c', f'import {module}'], cwd=REPO,
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stderr[-2000:]
