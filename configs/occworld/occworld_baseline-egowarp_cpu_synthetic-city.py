# Forecasting baseline "warp the last frame by the known future ego poses" (a static world)
# on the OccWorld CPU recipe: the data (32 x 32 x 8, 2 Hz, 32 val windows of seed 1), the
# 5 -> 6 forecast and the metrics of occworld_wm_cpu-30min_synthetic-city.py, the model
# swapped for the parameter-free
# EgoWarpForecaster (planning: constant velocity, the last history step repeated).
# Nothing to train; tested without a checkpoint:
#   python tools/test.py configs/occworld/occworld_baseline-egowarp_cpu_synthetic-city.py none \
#       --out egowarp.json
_base_ = ['./occworld_wm_cpu-30min_synthetic-city.py']
model = dict(
    _delete_=True,
    type='EgoWarpForecaster',
    data_preprocessor=dict(type='OccDataPreprocessor', num_classes=12),
    history_frames=5,
    future_frames=6)
