"""score_samples.py / generation_baselines.py on a few tiny synthetic-city scenes: the table,
the JSON keys other tools read, memorisation of copies, commands, FID and bad input."""
import json
import re

import numpy as np
import pytest
import torch
from helpers import run_cli, tool_main

from occworld4d.datasets.synthetic_city import SyntheticCityDataset

SCORE = 'tools/analysis_tools/score_samples.py'
BASELINES = 'tools/analysis_tools/generation_baselines.py'
CONFIG = 'configs/_base_/datasets/synthetic_city_tiny.py'
SPLITS = ['--cfg-options', 'train_dataloader.dataset.num_scenes=8',
          'val_dataloader.dataset.num_scenes=4']
KEYS = {'num_samples', 'num_val', 'num_train', 'sample_shape', 'vocabulary', 'classes',
        'free_label', 'freq_samples', 'freq_val', 'freq_occupied_samples',
        'freq_occupied_val', 'tv_all', 'tv_occupied', 'change_rate_samples',
        'change_rate_val', 'change_rate_ratio', 'fid', 'fid_floor', 'fid_floor_std',
        'fid_floor_values', 'fid_ratio', 'fid_key',
        'extractor_version', 'memorisation_miou_mean', 'memorisation_miou_max',
        'memorisation_iou_mean', 'memorisation_iou_max', 'val_memorisation_miou_mean',
        'val_memorisation_miou_max', 'val_memorisation_iou_mean', 'val_memorisation_iou_max',
        'command_accuracy', 'num_commands', 'command_chance', 'val_command_accuracy',
        'command_confusion', 'val_command_confusion', 'frame_rate', 'trajectory_ade',
        'trajectory_fde', 'trajectory_yaw_error', 'num_trajectories', 'val_trajectory_ade',
        'val_trajectory_fde', 'val_trajectory_yaw_error',
        'per_sample', '_command', '_config', '_date'}


def _windows(seed, num):
    ds = SyntheticCityDataset(num_scenes=num, num_frames=8, grid_size=(32, 32, 8), seed=seed,
                              vocabulary='dynamiccity_carlasc')
    return [ds.load_window(ds.get_data_info(i)) for i in range(num)]


@pytest.fixture(scope='module')
def samples(tmp_path_factory):
    """4 npz: two copies of training windows (seed 0), two windows of another seed (2)."""
    folder = tmp_path_factory.mktemp('samples')
    wins = _windows(0, 2) + _windows(2, 2)
    for i, w in enumerate(wins):
        np.savez(folder / f'sample_{i}.npz', semantics=w['semantics'],
                 command=np.array(w['command']), trajectory=w['trajectory'])
    return folder, [w['command'] for w in wins]


def test_score_samples_table_and_json(samples, tmp_path, capsys):
    folder, cmds = samples
    out = tmp_path / 's.json'
    res = tool_main(SCORE, folder, '--config', CONFIG, '--json', out, *SPLITS)
    text = capsys.readouterr().out
    assert '| freq building |' in text and '| change rate |' in text
    assert 'stats: TV' in text
    saved = json.loads(out.read_text())
    assert KEYS <= set(saved)
    assert saved['num_samples'] == 4 and saved['num_val'] == 4 and saved['num_train'] == 8
    assert saved['sample_shape'] == [8, 32, 32, 8]
    assert abs(sum(saved['freq_samples']) - 1) < 1e-9 and saved['freq_occupied_val'][0] == 0
    per = saved['per_sample']
    assert [p['memorisation_miou'] == 1.0 for p in per] == [True, True, False, False]
    assert per[0]['nearest_train'] == 0 and per[1]['nearest_train'] == 1
    assert saved['memorisation_miou_max'] == 1.0 and saved['val_memorisation_miou_max'] < 0.6
    # the seeded synthetic-city windows: no model, no threads
    assert saved['change_rate_val'] == pytest.approx(0.101868, abs=1e-5)
    assert saved['change_rate_samples'] == pytest.approx(0.097255, abs=1e-5)
    assert saved['tv_occupied'] == pytest.approx(0.207891, abs=1e-5)
    assert saved['tv_all'] == pytest.approx(0.147198, abs=1e-5)
    assert saved['val_memorisation_miou_max'] == pytest.approx(0.223527, abs=1e-5)
    # the npz commands are the windows' own: recovered from the voxels
    assert [p['requested_command'] for p in per] == [
        ('STATIC', 'FORWARD', 'LEFT', 'RIGHT')[c] for c in cmds]
    assert saved['command_accuracy'] == 1.0 and saved['num_commands'] == 4
    assert saved['val_command_accuracy'] == 1.0 and saved['command_chance'] == 0.25
    conf = np.array(saved['command_confusion'])  # rows requested, columns recovered
    assert conf.sum() == 4 and np.trace(conf) == 4 and conf[cmds[0], cmds[0]] >= 1
    assert saved['fid'] is None and res['tv_all'] == saved['tv_all']
    assert saved['frame_rate'] == 10.0  # the synthetic city's
    # the windows' own trajectories, recovered from the voxels to within a voxel (1.6 m)
    assert saved['num_trajectories'] == 4 and saved['trajectory_ade'] < 1.0
    assert saved['trajectory_yaw_error'] < 0.1 and saved['val_trajectory_fde'] < 1.6


def test_score_samples_commands_option_and_fid(samples, tmp_path, capsys):
    folder, cmds = samples
    from mmengine.config import Config
    from occworld4d.registry import MODELS
    fe_cfg = 'configs/evaluation/feature_extractor_3d_1xb2-10e_synthetic-city-tiny.py'
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(fe_cfg).model)  # untrained weights, real version
    ckpt = tmp_path / 'fe.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), ckpt)
    res = tool_main(SCORE, folder / 'sample_*.npz', '--config', CONFIG, '--commands', 'stop',
                    '--extractor', fe_cfg, '--extractor-ckpt', ckpt, '--no-val-commands',
                    *SPLITS)
    assert res['command_accuracy'] == pytest.approx(np.mean([c == 0 for c in cmds]))
    assert res['val_command_accuracy'] is None
    assert res['fid'] > 0 and res['fid_floor'] > 0 and res['fid_key'].endswith('/FID')
    assert res['fid_ratio'] == pytest.approx(res['fid'] / res['fid_floor'])
    assert len(res['fid_floor_values']) == 5  # --floor-draws: the floor is a mean
    assert res['fid_floor'] == pytest.approx(np.mean(res['fid_floor_values']))
    assert '| FID |' in capsys.readouterr().out


def test_score_samples_bad_input(samples, tmp_path, capsys):
    folder, _ = samples
    (tmp_path / 'nosem.npz').write_bytes(b'')
    np.savez(tmp_path / 'voxels.npz', voxels=np.zeros((8, 32, 32, 8), np.uint8))
    np.savez(tmp_path / 'shape.npz', semantics=np.zeros((32, 32, 8), np.uint8))
    np.savez(tmp_path / 'ids.npz', semantics=np.full((8, 32, 32, 8), 40, np.uint8))
    for name, msg in (('nosem.npz', 'cannot be read as an npz'),
                      ('voxels.npz', 'no "semantics" array'),
                      ('shape.npz', r'\(T, X, Y, Z\), found uint8 \(32, 32, 8\)'),
                      ('ids.npz', 'class ids up to 40')):
        with pytest.raises(SystemExit) as err:
            tool_main(SCORE, tmp_path / name, '--config', CONFIG, *SPLITS)
        assert err.value.code == 2
        line = capsys.readouterr().err
        assert name in line and re.search(msg, line), line
    with pytest.raises(SystemExit):
        tool_main(SCORE, folder, '--config', CONFIG, '--commands', 'LEFT,RIGHT', *SPLITS)
    assert '2 commands for 4 samples' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tool_main(SCORE, tmp_path / 'missing_*.npz', '--config', CONFIG)
    assert 'matches no file' in capsys.readouterr().err


def test_generation_baselines_cli(tmp_path):
    out = tmp_path / 'b.json'
    proc = run_cli(BASELINES, '--config', CONFIG, '--num-samples', '4', '--json', out,
                   *SPLITS)
    assert '| floor |' in proc.stdout and '| chance |' in proc.stdout
    assert 'command recovery on the 4 val windows' in proc.stdout
    res = json.loads(out.read_text())
    assert set(res) >= {'floor', 'random_training_scene', 'iid_voxels', 'frozen',
                        'command_chance', '_command'}
    floor = res['floor']
    assert KEYS - {'per_sample'} <= set(floor) | {'_command', '_config', '_date'}
    assert res['random_training_scene']['memorisation_miou_mean'] == 1.0
    assert res['random_training_scene']['memorisation_iou_mean'] == 1.0
    assert floor['command_accuracy'] == 1.0 and res['command_chance'] == 0.25
    assert res['frozen']['change_rate_samples'] == 0.0
    assert res['frozen']['trajectory_fde'] > 2 * floor['trajectory_fde']  # did not move
    assert res['iid_voxels']['tv_all'] < 0.05  # drawn from the val frequencies ...
    assert res['iid_voxels']['change_rate_ratio'] > 3  # ... but speckle in time
    assert res['iid_voxels']['memorisation_miou_max'] < floor['val_memorisation_miou_mean']
    # trajectory chance: a random training scene's own path against the requested (val) one
    rts, chance = res['random_training_scene'], res['trajectory_chance']
    assert set(chance) == {'ade', 'fde', 'yaw_error'}
    assert rts['trajectory_ade'] == chance['ade'] and rts['trajectory_fde'] == chance['fde']
    assert chance['ade'] > floor['trajectory_ade']  # worse than following its own trajectory


def test_trajectory_chance_of_the_val_windows_is_their_recovery_error():
    """Scenes that are the val windows themselves, in order, ask for their own trajectory:
    the chance function then gives the val recovery error of score_scenes, and a shuffled
    order (each window against another's trajectory) gives more."""
    from helpers import load_tool
    from occworld4d.apis.cli import load_config
    from occworld4d.evaluation.sample_scoring import score_scenes, split_windows
    gb = load_tool(BASELINES)
    cfg = load_config(CONFIG, {'val_dataloader.dataset.num_scenes': 4})
    val = split_windows(cfg, 'val')
    own = gb.trajectory_chance(val['semantics'], val)
    ref = score_scenes(val['semantics'], val, None, None, list(val['trajectories']))
    assert own['ade'] == pytest.approx(ref['val_trajectory_ade'])
    assert own['fde'] == pytest.approx(ref['val_trajectory_fde'])
    assert own['ade'] == pytest.approx(ref['trajectory_ade'])
    other = gb.trajectory_chance(val['semantics'][[1, 2, 3, 0]], val)
    assert other['ade'] > own['ade'] + 0.5


def test_rebase_trajectory_and_errors_hand():
    from occworld4d.evaluation.sample_scoring import rebase_trajectory, trajectory_errors
    traj = np.array([[0, 0, 0], [1, 0, np.pi / 2], [1, 1, np.pi / 2]])
    # seen from frame 1 (at (1, 0), heading +y), frame 2 is 1 m straight ahead
    np.testing.assert_allclose(rebase_trajectory(traj, 1), [[0, 0, 0], [1, 0, 0]], atol=1e-12)
    err = trajectory_errors(traj, np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0]]))
    assert err['ade'] == pytest.approx(np.sqrt(2) / 3) and err['fde'] == pytest.approx(
        np.sqrt(2))
    assert err['yaw_error'] == pytest.approx(np.pi / 2)
