# OccWorld world model on Occ3D-Waymo (DynamicCity's 9 classes + free 0). Waymo is recorded at
# 10 Hz; windows take every 5th frame (frame_step=5) so the forecast runs at 2 Hz: 5 history
# frames (2 s) -> 6 future frames (3 s), steps 2 / 4 / 6 = 1 / 2 / 3 s; test windows start at
# every 5th frame. Tokens 128 x 50 x 50 from occworld_vqvae_8xb1-200e_occ3d-waymo.py.
# Forecasts scored in the OccWorld convention (no mask).
#   bash tools/dist_train.sh configs/occworld/occworld_wm_8xb1-200e_occ3d-waymo.py 8 \
#       --cfg-options model.tokenizer_ckpt=work_dirs/occworld_vqvae_8xb1-200e_occ3d-waymo
_base_ = ['../_base_/datasets/occ3d_waymo.py', '../_base_/recipes/occworld_wm_8xb1-200e.py']
model = dict(
    data_preprocessor=dict(type='OccDataPreprocessor', num_classes=10),
    tokenizer=dict(num_classes=10),
    transformer=dict(mlp_act='gelu'),  # exact GELU, as the reference
    tokenizer_ckpt='work_dirs/occworld_vqvae_8xb1-200e_occ3d-waymo',
    history_frames=5, future_frames=6)
train_dataloader = dict(dataset=dict(num_frames=16, frame_step=5))
val_dataloader = dict(dataset=dict(num_frames=11, frame_step=5, window_stride=5, masks=()))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='OccupancyMetric', convention='occworld', vocabulary='dynamiccity_waymo',
         per_frame=True, horizons=(2, 4, 6)),
    dict(type='PlanningMetric', frames_per_second=2.0, horizons=(1, 2, 3)),
]
test_evaluator = val_evaluator
