"""Occupancy -> sensors (LiDAR ray casting, camera semantic/depth maps) and BEV layouts."""
from .bev_layout import (LAYOUT_CHANNELS, BEVGrid, BEVLayoutRasterizer, boxes_from_info,
                         collapse_layout, layout_from_occupancy, occupancy_channel_lut,
                         rasterize_boxes, rasterize_map, uniscene_layout)
from .camera import (CAMERA_RIGS, CameraMaps, CameraRenderer, PinholeCamera, cameras_from_info,
                     load_cameras, preset_cameras, read_depth_png, save_depth_png,
                     save_semantic_png)
from .export import export_sensors, read_points, write_points
from .lidar import LIDAR_PRESETS, LidarScan, LidarSensor, LidarSimulator, load_lidar2ego
from .raycast import GridGeometry, RayHits, cast_rays

__all__ = [
    'LAYOUT_CHANNELS', 'BEVGrid', 'BEVLayoutRasterizer', 'boxes_from_info', 'collapse_layout',
    'layout_from_occupancy', 'occupancy_channel_lut', 'rasterize_boxes',
    'rasterize_map', 'uniscene_layout', 'export_sensors', 'read_points', 'write_points',
    'CAMERA_RIGS', 'preset_cameras', 'CameraMaps', 'CameraRenderer', 'PinholeCamera',
    'cameras_from_info', 'load_cameras',
    'read_depth_png', 'save_depth_png', 'save_semantic_png', 'LIDAR_PRESETS', 'LidarScan',
    'LidarSensor', 'LidarSimulator', 'load_lidar2ego', 'GridGeometry', 'RayHits', 'cast_rays'
]
