"""The one atomic-write helper (issue 18, item 4): temporary name with the pid in the
destination's folder, flush + fsync, os.replace, the temporary removed on any exception; every
writer of the package and the tools goes through it, checkpoints included."""
import ast
import json
import os
import os.path as osp

import numpy as np
import pytest
import torch

from occworld4d.utils import compat, io
from occworld4d.utils.io import (atomic_open, atomic_path, is_temporary, save_json_atomic,
                                 save_npz_atomic, temporary_name, temporary_target,
                                 write_bytes_atomic, write_text_atomic)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


class Boom(RuntimeError):
    pass


@pytest.fixture
def events(monkeypatch):
    """Record os.fsync (with the path of the fd) and os.replace, in order."""
    log = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        log.append(('fsync', os.readlink(f'/proc/self/fd/{fd}')))
        return real_fsync(fd)

    def replace(src, dst):
        log.append(('replace', str(src), str(dst)))
        return real_replace(src, dst)

    monkeypatch.setattr(os, 'fsync', fsync)
    monkeypatch.setattr(os, 'replace', replace)
    return log


def test_temporary_name_keeps_folder_and_extension_and_carries_the_pid(tmp_path):
    tmp = temporary_name(str(tmp_path / 'a' / 'x.npz'))
    assert tmp == str(tmp_path / 'a' / f'x.tmp{os.getpid()}.npz')
    assert temporary_target(osp.basename(tmp)) == 'x.npz' and is_temporary(tmp)
    assert temporary_target('last_checkpoint.tmp12') == 'last_checkpoint'
    assert temporary_target('epoch_3.pth.tmp') == 'epoch_3.pth'  # older releases' name
    for name in ('epoch_3.pth', 'x.npz', 'a.tmp.npz', 'tmp', 'notes.tmpl', 'scene.tmp1a.npz'):
        assert temporary_target(name) is None and not is_temporary(name), name


def test_success_fsyncs_the_temporary_then_renames_it(tmp_path, events):
    dst = tmp_path / 'sub' / 'out.txt'
    with atomic_path(str(dst)) as tmp:
        assert osp.dirname(tmp) == str(tmp_path / 'sub') and f'.tmp{os.getpid()}' in tmp
        with open(tmp, 'w') as f:
            f.write('new')
    assert dst.read_text() == 'new' and os.listdir(tmp_path / 'sub') == ['out.txt']
    fsyncs = [e for e in events if e[0] == 'fsync' and e[1] == tmp]
    replace = events.index(('replace', tmp, str(dst)))
    assert fsyncs and events.index(fsyncs[0]) < replace  # data on disk before the rename
    assert ('fsync', str(tmp_path / 'sub')) in events[replace:]  # then the rename itself


@pytest.mark.parametrize('error', [Boom, KeyboardInterrupt])
def test_failure_mid_write_leaves_the_destination_and_no_temporary(tmp_path, error):
    dst = tmp_path / 'out.npz'
    save_npz_atomic(str(dst), a=np.arange(3))
    before = dst.read_bytes()
    with pytest.raises(error):
        with atomic_path(str(dst)) as tmp:
            with open(tmp, 'wb') as f:
                f.write(b'PK half an archive')
            raise error('killed mid-write')
    assert dst.read_bytes() == before and os.listdir(tmp_path) == ['out.npz']
    with pytest.raises(Boom):
        with atomic_open(str(dst), 'wb') as f:
            f.write(b'half')
            raise Boom()
    assert dst.read_bytes() == before and os.listdir(tmp_path) == ['out.npz']


def test_failing_fsync_or_rename_cleans_up(tmp_path, monkeypatch):
    dst = tmp_path / 'a.json'
    save_json_atomic(str(dst), {'old': 1})

    def broken(*args):
        raise OSError(5, 'I/O error')

    for name in ('fsync', 'replace'):
        with monkeypatch.context() as m:
            m.setattr(os, name, broken)
            with pytest.raises(OSError, match='I/O error'):
                save_json_atomic(str(dst), {'new': 2})
            with pytest.raises(OSError, match='I/O error'):
                with atomic_path(str(dst)) as tmp:
                    open(tmp, 'w').close()
        assert json.loads(dst.read_text()) == {'old': 1} and os.listdir(tmp_path) == ['a.json']


def test_a_writer_that_writes_nothing_is_an_error_naming_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'x\.bin: the writer did not create'):
        with atomic_path(str(tmp_path / 'x.bin')):
            pass
    with pytest.raises(ValueError, match=r"mode 'r'"):
        with atomic_open(str(tmp_path / 'x.bin'), 'r'):
            pass
    assert os.listdir(tmp_path) == []


def test_writers_round_trip(tmp_path, events):
    save_npz_atomic(str(tmp_path / 'a.npz'), compressed=False, x=np.eye(2))
    with np.load(tmp_path / 'a.npz') as z:
        np.testing.assert_array_equal(z['x'], np.eye(2))
    save_json_atomic(str(tmp_path / 'b.json'), [1, 2])
    write_text_atomic(str(tmp_path / 'c.txt'), 'é\n')
    write_bytes_atomic(str(tmp_path / 'd.bin'), b'\x00\x01')
    assert json.loads((tmp_path / 'b.json').read_text()) == [1, 2]
    assert (tmp_path / 'c.txt').read_text(encoding='utf-8') == 'é\n'
    assert (tmp_path / 'd.bin').read_bytes() == b'\x00\x01'
    assert sorted(os.listdir(tmp_path)) == ['a.npz', 'b.json', 'c.txt', 'd.bin']
    replaced = [e[2] for e in events if e[0] == 'replace']
    assert replaced == [str(tmp_path / n) for n in ('a.npz', 'b.json', 'c.txt', 'd.bin')]
    synced = {e[1] for e in events if e[0] == 'fsync'}
    assert {temporary_name(p) for p in replaced} <= synced  # each one fsynced before the rename


def test_checkpoints_go_through_the_helper(tmp_path, monkeypatch, events):
    compat.apply_mmengine_compat()
    from mmengine.runner import checkpoint as ckpt
    from mmengine.runner import runner as runner_mod
    assert ckpt.save_checkpoint is compat.atomic_save_checkpoint
    assert runner_mod.save_checkpoint is compat.atomic_save_checkpoint
    dst = tmp_path / 'epoch_1.pth'
    ckpt.save_checkpoint({'state_dict': {'w': torch.ones(2)}}, str(dst))
    tmp = temporary_name(str(dst))
    assert ('replace', tmp, str(dst)) in events and ('fsync', tmp) in events
    before = dst.read_bytes()
    real_save = torch.save

    def dying_save(obj, f, *args, **kwargs):  # half a zip, then the disk fills up
        f.write(before[:len(before) // 2])
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(torch, 'save', dying_save)
    with pytest.raises(OSError, match='No space left'):
        ckpt.save_checkpoint({'state_dict': {'w': torch.zeros(2)}}, str(dst))
    monkeypatch.setattr(torch, 'save', real_save)
    assert dst.read_bytes() == before and os.listdir(tmp_path) == ['epoch_1.pth']
    assert compat.checkpoint_is_intact(str(dst))


def test_leftover_temporaries_are_never_taken_for_checkpoints(tmp_path):
    from occworld4d.engine.hooks.checkpoint_hook import (find_intact_checkpoint,
                                                         is_stale_temporary)
    compat.atomic_save_checkpoint({'state_dict': {}}, str(tmp_path / 'epoch_1.pth'))
    # a save killed after its fsync: a complete checkpoint under a temporary name, newer
    compat.atomic_save_checkpoint({'state_dict': {}}, str(tmp_path / 'x.pth'))
    os.replace(tmp_path / 'x.pth', tmp_path / 'epoch_2.tmp999.pth')
    assert compat.latest_checkpoint(str(tmp_path))[0] == str(tmp_path / 'epoch_1.pth')
    assert find_intact_checkpoint(str(tmp_path))[0] == str(tmp_path / 'epoch_1.pth')
    assert is_stale_temporary('epoch_2.tmp999.pth') and is_stale_temporary('last_checkpoint.tmp9')
    assert is_stale_temporary('epoch_2.pth.tmp') and not is_stale_temporary('a.tmp9.npz')


# ------------------------------------------------------- every writer uses the helper
# Calls that write a file by name: their first argument must be the temporary of
# atomic_path (``tmp``) or a handle of atomic_open (``f``).
_WRITE_CALLS = {'savez', 'savez_compressed', 'savetxt', 'tofile', 'write_table', 'save_file',
                'copyfile', 'copy2', 'open_memmap', 'write_frames'}
_DEST_SECOND = {'write_table', 'save_file', 'copyfile', 'copy2'}
_ALLOWED_OPEN = {  # file, first argument: not files of the project's outputs
    ('occworld4d/utils/procfs.py', "'/proc/self/clear_refs'"),  # a kernel control file
    ('occworld4d/datasets/base.py', 'path'),  # SkipLog: an append-only log shared by workers
}
_HELPER = 'occworld4d/utils/io.py'


def _write_sites(path: str, rel: str):
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read(), filename=path)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func, first = node.func, ast.unparse(node.args[0])
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, 'id', '')
        owner = ast.unparse(func.value) if isinstance(func, ast.Attribute) else ''
        where = f'{rel}:{node.lineno}: {ast.unparse(node)[:80]}'
        if name == 'open':
            mode = node.args[1] if len(node.args) > 1 else next(
                (k.value for k in node.keywords if k.arg == 'mode'), None)
            writes = isinstance(mode, ast.Constant) and any(c in str(mode.value) for c in 'wax+')
            if writes and first != 'tmp' and (rel, first) not in _ALLOWED_OPEN:
                yield where
        elif owner in ('os', 'shutil') and name in ('replace', 'rename', 'move'):
            if rel != _HELPER:
                yield where
        elif name in _WRITE_CALLS or (name == 'save' and (owner in ('np', 'numpy', 'torch')
                                                        or 'fromarray' in owner)):
            # the destination: second for (obj / source, destination) signatures
            second = name in _DEST_SECOND or (name == 'save' and owner == 'torch')
            args = node.args[1:2] if second else node.args[:1]
            dest = ast.unparse(args[0]) if args else ''
            if dest not in ('tmp', 'f'):
                yield where


def test_every_writer_of_the_package_and_tools_uses_the_atomic_helper():
    offenders, scanned = [], 0
    for top in ('occworld4d', 'tools', 'projects'):
        for folder, dirs, files in os.walk(osp.join(REPO, top)):
            dirs[:] = [d for d in dirs if d != '__pycache__']
            for name in files:
                if name.endswith('.py'):
                    path = osp.join(folder, name)
                    scanned += 1
                    offenders += _write_sites(path, osp.relpath(path, REPO))
    assert scanned > 150
    assert not offenders, ('files written without occworld4d.utils.io.atomic_path / atomic_open '
                           '(temporary, fsync, rename):\n' + '\n'.join(offenders))


def test_the_scan_catches_a_direct_write(tmp_path):
    bad = tmp_path / 'bad.py'
    bad.write_text("import numpy as np, os\n"
                   "def f(path, a):\n"
                   "    with open(path, 'w') as f:\n"
                   "        f.write('x')\n"
                   "    np.savez(path, a=a)\n"
                   "    torch.save(a, path)\n"
                   "    shutil.copyfile(tmp, path)\n"
                   "    os.replace(path + '.tmp', path)\n"
                   "    torch.save(a, f)\n")
    assert len(list(_write_sites(str(bad), 'x/bad.py'))) == 5
    assert io.atomic_path is atomic_path  # the scan's premise: one helper module
