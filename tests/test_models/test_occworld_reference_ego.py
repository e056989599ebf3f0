"""OccWorld's reference ego convention (issue 14): ``ego_convention='reference'`` in
``Occ3DNuScenesDataset`` and ``OccWorld`` feeds a converted world model what
wzzheng/OccWorld @ 1ee7f77 feeds it (``dataset/dataset.py`` ``get_meta_data``,
``model/TransVQVAE.py`` ``_get_pose_feature`` / ``forward_autoreg_with_pose`` / ``decode_pose``,
``loss/plan_reg_loss_lidar.py``). Hand-made windows with known poses pin the per-frame steps,
modes, pose-encoder inputs, rollout feedback, planning targets and the loss; the default
convention is covered, unchanged, by test_world_model.py."""
import os.path as osp
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from occworld4d.datasets.occ3d_nuscenes import Occ3DNuScenesDataset, _derive_reference_ego, \
    _reference_ego_fields
from occworld4d.models.world_models.occworld import select_mode
from occworld4d.structures import OccDataSample
from occworld4d.structures.errors import DataFormatError
from occworld4d.structures.nuscenes_infos import info_pose, load_nuscenes_infos

from test_world_model import tiny_model

# nuScenes LIDAR_TOP: -90 deg about z (lidar x = ego right, lidar y = ego forward), 1 m ahead
LIDAR_ROT = [np.sqrt(0.5), 0.0, 0.0, -np.sqrt(0.5)]
LIDAR_TRANS = [1.0, 0.0, 1.8]


def write_scene(root, n=8, stored=False):
    """One scene of ``n`` Occ3D frames; the ego drives 4 m forward and 0.5 m to the right a
    keyframe (yaw 0). ``stored``: infos carry gt_ego_fut_trajs / pose_mode of their own
    (arbitrary values that must win over the poses)."""
    infos = []
    sem = np.full((200, 200, 16), 17, np.uint8)
    for t in range(n):
        token = f'tok{t}'
        path = root / 'gts' / 'scene-a' / token
        path.mkdir(parents=True)
        np.savez_compressed(path / 'labels.npz', semantics=sem)
        info = dict(token=token, scene_name='scene-a', timestamp=t * 500_000,
                    ego2global_rotation=[1.0, 0.0, 0.0, 0.0],
                    ego2global_translation=[4.0 * t, -0.5 * t, 0.0],
                    lidar2ego_rotation=LIDAR_ROT, lidar2ego_translation=LIDAR_TRANS)
        if stored:
            info['gt_ego_fut_trajs'] = np.array([[0.1 * t, 4.0 + t]] + [[9.0, 9.0]] * 5)
            info['pose_mode'] = np.eye(3)[t % 3]
            info['gt_ego_fut_cmd'] = np.eye(3)[2]  # pose_mode is the reference's key
        infos.append(info)
    with open(root / 'infos.pkl', 'wb') as f:
        pickle.dump(dict(infos=infos), f)


def dataset(root, **kw):
    kw.setdefault('num_frames', 7)
    kw.setdefault('test_mode', True)
    return Occ3DNuScenesDataset(data_root=str(root), ann_file=str(root / 'infos.pkl'), **kw)


def test_dataset_reference_steps_modes_and_windows_from_poses(tmp_path):
    write_scene(tmp_path)
    ours = dataset(tmp_path)
    ref = dataset(tmp_path, ego_convention='reference')
    # 8 frames, 7-frame windows: starts 0 and 1; the reference's traverse dataset has
    # len - return_len = 1 window per scene (its last full window is left out)
    assert len(ours) == 2 and len(ref) == 1
    # its training dataset draws starts 0 .. len - return_len: both windows
    assert len(dataset(tmp_path, ego_convention='reference', test_mode=False)) == 2
    assert 'rel_poses' not in ours[0]['inputs']  # the default convention is unchanged
    inputs = ref[0]['inputs']
    # the step to the next keyframe in this frame's LiDAR axes (x right, y forward)
    assert inputs['rel_poses'].dtype == torch.float32
    torch.testing.assert_close(inputs['rel_poses'], torch.tensor([[0.5, 4.0]] * 7),
                               atol=1e-6, rtol=0)
    # VAD's rule on the lateral offset 6 keyframes ahead (fewer near the scene end):
    # 0.5 m x 6, 6, 5, 4 steps >= 2 m -> right (0); 3, 2, 1 steps -> straight (2)
    assert inputs['pose_modes'].tolist() == [0, 0, 0, 0, 2, 2, 2]
    # our convention: the step from the previous frame in ego axes (x forward, y left)
    torch.testing.assert_close(inputs['trajectory'][1], torch.tensor([4.0, -0.5, 0.0]))
    # batched as the model reads them: (B, T, 2) float32, (B, T) int64
    from mmengine.dataset import default_collate

    from occworld4d.models.data_preprocessors import OccDataPreprocessor
    batch = OccDataPreprocessor(num_classes=18)(default_collate([ref[0]]))['inputs']
    assert batch['rel_poses'].shape == (1, 7, 2) and batch['rel_poses'].dtype == torch.float32
    assert batch['pose_modes'].shape == (1, 7) and batch['pose_modes'].dtype == torch.int64
    # a scene's last frame has no next keyframe: a zero step (VAD pads with the last pose)
    steps, modes = _derive_reference_ego(ref.scenes['scene-a'], 'x')
    np.testing.assert_allclose(steps[-1], [0.0, 0.0], atol=1e-9)
    assert modes.tolist() == [0, 0, 0, 0, 2, 2, 2, 2]


def test_dataset_reference_reads_the_infos_fields_first(tmp_path):
    write_scene(tmp_path, stored=True)
    inputs = dataset(tmp_path, ego_convention='reference')[0]['inputs']
    torch.testing.assert_close(inputs['rel_poses'],
                               torch.tensor([[0.1 * t, 4.0 + t] for t in range(7)]))
    assert inputs['pose_modes'].tolist() == [0, 1, 2, 0, 1, 2, 0]  # pose_mode, per frame
    sample = dataset(tmp_path, ego_convention='reference')[0]['data_samples']
    assert torch.equal(sample.pose_modes, inputs['pose_modes'])


def test_dataset_reference_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match='ego_convention must be one of'):
        dataset(tmp_path, ego_convention='vad')
    with pytest.raises(ValueError, match='frame_step=1'):
        dataset(tmp_path, ego_convention='reference', frame_step=2)
    write_scene(tmp_path)
    with open(tmp_path / 'infos.pkl', 'rb') as f:
        data = pickle.load(f)
    for info in data['infos']:
        del info['lidar2ego_rotation']
    with open(tmp_path / 'infos.pkl', 'wb') as f:
        pickle.dump(data, f)
    with pytest.raises(DataFormatError, match="infos.pkl: scene 'scene-a'.*tok0"):
        dataset(tmp_path, ego_convention='reference')[0]


def test_derived_steps_and_modes_equal_the_real_infos(real_path):
    """On the 81 real v1.0-mini keyframes the poses give the stored gt_ego_fut_trajs[0] and
    gt_ego_fut_cmd (the reference's pose_mode) exactly."""
    infos_file = real_path('nuscenes', 'infos', 'nuscenes_mini_infos_val.pkl',
                           what='real nuScenes temporal infos')
    for scene, infos in load_nuscenes_infos(infos_file).items():
        records = [dict(frame_id=i['token'], pose=info_pose(i), **_reference_ego_fields(i))
                   for i in infos]
        steps, modes = _derive_reference_ego(records, scene)
        stored = np.stack([r['ref_step'] for r in records])
        np.testing.assert_allclose(steps, stored, atol=1e-5, rtol=0)
        assert modes.tolist() == [r['ref_mode'] for r in records]


# ------------------------------------------------------------------------------ the model
# A hand-made window of H + F + 1 = 7 frames (H = 3, F = 3): the reference's rel_poses and
# per-frame modes (0 right, 1 left, 2 straight).
REL = torch.tensor([[0.1, 4.0], [0.2, 4.1], [0.3, 4.2], [-0.5, 3.0], [0.0, 2.0], [1.0, 1.0],
                    [9.0, 9.0]])
MODES = torch.tensor([2, 2, 2, 1, 0, 2, 1])


def reference_batch(T=7):
    g = torch.Generator().manual_seed(0)
    return dict(voxels=torch.randint(0, 6, (1, T, 16, 16, 4), generator=g),
                trajectory=torch.zeros(1, T, 3), command=torch.tensor([1]),
                rel_poses=REL[None, :T].clone(), pose_modes=MODES[None, :T].clone())


def spy(model):
    """Record every pose-encoder input and pose-decoder output."""
    enc, dec = [], []
    model.pose_encoder.register_forward_hook(lambda m, a, o: enc.append(a[0].detach().clone()))
    model.pose_decoder.register_forward_hook(lambda m, a, o: dec.append(o.detach().clone()))
    return enc, dec


def test_reference_forecast_feeds_the_reference_pose_tokens():
    torch.manual_seed(0)
    model = tiny_model(ego_convention='reference').eval()
    enc, dec = spy(model)
    ds = OccDataSample()
    data = reference_batch()
    ds.gt_semantics = data['voxels'][0].to(torch.uint8)
    ds.rel_poses = data['rel_poses'][0]
    with torch.no_grad():
        out = model.predict(data, [ds])[0]
    # history tokens: rel_poses rows 0..2 with their own modes (straight: one-hot (0, 0, 1))
    torch.testing.assert_close(enc[0], torch.tensor([[[0.1, 4.0, 0, 0, 1], [0.2, 4.1, 0, 0, 1],
                                                      [0.3, 4.2, 0, 0, 1]]]))
    # rollout: the step of frame 3 + k is decoded with the ground-truth mode of frame 3 + k
    # (left, right, straight) and fed back with that mode's one-hot
    assert len(dec) == 3 and len(enc) == 3  # the last step is not fed back
    picked = [dec[k].reshape(3, 2)[m] for k, m in enumerate((1, 0, 2))]
    for k, onehot in enumerate(([0.0, 1.0, 0.0], [1.0, 0.0, 0.0])):
        torch.testing.assert_close(enc[k + 1][0, 0], torch.cat([picked[k], torch.tensor(onehot)]))
    # the plan: accumulated predicted steps; its target: rel_poses rows 3..5 accumulated =
    # the positions of frames 4, 5, 6 from frame 3
    torch.testing.assert_close(out.pred_ego_trajectory, torch.stack(picked).cumsum(0))
    torch.testing.assert_close(out.gt_ego_trajectory,
                               torch.tensor([[-0.5, 3.0], [-0.5, 5.0], [0.5, 6.0]]))
    # scored against frames 3..5: the 7th frame (the reference's 12th) feeds nothing
    assert out.pred_semantics.shape[0] == 3
    assert torch.equal(out.gt_semantics, data['voxels'][0, 3:6].to(torch.uint8))
    assert out.rel_poses.shape == (6, 2)
    # the same window of 6 frames gives the same forecast; cached == recomputed
    with torch.no_grad():
        six = model.predict(reference_batch(T=6))[0]
        model.use_cache = False
        unc = model.predict(reference_batch(T=6))[0]
    assert torch.equal(six.pred_semantics, out.pred_semantics)
    torch.testing.assert_close(six.pred_ego_trajectory, out.pred_ego_trajectory)
    torch.testing.assert_close(unc.pred_ego_trajectory, out.pred_ego_trajectory)


def test_reference_teacher_forcing_and_loss_by_hand():
    torch.manual_seed(0)
    model = tiny_model(ego_convention='reference').eval()
    enc, dec = spy(model)
    data = reference_batch(T=5)
    losses = model.loss(data)
    # tokens 0..3: rel_poses rows 0..3 with modes 2, 2, 2, 1
    torch.testing.assert_close(enc[0][0], torch.cat([REL[:4], F.one_hot(MODES[:4], 3)], 1))
    # targets rows 1..4 with modes 2, 2, 1, 0: each mode's steps accumulated, then the frame's
    # mode picked (PlanRegLossLidar), L2 averaged over the 4 frames
    cum = dec[0][0].cumsum(0)  # (4, 3, 2)
    pred = torch.stack([cum[i, m] for i, m in enumerate([2, 2, 1, 0])])
    gt = REL[1:5].cumsum(0)
    l2 = (pred - gt).norm(dim=-1).mean()
    torch.testing.assert_close(losses['plan_l2'], l2)
    torch.testing.assert_close(losses['loss_plan'], 0.1 * l2)
    # it differs from picking first and accumulating when the mode changes inside the window
    other = select_mode(dec[0], MODES[None, 1:5]).cumsum(1)[0]
    assert not torch.allclose((other - gt).norm(dim=-1).mean(), l2)


def test_reference_model_bad_inputs():
    with pytest.raises(ValueError, match='ego_convention must be one of'):
        tiny_model(ego_convention='lidar')
    model = tiny_model(ego_convention='reference').eval()
    data = reference_batch()
    del data['rel_poses']
    with pytest.raises(ValueError, match='ego_convention="reference"'):
        model.predict(data)
    data = reference_batch()
    data['pose_modes'][0, 2] = 3
    with pytest.raises(ValueError, match='pose_modes must lie'):
        model.predict(data)
    with pytest.raises(ValueError, match='3 or 6 or 7 frames'):
        model.predict(reference_batch(T=5))
    with pytest.raises(ValueError, match='3 or 6 frames'):
        tiny_model().predict(reference_batch(T=7))


def test_reference_config_and_converter_default():
    from mmengine.config import Config

    from occworld4d.converters.occworld import WM_CONFIG
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    assert WM_CONFIG == 'configs/occworld/occworld_wm_reference_occ3d-nuscenes.py'
    cfg = Config.fromfile(osp.join(root, WM_CONFIG))
    assert cfg.model.ego_convention == 'reference'
    assert cfg.model.transformer.mlp_act == 'gelu'
    test = cfg.test_dataloader.dataset
    assert test.ego_convention == 'reference' and test.num_frames == 12  # return_len = 11 + 1
    assert cfg.train_dataloader.dataset.ego_convention == 'reference'
    assert cfg.train_dataloader.dataset.num_frames == 16  # return_len_train + 1


def test_reference_config_runs_in_tools_test_on_an_occ3d_tree(tmp_path, capsys):
    """The converter's config (tiny widths) on a hand-made Occ3D-nuScenes scene of 13
    keyframes: a world model in the reference layout converts (strict), and tools/test.py
    scores the scene's one reference window (12 frames) with the reference ego inputs; the
    planning target is the accumulated rel_poses of frames 5..10 (0.5, 4) m a step."""
    from helpers import ROOT, tool_main

    REFERENCE_CFG = 'occworld_wm_reference_occ3d-nuscenes.py'
    write_scene(tmp_path, n=13)
    cfg = tmp_path / 'wm_reference_tiny.py'
    cfg.write_text(
        f"_base_ = ['{osp.join(ROOT, 'configs/occworld', REFERENCE_CFG)}']\n"
        "model = dict(\n"
        "    tokenizer_ckpt=None,\n"
        "    tokenizer=dict(ch=8, ch_mult=(1, 2, 2, 2), num_res_blocks=1, attn_resolutions=(),\n"
        "                   z_channels=16, quantizer=dict(num_codes=32, code_dim=16)),\n"
        "    transformer=dict(token_shape=(16, 25, 25), channels=(16, 32, 64), num_codes=32,\n"
        "                     temporal_layers=1, pose_layers=1, pose_dim=16, pose_out_dim=16,\n"
        "                     num_heads=2),\n"
        "    pose_encoder=dict(out_channels=16), pose_decoder=dict(in_channels=16))\n"
        f"test_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(\n"
        f"    data_root='{tmp_path}', ann_file='{tmp_path / 'infos.pkl'}'))\n")
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    from occworld4d.registry import MODELS
    config = Config.fromfile(str(cfg))
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('occworld4d'):
        model = MODELS.build(config.model)
    ours = tmp_path / 'ours.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), ours)
    tool = 'tools/model_converters/occworld_to_occworld4d.py'
    ref, back = tmp_path / 'epoch_1.pth', tmp_path / 'converted.pth'
    assert tool_main(tool, ours, ref, '--reverse') == 0
    assert tool_main(tool, ref, back, '--config', cfg) == 0
    capsys.readouterr()
    out = tmp_path / 'm.json'
    tool_main('tools/test.py', cfg, back, '--work-dir', tmp_path / 'w', '--out', out)
    import json
    metrics = json.loads(out.read_text())
    # the scene is free everywhere (17) and the seeded model forecasts it free: every IoU 1
    assert metrics['occworld/mIoU_avg'] == 1.0 and metrics['occworld/IoU_avg'] == 1.0
    # torch.manual_seed(0) above: bit-identical run to run; 2 threads move them by 1e-5 (rel)
    for key, l2 in (('plan/L2_1s', 5.4822), ('plan/L2_2s', 9.1204), ('plan/L2_3s', 12.8761)):
        assert metrics[key] == pytest.approx(l2, rel=1e-4), (key, metrics[key])
    # the target the metric scored: replay the dataset window through the model
    ds = dataset(tmp_path, ego_convention='reference', num_frames=12)
    assert len(ds) == 1  # 13 frames: 12-frame windows start at 0 or 1; the reference keeps 0
    from mmengine.dataset import default_collate
    batch = model.data_preprocessor(default_collate([ds[0]]))
    with torch.no_grad():
        sample = model.predict(batch['inputs'], batch['data_samples'])[0]
    torch.testing.assert_close(sample.gt_ego_trajectory,
                               torch.tensor([[0.5 * k, 4.0 * k] for k in range(1, 7)]),
                               atol=1e-5, rtol=0)
    # tools/test.py scored the same forecast (converted weights, same inputs): L2 up to 1 s
    l2 = (sample.pred_ego_trajectory - sample.gt_ego_trajectory).norm(dim=-1)
    assert abs(metrics['plan/L2_1s'] - l2[:2].mean().item()) < 1e-4
    assert abs(metrics['plan/L2_3s'] - l2.mean().item()) < 1e-4
