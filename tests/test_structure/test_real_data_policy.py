"""Missing real samples skip a test with a reason, and fail it when ``$CI`` is set (issue 18,
item 7): every real-data test reaches ``../shared/data/real`` through the ``real_path`` /
``real_root`` fixtures of tests/conftest.py."""
import os
import re
import subprocess
import sys

import pytest

from helpers import ROOT

REAL_TESTS = ['tests/test_rendering/test_bev_layout.py::test_real_occ3d_frame_layout',
              'tests/test_datasets/test_command_rule.py::test_agreement_with_real_gt_ego_fut_cmd']


def _pytest(ci, *tests):
    env = {k: v for k, v in os.environ.items() if k != 'CI'}
    env.update(OCCWORLD4D_REAL_DATA=os.path.join(ROOT, 'no', 'such', 'folder'),
               OMP_NUM_THREADS='1')
    if ci is not None:
        env['CI'] = ci
    return subprocess.run([sys.executable, '-m', 'pytest', '-q', '-p', 'no:xdist', '-p',
                           'no:cacheprovider', '-rsf', *tests], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize('ci', [None, '0', 'false'])
def test_missing_real_data_skips_with_a_reason_outside_ci(ci):
    proc = _pytest(ci, *REAL_TESTS)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert re.search(r'\b2 skipped\b', proc.stdout), proc.stdout[-3000:]
    assert 'not found at ' + os.path.join(ROOT, 'no', 'such', 'folder') in proc.stdout


@pytest.mark.parametrize('ci', ['1', 'true'])
def test_missing_real_data_fails_under_ci(ci):
    proc = _pytest(ci, *REAL_TESTS)
    assert proc.returncode == 1, proc.stdout[-3000:]
    # a fixture that fails is reported as an error of the test's setup: still a failed run
    assert re.search(r'\b2 errors?\b', proc.stdout), proc.stdout[-3000:]
    assert 'CI is set, and CI must have the real samples' in proc.stdout


def test_no_real_data_test_checks_the_folder_itself():
    """The policy lives in one place: no test file skips on its own over the real folder."""
    this_file = os.path.basename(__file__)
    offenders = []
    for folder, _, files in os.walk(os.path.join(ROOT, 'tests')):
        for name in files:
            if not name.endswith('.py') or name in ('conftest.py', this_file):
                continue
            path = os.path.join(folder, name)
            with open(path, encoding='utf-8') as f:
                text = f.read()
            if 'real_data_root(' in text or re.search(r'pytest\.skip\([^)]*real', text):
                offenders.append(os.path.relpath(path, ROOT))
    assert not offenders, (f'{offenders}: use the real_path / real_root fixtures '
                           '(tests/conftest.py) instead')
