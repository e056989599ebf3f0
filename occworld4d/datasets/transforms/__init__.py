from .classes import RemapClasses
from .formatting import PackOccInputs
from .layout import MakeLayout
from .spatial import CropVoxels, RandomFlip, RandomRotate90, ResizeVoxels
from .temporal import TemporalSubsample
from .uniscene_layout import UniSceneLayout

__all__ = ['RemapClasses', 'PackOccInputs', 'MakeLayout', 'CropVoxels', 'ResizeVoxels',
           'RandomFlip', 'RandomRotate90', 'TemporalSubsample', 'UniSceneLayout']
