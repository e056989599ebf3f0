"""Shared fixtures: the real-sample folder, fixed threads and seeds. Helpers for running the
command-line tools live in tests/helpers.py (``from helpers import run_cli, load_tool``)."""
import os
import sys

import pytest
import torch

from occworld4d.utils import real_data_root

# tests/ on sys.path for ``import helpers`` whatever pytest's --import-mode
if os.path.dirname(os.path.abspath(__file__)) not in sys.path:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

torch.set_num_threads(int(os.environ.get('OCCWORLD4D_TEST_THREADS', '1')))


@pytest.fixture
def real_root():
    """Path of ``../shared/data/real`` (or $OCCWORLD4D_REAL_DATA); skip with a reason if absent."""
    root = real_data_root()
    if not os.path.isdir(root):
        pytest.skip(f'real sample data not found at {root} (set OCCWORLD4D_REAL_DATA)')
    return root


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
