"""Voxel / BEV rendering, palettes, PNG / GIF / MP4 writers and the OccVisualizer."""
from .figure import (EGO_COLOUR, META_KEYS, SceneInfo, draw_comparison, draw_frame,
                     info_from_meta, picture_meta, save_scene_pictures, scene_frames,
                     scene_info, unnamed_vocabulary, vocabulary_of)
from .io import (mp4_available, read_mp4, save_frames, save_gif, save_mp4, save_png,
                 side_by_side, tile_rows)
from .palettes import NAME_COLOURS, get_palette
from .render import (iso_pixel, render, render_bev, render_sequence, render_voxels_iso,
                     top_labels)
from .visualizer import OccVisualizer, draw_occ_sample, occ_animation_frames

__all__ = ['get_palette', 'NAME_COLOURS', 'render', 'render_bev', 'render_voxels_iso',
           'render_sequence', 'top_labels', 'iso_pixel', 'save_png', 'save_gif', 'save_mp4',
           'save_frames', 'mp4_available', 'side_by_side', 'tile_rows', 'OccVisualizer',
           'draw_occ_sample', 'occ_animation_frames', 'read_mp4', 'SceneInfo', 'scene_info',
           'draw_frame', 'draw_comparison', 'scene_frames', 'EGO_COLOUR', 'META_KEYS',
           'info_from_meta', 'picture_meta', 'save_scene_pictures', 'unnamed_vocabulary',
           'vocabulary_of']
