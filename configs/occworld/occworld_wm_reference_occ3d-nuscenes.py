# OccWorld world model as the reference evaluates it (wzzheng/OccWorld @ 1ee7f77,
# config/occworld.py + eval_metric_stp3.py): the config of a released world model converted by
#   python tools/model_converters/occworld_to_occworld4d.py out/occworld/epoch_125.pth \
#       work_dirs/occworld_wm_reference.pth
#   python tools/test.py configs/occworld/occworld_wm_reference_occ3d-nuscenes.py \
#       work_dirs/occworld_wm_reference.pth --out forecast.json
# Reference ego inputs (ego_convention='reference', model and dataset): pose token t = the
# infos' gt_ego_fut_trajs[0] of frame t (the step to frame t + 1, LiDAR axes) with frame t's
# own pose_mode / gt_ego_fut_cmd, as dataset/dataset.py get_meta_data and
# model/TransVQVAE.py forward_autoreg_with_pose build them; the forecast's modes are the
# future frames' ground-truth modes, and the plan is the positions of frames 6..11 relative to
# frame 5. Test windows load 12 keyframes (return_len = end_frame + 1; the 12th feeds no
# forecast) and, as the reference's traverse dataset, leave out each scene's last window (training
# windows keep it, as its training dataset).
# Training here (16-frame windows, tokens 0..14 against steps 1..15 with their modes) uses the
# same convention, so weights fine-tuned with this config stay reference-compatible. The
# transformer's FFN uses the exact GELU (the parent config). Occupancy metrics do not depend on
# the convention; the planning L2 does.
_base_ = ['./occworld_wm_8xb1-200e_occ3d-nuscenes.py']
history_frames = 5
future_frames = 6
model = dict(ego_convention='reference')
train_dataloader = dict(dataset=dict(ego_convention='reference'))
val_dataloader = dict(
    dataset=dict(num_frames=history_frames + future_frames + 1, ego_convention='reference'))
test_dataloader = val_dataloader
