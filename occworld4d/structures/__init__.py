from .errors import DataFormatError
from .occ_data_sample import OccDataSample
from .vocabularies import (COMMANDS, MERGES, VOCABULARIES, Vocabulary, get_merge,
                           get_vocabulary)

__all__ = ['DataFormatError', 'OccDataSample', 'Vocabulary', 'VOCABULARIES', 'MERGES', 'COMMANDS',
           'get_vocabulary', 'get_merge']
