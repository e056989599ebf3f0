"""Class colours for rendered camera maps: the project palette with a black free label."""
import numpy as np

from occworld4d.structures.vocabularies import get_vocabulary
from occworld4d.visualization.palettes import get_palette as project_palette


def get_palette(vocabulary: str) -> np.ndarray:
    """(K, 3) uint8 colours of a vocabulary's labels; the free label is black here.

    Black (no return) is the natural background of a rendered camera map. Every other
    row is :func:`occworld4d.visualization.palettes.get_palette`'s.
    """
    voc = get_vocabulary(vocabulary)
    pal = np.array(project_palette(vocabulary), dtype=np.uint8)  # (K, 3)
    pal[voc.free_label] = (0, 0, 0)
    return pal


def colorize(labels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) image of an integer label map (H, W); labels beyond the palette are grey."""
    labels = np.asarray(labels).astype(np.int64)
    pal = np.concatenate([palette, np.full((1, 3), 128, np.uint8)])  # last row: unknown
    return pal[np.where((labels >= 0) & (labels < len(palette)), labels, len(palette))]
