# Voxel (3D) feature extractor at the reference size on the CarlaSC-sized synthetic city
# (16 x 128 x 128 x 8). Swap the dataset base for a real dataset config to train the
# extractor that reports real-data numbers (and set dataset_name accordingly: it enters
# the version, so numbers from different training sets are never compared).
_base_ = [
    '../_base_/datasets/synthetic_city.py', '../_base_/models/feature_extractor_3d.py',
    '../_base_/schedules/feature_extractor_adamw_20e.py', '../_base_/default_runtime.py'
]
model = dict(dataset_name='synthetic_city')
train_dataloader = dict(batch_size=4)
val_dataloader = None  # no validation: the extractor has its own objective
test_dataloader = None
