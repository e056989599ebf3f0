from .compat import apply_mmengine_compat
from .io import (atomic_path, join_inside, real_data_root, safe_file_name, save_json_atomic,
                 save_npz_atomic)

__all__ = ['apply_mmengine_compat', 'atomic_path', 'join_inside', 'safe_file_name',
           'save_json_atomic', 'save_npz_atomic', 'real_data_root']
