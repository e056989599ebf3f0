"""Bad input fails early naming the file and expected vs found; skip_corrupt counts."""
import os.path as osp
import pickle

import numpy as np
import pytest

from occworld4d.datasets import (CarlaSCDataset, DataFormatError, Occ3DNuScenesDataset,
                                 Occ3DWaymoDataset)
from occworld4d.datasets.carlasc import read_carlasc_poses
from occworld4d.datasets.writers import (build_nuscenes_infos, write_carlasc_sequence,
                                         write_nuscenes_infos, write_occ3d_nuscenes_frame)

GRID = (200, 200, 16)


def nuscenes_tree(tmp_path, num=3):
    poses = np.tile(np.eye(4), (num, 1, 1))
    poses[:, 0, 3] = np.arange(num)
    infos = build_nuscenes_infos('scene-0001', poses, np.arange(num) * 500000)
    paths = []
    for info in infos:
        path = str(tmp_path / 'gts' / 'scene-0001' / info['token'] / 'labels.npz')
        write_occ3d_nuscenes_frame(path, np.full(GRID, 17), np.ones(GRID), np.ones(GRID))
        paths.append(path)
    ann = str(tmp_path / 'infos.pkl')
    write_nuscenes_infos(ann, infos, {})
    return ann, paths


def test_occ3d_missing_file_wrong_key_shape_dtype_corrupt(tmp_path):
    ann, paths = nuscenes_tree(tmp_path)
    ds = Occ3DNuScenesDataset(str(tmp_path), ann, num_frames=1, masks=['mask_camera'])
    ds[0]
    np.savez(paths[0], semantics=np.zeros(GRID, np.uint8))  # no mask_camera
    with pytest.raises(DataFormatError, match=r"labels\.npz: missing key\(s\) \['mask_camera'\]"):
        ds[0]
    np.savez(paths[0], semantics=np.zeros((200, 200, 8), np.uint8),
             mask_camera=np.zeros((200, 200, 8), np.uint8))
    with pytest.raises(DataFormatError, match=r"'semantics' has shape \(200, 200, 8\), "
                                              r"expected \(200, 200, 16\)"):
        ds[0]
    np.savez(paths[0], semantics=np.zeros(GRID, np.float32), mask_camera=np.zeros(GRID))
    with pytest.raises(DataFormatError, match='dtype float32, expected an integer'):
        ds[0]
    np.savez(paths[0], semantics=np.full(GRID, 30, np.uint8), mask_camera=np.zeros(GRID))
    with pytest.raises(DataFormatError, match=r'span \[30, 30\], expected \[0, 17\]'):
        ds[0]
    with open(paths[1], 'wb') as f:
        f.write(b'PK\x03\x04 this is not a zip archive')
    with pytest.raises(DataFormatError, match='not a readable npz'):
        ds[1]
    import os
    os.remove(paths[2])
    with pytest.raises(DataFormatError, match=r'labels\.npz: file not found'):
        ds[2]
    with pytest.raises(DataFormatError, match='info file not found'):
        Occ3DNuScenesDataset(str(tmp_path), 'missing.pkl', num_frames=1)
    bad_ann = tmp_path / 'bad.pkl'
    bad_ann.write_bytes(pickle.dumps({'frames': []}))
    with pytest.raises(DataFormatError, match=r'bad\.pkl: expected a dict with key "infos"'):
        Occ3DNuScenesDataset(str(tmp_path), str(bad_ann), num_frames=1)


def test_skip_corrupt_counts_and_moves_on(tmp_path):
    ann, paths = nuscenes_tree(tmp_path, num=4)
    with open(paths[1], 'wb') as f:
        f.write(b'garbage')
    ds = Occ3DNuScenesDataset(str(tmp_path), ann, num_frames=1, skip_corrupt=True)
    ids = [ds[i]['data_samples'].metainfo['frame_ids'][0] for i in range(4)]
    infos = pickle.load(open(ann, 'rb'))['infos']
    tokens = [i['token'] for i in infos]
    assert ids == [tokens[0], tokens[2], tokens[2], tokens[3]]  # window 1 -> next valid
    assert ds.num_skipped == 1 and ds.report_skipped() == 1


def carla_tree(tmp_path, num=2):
    seq = str(tmp_path / 'Cartesian' / 'Train' / 'Town01_Heavy' / 'cartesian')
    poses = np.tile(np.eye(4), (num, 1, 1))
    write_carlasc_sequence(seq, np.zeros((num, 128, 128, 8)), np.ones((num, 128, 128, 8)),
                           poses, write_points=False)
    return seq


def test_carlasc_truncated_label_and_bad_poses(tmp_path):
    seq = carla_tree(tmp_path)
    label = osp.join(seq, 'evaluation', '000001.label')
    data = open(label, 'rb').read()
    with open(label, 'wb') as f:
        f.write(data[:1000])
    ds = CarlaSCDataset(str(tmp_path), num_frames=1)
    ds[0]
    with pytest.raises(DataFormatError, match=r'000001\.label: 1000 bytes, expected 524288'):
        ds[1]
    with open(label, 'wb') as f:
        f.write(np.full(128 * 128 * 8, 99, np.uint32).tobytes())
    with pytest.raises(DataFormatError, match=r'000001\.label: labels up to 99'):
        ds[1]
    with open(osp.join(seq, 'poses.txt'), 'w') as f:
        f.write(' '.join(['0'] * 12) + '\n' + ' '.join(['0'] * 9) + '\n')
    with pytest.raises(DataFormatError, match=r'poses\.txt: line 2 has 9 columns, expected 12'):
        CarlaSCDataset(str(tmp_path), num_frames=1)
    with open(osp.join(seq, 'poses.txt'), 'w') as f:
        f.write(' '.join(['1'] * 12) + '\n')
    with pytest.raises(DataFormatError, match=r'1 poses for 2 evaluation files'):
        CarlaSCDataset(str(tmp_path), num_frames=1)
    with pytest.raises(DataFormatError, match=r'missing\.txt: pose file not found'):
        read_carlasc_poses(str(tmp_path / 'missing.txt'))
    with pytest.raises(DataFormatError, match='split folder not found'):
        CarlaSCDataset(str(tmp_path), split='Val')


def test_waymo_wrong_keys_and_bad_pose(tmp_path):
    scene = tmp_path / 'training' / '000'
    scene.mkdir(parents=True)
    np.savez(scene / '000_04.npz', semantics=np.zeros(GRID, np.uint8))
    ds = Occ3DWaymoDataset(str(tmp_path), num_frames=1)
    with pytest.raises(DataFormatError, match=r"000_04\.npz: missing key\(s\) \['voxel_label'\]"):
        ds[0]
    np.savez(scene / '000_04.npz', voxel_label=np.zeros(GRID, np.uint8), ego2global=np.eye(3))
    with pytest.raises(DataFormatError, match=r'ego2global has shape \(3, 3\), expected \(4, 4\)'):
        ds[0]
    with pytest.raises(ValueError, match='unknown mask'):
        Occ3DWaymoDataset(str(tmp_path), num_frames=1, masks=['valid_mask'])
    # negative ids would wrap to 255 in uint8: refused, as are ids beyond the vocabulary
    for bad_id in (-1, 16):
        labels = np.zeros(GRID, np.int16)
        labels[0, 0, 0] = bad_id
        np.savez(scene / '000_04.npz', voxel_label=labels)
        with pytest.raises(DataFormatError, match=rf'voxel_label has id\(s\) \[{bad_id}\]'):
            ds[0]


def test_carlasc_skip_corrupt_town(tmp_path):
    carla_tree(tmp_path)
    good = str(tmp_path / 'Cartesian' / 'Train' / 'Town02_Light' / 'cartesian')
    write_carlasc_sequence(good, np.zeros((2, 128, 128, 8)), np.ones((2, 128, 128, 8)),
                           np.tile(np.eye(4), (2, 1, 1)), write_points=False)
    bad_poses = tmp_path / 'Cartesian' / 'Train' / 'Town01_Heavy' / 'cartesian' / 'poses.txt'
    bad_poses.write_text('1 2 3\n')
    with pytest.raises(DataFormatError, match='line 1 has 3 columns'):
        CarlaSCDataset(str(tmp_path), num_frames=1)
    ds = CarlaSCDataset(str(tmp_path), num_frames=1, skip_corrupt=True)
    assert list(ds.scenes) == ['Train/Town02_Light'] and len(ds) == 2
    assert ds.num_skipped == 1


def test_occ3d_command_frame_outside_the_window(tmp_path):
    ann, _ = nuscenes_tree(tmp_path)
    with pytest.raises(ValueError, match=r'command_frame must index a window of num_frames=2'):
        Occ3DNuScenesDataset(str(tmp_path), ann, num_frames=2, command_frame=2)
    ds = Occ3DNuScenesDataset(str(tmp_path), ann, num_frames=2, command_frame=-1)
    assert int(ds[0]['inputs']['command']) == 1  # FORWARD: the last frame's one-hot 'straight'


def test_occ3d_infos_command_without_poses(tmp_path):
    """Infos without ego poses: zero trajectory, but the infos command is still used."""
    ann, _ = nuscenes_tree(tmp_path)
    with open(ann, 'rb') as f:
        data = pickle.load(f)
    for info in data['infos']:
        del info['ego2global_rotation'], info['ego2global_translation']
        del info['global_from_ego']
        info['gt_ego_fut_cmd'] = np.array([0.0, 1.0, 0.0])  # VAD (right, left, straight)
    with open(ann, 'wb') as f:
        pickle.dump(data, f)
    ds = Occ3DNuScenesDataset(str(tmp_path), ann, num_frames=2, command_source='infos')
    item = ds[0]
    assert int(item['inputs']['command']) == 2  # LEFT
    assert not item['inputs']['trajectory'].any()
    poses_only = Occ3DNuScenesDataset(str(tmp_path), ann, num_frames=2, command_source='poses')
    assert int(poses_only[0]['inputs']['command']) == 0  # STATIC: no poses, no motion


def test_skip_counts_include_every_dataloader_worker(tmp_path, caplog):
    """Skips happen in worker processes; the main process's count and summary see them all."""
    import copy

    from torch.utils.data import DataLoader
    ann, paths = nuscenes_tree(tmp_path, num=6)
    for p in (paths[1], paths[4]):
        with open(p, 'wb') as f:
            f.write(b'garbage')
    ds = Occ3DNuScenesDataset(str(tmp_path), ann, num_frames=1, skip_corrupt=True,
                              skip_log=str(tmp_path / 'skips.tsv'))
    loader = DataLoader(ds, batch_size=None, num_workers=2, collate_fn=lambda x: x,
                        multiprocessing_context='fork')
    items = list(loader)
    assert len(items) == 6
    assert ds.num_skipped == 2  # both skips were made in the workers
    assert ds.report_skipped() == 2
    lines = open(tmp_path / 'skips.tsv').read().splitlines()
    assert sorted(line.split('\t')[0] for line in lines) == ['window 1', 'window 4']
    assert all('not a readable npz' in line for line in lines)
    # copies (spawned workers get a pickled dataset; get_subset deep-copies) share the record
    clone = pickle.loads(pickle.dumps(ds))
    clone[1]
    copy.deepcopy(ds)[4]
    assert ds.num_skipped == 4
    from occworld4d.datasets.base import skip_summary
    summary = skip_summary('X', ds.skip_log.entries())
    assert summary.startswith('X: 4 corrupt window(s) skipped, 2 distinct error(s):')
    assert summary.count('2 x ') == 2


def test_pipeline_none_follows_mmengine_semantics(tmp_path):
    """A filtering transform (returns None): training refetches, test mode is an error."""
    ann, _ = nuscenes_tree(tmp_path, num=4)
    infos = pickle.load(open(ann, 'rb'))['infos']

    def drop_frame_1(results):
        return None if results['frame_ids'][0] == infos[1]['token'] else results

    ds = Occ3DNuScenesDataset(str(tmp_path), ann, num_frames=1, pipeline=[drop_frame_1])
    got = {ds[1]['data_samples'].metainfo['frame_ids'][0] for _ in range(5)}
    assert infos[1]['token'] not in got and got  # another window instead
    test = Occ3DNuScenesDataset(str(tmp_path), ann, num_frames=1, pipeline=[drop_frame_1],
                                test_mode=True)
    test[0]
    with pytest.raises(DataFormatError, match='pipeline returned None for window 1 in test'):
        test[1]
