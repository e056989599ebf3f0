"""``CPUAutocastOptimWrapper``: mixed precision on CPU (bf16 autocast).

mmengine 0.10.7's ``AmpOptimWrapper`` asserts a GPU / NPU / MLU / MUSA device, so
``tools/train.py --amp`` on a CPU-only machine died with that assertion. On CPU, mixed
precision means ``torch.autocast('cpu', dtype=torch.bfloat16)``: bf16 has float32's exponent
range, so no loss scaling is needed and the update is the plain ``OptimWrapper``'s.
``tools/train.py --amp`` picks this wrapper when CUDA is not available.
"""
from contextlib import contextmanager

import torch
from mmengine.optim import OptimWrapper

from occworld4d.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class CPUAutocastOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose forward runs under CPU autocast (default bf16).

    Args:
        dtype (str): autocast dtype, 'bfloat16' (default) or 'float16'.
        **kwargs: those of ``mmengine.optim.OptimWrapper``.
    """

    def __init__(self, dtype: str = 'bfloat16', **kwargs):
        super().__init__(**kwargs)
        if dtype not in ('bfloat16', 'float16'):
            raise ValueError(f'CPUAutocastOptimWrapper: dtype must be bfloat16 or float16, '
                             f'got {dtype!r}')
        self.cast_dtype = getattr(torch, dtype)

    @contextmanager
    def optim_context(self, model):
        with super().optim_context(model):
            with torch.autocast(device_type='cpu', dtype=self.cast_dtype):
                yield
