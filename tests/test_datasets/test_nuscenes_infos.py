"""One info-pkl loader (structures.nuscenes_infos) behind the dataset, layouts and cameras."""
import os.path as osp
import pickle

import numpy as np
import pytest

from occworld4d.datasets import DataFormatError, Occ3DNuScenesDataset
from occworld4d.structures.nuscenes_infos import load_info_frames, load_nuscenes_infos
from occworld4d.datasets.writers import build_nuscenes_infos
from occworld4d.rendering.camera import load_cameras


def _scene(name, num, x0=0.0):
    poses = np.tile(np.eye(4), (num, 1, 1))
    poses[:, 0, 3] = x0 + np.arange(num)
    return build_nuscenes_infos(name, poses, 1_000_000 + np.arange(num) * 500_000)


def _dump(path, obj):
    with open(path, 'wb') as f:
        pickle.dump(obj, f)
    return str(path)


def test_every_layout_gives_the_same_scenes(tmp_path):
    a, b = _scene('scene-a', 3), _scene('scene-b', 2, x0=10)
    tokens = {'scene-a': [f['token'] for f in a], 'scene-b': [f['token'] for f in b]}
    # the flat VAD list keyed by scene_token only (scene names dropped), shuffled in time
    flat_token = [{k: v for k, v in f.items() if k not in ('scene_name', 'occ_path')}
                  for f in (b[1], a[2], a[0], b[0], a[1])]
    files = dict(
        scene_dict=_dump(tmp_path / 'd.pkl', dict(infos={'scene-a': a, 'scene-b': b})),
        flat_name=_dump(tmp_path / 'n.pkl', dict(infos=a + b, metadata={})),
        bare_list=_dump(tmp_path / 'l.pkl', a + b),
        flat_token=_dump(tmp_path / 't.pkl', dict(infos=flat_token)))
    for layout, path in files.items():
        scenes = load_nuscenes_infos(path)
        got = {s: [f['token'] for f in frames] for s, frames in scenes.items()}
        if layout == 'flat_token':  # scenes are named by their token; time order restored
            names = {a[0]['scene_token']: 'scene-a', b[0]['scene_token']: 'scene-b'}
            got = {names[s]: v for s, v in got.items()}
        assert got == tokens, layout
        # the per-frame view is the same frames in file order, for every consumer
        def view(frames):
            return [(f['token'], f.get('_scene')) for f in frames]
        frames = view(load_info_frames(path))
        assert sorted(tok for tok, _ in frames) == sorted(sum(tokens.values(), [])), layout
    # mmdet3d v1.1: no scene -> one scene named after the file; categories id -> name
    mm = _dump(tmp_path / 'mm_infos.pkl', dict(
        metainfo=dict(categories={'car': 0, 'pedestrian': 7}),
        data_list=[dict(token='t0', timestamp=2), dict(token='t1', timestamp=1)]))
    (scene, frames), = load_nuscenes_infos(mm).items()
    assert scene == 'mm_infos' and [f['token'] for f in frames] == ['t1', 't0']
    assert load_info_frames(mm)[0]['_categories'] == {0: 'car', 7: 'pedestrian'}


def test_dataset_reads_through_the_loader(tmp_path):
    a = _scene('scene-a', 4)
    path = _dump(tmp_path / 'd.pkl', dict(infos={'scene-a': a}))
    ds = Occ3DNuScenesDataset(str(tmp_path), path, num_frames=2)
    assert list(ds.scenes) == ['scene-a'] and len(ds) == 3
    frames = ds.window_frames(ds.get_data_info(2))
    assert [f['frame_id'] for f in frames] == [a[2]['token'], a[3]['token']]
    np.testing.assert_allclose(frames[1]['pose'][:3, 3], [3, 0, 0])


def test_cameras_and_layouts_accept_the_scene_dict(real_root, tmp_path):
    """Before the shared loader, load_cameras refused OccWorld's scene dict."""
    real = osp.join(real_root, 'nuscenes', 'infos', 'nuscenes_mini_infos_val.pkl')
    infos = pickle.load(open(real, 'rb'))['infos']
    path = _dump(tmp_path / 'scene_dict.pkl',
                 dict(infos={'x': infos[:2], 'y': infos[40:41]}))
    cams = load_cameras(path, index=2)
    assert len(cams) == 6
    ref = load_cameras(real, index=40)
    np.testing.assert_allclose(cams['CAM_FRONT'].cam2ego, ref['CAM_FRONT'].cam2ego)
    assert [f['_scene'] for f in load_info_frames(path)] == ['x', 'x', 'y']


def test_bad_info_files_are_named(tmp_path):
    with pytest.raises(DataFormatError, match=r'missing\.pkl: info file not found'):
        load_info_frames(str(tmp_path / 'missing.pkl'))
    (tmp_path / 'text.pkl').write_text('not a pickle')
    with pytest.raises(DataFormatError, match=r'text\.pkl: not a readable pickle'):
        load_info_frames(str(tmp_path / 'text.pkl'))
    bad = _dump(tmp_path / 'bad.pkl', {'frames': []})
    with pytest.raises(DataFormatError, match=r'bad\.pkl: expected a dict with key "infos".*'
                                              r"found \['frames'\]"):
        load_info_frames(bad)
    bad = _dump(tmp_path / 'bad2.pkl', {'infos': 3})
    with pytest.raises(DataFormatError, match=r'"infos" is a int, expected a list'):
        load_info_frames(bad)
    bad = _dump(tmp_path / 'bad3.pkl', {'infos': {'s': [dict(token='a'), 'oops']}})
    with pytest.raises(DataFormatError, match=r"infos\['s'\]\[1\] is a str, expected a frame"):
        load_info_frames(bad)
    noscene = _dump(tmp_path / 'noscene.pkl', {'infos': [dict(token='a')]})
    assert load_info_frames(noscene) == [dict(token='a')]  # per-frame consumers need no scene
    with pytest.raises(DataFormatError, match=r'noscene\.pkl: frame 0 has no scene_name'):
        load_nuscenes_infos(noscene)
    notoken = _dump(tmp_path / 'notoken.pkl', {'infos': {'s': [dict(timestamp=0)]}})
    with pytest.raises(DataFormatError, match=r"frame 0 of scene 's' has no \"token\""):
        load_nuscenes_infos(notoken)


def test_bad_pose_fields_are_named(tmp_path):
    a = _scene('scene-a', 2)
    a[1]['ego2global_rotation'] = [1.0, 0.0, 0.0]
    path = _dump(tmp_path / 'p.pkl', dict(infos=a))
    with pytest.raises(DataFormatError, match=r'p\.pkl: frame \w+: ego2global_rotation \(3,\)'):
        Occ3DNuScenesDataset(str(tmp_path), path, num_frames=1)
    del a[1]['ego2global_rotation'], a[1]['ego2global_translation']
    a[1]['global_from_ego'] = np.eye(3)
    path = _dump(tmp_path / 'p.pkl', dict(infos=a))
    with pytest.raises(DataFormatError, match=r'global_from_ego has shape \(3, 3\), expected'):
        Occ3DNuScenesDataset(str(tmp_path), path, num_frames=1)
