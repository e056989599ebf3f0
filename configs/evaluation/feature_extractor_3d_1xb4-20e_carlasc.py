# 3D feature extractor for generation metrics on CarlaSC (DynamicCity's 12-slot vocabulary),
# the extractor behind CarlaSC FID / KID / P-R / IS / TC numbers. dataset_name enters the
# version: numbers of extractors trained on other data are never compared.
_base_ = [
    '../_base_/datasets/carlasc.py', '../_base_/models/feature_extractor_3d.py',
    '../_base_/schedules/feature_extractor_adamw_20e.py', '../_base_/default_runtime.py'
]
model = dict(num_classes=12, free_label=0, dataset_name='carlasc_dynamiccity12',
             data_preprocessor=dict(type='OccDataPreprocessor', num_classes=12))
train_dataloader = dict(batch_size=4)
val_dataloader = None  # no validation: the extractor has its own objective
test_dataloader = None
