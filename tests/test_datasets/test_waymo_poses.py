"""Occ3D-Waymo ego poses: frames matched by frame number, explicit scene -> segment pairing,
per-segment pose cache. Segment files are written in the real v1 / v2 formats."""
import json
import os

import numpy as np
import pytest

from occworld4d.datasets import DataFormatError, Occ3DWaymoDataset
from occworld4d.datasets import waymo_records
from occworld4d.structures.geometry import pose_matrix
from occworld4d.datasets.waymo_records import read_tfrecord, read_waymo_poses
from occworld4d.datasets.writers import write_occ3d_waymo_frame, write_waymo_segment_poses

GRID = (200, 200, 16)
pytest.importorskip('pyarrow.parquet', reason='needs pyarrow (requirements/tests.txt)')


def _poses(num, x0=0.0):
    """A drive along +x turning slowly: (num, 4, 4) world-from-vehicle."""
    return np.stack([pose_matrix([np.cos(0.01 * k), 0, 0, np.sin(0.01 * k)],
                                 [x0 + 1.5 * k, 0.1 * k * k, 0.0]) for k in range(num)])


def _stamps(num):
    return 1_600_000_000_000_000 + np.arange(num) * 100_000  # 10 Hz, microseconds


def _segment(path, name, poses, shuffle=True):
    order = np.random.default_rng(0).permutation(len(poses)) if shuffle else \
        np.arange(len(poses))
    write_waymo_segment_poses(str(path), name, poses[order], _stamps(len(poses))[order])


def _frames(root, scene, numbers, split='training', ego2global=None):
    lab = np.full(GRID, 23, np.uint8)
    for k in numbers:
        write_occ3d_waymo_frame(str(root / split / scene / f'{k:03d}_04.npz'), lab,
                                np.ones(GRID), np.ones(GRID), np.ones(GRID),
                                ego2global=None if ego2global is None else ego2global[k])


@pytest.fixture(autouse=True)
def _fresh_cache():
    waymo_records._SEGMENT_CACHE.clear()
    yield
    waymo_records._SEGMENT_CACHE.clear()


@pytest.mark.parametrize('ext', ['parquet', 'tfrecord'])
def test_frames_take_poses_by_frame_number_and_time(tmp_path, ext):
    if ext == 'tfrecord':
        pytest.importorskip('waymo_open_dataset.dataset_pb2',
                            reason='needs pip install --no-deps -r requirements/waymo.txt')
    poses = _poses(8)
    seg = tmp_path / f'seg.{ext}'
    _segment(seg, 'seg', poses)  # records / rows shuffled in time
    _frames(tmp_path, '000', [0, 1, 3, 5])  # frames 002 and 004 missing
    ds = Occ3DWaymoDataset(str(tmp_path), num_frames=2, pose_source={'000': str(seg)})
    frames = ds.scenes['000']
    assert [f['frame_id'] for f in frames] == ['000', '001', '003', '005']
    for f in frames:  # by frame number and timestamp, not by position in the folder
        np.testing.assert_allclose(f['pose'], poses[int(f['frame_id'])])
    sample = ds[2]  # window (003, 005)
    np.testing.assert_allclose(sample['data_samples'].ego_poses.numpy(), poses[[3, 5]])
    # a frame past the segment's end is named with both files
    _frames(tmp_path, '000', [9])
    with pytest.raises(DataFormatError, match=r'000/009_04\.npz: frame 9 has no pose; '
                                              r'segment .*seg\.' + ext + r' has 8 frames'):
        Occ3DWaymoDataset(str(tmp_path), num_frames=2, pose_source={'000': str(seg)})


def test_repeated_timestamps_are_refused(tmp_path):
    poses = _poses(3)
    write_waymo_segment_poses(str(tmp_path / 's.parquet'), 's', poses, [5, 7, 5])
    with pytest.raises(DataFormatError, match=r's\.parquet: timestamp\(s\) \[5\] appear'):
        read_waymo_poses(str(tmp_path / 's.parquet'))


def test_folder_pairing_is_explicit(tmp_path):
    segs = tmp_path / 'segments'
    zeta, alpha = _poses(4, x0=100.0), _poses(4, x0=-50.0)
    _segment(segs / 'zeta.parquet', 'zeta', zeta)
    _segment(segs / 'alpha.parquet', 'alpha', alpha)
    _frames(tmp_path, '000', range(4))
    _frames(tmp_path, '001', range(4))
    # a bare folder is ambiguous: refused with what to do
    with pytest.raises(DataFormatError, match='does not say which scene is which segment.*'
                                              'scene_map'):
        Occ3DWaymoDataset(str(tmp_path), num_frames=2, pose_source=str(segs))
    # by segment name (sorted order would pair 000 with alpha)
    ds = Occ3DWaymoDataset(str(tmp_path), num_frames=2, pose_source=str(segs),
                           scene_map={'000': 'zeta', '001': 'alpha'})
    np.testing.assert_allclose(ds.scenes['000'][3]['pose'], zeta[3])
    np.testing.assert_allclose(ds.scenes['001'][0]['pose'], alpha[0])
    # the documented index rule, when asked for: scene NNN = NNN-th file in sorted order
    ds = Occ3DWaymoDataset(str(tmp_path), num_frames=2, pose_source=str(segs),
                           pose_pairing='sorted_index')
    np.testing.assert_allclose(ds.scenes['000'][0]['pose'], alpha[0])
    # ... refused when the folder does not hold exactly one file per scene
    _segment(segs / 'omega.parquet', 'omega', _poses(4))
    with pytest.raises(DataFormatError, match=r'sorted_index.*found 3 file\(s\).*2 scene'):
        Occ3DWaymoDataset(str(tmp_path), num_frames=2, pose_source=str(segs),
                          pose_pairing='sorted_index')
    # a scene without a segment, a name with two files, a file of another segment
    with pytest.raises(DataFormatError, match=r"no segment for scene\(s\) \['001'\]"):
        Occ3DWaymoDataset(str(tmp_path), num_frames=2, pose_source=str(segs),
                          scene_map={'000': 'zeta'})
    (segs / 'segment-zeta_with_camera_labels.tfrecord').write_bytes(b'')
    with pytest.raises(DataFormatError, match=r"segment 'zeta'; expected exactly one file.*"
                                              r"found 2"):
        Occ3DWaymoDataset(str(tmp_path), num_frames=2, pose_source=str(segs),
                          scene_map={'000': 'zeta', '001': 'alpha'})
    _segment(segs / 'beta.parquet', 'not-beta', alpha)
    with pytest.raises(DataFormatError, match=r"beta\.parquet: holds segment 'not-beta', "
                                              r"expected 'beta'"):
        Occ3DWaymoDataset(str(tmp_path), num_frames=2, pose_source=str(segs),
                          scene_map={'000': 'omega', '001': 'beta'})


def test_json_map_paths_are_relative_to_the_map(tmp_path):
    poses = _poses(3)
    _segment(tmp_path / 'maps' / 'segs' / 's0.parquet', 's0', poses)
    _frames(tmp_path, '000', range(3))
    path = tmp_path / 'maps' / 'scenes.json'
    path.write_text(json.dumps({'000': 'segs/s0.parquet', '999': 'segs/other.parquet'}))
    ds = Occ3DWaymoDataset(str(tmp_path), num_frames=3, pose_source=str(path))
    np.testing.assert_allclose(ds[0]['data_samples'].ego_poses.numpy(), poses)


def test_npz_ego2global_must_agree_with_the_segment(tmp_path):
    right, wrong = _poses(3), _poses(3, x0=30.0)
    _segment(tmp_path / 's.parquet', 's', wrong)
    _frames(tmp_path, '000', range(3), ego2global=right)
    ds = Occ3DWaymoDataset(str(tmp_path), num_frames=3,
                           pose_source={'000': str(tmp_path / 's.parquet')})
    with pytest.raises(DataFormatError, match=r'000_04\.npz: ego2global translation .* '
                                              r'differs from the segment pose'):
        ds[0]


@pytest.mark.parametrize('ext', ['parquet', 'tfrecord'])
def test_segment_poses_are_parsed_once(tmp_path, monkeypatch, ext):
    if ext == 'tfrecord':
        pytest.importorskip('waymo_open_dataset.dataset_pb2',
                            reason='needs pip install --no-deps -r requirements/waymo.txt')
    poses = _poses(5)
    seg = tmp_path / f'seg.{ext}'
    _segment(seg, 'seg', poses)
    _frames(tmp_path, '000', range(5))
    _frames(tmp_path, '001', range(5))
    name = '_read_v2' if ext == 'parquet' else '_parse_v1_segment'
    calls = []
    real = getattr(waymo_records, name)
    monkeypatch.setattr(waymo_records, name, lambda *a, **k: calls.append(a) or real(*a, **k))
    cache = tmp_path / 'pose_cache'
    kw = dict(num_frames=2, pose_source={'000': str(seg), '001': str(seg)},
              pose_cache_dir=str(cache))
    ds = Occ3DWaymoDataset(str(tmp_path), **kw)
    Occ3DWaymoDataset(str(tmp_path), **kw)
    assert len(calls) == 1  # two scenes and two datasets on one segment: parsed once
    assert len(os.listdir(cache)) == 1
    waymo_records._SEGMENT_CACHE.clear()  # a new process: the disk cache answers
    again = Occ3DWaymoDataset(str(tmp_path), **kw)
    assert len(calls) == 1
    np.testing.assert_array_equal(again.scenes['001'][4]['pose'], ds.scenes['001'][4]['pose'])
    # the segment changes (new size / mtime): parsed again, not served stale
    _segment(seg, 'seg', poses[::-1].copy(), shuffle=False)
    os.utime(seg, ns=(1, 1))
    changed = Occ3DWaymoDataset(str(tmp_path), **kw)
    assert len(calls) == 2
    np.testing.assert_allclose(changed.scenes['000'][0]['pose'], poses[4])


def test_v1_writer_round_trip(tmp_path):
    pytest.importorskip('waymo_open_dataset.dataset_pb2',
                        reason='needs pip install --no-deps -r requirements/waymo.txt')
    poses = _poses(3)
    path = str(tmp_path / 'x.tfrecord')
    write_waymo_segment_poses(path, 'x', poses, _stamps(3))
    assert len(list(read_tfrecord(path))) == 3  # CRCs verified
    seg = read_waymo_poses(path)
    assert seg.segment == 'x' and seg.timestamps.tolist() == _stamps(3).tolist()
    np.testing.assert_array_equal(seg.poses, poses)
