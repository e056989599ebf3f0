"""Issue 15, item 7 (inputs): NaN / zero-quaternion / non-rigid poses are a DataFormatError
naming the file and frame (never a NaN trajectory and a made-up command); class ids out of
range are refused; an OpenOcc frame (free = 16, with flow) is refused, not read as Occ3D."""
import numpy as np
import pytest

from occworld4d.datasets import DataFormatError, Occ3DNuScenesDataset, Occ3DWaymoDataset
from occworld4d.structures.geometry import pose_problem, quaternion_to_matrix
from occworld4d.datasets.writers import (build_nuscenes_infos, write_nuscenes_infos,
                                         write_occ3d_nuscenes_frame)

GRID = (200, 200, 16)


def test_quaternion_and_pose_checks():
    np.testing.assert_allclose(quaternion_to_matrix([2.0, 0, 0, 0]), np.eye(3))  # normalised
    with pytest.raises(ValueError, match='has norm 0'):
        quaternion_to_matrix([0.0, 0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match='not 4 finite numbers'):
        quaternion_to_matrix([np.nan, 0.0, 0.0, 1.0])
    assert pose_problem(np.eye(4)) is None
    bad = np.eye(4)
    bad[0, 3] = np.nan
    assert 'NaN' in pose_problem(bad)
    assert 'not orthonormal' in pose_problem(np.diag([2.0, 1.0, 1.0, 1.0]))
    assert 'reflection' in pose_problem(np.diag([-1.0, 1.0, 1.0, 1.0]))
    assert 'last row' in pose_problem(np.vstack([np.eye(4)[:3], [1.0, 0, 0, 1]]))


def _nuscenes(tmp_path, rotation=None, translation=None, labels=None, **extra):
    poses = np.tile(np.eye(4), (3, 1, 1))
    poses[:, 0, 3] = np.arange(3)
    infos = build_nuscenes_infos('scene-0001', poses, np.arange(3) * 500000)
    if rotation is not None:
        infos[1]['ego2global_rotation'] = rotation
    if translation is not None:
        infos[1]['ego2global_translation'] = translation
    paths = []
    for info in infos:
        path = str(tmp_path / 'gts' / 'scene-0001' / info['token'] / 'labels.npz')
        write_occ3d_nuscenes_frame(path, np.full(GRID, 17), np.ones(GRID), np.ones(GRID))
        paths.append(path)
    ann = str(tmp_path / 'infos.pkl')
    write_nuscenes_infos(ann, infos, {})
    return ann, infos, paths


@pytest.mark.parametrize('rotation,translation,match', [
    ([0.0, 0.0, 0.0, 0.0], None, 'has norm 0'),
    ([np.nan, 0.0, 0.0, 1.0], None, 'not 4 finite numbers'),
    (None, [0.0, np.nan, 0.0], 'has NaN / Inf entries'),
])
def test_occ3d_nuscenes_bad_pose_names_file_and_frame(tmp_path, rotation, translation, match):
    ann, infos, _ = _nuscenes(tmp_path, rotation, translation)
    with pytest.raises(DataFormatError) as err:
        ds = Occ3DNuScenesDataset(str(tmp_path), ann, num_frames=3)
        ds[0]
    msg = str(err.value)
    assert 'infos.pkl' in msg and infos[1]['token'] in msg and match in msg, msg


def test_occ3d_waymo_nan_pose_names_file_and_frame(tmp_path):
    scene = tmp_path / 'training' / '000'
    scene.mkdir(parents=True)
    for k in range(2):
        pose = np.eye(4)
        pose[0, 3] = k
        if k == 1:
            pose[:3, :3] = 0.0  # degenerate: zero rotation block
        np.savez(scene / f'{k:03d}_04.npz', voxel_label=np.full(GRID, 23, np.uint8),
                 ego2global=pose)
    ds = Occ3DWaymoDataset(str(tmp_path), num_frames=2)
    with pytest.raises(DataFormatError, match=r'001_04\.npz: frame .*ego pose rotation block '
                                              'is not orthonormal'):
        ds[0]


def test_occ3d_class_ids_out_of_range_refused(tmp_path):
    ann, _, paths = _nuscenes(tmp_path)
    sem = np.full(GRID, 17, np.uint8)
    sem[0, 0, 0] = 18  # one id past Occ3D's free label
    np.savez(paths[0], semantics=sem, mask_camera=np.ones(GRID, bool))
    ds = Occ3DNuScenesDataset(str(tmp_path), ann, num_frames=1)
    with pytest.raises(DataFormatError, match=r"labels\.npz: 'semantics' labels span \[17, 18\], "
                                              r'expected \[0, 17\]'):
        ds[0]


def _openocc(rng, free=16):
    sem = np.full(GRID, free, np.uint8)  # OpenOcc: most voxels free, labelled 16
    sem[:, :, :3] = rng.integers(0, 16, (200, 200, 3))
    return sem


def test_openocc_frame_refused_not_read_as_occ3d(tmp_path):
    ann, _, paths = _nuscenes(tmp_path)
    rng = np.random.default_rng(0)
    ds = Occ3DNuScenesDataset(str(tmp_path), ann, num_frames=1)
    ds[0]  # an Occ3D frame reads
    np.savez(paths[0], semantics=_openocc(rng), mask_camera=np.ones(GRID, bool),
             mask_lidar=np.ones(GRID, bool), flow=np.zeros(GRID + (2, ), np.float32))
    with pytest.raises(DataFormatError, match=r"labels\.npz: this looks like an OpenOcc frame "
                                              r"\(it has a 'flow' array\)"):
        ds[0]
    np.savez(paths[0], semantics=_openocc(rng), mask_camera=np.ones(GRID, bool))  # no flow
    with pytest.raises(DataFormatError, match=r'OpenOcc frame \(no voxel is Occ3D free \(17\) '
                                              r'and 8\d% are 16'):
        ds[0]
