# OccWorld world model conditioned on the ego plan, CPU learning recipe (issue 13): the recipe
# occworld_wm_cpu-30min_synthetic-city.py with OccWorld(future_ego='given'): each frame's pose
# token carries the known step to the next frame and is added to the scene queries
# (OccWorldTransformer.ego_queries; the reference's scene stream never reads the ego branch),
# in training and in the roll-out alike. A forecast so knows what the static-world warp
# baseline knows (the future ego poses) and predicts what changes beyond the ego's motion.
# Same frozen VQ-VAE, data, widths, optimiser and schedule as the predicted-ego recipe; the
# planning head is not trained (pose_loss_weight 0) and not scored (the plan is given), so
# the test metrics are occupancy only. Test windows: 5 history + 6 future frames; the future
# frames' trajectory is the plan, their voxels are only scored.
#   python tools/train.py configs/occworld/occworld_wm-plan_cpu-30min_synthetic-city.py \
#       --work-dir W --cfg-options model.tokenizer_ckpt=VQ_CKPT
#   python tools/test.py configs/occworld/occworld_wm-plan_cpu-30min_synthetic-city.py \
#       W/iter_4000.pth --out W/test.json
_base_ = ['./occworld_wm_cpu-30min_synthetic-city.py']
model = dict(future_ego='given', pose_loss_weight=0.0)
val_evaluator = [
    dict(type='OccupancyMetric', convention='occworld', vocabulary='dynamiccity_carlasc',
         per_frame=True, horizons=(2, 4, 6)),
]
test_evaluator = val_evaluator
