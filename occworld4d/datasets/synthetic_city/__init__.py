"""A procedural 4D city: driving sequences of semantic voxels with real structure.

Each sequence is generated from a seed, in three steps, all vectorised numpy:

1. **Ego path** (:func:`ego_path`): the ego drives on the right-hand lane of a road and goes
   straight, turns left or right at an intersection, or waits stopped at it. The path is a
   straight segment, a quarter circle and a straight segment, sampled at the frame rate.
2. **World** (:func:`build_world`): a bird's-eye raster, larger than the grid, around that
   path: a Manhattan road network (the ego's road and crossing road plus random blocks),
   lanes with centre and dashed lane lines, sidewalks with street lights, trees and traffic
   signs, blocks of buildings or parks (terrain, trees, bushes, fences), and agents:
   vehicles that drive along their lanes and pedestrians that walk along the sidewalks,
   with no two agents (nor an agent and the ego) overlapping in any frame.
3. **Frames** (:func:`render_frames`): every frame is rendered in the EGO frame, as in the
   real datasets: the voxel centres of the grid are moved by the ego pose into the world and
   read from the raster (nearest neighbour), so the world scrolls and rotates under the ego.
   A column is ground (one voxel thick) plus up to two static layers (class, bottom, top in
   metres above ground) plus the dynamic layer of that frame. Visibility comes from casting
   BEV rays from the sensor (grid centre) through columns that hold obstacles.

Everything is generated in the canonical vocabulary :data:`CITY_CLASSES` and mapped to any
vocabulary of :mod:`occworld4d.structures.vocabularies` through the tables
:data:`CITY_TO_RAW` (CarlaSC raw 23 classes, Occ3D-nuScenes 18, Occ3D-Waymo 16) and the
named merges of DynamicCity. :class:`SyntheticCityDataset` serves the windows in memory;
``tools/dataset_converters/make_synthetic_city.py`` writes them as real dataset trees.

Modules: :mod:`.classes` (vocabulary, label tables), :mod:`.params` (presets, scenarios,
street parameters), :mod:`.ego` (ego path), :mod:`.world` (static raster), :mod:`.agents`
(traffic), :mod:`.render` (frames, visibility), :mod:`.sequence` (one sequence),
:mod:`.dataset` (the registered dataset). Every name is importable from this package.
"""
from .classes import (BUILDING, CITY_CLASSES, CITY_TO_RAW, FENCE, FREE, PEDESTRIAN, POLE,
                      ROAD, ROADLINE, SIDEWALK, SIGN, TERRAIN, TRUNK, VEGETATION, VEHICLE,
                      city_label_lut)
from .params import PRESETS, SCENARIOS, CityParams, CityPreset
from .ego import Road, ego_path, pose_from_xyyaw
from .world import World, build_world
from .agents import spawn_agents
from .render import _grid_axes, _ray_parents, _visibility, render_frames  # noqa: F401
from .sequence import generate_sequence
from .dataset import SyntheticCityDataset, pack_window

__all__ = ['CITY_CLASSES', 'CITY_TO_RAW', 'FREE', 'ROAD', 'ROADLINE', 'SIDEWALK', 'TERRAIN',
           'BUILDING', 'FENCE', 'VEGETATION', 'TRUNK', 'POLE', 'SIGN', 'VEHICLE', 'PEDESTRIAN',
           'city_label_lut', 'CityPreset', 'PRESETS', 'SCENARIOS', 'CityParams', 'Road',
           'ego_path', 'pose_from_xyyaw', 'World', 'build_world', 'spawn_agents',
           'render_frames', 'generate_sequence', 'SyntheticCityDataset', 'pack_window']
