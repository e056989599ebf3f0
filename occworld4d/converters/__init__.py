"""Checkpoint converters between the reference repositories' layouts and occworld4d's.

:mod:`.common` holds the shared machinery (safe reading, weight selection, invertible key
rules, the full-list key check, atomic writing); one module per method holds its rules.
"""
from .common import (Conversion, ConversionError, GroupRule, KeyRule, TensorTransform,
                     apply_groups, apply_transforms, check_state_dict, convert, model_shapes,
                     occworld4d_weights, prefix_rules, read_checkpoint, rename_state_dict, report,
                     run_cli, save_occworld4d_checkpoint, save_reference_checkpoint,
                     select_weights, shapes_of)

__all__ = ['Conversion', 'ConversionError', 'GroupRule', 'KeyRule', 'TensorTransform',
           'apply_groups', 'apply_transforms', 'check_state_dict', 'convert', 'model_shapes',
           'occworld4d_weights', 'prefix_rules', 'read_checkpoint', 'rename_state_dict',
           'report', 'run_cli', 'save_occworld4d_checkpoint', 'save_reference_checkpoint',
           'select_weights', 'shapes_of']
