"""Write rendered images (PNG, GIF, optional MP4) atomically and lay them out side by side."""
import os.path as osp
from typing import List, Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw

from occworld4d.utils import atomic_path


def _check_image(img, name: str = 'image') -> np.ndarray:
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] not in (3, 4) or img.dtype != np.uint8:
        raise ValueError(f'{name} must be uint8 (H, W, 3|4); got {img.dtype} {img.shape}')
    return img


def save_png(image: np.ndarray, path: str) -> str:
    """Write an uint8 (H, W, 3) image as PNG (temp file, then rename). Returns ``path``."""
    img = _check_image(image)
    with atomic_path(path) as tmp:
        Image.fromarray(img).save(tmp, format='PNG')
    return path


def _to_palette(img: np.ndarray) -> Image.Image:
    """A 'P' image: exact when the frame has at most 256 colours (class colours, flat text),
    else a fast octree quantization (PIL's default median cut takes ~1 s per large frame)."""
    rgb = Image.fromarray(np.ascontiguousarray(img[..., :3]))
    colours = rgb.getcolors(256)  # None beyond 256 colours
    if colours is None:
        return rgb.quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    flat = [v for _, c in colours for v in c]
    pal = Image.new('P', (1, 1))
    pal.putpalette(flat + [0] * (768 - len(flat)))
    return rgb.quantize(palette=pal, dither=Image.Dither.NONE)


def save_gif(frames: Sequence[np.ndarray], path: str, fps: float = 4.0, loop: int = 0) -> str:
    """Write frames (each uint8 (H, W, 3), same size) as an animated GIF."""
    if len(frames) == 0:
        raise ValueError(f'save_gif({path!r}) got no frames')
    imgs = [_to_palette(_check_image(f, f'frame {i}')) for i, f in enumerate(frames)]
    sizes = {im.size for im in imgs}
    if len(sizes) != 1:
        raise ValueError(f'all GIF frames must have one size; got {sorted(sizes)}')
    with atomic_path(path) as tmp:
        imgs[0].save(tmp, format='GIF', save_all=True, append_images=imgs[1:],
                     duration=int(round(1000 / fps)), loop=loop)
    return path


def mp4_available() -> bool:
    """True when ``imageio-ffmpeg`` (the ffmpeg binary it ships) can be imported."""
    try:
        import imageio_ffmpeg  # noqa: F401  (local: MP4 output only; a missing package is False)
    except ImportError:
        return False
    return True


def save_mp4(frames: Sequence[np.ndarray], path: str, fps: float = 4.0) -> str:
    """Write frames as an H.264 MP4 (yuv420p, plays everywhere) with ``imageio-ffmpeg``."""
    if len(frames) == 0:
        raise ValueError(f'save_mp4({path!r}) got no frames; expected at least one uint8 '
                         '(H, W, 3) image')
    frames = [_check_image(f, f'frame {i}')[..., :3] for i, f in enumerate(frames)]
    sizes = sorted({f.shape[:2] for f in frames})
    if len(sizes) != 1:
        raise ValueError(f'save_mp4({path!r}): all frames must have one size; got {sizes}')
    if not mp4_available():
        raise ImportError('MP4 output needs `pip install imageio-ffmpeg` (requirements/'
                          'runtime.txt); use a .gif path instead')
    import imageio_ffmpeg  # local: see mp4_available
    # yuv420p needs even sizes: pad the last row / column
    h, w = frames[0].shape[:2]
    frames = [np.ascontiguousarray(np.pad(f, ((0, h % 2), (0, w % 2), (0, 0)), mode='edge'))
              for f in frames]
    with atomic_path(path) as tmp:
        writer = imageio_ffmpeg.write_frames(
            tmp, (w + w % 2, h + h % 2), fps=fps, codec='libx264', pix_fmt_in='rgb24',
            pix_fmt_out='yuv420p', macro_block_size=1, quality=8,
            ffmpeg_log_level='error')
        writer.send(None)  # start ffmpeg
        for f in frames:
            writer.send(f)
        writer.close()
    return path


def read_mp4(path: str) -> List[np.ndarray]:
    """Decode an MP4 back to uint8 (H, W, 3) frames (``imageio-ffmpeg``)."""
    import imageio_ffmpeg  # local: see mp4_available
    reader = imageio_ffmpeg.read_frames(path, pix_fmt='rgb24')
    meta = reader.__next__()
    w, h = meta['size']
    return [np.frombuffer(buf, np.uint8).reshape(h, w, 3) for buf in reader]


def save_frames(frames: Sequence[np.ndarray], path: str, fps: float = 4.0) -> str:
    """Dispatch on the extension: .gif, .mp4, or .png (frames tiled in one row)."""
    ext = osp.splitext(path)[1].lower()
    if ext == '.gif':
        return save_gif(frames, path, fps)
    if ext == '.mp4':
        return save_mp4(frames, path, fps)
    if ext == '.png':
        return save_png(side_by_side(list(frames)), path)
    raise ValueError(f'unsupported output {path!r}; expected .png, .gif or .mp4')


def side_by_side(images: Sequence[np.ndarray], titles: Optional[Sequence[str]] = None,
                 gap: int = 4, background=(255, 255, 255), title_height: int = 14) -> np.ndarray:
    """Place images left to right (top-aligned), with an optional title strip above each.

    Args:
        images: uint8 (H_i, W_i, 3) images.
        titles: one string per image (or None).
        gap: pixels between images.

    Returns:
        uint8 (max H_i [+ title_height], sum W_i + gap * (n - 1), 3).
    """
    imgs = [_check_image(im, f'images[{i}]')[..., :3] for i, im in enumerate(images)]
    if not imgs:
        raise ValueError('side_by_side got no images')
    if titles is not None and len(titles) != len(imgs):
        raise ValueError(f'got {len(titles)} titles for {len(imgs)} images')
    top = title_height if titles else 0
    H = max(im.shape[0] for im in imgs) + top
    W = sum(im.shape[1] for im in imgs) + gap * (len(imgs) - 1)
    out = np.empty((H, W, 3), dtype=np.uint8)
    out[:] = background
    x = 0
    for im in imgs:
        out[top:top + im.shape[0], x:x + im.shape[1]] = im
        x += im.shape[1] + gap
    if titles:
        canvas = Image.fromarray(out)
        draw = ImageDraw.Draw(canvas)
        x = 0
        for im, title in zip(imgs, titles):
            draw.text((x + 2, 1), str(title), fill=(0, 0, 0))
            x += im.shape[1] + gap
        out = np.asarray(canvas).copy()
    return out


def tile_rows(rows: List[List[np.ndarray]], row_titles: Optional[Sequence[str]] = None,
              gap: int = 4) -> np.ndarray:
    """Stack rows of images (each row laid out by :func:`side_by_side`) top to bottom."""
    strips = [side_by_side(r, [f'{row_titles[i]}' if j == 0 else '' for j in range(len(r))]
                           if row_titles else None, gap=gap) for i, r in enumerate(rows)]
    W = max(s.shape[1] for s in strips)
    strips = [np.pad(s, ((0, gap), (0, W - s.shape[1]), (0, 0)), constant_values=255)
              for s in strips]
    return np.concatenate(strips, axis=0)[:-gap] if gap else np.concatenate(strips, axis=0)
