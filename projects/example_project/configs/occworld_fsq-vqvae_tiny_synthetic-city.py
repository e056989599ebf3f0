# OccWorld's tiny scene tokenizer with Finite Scalar Quantization instead of the VQ codebook:
# the core config, one custom import, one overridden key.
#   python tools/train.py projects/example_project/configs/occworld_fsq-vqvae_tiny_synthetic-city.py
_base_ = ['../../../configs/occworld/occworld_vqvae_tiny_synthetic-city.py']
custom_imports = dict(imports=['projects.example_project.fsq'], allow_failed_imports=False)
model = dict(
    quantizer=dict(_delete_=True, type='FSQuantizer', code_dim=16, num_codes=64, levels=(4, 4, 4)))
