from .occ_data_preprocessor import OccDataPreprocessor

__all__ = ['OccDataPreprocessor']
