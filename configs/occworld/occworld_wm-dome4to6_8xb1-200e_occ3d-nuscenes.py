# Protocol variant: DOME's 4 history frames -> 6 future frames (2 Hz), otherwise as
# occworld_wm_8xb1-200e_occ3d-nuscenes.py (same training; only the forecast changes).
#   python tools/test.py configs/occworld/occworld_wm-dome4to6_8xb1-200e_occ3d-nuscenes.py CKPT
_base_ = ['./occworld_wm_8xb1-200e_occ3d-nuscenes.py']
model = dict(history_frames=4, future_frames=6)
val_dataloader = dict(dataset=dict(num_frames=10))
test_dataloader = val_dataloader
