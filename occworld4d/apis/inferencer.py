"""Generation inferencer: build a generator from a config, load a checkpoint, run one of the
applications of :mod:`occworld4d.apis.generation`, write npz + renders.

Example::

    inf = OccGenerationInferencer('configs/dynamiccity/dynamiccity_dit_tiny_synthetic-city.py',
                                  'work_dirs/x/epoch_1.pth')
    result = inf('trajectory', trajectory='left', seed=0)
    inf.save(result, 'outputs/left')
"""
import contextlib
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner.checkpoint import _load_checkpoint, load_state_dict
from mmengine.utils import import_modules_from_strings

from occworld4d.datasets.synthetic_city import PRESETS
from occworld4d.models.tokenizers.base import filled_on_load
from occworld4d.registry import DATASETS, INFERENCERS, MODELS
from occworld4d.structures import VOCABULARIES, get_vocabulary
from occworld4d.utils import save_npz_atomic
from occworld4d.visualization import (info_from_meta, picture_meta, save_scene_pictures,
                                      unnamed_vocabulary)

from . import generation as G

def _dataset_cfg(cfg) -> dict:
    """The test (else val, else train) dataset config, unwrapped one level (wrappers)."""
    for key in ('test_dataloader', 'val_dataloader', 'train_dataloader'):
        ds = (cfg.get(key) or {}).get('dataset')
        if ds:
            for inner in ('dataset', 'source'):
                if isinstance(ds.get(inner), dict) and ds[inner].get('type'):
                    ds = ds[inner]
            return ds
    return {}


def config_picture_meta(cfg, grid_shape: Sequence[int]) -> Dict[str, np.ndarray]:
    """What an npz of this config's scenes records for the pictures (see
    :func:`occworld4d.visualization.picture_meta`): the ``vocabulary`` (config
    ``vocabulary`` / ``vis_palette`` / the dataset's), its ``class_names`` / ``free_label``,
    the grid's ``pc_range`` (config, dataset config, synthetic-city preset or the dataset
    class's ``METAINFO``), ``voxel_size`` = range / ``grid_shape`` and ``frame_rate`` (config
    or dataset config ``frame_rate``, or the synthetic-city preset's) when known."""
    cfg = cfg or {}
    ds = _dataset_cfg(cfg) if hasattr(cfg, 'get') else {}
    voc = next((v for v in (cfg.get('vocabulary'), cfg.get('vis_palette'), ds.get('vocabulary'))
                if isinstance(v, str) and v in VOCABULARIES), None)
    pc_range, rate = cfg.get('pc_range') or ds.get('pc_range'), cfg.get('frame_rate') or \
        ds.get('frame_rate')
    kind = ds.get('type')
    if kind == 'SyntheticCityDataset':
        preset = PRESETS.get(ds.get('preset', 'carlasc'))
        if preset is not None:
            pc_range, rate = pc_range or preset.pc_range, rate or preset.frame_rate
            voc = voc or ds.get('vocabulary') or preset.vocabulary
    elif pc_range is None and isinstance(kind, str):
        try:
            pc_range = getattr(DATASETS.get(kind), 'METAINFO', {}).get('pc_range')
        except Exception:  # noqa: BLE001 - an unregistered / custom type: no range known
            pc_range = None
    return picture_meta(voc, pc_range, None, rate, grid_shape)


def autocast_context(device, enabled: bool = True, dtype: torch.dtype = torch.bfloat16):
    """Mixed-precision inference (``--amp`` of tools/sample.py): ``torch.autocast`` on the
    device's type (bf16 by default; convolutions and matmuls in bf16, reductions and norms in
    fp32), or a no-op context when ``enabled`` is False. The diffusion engine casts every
    denoiser output back to the latents' dtype, so the sampler's arithmetic stays fp32
    (docs/benchmarks.md gives the measured agreement with fp32 sampling)."""
    if not enabled:
        return contextlib.nullcontext()
    kind = torch.device(device).type
    if kind not in ('cpu', 'cuda'):
        raise ValueError(f'autocast_context: mixed precision on {kind!r} devices is not '
                         'supported (cpu or cuda)')
    return torch.autocast(device_type=kind, dtype=dtype)


TASKS = ('uncond', 'command', 'trajectory', 'layout', 'continue', 'long', 'inpaint',
         'outpaint', 'single-frame')


class CheckpointMismatchError(RuntimeError):
    """The checkpoint's parameter names do not match the model built from the config."""


def load_generator_checkpoint(model: torch.nn.Module, path: str) -> None:
    """Load ``path`` strictly into ``model``, with a clear message on a key mismatch.

    Uses ``state_dict`` of an mmengine checkpoint (with EMAHook these are the EMA weights).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint {path!r} does not exist')
    ckpt = _load_checkpoint(path, map_location='cpu')
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else ckpt
    state = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}
    expected = set(model.state_dict())
    missing = sorted(k for k in expected - set(state) if not filled_on_load(k))
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        raise CheckpointMismatchError(
            f'checkpoint {path!r} does not match the model: {len(missing)} missing key(s) '
            f'(first: {missing[:5]}), {len(unexpected)} unexpected key(s) (first: '
            f'{unexpected[:5]}). Is it a checkpoint of this config?')
    load_state_dict(model, state, strict=True)


def load_generator(config: Union[str, Config], checkpoint: Optional[str] = None,
                   device: str = 'cpu', cfg_options: Optional[dict] = None) -> torch.nn.Module:
    """Build ``cfg.model`` in the occworld4d scope (honouring ``custom_imports``), load the
    checkpoint (strict) and return the model in eval mode on ``device``."""
    cfg = Config.fromfile(config) if isinstance(config, str) else config
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg['custom_imports'])
    model_cfg = cfg.model.copy()
    if checkpoint is not None:
        model_cfg.pop('tokenizer_ckpt', None)  # the full checkpoint holds the tokenizer too
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'occworld4d')):
        model = MODELS.build(model_cfg)
    if checkpoint is not None:
        load_generator_checkpoint(model, checkpoint)
    return model.to(device).eval()


@INFERENCERS.register_module()
class OccGenerationInferencer:
    """Run a generation application and save its outputs.

    Args:
        model: a built generator, or a config path / Config.
        checkpoint: checkpoint to load when ``model`` is a config.
        device: torch device.
        palette: vocabulary name of the pictures and of the npz's ``vocabulary`` (default:
            the config's, see :func:`config_picture_meta`; without one the pictures name
            the labels ``class k``).
        free_label: class id of free space (default: config ``free_label`` or 0).
        cfg_options: overrides merged into the config.
        config: the config of a built ``model`` (for the npz metadata and the pictures).
        amp: sample under bf16 autocast (:func:`autocast_context`; default fp32).
    """

    def __init__(self, model, checkpoint: Optional[str] = None, device: str = 'cpu',
                 palette=None, free_label: Optional[int] = None,
                 cfg_options: Optional[dict] = None, config: Optional[Config] = None,
                 amp: bool = False):
        cfg = config
        if isinstance(model, (str, Config)):
            cfg = Config.fromfile(model) if isinstance(model, str) else model
            model = load_generator(cfg, checkpoint, device, cfg_options)
        self.model = model.eval()
        self.cfg = cfg
        self.amp = bool(amp)
        if palette is not None and not isinstance(palette, str):
            raise ValueError('OccGenerationInferencer: palette must be a vocabulary name (one '
                             'of occworld4d.structures.VOCABULARIES), got '
                             f'{type(palette).__name__}')
        if palette is not None:
            try:
                get_vocabulary(palette)
            except KeyError as err:
                raise ValueError(f'OccGenerationInferencer: palette: {err.args[0]}') from None
        self.palette = palette
        self.free_label = free_label if free_label is not None else int(
            (cfg or {}).get('free_label', 0))

    def __call__(self, task: str, num_samples: int = 1, seed: Optional[int] = None,
                 command=None, trajectory=None, layout=None, voxels=None,
                 region=None, shift=(0, 0), num_frames: Optional[int] = None,
                 overlap: Optional[int] = None,
                 **sample_kwargs) -> Dict[str, object]:
        """Run one task; returns dict(task, semantics uint8 (N, T, X, Y, Z) numpy, known
        bool (T, X, Y, Z) or None = the given voxels kept exactly).

        ``overlap`` (frames shared by chained windows of continue / long) defaults to the
        latent adapter's ``default_overlap`` (grid latents: the smallest overlap that keeps a
        latent time slice known), else 4 (DynamicCity's HexPlane).
        """
        if task not in TASKS:
            raise ValueError(f'unknown task {task!r}; expected one of {TASKS}')
        with autocast_context(G.model_device(self.model), self.amp):
            return self._run(task, num_samples, seed, command, trajectory, layout, voxels,
                             region, shift, num_frames, overlap, sample_kwargs)

    def _run(self, task, num_samples, seed, command, trajectory, layout, voxels, region,
             shift, num_frames, overlap, sample_kwargs) -> Dict[str, object]:
        m = self.model
        if seed is not None:
            torch.manual_seed(seed)
            sample_kwargs['generator'] = torch.Generator(m.device).manual_seed(seed)
        T = self._num_frames()
        if overlap is None:
            overlap = getattr(getattr(m, 'adapter', None), 'default_overlap', 4)
        if trajectory is not None and not isinstance(trajectory, np.ndarray):
            trajectory = G.load_trajectory(trajectory, T)
        need_input = {'continue', 'inpaint', 'outpaint', 'single-frame'}
        if task in need_input and voxels is None:
            raise ValueError(f'task {task!r} needs input voxels (--input NPZ)')
        if task == 'layout' and layout is None:
            raise ValueError('task "layout" needs a layout (an npz with key "layout")')

        def cond():  # the given conditions, batched (inpaint / outpaint / single-frame)
            return G._cond(m, num_samples, command, trajectory, layout)

        if task in ('uncond', 'command', 'trajectory', 'layout'):
            if task == 'command' and command is None:
                raise ValueError('task "command" needs a command (e.g. LEFT)')
            if task == 'trajectory' and trajectory is None:
                raise ValueError('task "trajectory" needs a trajectory (file or preset)')
            sem = G.generate(m, num_samples, command=command, trajectory=trajectory,
                             layout=layout, **sample_kwargs)
        elif task == 'long':
            sem = G.generate_long(m, num_frames or 8 * T, first_window=voxels, overlap=overlap,
                                  num_samples=num_samples, command=command,
                                  trajectory=trajectory, layout=layout, **sample_kwargs)
        elif task == 'continue':
            sem = G.continue_scene(m, voxels, num_frames, overlap=overlap,
                                   num_samples=num_samples, command=command,
                                   trajectory=trajectory, layout=layout, **sample_kwargs)
        elif task == 'inpaint':
            if region is None:
                raise ValueError('task "inpaint" needs a region x0 x1 y0 y1 z0 z1 [t0 t1]')
            sem = G.inpaint(m, voxels, region, num_samples, cond=cond(), **sample_kwargs)
        elif task == 'outpaint':
            sem = G.outpaint(m, voxels, shift, self.free_label, num_samples, cond=cond(),
                             **sample_kwargs)
        else:  # single-frame
            v = np.asarray(voxels)
            sem = G.single_frame(m, v[0] if v.ndim == 4 else v, num_samples, cond=cond(),
                                 **sample_kwargs)
        return dict(task=task, semantics=sem.numpy())

    def _num_frames(self) -> int:
        shape = getattr(self.model.adapter, 'voxel_shape', None)
        if shape is not None:
            return int(shape[0])
        return int(getattr(self.model.denoiser, 'num_frames', 16))

    def picture_meta(self, grid_shape: Sequence[int],
                     extra: Optional[Dict[str, np.ndarray]] = None) -> Dict[str, np.ndarray]:
        """The npz keys that describe the scene for a later tool (vocabulary, class names,
        free label, grid range, voxel size, frame rate): the config's, the ``palette``
        vocabulary, then ``extra`` (wins)."""
        meta = config_picture_meta(self.cfg, grid_shape) if self.cfg is not None else {}
        if self.palette is not None:
            meta.update(picture_meta(self.palette))
        meta.update({k: np.asarray(v) for k, v in (extra or {}).items()})
        if 'pc_range' in meta and 'voxel_size' not in meta:
            meta.update(picture_meta(None, meta['pc_range'], None, None, grid_shape))
        return meta

    def save(self, result: Dict[str, object], out_dir: str, render: bool = True,
             extra: Optional[Dict[str, np.ndarray]] = None,
             first_index: int = 0, mode: str = 'bev') -> List[str]:
        """Write ``sample_{i}.npz`` (key ``semantics``, uint8 (T, X, Y, Z), with what a later
        tool needs to draw it without the config: ``vocabulary`` / ``class_names`` /
        ``free_label``, ``pc_range`` / ``voxel_size``, ``frame_rate`` when known (see
        :meth:`picture_meta`), plus the ``extra`` arrays) and the pictures of
        ``tools/visualize.py`` (:func:`occworld4d.visualization.save_scene_pictures`:
        legend, scale bar, ego marker, frame index and time): ``sample_{i}_bev.png`` (frame
        0) and ``sample_{i}.gif`` (all frames), ``i`` counting from ``first_index`` (a batch
        of a larger run: tools/sample.py --batch-size / --launcher). Returns the paths."""
        os.makedirs(out_dir, exist_ok=True)
        paths = []
        sem = np.asarray(result['semantics'], dtype=np.uint8)
        meta = self.picture_meta(sem.shape[-3:], extra)
        if 'vocabulary' not in meta and 'class_names' not in meta:  # 'class k' names
            meta.update(picture_meta(unnamed_vocabulary(
                max(int(sem.max()) + 1, self.free_label + 1), self.free_label)))
        for i, s in enumerate(sem, first_index):
            path = osp.join(out_dir, f'sample_{i}.npz')
            save_npz_atomic(path, semantics=s, task=np.array(result['task']), **meta)
            paths.append(path)
        if not render:
            return paths
        info = info_from_meta(meta, sem.shape[-3:])
        for i, s in enumerate(sem, first_index):
            paths += save_scene_pictures(s, info, osp.join(out_dir, f'sample_{i}'), mode,
                                         title=f'sample_{i}.npz')
        return paths
