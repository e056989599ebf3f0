"""Latent diffusion over a frozen scene tokenizer (DynamicCity, OccSora, UniScene stage 2).

Data flow (B batch, T frames, X, Y, Z voxels, K classes)::

    voxels (B, T, X, Y, Z) --tokenizer.encode--> latent (tokenizer-specific: HexPlane planes,
    a 4D token grid, ...) --latent_adapter.to_latent--> x0 (B, C, ...) * latent_scale
    --engine.training_losses(denoiser, x0, cond, mask=valid cells)--> loss_diffusion

    sampling: engine.sample(denoiser, shape, cond, CFG) --/ latent_scale--> adapter.from_latent
    --tokenizer.decode--> logits (B, K, T, X, Y, Z) --argmax--> pred_semantics

The generator knows nothing about HexPlanes: DynamicCity plugs in ``PaddedRollout`` as the
adapter and ``RolloutDiT`` as the denoiser; OccSora / UniScene use another tokenizer and
denoiser and the parameter-free ``GridLatentAdapter`` (identity on their (C, t, h, w) latent
grid; it only maps voxel boxes / frames to latent cells for inpainting) or no adapter at all
(then ``latent_shape`` gives the sample shape).
"""
from typing import Dict, List, Optional, Sequence, Union

import torch
from torch import Tensor

import occworld4d.diffusion  # noqa: F401  (registers the engines in DIFFUSION)
from occworld4d.models.tokenizers.base import FrozenTokenizerModel, attach_predictions
from occworld4d.models.tokenizers.rollout import PLANE_KEYS
from occworld4d.registry import DIFFUSION, MODELS
from occworld4d.structures import OccDataSample

DEFAULT_SAMPLE_CFG = dict(sampler='ddpm', num_steps=None, guidance_scale=4.0, eta=0.0)
# further sample_cfg keys handed to the engine's sample() as they are
ENGINE_SAMPLE_KEYS = ('solver_order', 'start_at_zero_snr', 'clip_x0', 'sampler_options')


def build_engine(cfg: dict):
    """Build a diffusion engine from the DIFFUSION registry.

    ``DIFFUSION.build`` under the Runner's default scope 'occworld4d' switches to the first
    registry of that scope in TASK_UTILS' tree (TASK_UTILS itself, not its DIFFUSION child),
    so the class is looked up here directly.
    """
    if not isinstance(cfg, dict) or 'type' not in cfg:
        return cfg  # an engine object given as is
    args = dict(cfg)
    kind = args.pop('type')
    cls = DIFFUSION.get(kind) if isinstance(kind, str) else kind
    if cls is None:
        raise KeyError(f'diffusion engine {kind!r} is not registered in DIFFUSION')
    return cls(**args)


def rebase_trajectory(traj: Tensor, frame: int) -> Tensor:
    """(B, T, 3) (dx, dy, yaw) relative to frame 0 -> relative to ``frame`` in its axes,
    for frames ``frame`` .. T-1: returns (B, T - frame, 3)."""
    ref = traj[:, frame]  # (B, 3)
    d = traj[:, frame:, :2] - ref[:, None, :2]  # (B, T', 2) in frame 0's axes
    cos, sin = torch.cos(ref[:, 2])[:, None], torch.sin(ref[:, 2])[:, None]  # (B, 1)
    x = cos * d[..., 0] + sin * d[..., 1]  # rotate by -yaw_ref
    y = -sin * d[..., 0] + cos * d[..., 1]
    yaw = traj[:, frame:, 2] - ref[:, 2:3]
    yaw = torch.atan2(torch.sin(yaw), torch.cos(yaw))  # wrap to (-pi, pi]
    return torch.stack([x, y, yaw], dim=-1)


@MODELS.register_module()
class LatentDiffusion(FrozenTokenizerModel):
    """A denoiser trained by the Gaussian-diffusion engine on a frozen tokenizer's latents.

    Args:
        tokenizer: config of the tokenizer (frozen, kept in eval mode).
        denoiser: config of the network ``denoiser(x_t, t, drop=..., **cond)``.
        diffusion: config of the engine in the DIFFUSION registry.
        latent_adapter: optional config of a latent adapter with ``to_latent`` /
            ``from_latent`` (and optionally ``valid_mask()``, ``latent_shape``,
            ``bind(latent_shape, tokenizer)``), e.g. ``PaddedRollout`` (HexPlane canvas) or
            ``GridLatentAdapter`` (token-grid latents; gives the applications of
            :mod:`occworld4d.apis.generation` their voxel <-> latent-cell masks).
        tokenizer_ckpt: stage-1 checkpoint loaded into the tokenizer by :meth:`init_weights`
            (the Runner calls it before training; sampling loads the full checkpoint instead).
        allow_random_tokenizer: train without ``tokenizer_ckpt`` on a random tokenizer
            (otherwise an error; see ``FrozenTokenizerModel``).
        latent_scale: x0 = latent * latent_scale (and / latent_scale before decoding).
        latent_shape: (C, ...) of one latent sample when there is no adapter (with an
            adapter that has a ``latent_shape`` the two must agree).
        condition_keys: condition names read from the inputs and passed to the denoiser;
            default: the denoiser's ``conditions`` attribute (or none).
        cond_drop_prob: probability to drop each condition per sample in training;
            dropped = the denoiser's null embedding (CFG training). A float applies to every
            condition; a dict {name: p} must name every condition key, or give
            ``default=p`` for the ones it does not name (e.g.
            ``dict(hexplane=0.0, default=0.1)``); a condition left unnamed without a default
            is an error (it used to fall back to 0.1 silently).
        sample_cfg: defaults of :meth:`sample`: sampler, num_steps, guidance_scale, eta (and
            the engine's solver_order, start_at_zero_snr, clip_x0, sampler_options when
            given).
        encode_kwargs: extra keyword arguments of ``tokenizer.encode``.
        context_stride: train the ``hexplane`` (previous window) condition from longer
            windows: inputs with T + s frames (T = the adapter's window) are split into the
            previous window (frames 0..T-1, encoded as the condition) and the current one
            (frames s..s+T-1; trajectory re-based to frame s, layout sliced). Match s to the
            sampling stride T - overlap of long sequences. None = no split.
        snap_to_codebook: decode a sample from its nearest codes: each latent vector is
            replaced by the closest entry of the tokenizer's ``quantizer`` codebook
            (``VectorQuantizer.snap``) before ``tokenizer.decode``, so that a VQ decoder sees
            the inputs it was trained on. For VQ tokenizers (OccSora); the reference decodes
            the raw sample (default False). Measured on the OccSora CPU recipe (session 7,
            one checkpoint, 32 samples): it hurts there (TV 0.082 vs 0.044, FID 10.7x vs
            9.3x the floor): the decoder handles the raw samples better than their snap.
        mask_unseen_classes: decode with the logits of the classes that the tokenizer never
            saw in training (its ``seen_classes`` buffer) set to -inf, so that a sample holds
            only classes some training scene held (default False: the references decode all
            classes). A no-op when every class was seen (real data) or the tokenizer
            recorded none; see ``BaseTokenizer``.
        data_preprocessor: config of the data preprocessor.
    """

    def __init__(self, tokenizer: dict, denoiser: dict, diffusion: dict,
                 latent_adapter: Optional[dict] = None, tokenizer_ckpt: Optional[str] = None,
                 latent_scale: float = 1.0, latent_shape: Optional[Sequence[int]] = None,
                 condition_keys: Optional[Sequence[str]] = None,
                 cond_drop_prob: Union[float, Dict[str, float]] = 0.1,
                 sample_cfg: Optional[dict] = None, encode_kwargs: Optional[dict] = None,
                 context_stride: Optional[int] = None, snap_to_codebook: bool = False,
                 mask_unseen_classes: bool = False,
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None,
                 allow_random_tokenizer: bool = False):
        super().__init__(tokenizer, tokenizer_ckpt, data_preprocessor, init_cfg,
                         allow_random_tokenizer=allow_random_tokenizer)
        self.denoiser = MODELS.build(denoiser)
        self.diffusion = build_engine(diffusion)
        self.adapter = MODELS.build(latent_adapter) if latent_adapter is not None else None
        self.latent_scale = float(latent_scale)
        if self.adapter is None and latent_shape is None:
            raise ValueError('LatentDiffusion: without a latent_adapter, give latent_shape '
                             '(C, ...) of one latent sample')
        self._latent_shape = tuple(latent_shape) if latent_shape is not None else None
        if self.adapter is not None and hasattr(self.adapter, 'bind'):
            # e.g. GridLatentAdapter: takes the latent shape (they must agree when both are
            # given) and the voxel height from the generator / tokenizer
            self.adapter.bind(latent_shape=self._latent_shape, tokenizer=self.tokenizer)
        adapter_shape = getattr(self.adapter, 'latent_shape', None)
        if (adapter_shape is not None and self._latent_shape is not None
                and tuple(adapter_shape) != self._latent_shape):
            raise ValueError(f'LatentDiffusion: latent_shape {self._latent_shape} disagrees '
                             f'with the latent adapter\'s latent_shape {tuple(adapter_shape)}')
        if condition_keys is None:
            condition_keys = getattr(self.denoiser, 'conditions', ())
        self.condition_keys = tuple(condition_keys)
        self.cond_drop_prob = self._drop_probs(cond_drop_prob)
        unknown = sorted(set(sample_cfg or {}) - set(DEFAULT_SAMPLE_CFG) - set(ENGINE_SAMPLE_KEYS))
        if unknown:
            raise ValueError(f'LatentDiffusion: unknown sample_cfg keys {unknown}; expected '
                             f'{sorted(DEFAULT_SAMPLE_CFG) + list(ENGINE_SAMPLE_KEYS)}')
        self.sample_cfg = dict(DEFAULT_SAMPLE_CFG, **(sample_cfg or {}))
        self.encode_kwargs = dict(encode_kwargs or {})
        self.context_stride = int(context_stride) if context_stride else None
        self.snap_to_codebook = bool(snap_to_codebook)
        self.mask_unseen_classes = bool(mask_unseen_classes)
        if self.snap_to_codebook and not hasattr(getattr(self.tokenizer, 'quantizer', None),
                                                 'snap'):
            raise ValueError(f'LatentDiffusion: snap_to_codebook needs a tokenizer with a '
                             f'codebook (a quantizer with snap()); '
                             f'{type(self.tokenizer).__name__} has none')

    # -------------------------------------------------------------- set-up
    def _drop_probs(self, cond_drop_prob: Union[float, Dict[str, float]]) -> Dict[str, float]:
        """{condition key: drop probability} from a float or a dict (see the class doc)."""
        if not isinstance(cond_drop_prob, dict):
            probs = {k: cond_drop_prob for k in self.condition_keys}
        else:
            named = {k: v for k, v in cond_drop_prob.items() if k != 'default'}
            unknown = [k for k in named if k not in self.condition_keys]
            if unknown:
                raise ValueError(f'LatentDiffusion: cond_drop_prob names {unknown} that are not '
                                 f'condition keys {self.condition_keys}')
            missing = [k for k in self.condition_keys if k not in named]
            if missing and 'default' not in cond_drop_prob:
                raise ValueError(f'LatentDiffusion: cond_drop_prob {cond_drop_prob} does not name '
                                 f'the condition(s) {missing}; name them or add a "default" '
                                 'key (e.g. default=0.1)')
            probs = {k: named.get(k, cond_drop_prob.get('default')) for k in self.condition_keys}
        for k, p in probs.items():
            if not 0.0 <= float(p) <= 1.0:
                raise ValueError(f'LatentDiffusion: cond_drop_prob of {k!r} is {p}; expected a '
                                 'probability in [0, 1]')
        return {k: float(p) for k, p in probs.items()}

    @property
    def device(self) -> torch.device:
        return next(self.denoiser.parameters()).device

    def latent_shape(self, batch_size: int) -> tuple:
        """(B, C, ...) of a batch of latents x0."""
        if self.adapter is not None:
            shape = getattr(self.adapter, 'latent_shape', None)
            if shape is not None:  # a grid adapter knows its latent
                return (batch_size, *shape)
            S = self.adapter.canvas_size  # PaddedRollout: the HexPlane canvas
            return (batch_size, self.denoiser.in_channels, S, S)
        return (batch_size, *self._latent_shape)

    def valid_mask(self) -> Optional[Tensor]:
        """Bool (1, 1, ...) of the latent cells that hold data (None = all)."""
        if self.adapter is None or not hasattr(self.adapter, 'valid_mask'):
            return None
        return self.adapter.valid_mask(self.device)[None, None]  # (1, 1, S, S)

    # ------------------------------------------------------- latent space
    @torch.no_grad()
    def encode_latent(self, voxels: Tensor) -> Tensor:
        """voxels (B, T, X, Y, Z) int64 -> x0 (B, C, ...) scaled latents."""
        latent = self.tokenizer.encode(voxels, **self.encode_kwargs)
        if self.adapter is not None:
            latent = self.adapter.to_latent(latent)
        return latent.float() * self.latent_scale

    def decode_latent(self, x0: Tensor) -> Tensor:
        """x0 (B, C, ...) scaled latents -> logits (B, K, T, X, Y, Z)."""
        latent = x0 / self.latent_scale
        if self.adapter is not None:
            latent = self.adapter.from_latent(latent)
        if self.snap_to_codebook:
            latent = self.tokenizer.quantizer.snap(latent)
        logits = self.tokenizer.decode(latent)
        support = self.tokenizer.class_support() if self.mask_unseen_classes else None
        if support is not None and not bool(support.all()):
            shape = (1, -1) + (1, ) * (logits.ndim - 2)
            logits = logits.masked_fill(~support.to(logits.device).view(shape),
                                        float('-inf'))
        return logits

    def latents_from_inputs(self, inputs: Dict[str, Tensor]) -> Tensor:
        """x0 (B, C, ...) of a batch, scaled.

        Sources, in order: ``inputs['latent']`` from the latent cache (the tokenizer's own
        output: a dict of tensors such as the six HexPlane planes, or a tensor; a tensor that
        already has the adapter's latent shape is used as is); the six plane keys given
        directly; else ``inputs['voxels']`` encoded by the frozen tokenizer.
        """
        latent = inputs.get('latent')
        if latent is None and self.adapter is not None and all(k in inputs for k in PLANE_KEYS):
            latent = {k: inputs[k] for k in PLANE_KEYS}
        if latent is None:
            if 'voxels' not in inputs:
                raise KeyError(f'LatentDiffusion needs inputs["voxels"], inputs["latent"] or '
                               f'the plane keys {PLANE_KEYS}; got {sorted(inputs)}')
            return self.encode_latent(inputs['voxels'])
        if isinstance(latent, dict):
            latent = {k: v.float().to(self.device) for k, v in latent.items()}
        else:
            latent = latent.float().to(self.device)
        if self.adapter is not None and not (
                torch.is_tensor(latent)
                and tuple(latent.shape[1:]) == self.latent_shape(1)[1:]):
            latent = self.adapter.to_latent(latent)
        return latent * self.latent_scale

    def conditions_from_inputs(self, inputs: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """The denoiser's conditions found in the batch.

        ``hexplane`` (the previous window's latent) comes from ``inputs['hexplane']`` (already
        scaled latent) or is encoded from ``inputs['prev_voxels']`` (B, T, X, Y, Z).
        """
        cond = {}
        for key in self.condition_keys:
            if key in inputs and inputs[key] is not None:
                cond[key] = inputs[key]
            elif key == 'hexplane' and inputs.get('prev_voxels') is not None:
                cond[key] = self.encode_latent(inputs['prev_voxels'])
        return cond

    def split_context(self, inputs: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """(previous, current) windows from inputs of T + context_stride frames.

        Returns the inputs with ``voxels`` = frames s..s+T-1, ``prev_voxels`` = frames
        0..T-1, ``trajectory`` re-expressed relative to frame s in frame s's axes and
        ``layout`` sliced; unchanged when there is no ``context_stride`` or the window already
        has T frames. (``command`` is kept: it describes the longer window.)
        """
        s = self.context_stride
        voxels = inputs.get('voxels')
        T = getattr(self.adapter, 'voxel_shape', None)
        if not s or voxels is None or T is None or voxels.shape[1] == T[0]:
            return inputs
        T = T[0]
        if voxels.shape[1] != T + s:
            raise ValueError(f'LatentDiffusion(context_stride={s}): inputs["voxels"] has '
                             f'{voxels.shape[1]} frames; expected {T} or {T + s} = T + stride')
        out = dict(inputs, voxels=voxels[:, s:s + T], prev_voxels=voxels[:, :T])
        if inputs.get('trajectory') is not None:
            out['trajectory'] = rebase_trajectory(inputs['trajectory'], s)[:, :T]
        if inputs.get('layout') is not None:
            out['layout'] = inputs['layout'][:, s:s + T]
        return out

    # ------------------------------------------------------------- modes
    def forward(self, inputs: Dict[str, Tensor], data_samples: Optional[List[OccDataSample]] = None,
                mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.latents_from_inputs(inputs)
        raise ValueError(f'unknown mode {mode!r}; expected "loss", "predict" or "tensor"')

    def loss(self, inputs: Dict[str, Tensor],
             data_samples: Optional[List[OccDataSample]] = None) -> Dict[str, Tensor]:
        """Diffusion loss on the batch, each condition dropped with its probability."""
        inputs = self.split_context(inputs)
        x0 = self.latents_from_inputs(inputs)  # (B, C, ...)
        B = x0.shape[0]
        cond = self.conditions_from_inputs(inputs)
        drop = {k: torch.rand(B, device=x0.device) < self.cond_drop_prob[k] for k in cond}
        mask = self.valid_mask()
        losses = self.diffusion.training_losses(self.denoiser, x0, cond=dict(cond, drop=drop),
                                                mask=mask, zero_masked_inputs=mask is not None)
        out = dict(loss_diffusion=losses['loss'].mean(), mse=losses['mse'].mean().detach())
        if 'vb' in losses:
            out['vb'] = losses['vb'].mean().detach()
        return out

    @torch.no_grad()
    def predict(self, inputs: Dict[str, Tensor],
                data_samples: Optional[List[OccDataSample]] = None) -> List[OccDataSample]:
        """Sample one scene per batch item with the batch's conditions (and CFG)."""
        voxels = inputs.get('voxels')
        if voxels is not None:
            B = voxels.shape[0]
        elif data_samples is not None:
            B = len(data_samples)
        else:
            raise ValueError('LatentDiffusion.predict: cannot tell the batch size: no '
                             'inputs["voxels"] and no data_samples')
        split = self.split_context(inputs)
        if split is not inputs and data_samples is not None:
            # Score the current window: slice the (T + s)-frame targets and masks to it.
            s, T = self.context_stride, split['voxels'].shape[1]
            for ds in data_samples:
                for key in ('gt_semantics', 'mask_lidar', 'mask_camera', 'mask_infov',
                            'valid_mask'):
                    if key in ds and getattr(ds, key).shape[0] == T + s:
                        ds.set_field(getattr(ds, key)[s:s + T], key)
        cond = self.conditions_from_inputs(split)
        x0 = self.sample(B, cond=cond, x_T=self.initial_noise(split, B))
        pred = self.decode_latent(x0).argmax(1).to(torch.uint8)  # (B, T, X, Y, Z)
        return attach_predictions(pred, split.get('voxels'), data_samples)

    def initial_noise(self, inputs: Dict[str, Tensor], batch_size: int) -> Optional[Tensor]:
        """x_T of :meth:`predict`'s chain: None = standard normal noise drawn by the engine.

        Generation never sees ground truth here; a subclass may override it to reproduce a
        reference's evaluation prior (e.g. UniScene's, off by default).
        """
        return None

    @torch.no_grad()
    def sample(self, batch_size: int, cond: Optional[Dict[str, Tensor]] = None,
               drop: Optional[Dict[str, Tensor]] = None, guidance_scale: Optional[float] = None,
               sampler: Optional[str] = None, num_steps=None, eta: Optional[float] = None,
               known: Optional[Tensor] = None, known_mask: Optional[Tensor] = None,
               resample_jumps: int = 1, resample_steps: int = 1,
               generator: Optional[torch.Generator] = None, progress: bool = False,
               x_T: Optional[Tensor] = None) -> Tensor:
        """Draw latents x0 (B, C, ...) (scaled; decode with :meth:`decode_latent`).

        Args:
            batch_size: B.
            cond: conditions (B, ...) by name; only the given ones guide (CFG drops them
                together in the unconditional half; no conditions = plain sampling).
            drop: optional {name: bool (B,)} to null a condition per sample.
            guidance_scale, sampler, num_steps, eta: override ``sample_cfg``.
            known, known_mask: latent inpainting (True = keep ``known``), see the engine.
            resample_jumps, resample_steps: RePaint resampling for inpainting.
            generator: RNG of the sampler.
            x_T: (B, C, ...) start of the chain (default: noise drawn by the engine).

        ``sample_cfg`` may also set the engine's ``solver_order`` (UniPC),
        ``start_at_zero_snr``, ``clip_x0`` and ``sampler_options`` (keyword arguments of a
        registered sampler's step); they are passed through when given.
        """
        cfg = self.sample_cfg
        cond = {k: v.to(self.device) if torch.is_tensor(v) else v
                for k, v in (cond or {}).items() if v is not None}
        unknown = [k for k in cond if k not in self.condition_keys]
        if unknown:
            raise ValueError(f'LatentDiffusion.sample: conditions {unknown} are not among the '
                             f'model\'s condition keys {self.condition_keys}')
        scale = cfg['guidance_scale'] if guidance_scale is None else guidance_scale
        keys = list(cond)
        if not keys:
            scale = 1.0
        if drop:
            cond['drop'] = drop
        return self.diffusion.sample(
            self.denoiser, self.latent_shape(batch_size), cond=cond,
            sampler=sampler or cfg['sampler'],
            num_steps=cfg['num_steps'] if num_steps is None else num_steps,
            eta=cfg['eta'] if eta is None else eta, guidance_scale=scale,
            guidance_keys=keys or None, known=known, known_mask=known_mask,
            resample_jumps=resample_jumps, resample_steps=resample_steps,
            valid_mask=self.valid_mask(), generator=generator, progress=progress,
            x_T=x_T, device=self.device,
            **{k: cfg[k] for k in ENGINE_SAMPLE_KEYS if cfg.get(k) is not None})
