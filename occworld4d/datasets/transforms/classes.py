"""Class remapping between vocabularies."""
import numpy as np

from occworld4d.registry import TRANSFORMS
from occworld4d.structures import get_merge


@TRANSFORMS.register_module()
class RemapClasses:
    """Map ``semantics`` through a named merge of :mod:`occworld4d.structures.vocabularies`.

    Sets ``vocabulary`` / ``free_label`` to the target's. A raw id outside the source
    vocabulary raises an error naming the scene and the offending ids.

    Args:
        merge: merge name, e.g. ``'carlasc_to_dynamiccity'``.
    """

    def __init__(self, merge: str):
        self.merge = merge
        self.src, self.dst, self.lut = get_merge(merge)

    def __call__(self, results: dict) -> dict:
        vocab = results.get('vocabulary')
        if vocab is not None and vocab != self.src.name:
            raise ValueError(f'RemapClasses({self.merge!r}) expects vocabulary '
                             f'{self.src.name!r}, the window has {vocab!r} '
                             f'(scene {results.get("scene")})')
        out = self.lut[results['semantics']]
        if (out == 255).any():
            bad = np.unique(results['semantics'][out == 255])
            raise ValueError(f'RemapClasses({self.merge!r}): raw label(s) {bad.tolist()} are '
                             f'not in vocabulary {self.src.name!r} (0..'
                             f'{self.src.num_classes - 1}) in scene {results.get("scene")}, '
                             f'frames {results.get("frame_ids")}')
        results['semantics'] = out
        results['vocabulary'] = self.dst.name
        results['free_label'] = self.dst.free_label
        return results

    def __repr__(self):
        return f'{type(self).__name__}(merge={self.merge!r})'
