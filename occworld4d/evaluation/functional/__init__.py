"""Pure metric functions: confusion matrices, IoU conventions, FID / KID / P-R / IS / TC,
scene statistics (class frequencies, change rate, memorisation, command recovery)."""
from .generation import (fid, frechet_distance, gaussian_stats, inception_score, kid,
                         knn_radii, mmd2_unbiased, polynomial_kernel, precision_recall,
                         temporal_consistency)
from .iou import (CONVENTIONS, IoUResult, confusion_matrix, confusion_per_step,
                  iou_from_confusion, scored_classes)
from .scene_stats import (change_rate, class_counts, class_frequencies, command_from_motion,
                          dynamic_classes, frame_change_rates, integrate_steps, memorisation,
                          recover_commands, register_frames, static_classes, total_variation)

__all__ = ['CONVENTIONS', 'IoUResult', 'confusion_matrix', 'confusion_per_step',
           'iou_from_confusion', 'scored_classes', 'fid', 'frechet_distance',
           'gaussian_stats', 'kid', 'mmd2_unbiased', 'polynomial_kernel', 'precision_recall',
           'knn_radii', 'inception_score', 'temporal_consistency', 'class_counts',
           'class_frequencies', 'total_variation', 'frame_change_rates', 'change_rate',
           'memorisation', 'static_classes', 'dynamic_classes', 'register_frames',
           'integrate_steps', 'command_from_motion', 'recover_commands']
