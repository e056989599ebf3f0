"""Shared fixtures: the real-sample folder, fixed threads and seeds. Helpers for running the
command-line tools live in tests/helpers.py (``from helpers import run_cli, load_tool``).

Real samples (``../shared/data/real`` or ``$OCCWORLD4D_REAL_DATA``) are reached only through
the :func:`real_path` fixture (and :func:`real_root`, built on it): a missing file skips the
test with a reason, and FAILS it when ``$CI`` is set (CI always has ``../shared``;
``.ci/run`` exports ``CI=1``).
"""
import glob
import os
import os.path as osp
import sys

import pytest
import torch

from occworld4d.utils import real_data_root

# tests/ on sys.path for ``import helpers`` whatever pytest's --import-mode
if os.path.dirname(os.path.abspath(__file__)) not in sys.path:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

torch.set_num_threads(int(os.environ.get('OCCWORLD4D_TEST_THREADS', '1')))


def ci_is_set() -> bool:
    """``$CI`` is set to something other than empty / ``0`` / ``false`` / ``no``."""
    return os.environ.get('CI', '').strip().lower() not in ('', '0', 'false', 'no')


def missing_real_data(message: str) -> None:
    """Skip the running test (``message`` is the reason), or fail it when ``$CI`` is set."""
    if ci_is_set():
        pytest.fail(f'{message}; CI is set, and CI must have the real samples of '
                    '../shared/data/real', pytrace=False)
    pytest.skip(message)


class RealData:
    """What the :func:`real_path` fixture returns (see there)."""

    def __call__(self, *parts: str, what: str = 'real sample data') -> str:
        path = osp.join(real_data_root(), *parts)
        if not osp.exists(path):
            missing_real_data(f'{what} not found at {path} (set OCCWORLD4D_REAL_DATA)')
        return path

    def glob(self, *parts: str, pattern: str, what: str = 'real sample data') -> list:
        folder = self(*parts, what=what)
        found = sorted(glob.glob(osp.join(glob.escape(folder), pattern)))
        if not found:
            missing_real_data(f'{what}: no {pattern} in {folder}')
        return found


@pytest.fixture(scope='session')
def real_path() -> RealData:
    """``real_path(*parts, what=...)``: the path of ``parts`` under the real-sample folder;
    ``real_path.glob(*parts, pattern=...)``: the sorted files matching ``pattern`` there. The
    test is skipped with a reason when they are absent, and fails when ``$CI`` is set."""
    return RealData()


@pytest.fixture
def real_root(real_path):
    """Path of ``../shared/data/real`` (or $OCCWORLD4D_REAL_DATA): skip if absent, fail under CI."""
    return real_path(what='real sample data folder')


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason='needs a CUDA device; none on this machine')
    for item in items:
        if 'gpu' in item.keywords:
            item.add_marker(skip)
