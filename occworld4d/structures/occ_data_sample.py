"""The one sample type that flows from every dataset through every model and metric."""
from mmengine.structures import BaseDataElement


class OccDataSample(BaseDataElement):
    """A 4D semantic-occupancy window and what goes with it.

    Data fields (all optional, tensors unless said; T frames, X, Y, Z voxels):
        gt_semantics (uint8, (T, X, Y, Z)): class ids in the vocabulary named by
            ``metainfo['vocabulary']``.
        pred_semantics (uint8, (T, X, Y, Z)): set by a model in ``mode='predict'``.
        mask_lidar / mask_camera / mask_infov / valid_mask (bool, (T, X, Y, Z)):
            visibility masks (Occ3D lidar / camera, Waymo field of view, CarlaSC voxels
            with a non-zero point count). ``True`` = scored.
        ego_poses (float64, (T, 4, 4)): world-from-ego transforms.
        trajectory (float32, (T, 3)): (dx, dy, yaw) of each frame relative to frame 0,
            expressed in frame 0's ego axes (metres, radians).
        command (int64, ()): driving command, 0 STATIC, 1 FORWARD, 2 LEFT, 3 RIGHT.
        layout (float32, (T, H, W) or (C, T, H, W)): BEV layout maps.

    Meta fields (``metainfo``): ``dataset``, ``scene``, ``frame_ids`` (list of str),
    ``vocabulary`` (name in :mod:`occworld4d.structures.vocabularies`), ``free_label``,
    ``voxel_size`` (3,), ``pc_range`` (6,).
    """
