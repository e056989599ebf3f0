"""Generation inferencer: build a generator from a config, load a checkpoint, run one of the
applications of :mod:`occworld4d.apis.generation`, write npz + renders.

Example::

    inf = OccGenerationInferencer('configs/dynamiccity/dynamiccity_dit_tiny_synthetic-city.py',
                                  'work_dirs/x/epoch_1.pth')
    result = inf('trajectory', trajectory='left', seed=0)
    inf.save(result, 'outputs/left')
"""
import os
import os.path as osp
from typing import Dict, List, Optional, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner.checkpoint import _load_checkpoint, load_state_dict
from mmengine.utils import import_modules_from_strings

from occworld4d.registry import INFERENCERS, MODELS
from occworld4d.utils import save_npz_atomic

from . import generation as G

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
    missing = sorted(expected - set(state))
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
        palette: vocabulary name or (K, 3) colours for the renders (default: the config's
            ``vis_palette`` if any, else a palette of distinct colours).
        free_label: class id of free space (default: config ``free_label`` or 0).
        cfg_options: overrides merged into the config.
    """

    def __init__(self, model, checkpoint: Optional[str] = None, device: str = 'cpu',
                 palette=None, free_label: Optional[int] = None,
                 cfg_options: Optional[dict] = None):
        cfg = None
        if isinstance(model, (str, Config)):
            cfg = Config.fromfile(model) if isinstance(model, str) else model
            model = load_generator(cfg, checkpoint, device, cfg_options)
        self.model = model.eval()
        self.palette = palette if palette is not None else (cfg or {}).get('vis_palette')
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

    def save(self, result: Dict[str, object], out_dir: str, render: bool = True,
             extra: Optional[Dict[str, np.ndarray]] = None,
             first_index: int = 0) -> List[str]:
        """Write ``sample_{i}.npz`` (key ``semantics``, uint8 (T, X, Y, Z), plus the ``extra``
        arrays: ``tools/sample.py`` records the ``vocabulary`` and ``pc_range``) and, when the
        visualization package is available, ``sample_{i}_bev.png`` (frame 0) and
        ``sample_{i}.gif`` (all frames) for every sample, ``i`` counting from ``first_index``
        (a batch of a larger run: tools/sample.py --batch-size / --launcher). Returns the
        written paths."""
        os.makedirs(out_dir, exist_ok=True)
        paths = []
        sem = np.asarray(result['semantics'], dtype=np.uint8)
        for i, s in enumerate(sem, first_index):
            path = osp.join(out_dir, f'sample_{i}.npz')
            save_npz_atomic(path, semantics=s, task=np.array(result['task']), **(extra or {}))
            paths.append(path)
        if not render:
            return paths
        try:
            from occworld4d.visualization import render_bev, save_gif, save_png
        except ImportError as err:  # the visualization package may not be there yet
            print(f'note: renders skipped ({err})')
            return paths
        palette = self.palette
        if palette is None:
            k = max(int(sem.max()) + 1, self.free_label + 1)
            rng = np.random.default_rng(0)
            palette = rng.integers(40, 255, (k, 3)).astype(np.uint8)
        for i, s in enumerate(sem, first_index):
            frames = [render_bev(f, palette=palette, free_label=self.free_label, scale=4)
                      for f in s]
            paths.append(save_png(frames[0], osp.join(out_dir, f'sample_{i}_bev.png')))
            paths.append(save_gif(frames, osp.join(out_dir, f'sample_{i}.gif')))
        return paths
