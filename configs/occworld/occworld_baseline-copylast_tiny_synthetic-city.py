# Forecasting baseline "copy the last frame" on the tiny OccWorld setup: the data, the 3 -> 3
# forecast and the metrics of occworld_wm_tiny_synthetic-city.py, the model swapped for the
# parameter-free CopyLastForecaster (every future frame = the last history frame; planning:
# the last history step repeated). Nothing to train; tested without a checkpoint:
#   python tools/test.py configs/occworld/occworld_baseline-copylast_tiny_synthetic-city.py \
#       none --out copylast.json
_base_ = ['./occworld_wm_tiny_synthetic-city.py']
model = dict(
    _delete_=True,
    type='CopyLastForecaster',
    data_preprocessor=dict(type='OccDataPreprocessor', num_classes=12),
    history_frames=3,
    future_frames=3)
