from .compat import apply_mmengine_compat
from .io import atomic_path, real_data_root, save_json_atomic, save_npz_atomic

__all__ = ['apply_mmengine_compat', 'atomic_path', 'save_json_atomic', 'save_npz_atomic',
           'real_data_root']
