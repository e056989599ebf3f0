# Metric variant: the 5 -> 6 forecast scored in the DynamicCity convention (classes without
# ground truth are skipped instead of scoring 1; mIoU / IoU over all future voxels at once,
# per step and horizons as well), next to the OccWorld convention of the parent config.
#   python tools/test.py configs/occworld/occworld_wm-dcmetric_8xb1-200e_occ3d-nuscenes.py CKPT
_base_ = ['./occworld_wm_8xb1-200e_occ3d-nuscenes.py']
val_evaluator = [
    dict(type='OccupancyMetric', convention='dynamiccity', vocabulary='occ3d_nuscenes',
         per_frame=True, horizons=(2, 4, 6)),
    dict(type='OccupancyMetric', convention='occworld', vocabulary='occ3d_nuscenes',
         per_frame=True, horizons=(2, 4, 6)),
    dict(type='PlanningMetric', frames_per_second=2.0, horizons=(1, 2, 3)),
]
test_evaluator = val_evaluator
