"""Helpers shared by the tests that run the command-line tools (``tools/*.py``).

Importable as ``helpers`` from any test: pytest puts ``tests/`` (the folder of the root
conftest.py, which has no ``__init__.py``) on ``sys.path``.

* :func:`run_cli` runs ``python ARGS`` from the repository root in a subprocess (what a user
  runs; one OpenMP thread) and fails the test with the tail of its output unless told
  otherwise.
* :func:`load_tool` imports a tool script as a fresh module; :func:`tool_main` calls its
  ``main(argv)`` from the repository root in this process (the same code path as the command
  line without a Python start-up).
"""
import importlib.util
import os
import os.path as osp
import subprocess
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def run_cli(*args, expect_ok: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
    """``python ARGS`` in the repository root with OMP_NUM_THREADS=1.

    Args:
        *args: the script (relative to the root, e.g. ``'tools/train.py'``) and its arguments.
        expect_ok: assert exit status 0, showing the command and its output tail if not.
        timeout: seconds before the subprocess is killed (the test then errors).
    """
    args = [str(a) for a in args]
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
    if expect_ok:
        assert proc.returncode == 0, f'{args}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}'
    return proc


def load_tool(rel_path: str):
    """Import the script ``rel_path`` (relative to the root) as a new module object."""
    path = osp.join(ROOT, rel_path)
    name = osp.splitext(osp.basename(rel_path))[0]
    spec = importlib.util.spec_from_file_location(f'tool_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tool_main(rel_path: str, *args):
    """``load_tool(rel_path).main(list(args))`` with the repository root as working folder."""
    module = load_tool(rel_path)
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        return module.main([str(a) for a in args])
    finally:
        os.chdir(cwd)
