from .classes import RemapClasses
from .formatting import PackLatentInputs, PackOccInputs
from .layout import MakeLayout
from .spatial import CropVoxels, RandomFlip, RandomRotate90, ResizeVoxels
from .temporal import TemporalSubsample
from .uniscene_layout import UniSceneLayout

__all__ = ['RemapClasses', 'PackOccInputs', 'PackLatentInputs', 'MakeLayout', 'CropVoxels',
           'ResizeVoxels', 'RandomFlip', 'RandomRotate90', 'TemporalSubsample', 'UniSceneLayout']
