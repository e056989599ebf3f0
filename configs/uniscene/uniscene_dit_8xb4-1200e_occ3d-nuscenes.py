# UniScene OccDiT on Occ3D-nuScenes (reference sizes): 5-frame windows, the layout of every frame
# from the nuScenes info boxes (gt_boxes / gt_names of the temporal infos) with the map channels
# (road, sidewalk, ground) taken from the window's occupancy as a stand-in for the HD-map masks
# (occworld4d does not require the nuScenes map expansion; a layout cache written with real map
# masks can replace it: UniSceneLayout(source='cache', cache_dir=...)). 200 x 200 layouts are
# max-pooled to the 50 x 50 latent. Frozen VAE of uniscene_vae_8xb1-200e_occ3d-nuscenes.py.
#   bash tools/dist_train.sh configs/uniscene/uniscene_dit_8xb4-1200e_occ3d-nuscenes.py 8 \
#       --cfg-options model.tokenizer_ckpt=work_dirs/uniscene_vae_8xb1-200e_occ3d-nuscenes
# Scoring (the pattern of configs/_base_/generation_eval.py, with a list of two metrics): one
# scene sampled per 5-frame val window (stride 5) from its layouts, written to
# <work_dir>/samples/*.npz, scored by [0] GenerationMetric (FID / KID / P-R / IS / TC with the
# 18-class Occ3D-nuScenes 3D extractor; train it first:
# configs/evaluation/feature_extractor_3d_1xb4-20e_occ3d-nuscenes.py) and [1] OccupancyMetric
# (mIoU / IoU of the sample against the window's ground truth, the reference's table). The
# extractor checkpoint goes to test_evaluator.0:
#   python tools/test.py configs/uniscene/uniscene_dit_8xb4-1200e_occ3d-nuscenes.py DIT_CKPT \
#       --out gen.json --cfg-options test_evaluator.0.checkpoint=EXTRACTOR_CKPT
_base_ = [
    '../_base_/models/uniscene_dit.py',
    '../_base_/datasets/occ3d_nuscenes.py',
    '../_base_/schedules/adamw_constant_diffusion.py',
    '../_base_/default_runtime.py',
]
num_frames = 5
vis_palette = 'occ3d_nuscenes'
pc_range = [-40.0, -40.0, -1.0, 40.0, 40.0, 5.4]
train_layout = dict(type='UniSceneLayout', source='infos', data_root='data/nuscenes',
                    ann_file='nuscenes_infos_train_temporal_v3_scene.pkl', out_size=50,
                    map_from_occupancy=('road', 'sidewalk', 'ground'))
val_layout = dict(train_layout, ann_file='nuscenes_infos_val_temporal_v3_scene.pkl')
train_dataloader = dict(
    batch_size=4, num_workers=8,
    dataset=dict(num_frames=num_frames,
                 pipeline=[train_layout, dict(type='PackOccInputs')]))
# Sampling (DDIM 50) during training would dominate its time: no val loop. tools/test.py scores
# layout-conditioned samples of the val windows (see the header).
val_cfg = None
val_dataloader = None
val_evaluator = None
test_cfg = dict(type='TestLoop')
test_dataloader = dict(
    batch_size=1,
    dataset=dict(num_frames=num_frames, window_stride=num_frames, masks=(),
                 pipeline=[val_layout, dict(type='PackOccInputs')]))
test_evaluator = [
    dict(type='GenerationMetric',
         extractor='configs/evaluation/feature_extractor_3d_1xb4-20e_occ3d-nuscenes.py',
         checkpoint=None,
         reference_cache='work_dirs/generation_eval/occ3d-nuscenes-val-5f_{version}.npz'),
    dict(type='OccupancyMetric', convention='occworld', vocabulary='occ3d_nuscenes'),
]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3),
                     save_samples=dict(type='SaveOccSamplesHook', out_dir='samples'))
