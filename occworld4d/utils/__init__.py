from .compat import apply_mmengine_compat
from .io import (atomic_open, atomic_path, is_temporary, join_inside, real_data_root,
                 safe_file_name, save_json_atomic, save_npz_atomic, temporary_target,
                 write_bytes_atomic, write_text_atomic)

__all__ = ['apply_mmengine_compat', 'atomic_open', 'atomic_path', 'is_temporary', 'join_inside',
           'safe_file_name', 'save_json_atomic', 'save_npz_atomic', 'temporary_target',
           'write_bytes_atomic', 'write_text_atomic', 'real_data_root']
