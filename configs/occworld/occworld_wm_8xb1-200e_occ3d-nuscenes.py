# OccWorld stage 2: the world model on the frozen VQ-VAE, Occ3D-nuScenes. Training windows of
# 15 + 1 keyframes (teacher forcing), batch 1 per GPU on 8 GPUs, AdamW lr 1e-3, wd 0.01,
# 50 warm-up iterations then cosine over 200 epochs, gradient clipping at 35 (reference recipe).
# Test = forecasting: every 11-keyframe window (2 Hz), 5 history frames -> 6 future frames,
# autoregressive with the KV cache; OccupancyMetric in the OccWorld convention per future step
# (mIoU_2 / _4 / _6 = 1 s / 2 s / 3 s, _avg = their mean) and PlanningMetric L2 at 1 / 2 / 3 s
# (mean over the steps up to the horizon) plus frames per second.
#   bash tools/dist_train.sh configs/occworld/occworld_wm_8xb1-200e_occ3d-nuscenes.py 8 \
#     --cfg-options model.tokenizer_ckpt=work_dirs/occworld_vqvae_8xb1-200e_occ3d-nuscenes
#   python tools/test.py configs/occworld/occworld_wm_8xb1-200e_occ3d-nuscenes.py CKPT --out m.json
_base_ = ['../_base_/datasets/occ3d_nuscenes.py', '../_base_/recipes/occworld_wm_8xb1-200e.py']
history_frames = 5
future_frames = 6
# mlp_act='gelu': exact GELU in the transformer's FFNs, as the reference (nn.GELU()); this config
# also evaluates the released checkpoint (configs/occworld/README.md, "Evaluate the released
# checkpoint").
model = dict(history_frames=history_frames, future_frames=future_frames,
             transformer=dict(mlp_act='gelu'))
train_dataloader = dict(batch_size=1, dataset=dict(num_frames=16))
val_dataloader = dict(
    batch_size=1,
    dataset=dict(num_frames=history_frames + future_frames, window_stride=1, masks=()))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='OccupancyMetric', convention='occworld', vocabulary='occ3d_nuscenes',
         per_frame=True, horizons=(2, 4, 6)),
    dict(type='PlanningMetric', frames_per_second=2.0, horizons=(1, 2, 3)),
]
test_evaluator = val_evaluator
