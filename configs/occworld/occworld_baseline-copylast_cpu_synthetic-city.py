# Forecasting baseline "copy the last frame" on the OccWorld CPU recipe: the data
# (32 x 32 x 8, 2 Hz, 32 val windows of seed 1), the 5 -> 6 forecast and the metrics of
# occworld_wm_cpu-30min_synthetic-city.py, the model swapped for the parameter-free
# CopyLastForecaster (planning: constant velocity, the last history step repeated).
# Nothing to train; tested without a checkpoint:
#   python tools/test.py configs/occworld/occworld_baseline-copylast_cpu_synthetic-city.py none \
#       --out copylast.json
_base_ = ['./occworld_wm_cpu-30min_synthetic-city.py']
model = dict(
    _delete_=True,
    type='CopyLastForecaster',
    data_preprocessor=dict(type='OccDataPreprocessor', num_classes=12),
    history_frames=5,
    future_frames=6)
