"""BEV layout conditions (DynamicCity)."""
from typing import Sequence, Union

import numpy as np

from occworld4d.registry import TRANSFORMS
from occworld4d.structures import get_vocabulary


@TRANSFORMS.register_module()
class MakeLayout:
    """DynamicCity's layout: voxels of the given classes -> BEV max over z -> max-pool.

    Output ``layout`` float32 (T, X / pool, Y / pool) with values in {0, 1}.

    Args:
        classes: class names (looked up in the window's vocabulary) or ids.
        pool: max-pool factor over X and Y (DynamicCity: 4).
    """

    def __init__(self, classes: Sequence[Union[str, int]] = ('vehicle',), pool: int = 4):
        self.classes, self.pool = tuple(classes), int(pool)

    def _ids(self, results: dict) -> list:
        ids = []
        for c in self.classes:
            if isinstance(c, str):
                vocab = get_vocabulary(results['vocabulary'])
                if c not in vocab.classes:
                    raise ValueError(f'MakeLayout: class {c!r} is not in vocabulary '
                                     f'{vocab.name!r} {vocab.classes}')
                ids.append(vocab.classes.index(c))
            else:
                ids.append(int(c))
        return ids

    def __call__(self, results: dict) -> dict:
        sem = results['semantics']  # (T, X, Y, Z)
        num_t, x, y, _ = sem.shape
        if x % self.pool or y % self.pool:
            raise ValueError(f'MakeLayout: grid {x} x {y} is not divisible by pool {self.pool}')
        bev = np.isin(sem, self._ids(results)).any(axis=3)  # (T, X, Y)
        bev = bev.reshape(num_t, x // self.pool, self.pool, y // self.pool, self.pool)
        results['layout'] = bev.any(axis=(2, 4)).astype(np.float32)  # (T, X/p, Y/p)
        return results

    def __repr__(self):
        return f'{type(self).__name__}(classes={self.classes}, pool={self.pool})'
