"""Scenes in and out (issue 17): export_scene.py writes a dataset window with its vocabulary,
trajectory, command, poses and layout; sample.py --task forecast forecasts it with a world
model given as a work dir (its latest checkpoint) and writes the future frames, the planned
trajectory and the pictures; a task a model cannot run is one line naming the ones it can;
the checkpoint resolver; the preset camera rig; layouts move between configs."""
import os
import os.path as osp
import sys

import numpy as np
import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools'))
sys.path.insert(0, osp.join(ROOT, 'tools', 'dataset_converters'))
WM = osp.join(ROOT, 'configs/occworld/occworld_wm_tiny_synthetic-city.py')
EGOWARP = osp.join(ROOT, 'configs/occworld/occworld_baseline-egowarp_tiny_synthetic-city.py')
UNISCENE = osp.join(ROOT, 'configs/uniscene/uniscene_dit_tiny_synthetic-city.py')
DIT = osp.join(ROOT, 'configs/dynamiccity/dynamiccity_dit_tiny_synthetic-city.py')


@pytest.fixture(scope='module')
def world_model(tmp_path_factory):
    """A work dir with two checkpoints of the tiny world model; last_checkpoint names the
    older one (the resolver must follow the record, not the modification time)."""
    from occworld4d.apis.cli import load_config
    from occworld4d.apis.inferencer import load_generator
    work = tmp_path_factory.mktemp('wm_work')
    cfg = load_config(WM, dict(model=dict(tokenizer_ckpt=None, allow_random_tokenizer=True)))
    torch.manual_seed(0)
    model = load_generator(cfg, None, 'cpu')
    torch.save(dict(meta=dict(epoch=1), state_dict=model.state_dict()), work / 'epoch_1.pth')
    other = {k: v + 1 if v.is_floating_point() else v for k, v in model.state_dict().items()}
    torch.save(dict(meta=dict(epoch=2), state_dict=other), work / 'epoch_2.pth')
    (work / 'last_checkpoint').write_text(str(work / 'epoch_1.pth'))
    return dict(work=str(work), model=model, cfg=cfg)


def test_export_scene_window(tmp_path, capsys):
    import export_scene

    from occworld4d.apis.cli import load_config
    from occworld4d.registry import DATASETS
    out = str(tmp_path / 'scene.npz')
    export_scene.main([WM, '--split', 'val', '--index', '1', '--out', out])
    z = np.load(out)
    cfg = load_config(WM)
    ds = DATASETS.build(cfg.val_dataloader.dataset)
    window = ds.load_window(ds.get_data_info(1))
    assert str(z['vocabulary']) == 'dynamiccity_carlasc' == cfg.vocabulary
    from occworld4d.structures import VOCABULARIES
    assert list(z['class_names']) == list(VOCABULARIES['dynamiccity_carlasc'].classes)
    assert float(z['frame_rate']) == ds.frame_rate == 10.0  # the carlasc preset's rate
    assert z['semantics'].dtype == np.uint8 and z['semantics'].shape == (6, 32, 32, 8)
    np.testing.assert_array_equal(z['semantics'], window['semantics'])
    np.testing.assert_allclose(z['trajectory'], window['trajectory'])
    np.testing.assert_allclose(z['ego_poses'], window['ego_poses'])
    assert int(z['command']) == window['command']
    assert str(z['scene']) == window['scene'] and 'layout' not in z  # no layout transform
    np.testing.assert_allclose(z['voxel_size'], [1.6, 1.6, 0.375])
    with pytest.raises(SystemExit):
        export_scene.main([WM, '--split', 'val', '--index', '999', '--out', out])
    assert f'--index 999: the split of {WM} has 4 window(s) (0..3)' in capsys.readouterr().err


def test_forecast_from_a_work_dir(world_model, tmp_path, capsys):
    import export_scene
    import sample

    from occworld4d.apis import generation as G
    scene = str(tmp_path / 'scene.npz')
    export_scene.main([WM, '--split', 'val', '--index', '0', '--out', scene])
    out = str(tmp_path / 'fc')
    sample.main([WM, world_model['work'], '--task', 'forecast', '--input', scene,
                 '--out', out, '--device', 'auto'])
    log = capsys.readouterr()
    assert 'epoch_1.pth' in log.out + log.err  # the resolver said which file it used
    assert sorted(os.listdir(out)) == ['forecast.gif', 'forecast.npz', 'forecast_bev.png',
                                       'forecast_compare.gif', 'forecast_trajectory.txt']
    f = np.load(osp.join(out, 'forecast.npz'))
    z = np.load(scene)
    assert str(f['vocabulary']) == 'dynamiccity_carlasc'
    assert f['semantics'].shape == (3, 32, 32, 8) and f['pred_trajectory'].shape == (3, 2)
    np.testing.assert_array_equal(f['history'], z['semantics'][:3])
    np.testing.assert_array_equal(f['gt_semantics'], z['semantics'][3:])
    # the same forecast as the model's predict on the packed window (epoch_1's weights)
    direct = G.forecast_scene(world_model['model'], z['semantics'], z['trajectory'],
                              int(z['command']), z['ego_poses'])
    np.testing.assert_array_equal(f['semantics'], direct['semantics'])
    np.testing.assert_allclose(f['pred_trajectory'], direct['pred_trajectory'], atol=1e-6)
    np.testing.assert_allclose(np.loadtxt(osp.join(out, 'forecast_trajectory.txt')),
                               f['pred_trajectory'], atol=1e-4)
    # ground-truth plan: the exported trajectory's steps from the last history frame
    from occworld4d.models.world_models.occworld import step_displacements
    steps = step_displacements(torch.from_numpy(z['trajectory'])[None])[0, 3:].numpy()
    np.testing.assert_allclose(f['gt_trajectory'], np.cumsum(steps, 0), atol=1e-5)
    # history only (H frames): a forecast without ground truth
    np.savez(tmp_path / 'hist.npz', semantics=z['semantics'][:3])
    sample.main([WM, world_model['work'], '--task', 'forecast', '--input',
                 str(tmp_path / 'hist.npz'), '--out', str(tmp_path / 'h'), '--no-render'])
    h = np.load(tmp_path / 'h' / 'forecast.npz')
    assert 'gt_semantics' not in h and h['semantics'].shape == (3, 32, 32, 8)


def test_egowarp_baseline_forecasts_with_checkpoint_none(tmp_path):
    import export_scene
    import sample
    scene = str(tmp_path / 'scene.npz')
    export_scene.main([EGOWARP, '--split', 'val', '--index', '0', '--out', scene])
    out = tmp_path / 'ew'
    sample.main([EGOWARP, 'none', '--task', 'forecast', '--input', scene, '--out', str(out),
                 '--no-render'])
    f = np.load(out / 'forecast.npz')
    z = np.load(scene)
    # constant-velocity plan: the last history step repeated
    from occworld4d.models.world_models.occworld import step_displacements
    last = step_displacements(torch.from_numpy(z['trajectory'])[None])[0, 2].numpy()
    np.testing.assert_allclose(f['pred_trajectory'], np.outer(np.arange(1, 4), last), atol=1e-4)
    assert f['semantics'].shape == (3, 32, 32, 8)


def test_tasks_a_model_cannot_run(world_model, tmp_path, capsys):
    import sample

    from occworld4d.apis import generation as G
    with pytest.raises(SystemExit) as err:
        sample.main([WM, world_model['work'], '--task', 'uncond', '--out', str(tmp_path)])
    assert err.value.code == 2
    msg = capsys.readouterr().err.strip().splitlines()[-1]
    assert msg == ('error: OccWorld cannot run --task uncond; the tasks it can run are: '
                   'forecast')

    class Adapter:
        voxel_shape = (4, 8, 8, 4)

        def region_mask(self, region, device):
            return None

    class Generator(torch.nn.Module):
        condition_keys = ('command', )
        adapter = Adapter()

        def sample(self, *a, **k):
            return None

    assert G.supported_tasks(Generator()) == ('uncond', 'command', 'continue', 'long',
                                              'inpaint', 'outpaint')
    assert G.unsupported_task_message(Generator(), 'forecast') == (
        'Generator cannot run --task forecast; the tasks it can run are: uncond, command, '
        'continue, long, inpaint, outpaint')
    assert G.unsupported_task_message(Generator(), 'command') is None


def test_checkpoint_resolver(tmp_path):
    import logging

    from mmengine.runner.checkpoint import CheckpointLoader

    class Lines(logging.Handler):
        lines = []

        def emit(self, record):
            self.lines.append(record.getMessage())

    log = logging.getLogger('test_checkpoint_resolver')
    log.addHandler(Lines())
    log.setLevel(logging.INFO)

    from occworld4d.utils.compat import resolve_checkpoint
    work = tmp_path / 'w'
    work.mkdir()
    with pytest.raises(FileNotFoundError, match='no last_checkpoint and no'):
        resolve_checkpoint(str(work))
    with pytest.raises(FileNotFoundError, match='does not exist'):
        resolve_checkpoint(str(tmp_path / 'missing'))
    for i, name in enumerate(['epoch_1.pth', 'best_mIoU_epoch_1.pth', 'epoch_2.pth']):
        torch.save(dict(state_dict={'w': torch.zeros(1) + i}), work / name)
        os.utime(work / name, (1000 + i, 1000 + i))
    assert resolve_checkpoint(str(work)) == str(work / 'epoch_2.pth')  # the newest
    (work / 'epoch_3.pth').write_bytes(b'truncated')  # newer but not intact: skipped
    assert resolve_checkpoint(str(work)) == str(work / 'epoch_2.pth')
    (work / 'last_checkpoint').write_text('/elsewhere/moved/epoch_1.pth')  # folder moved
    assert resolve_checkpoint(str(work), logger=log) == str(work / 'epoch_1.pth')
    assert Lines.lines[-1] == (f'work dir {work}: using checkpoint {work / "epoch_1.pth"} '
                               f'({work / "last_checkpoint"} names it)')
    f = str(work / 'best_mIoU_epoch_1.pth')
    assert resolve_checkpoint(f) == f  # a file passes through
    # mmengine's loader line names the backend, and a work dir loads its latest checkpoint
    loader = CheckpointLoader._get_checkpoint_loader(str(work))
    assert loader.__name__[10:] == 'local'
    ckpt = CheckpointLoader.load_checkpoint(str(work), logger=log)
    assert float(ckpt['state_dict']['w']) == 0.0
    assert Lines.lines[-1].startswith(f'Loads checkpoint by local backend from path: {work}')


def test_preset_camera_rig():
    from occworld4d.rendering import load_cameras, preset_cameras
    cams = preset_cameras('nuscenes', scale=0.5)
    assert list(cams) == ['CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_FRONT_LEFT', 'CAM_BACK',
                          'CAM_BACK_LEFT', 'CAM_BACK_RIGHT']
    front, back = cams['CAM_FRONT'], cams['CAM_BACK']
    assert (front.width, front.height) == (800, 450)
    # a point 10 m ahead at the camera height projects to the image centre, depth 8.3 m
    np.testing.assert_allclose(front.project(np.array([[11.7, 0.0, 1.5]]))[0], [400, 225, 10])
    # 1 m to the left of it: left of the centre by f / 2 * 1 / 10 pixels
    np.testing.assert_allclose(front.project(np.array([[11.7, 1.0, 1.5]]))[0, 0], 400 - 63)
    # the back camera sees a point behind the car, the front camera has it behind it
    assert back.project(np.array([[-10.0, 0.0, 1.6]]))[0, 2] == pytest.approx(10.0)
    assert front.project(np.array([[-10.0, 0.0, 1.5]]))[0, 2] < 0
    assert load_cameras('nuscenes', scale=0.5)['CAM_BACK'].cam2img[0, 0] == 400.0
    with pytest.raises(KeyError, match='unknown camera rig'):
        preset_cameras('kitti')


def test_layouts_move_between_configs_of_one_vocabulary(tmp_path, capsys):
    import export_scene
    import sample

    from occworld4d.apis import generation as G
    from occworld4d.apis.cli import load_config
    scene = str(tmp_path / 'uniscene.npz')
    export_scene.main([UNISCENE, '--split', 'test', '--index', '0', '--out', scene])
    z = np.load(scene)
    uni, dc = load_config(UNISCENE), load_config(DIT)
    assert uni.vocabulary == dc.vocabulary == str(z['vocabulary'])
    np.testing.assert_array_equal(z['layout'], G.layout_from_scene(uni, z['semantics']))
    # the same config reads the npz's layout as it is
    _, layout = sample.read_input(scene, uni)
    np.testing.assert_array_equal(layout, z['layout'])
    # another config (MakeLayout, another layout format) rebuilds it from the scene
    _, layout = sample.read_input(scene, dc)
    expected = G.layout_from_scene(dc, z['semantics'])
    assert layout.shape == expected.shape != z['layout'].shape
    np.testing.assert_array_equal(layout, expected)
    assert 'layout rebuilt' in capsys.readouterr().out
    # another vocabulary is refused in one line
    np.savez(tmp_path / 'nus.npz', semantics=z['semantics'], vocabulary='occ3d_nuscenes')
    with pytest.raises(SystemExit):
        sample.read_input(str(tmp_path / 'nus.npz'), dc)
    assert "vocabulary 'occ3d_nuscenes'" in capsys.readouterr().err


def test_planned_path_is_drawn_where_render_bev_puts_the_voxel():
    """The forecast picture's planned path (the figure renderer's trajectory overlay) lands
    on the BEV cell of the voxel at that position (1 m voxels, ego at the grid centre)."""
    from occworld4d.visualization import render_bev, scene_info
    from occworld4d.visualization.figure import TRAJ_COLOUR, render_panel
    grid = np.zeros((32, 32, 2), np.uint8)
    grid[21, 12, 0] = 1  # the voxel of (5.5 m, -3.5 m) in a grid over [-16, 16] m
    info = scene_info('dynamiccity_carlasc', grid.shape, (-16, -16, 0, 16, 16, 2),
                      trajectory=np.array([[0, 0, 0], [5.5, -3.5, 0]]))
    plain = render_bev(grid, 'dynamiccity_carlasc', 0, scale=16, height_shading=False)
    cell = np.argwhere((plain != 255).any(-1))
    panel = render_panel(grid, info, 'bev', 16, height_shading=False)
    ex, ey, _ = info.ego_cell()
    col, row = (int(v) for v in panel.pixel(ex + 5.5, ey - 3.5))
    assert tuple(panel.image[row, col]) == TRAJ_COLOUR
    assert cell.min(0)[0] <= row <= cell.max(0)[0] and cell.min(0)[1] <= col <= cell.max(0)[1]
    assert tuple(plain[row, col]) != (255, 255, 255)
