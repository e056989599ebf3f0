# UniScene OccDiT at the reference size on the synthetic city written in Occ3D-nuScenes' format
# (200 x 200 x 16 voxels of 0.4 m, Occ3D vocabulary, 5-frame windows): the Occ3D-nuScenes
# config's model with a dataset that needs no download; the layout of every frame from the
# window's occupancy (the synthetic city has no boxes), max-pooled to 50 x 50. For trying the
# full-size pipeline and for benchmarks:
#   python tools/analysis_tools/benchmark.py \
#       configs/uniscene/uniscene_dit_8xb4-1200e_synthetic-city-occ3d.py --task train
# Scoring as in the Occ3D-nuScenes config (5-frame windows of the 200 val scenes), with the
# extractor trained on this synthetic city (train it first:
# configs/evaluation/feature_extractor_3d_1xb4-20e_synthetic-city-occ3d.py):
#   python tools/test.py configs/uniscene/uniscene_dit_8xb4-1200e_synthetic-city-occ3d.py \
#       DIT_CKPT --out gen.json --cfg-options test_evaluator.0.checkpoint=EXTRACTOR_CKPT
_base_ = [
    '../_base_/models/uniscene_dit.py',
    '../_base_/datasets/synthetic_city.py',
    '../_base_/schedules/adamw_constant_diffusion.py',
    '../_base_/default_runtime.py',
]
num_frames = 5
vocabulary = 'occ3d_nuscenes'
num_classes = 18
free_label = 17
vis_palette = 'occ3d_nuscenes'
pc_range = [-40.0, -40.0, -1.0, 40.0, 40.0, 5.4]
layout = dict(type='UniSceneLayout', source='occupancy', out_size=50)
city = dict(num_frames=num_frames, grid_size=(200, 200, 16), preset='occ3d_nuscenes',
            vocabulary=vocabulary, masks=(), pipeline=[layout, dict(type='PackOccInputs')])
train_dataloader = dict(batch_size=4, dataset=city)
val_cfg = None
val_dataloader = None
val_evaluator = None
test_cfg = dict(type='TestLoop')
test_dataloader = dict(batch_size=1, dataset=city)
test_evaluator = [
    dict(type='GenerationMetric',
         extractor='configs/evaluation/feature_extractor_3d_1xb4-20e_synthetic-city-occ3d.py',
         checkpoint=None,
         reference_cache='work_dirs/generation_eval/synthetic-city-occ3d-val-5f_{version}.npz'),
    dict(type='OccupancyMetric', convention='occworld', vocabulary=vocabulary),
]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3),
                     save_samples=dict(type='SaveOccSamplesHook', out_dir='samples'))
