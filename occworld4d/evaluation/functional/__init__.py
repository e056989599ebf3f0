"""Pure metric functions: confusion matrices, IoU conventions, FID / KID / P-R / IS / TC."""
from .generation import (fid, frechet_distance, gaussian_stats, inception_score, kid,
                         knn_radii, mmd2_unbiased, polynomial_kernel, precision_recall,
                         temporal_consistency)
from .iou import (CONVENTIONS, IoUResult, confusion_matrix, confusion_per_step,
                  iou_from_confusion, scored_classes)

__all__ = ['CONVENTIONS', 'IoUResult', 'confusion_matrix', 'confusion_per_step',
           'iou_from_confusion', 'scored_classes', 'fid', 'frechet_distance',
           'gaussian_stats', 'kid', 'mmd2_unbiased', 'polynomial_kernel', 'precision_recall',
           'knn_radii', 'inception_score', 'temporal_consistency']
