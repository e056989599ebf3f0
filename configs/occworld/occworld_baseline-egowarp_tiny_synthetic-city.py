# Forecasting baseline "warp the last frame by the known future ego poses" (a static world) on
# the tiny OccWorld setup: the data, the 3 -> 3 forecast and the metrics of
# occworld_wm_tiny_synthetic-city.py, the model swapped for the parameter-free
# EgoWarpForecaster (nearest-neighbour resampling of voxel centres by inv(P_last) @ P_t of
# the world-from-ego poses; space from outside the grid is free; planning: the last history
# step repeated). Nothing to train; tested without a checkpoint:
#   python tools/test.py configs/occworld/occworld_baseline-egowarp_tiny_synthetic-city.py \
#       none --out egowarp.json
_base_ = ['./occworld_wm_tiny_synthetic-city.py']
model = dict(
    _delete_=True,
    type='EgoWarpForecaster',
    data_preprocessor=dict(type='OccDataPreprocessor', num_classes=12),
    history_frames=3,
    future_frames=3)
