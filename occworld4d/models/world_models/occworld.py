"""OccWorld: an autoregressive 4D occupancy world model with ego planning.

Data flow (B batch, T frames, X, Y, Z voxels, h, w token map, D code width, K codes)::

    voxels (B, T, X, Y, Z) --frozen tokenizer--> code ids (B, T, h, w) --codebook-->
    tokens (B, T, D, h, w);  trajectory (B, T, 3) --> step displacements (B, T, 2)
    + command one-hot (3) --pose encoder--> pose tokens (B, T, D)

    training (teacher forcing): transformer(tokens[:, :-1], poses[:, :-1])
        -> code logits of frames 1..T-1 (CE against their ids)
        -> pose features --pose decoder--> 3 modes x xy displacement of frames 1..T-1
           (L2 of the accumulated trajectory, mode chosen by the command) x 0.1

    forecasting: H history frames -> F future frames, one at a time: argmax codes and the
        command's mode of the displacement are fed back as the next frame's tokens; the
        transformer's KV cache keeps the past (``use_cache=False`` recomputes the history
        every step; both give the same output) -> tokenizer.decode -> pred_semantics.

Ego conventions. The pose token of frame t carries the step displacement from frame t - 1 to
t in frame t - 1's ego axes (zero for frame 0) and the window's command as a one-hot over
the three modes (right, left, straight; STATIC and FORWARD are straight). The query of frame
t predicts the displacement of frame t + 1. The reference (wzzheng/OccWorld) puts the
displacement *to* frame t + 1 in frame t's token, so its last history token already holds the
first future step; here a frame's token holds only what is known at that frame. Planned
trajectories are the cumulative sums of the step displacements from the last history frame
(OccWorld's convention: heading changes inside the horizon are ignored, for prediction and
ground truth alike).

``ego_convention='reference'`` feeds a converted checkpoint what the reference feeds it
(wzzheng/OccWorld @ 1ee7f77: ``dataset/dataset.py`` ``get_meta_data``, ``model/TransVQVAE.py``
``_get_pose_feature`` / ``forward_autoreg_with_pose`` / ``decode_pose``,
``loss/plan_reg_loss_lidar.py``): per-frame ``inputs['rel_poses']`` (B, T, 2) (row t: the
step *to* frame t + 1 in frame t's LiDAR axes, the infos' ``gt_ego_fut_trajs[0]``) and
``inputs['pose_modes']`` (B, T) (the frame's own ground-truth mode), from
``Occ3DNuScenesDataset(ego_convention='reference')``. Token t = encoder(rel_poses[t],
one-hot(pose_modes[t])); the pose output at t is trained against rel_poses[t + 1] with
mode t + 1 (L2 of each mode's accumulated steps, picked per frame). A forecast from H
history frames encodes rows 0..H-1 (the last already holds the step to frame H), decodes
the step of frame H + k with the ground-truth mode of frame H + k and feeds it back with
that mode; the plan is the accumulated steps H..H+F-1, i.e. the positions of frames
H + 1 .. H + F relative to frame H, against the accumulated ``rel_poses[H:H + F]``.

``future_ego='given'`` (not the reference's) conditions the forecast on the ego plan, the
information the static-world warp baseline has: the pose token of frame t carries the step
*to* frame t + 1 (as the reference's ``rel_poses``, but for every frame of the roll-out, not
only the first future one), so a frame's codes are predicted knowing where the ego will be.
Training reads the steps from the window's trajectory; a forecast needs windows of H + F frames
(their trajectory is the plan; their future voxels are only scored). In OccWorld's transformer
the scene stream never reads the ego branch, so this mode also adds each frame's pose token
to its scene query (``OccWorldTransformer.ego_queries``, no parameters). The planning head is not
used (``pose_loss_weight`` 0 in its configs) and ``pred_ego_trajectory`` is the given plan,
so planning L2 means nothing in this mode.
"""
import time
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from occworld4d.models.tokenizers.base import FrozenTokenizerModel, attach_predictions
from occworld4d.registry import MODELS
from occworld4d.structures import OccDataSample

# Command id (0 STATIC, 1 FORWARD, 2 LEFT, 3 RIGHT) -> trajectory mode (0 right, 1 left,
# 2 straight), VAD's one-hot order.
COMMAND_TO_MODE = (2, 2, 1, 0)
MASK_KEYS = ('mask_lidar', 'mask_camera', 'mask_infov', 'valid_mask')
EGO_CONVENTIONS = ('occworld4d', 'reference')
FUTURE_EGO = ('predicted', 'given')


def step_displacements(trajectory: Tensor) -> Tensor:
    """(B, T, 3) (x, y, yaw) relative to frame 0 -> (B, T, 2) steps in the previous frame's axes.

    Row t = R(-yaw_{t-1}) (p_t - p_{t-1}); row 0 is zero.
    """
    d = trajectory[:, 1:, :2] - trajectory[:, :-1, :2]  # (B, T-1, 2) in frame 0's axes
    yaw = trajectory[:, :-1, 2]  # (B, T-1)
    cos, sin = torch.cos(yaw), torch.sin(yaw)
    x = cos * d[..., 0] + sin * d[..., 1]  # rotate by -yaw_{t-1}
    y = -sin * d[..., 0] + cos * d[..., 1]
    steps = torch.stack([x, y], dim=-1)  # (B, T-1, 2)
    return torch.cat([torch.zeros_like(steps[:, :1]), steps], dim=1)  # (B, T, 2)


def command_modes(command: Tensor, num_modes: int = 3) -> Tensor:
    """(B,) command ids -> (B,) mode ids."""
    if num_modes != 3:
        raise ValueError(f'OccWorld: the command -> mode map has 3 modes, the pose decoder '
                         f'{num_modes}')
    if command.numel() and (int(command.min()) < 0 or int(command.max()) >= len(COMMAND_TO_MODE)):
        raise ValueError(f'OccWorld: command ids must lie in [0, {len(COMMAND_TO_MODE)}) '
                         f'(STATIC, FORWARD, LEFT, RIGHT), got {command.tolist()}')
    return torch.tensor(COMMAND_TO_MODE, device=command.device)[command.long()]


def select_mode(modes_xy: Tensor, mode: Tensor) -> Tensor:
    """(B, L, M, 2) per-mode displacements, (B,) or per-frame (B, L) mode ids -> (B, L, 2)."""
    if mode.ndim == 2:
        idx = mode.long()[:, :, None, None].expand(-1, -1, 1, 2)  # (B, L, 1, 2)
    else:
        idx = mode.view(-1, 1, 1, 1).expand(-1, modes_xy.shape[1], 1, 2)  # (B, L, 1, 2)
    return modes_xy.gather(2, idx).squeeze(2)


def pack_forecast(voxels: Tensor, pred: Tensor, pred_xy: Tensor, steps: Tensor, H: int,
                  seconds: float, data_samples: Optional[List[OccDataSample]] = None,
                  gt_steps: Optional[Tensor] = None) -> List[OccDataSample]:
    """The output contract of every forecaster (:class:`OccWorld`, the baselines).

    Args:
        voxels: (B, T, X, Y, Z) input windows, T = H (history only) or H + F.
        pred: (B, F, X, Y, Z) uint8 forecast frames.
        pred_xy: (B, F, 2) planned ego positions (accumulated steps).
        steps: (B, T, 2) ground-truth ego steps of the windows.
        H: history frames.
        seconds: forecast wall time per window.
        gt_steps: (B, F, 2) ground-truth steps of the plan, accumulated into
            ``gt_ego_trajectory`` (default ``steps[:, H:]``).

    Windows of H + F frames are scored against their last F frames (``gt_semantics`` and the
    masks are sliced to them); windows of H frames get predictions only.
    """
    T = voxels.shape[1]
    future = voxels[:, H:] if T > H else None
    for ds in data_samples or []:  # score the future frames only
        for key in ('gt_semantics',) + MASK_KEYS:
            if key in ds and getattr(ds, key).shape[0] == T:
                if future is None:
                    delattr(ds, key)
                else:
                    ds.set_field(getattr(ds, key)[H:], key)
    samples = attach_predictions(pred, future, data_samples)
    pred_xy = pred_xy.cpu()
    if gt_steps is None:
        gt_steps = steps[:, H:]
    gt_xy = gt_steps.cumsum(1).cpu() if future is not None else None  # (B, F, 2)
    for i, ds in enumerate(samples):
        ds.pred_ego_trajectory = pred_xy[i]
        if gt_xy is not None:
            ds.gt_ego_trajectory = gt_xy[i]
        ds.forecast_seconds = seconds
    return samples


@MODELS.register_module()
class OccWorld(FrozenTokenizerModel):
    """Autoregressive world model on a frozen per-frame VQ tokenizer.

    Args:
        tokenizer: config of the tokenizer (``OccWorldVQVAE``: ``quantize``,
            ``quantizer.get_codebook_entry``, ``decode``); frozen and kept in eval mode.
        transformer: config of :class:`OccWorldTransformer`.
        pose_encoder, pose_decoder: configs of :class:`PoseEncoder` / :class:`PoseDecoder`.
        tokenizer_ckpt: stage-1 checkpoint loaded into the tokenizer by :meth:`init_weights`.
        allow_random_tokenizer: train without ``tokenizer_ckpt`` on a random tokenizer
            (otherwise an error; see ``FrozenTokenizerModel``).
        history_frames: H, frames given to a forecast (5: 2 s at 2 Hz).
        future_frames: F, frames forecast (6: 3 s at 2 Hz).
        pose_loss_weight: weight of the planning L2 (0.1).
        use_cache: forecast with the KV cache (else recompute the history every step).
        ego_convention: ``'occworld4d'`` (default; module docstring) or ``'reference'``
            (the reference's per-frame ``rel_poses`` / ``pose_modes`` inputs, for converted
            checkpoints; test windows of H + F or H + F + 1 frames, as the reference loads).
        future_ego: ``'predicted'`` (default: the model plans its own steps and feeds them
            back) or ``'given'`` (each pose token carries the known step to the next frame:
            a plan-conditioned forecast; module docstring).
        data_preprocessor, init_cfg: as :class:`mmengine.model.BaseModel`.
    """

    def __init__(self, tokenizer: dict, transformer: dict, pose_encoder: dict,
                 pose_decoder: dict, tokenizer_ckpt: Optional[str] = None,
                 history_frames: int = 5, future_frames: int = 6,
                 pose_loss_weight: float = 0.1, use_cache: bool = True,
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None,
                 allow_random_tokenizer: bool = False, ego_convention: str = 'occworld4d',
                 future_ego: str = 'predicted'):
        super().__init__(tokenizer, tokenizer_ckpt, data_preprocessor, init_cfg,
                         allow_random_tokenizer=allow_random_tokenizer)
        self.transformer = MODELS.build(transformer)
        self.pose_encoder = MODELS.build(pose_encoder)
        self.pose_decoder = MODELS.build(pose_decoder)
        self.history_frames, self.future_frames = int(history_frames), int(future_frames)
        if self.history_frames < 1 or self.future_frames < 1:
            raise ValueError(f'OccWorld: history_frames and future_frames must be >= 1, got '
                             f'{history_frames}, {future_frames}')
        if self.history_frames + self.future_frames - 1 > self.transformer.num_frames:
            raise ValueError(
                f'OccWorld: a forecast of {history_frames} + {future_frames} frames feeds '
                f'{history_frames + future_frames - 1} frames to a transformer with '
                f'num_frames={self.transformer.num_frames}')
        self.pose_loss_weight = float(pose_loss_weight)
        self.use_cache = bool(use_cache)
        if ego_convention not in EGO_CONVENTIONS:
            raise ValueError(f'OccWorld: ego_convention must be one of {EGO_CONVENTIONS}, got '
                             f'{ego_convention!r}')
        self.ego_convention = ego_convention
        if future_ego not in FUTURE_EGO:
            raise ValueError(f'OccWorld: future_ego must be one of {FUTURE_EGO}, got '
                             f'{future_ego!r}')
        if future_ego == 'given' and ego_convention == 'reference':
            raise ValueError('OccWorld: future_ego="given" works on the trajectory '
                             '(ego_convention="occworld4d"), not the reference\'s rel_poses')
        self.future_ego = future_ego
        # the scene queries read the pose tokens only when these carry the known next step
        self.transformer.ego_queries = future_ego == 'given'
        self.show_progress = False  # a tqdm bar over the forecast frames (tools/sample.py)
        self.num_modes = self.pose_decoder.num_modes
        code_dim = self.transformer.token_shape[0]
        if getattr(self.tokenizer.quantizer, 'code_dim', code_dim) != code_dim:
            raise ValueError(f'OccWorld: tokenizer code width '
                             f'{self.tokenizer.quantizer.code_dim} != transformer token width '
                             f'{code_dim}')
        if getattr(self.tokenizer.quantizer, 'num_codes', None) not in (
                None, self.transformer.num_codes):
            raise ValueError(f'OccWorld: tokenizer has {self.tokenizer.quantizer.num_codes} '
                             f'codes, the transformer predicts {self.transformer.num_codes}')

    # -------------------------------------------------------------- set-up
    def world_model_parameters(self) -> int:
        """Parameters of the transformer and the pose branch (tokenizer excluded)."""
        return sum(p.numel() for m in (self.transformer, self.pose_encoder, self.pose_decoder)
                   for p in m.parameters())

    # -------------------------------------------------------------- tokens and poses
    @torch.no_grad()
    def tokenize(self, voxels: Tensor) -> Tensor:
        """voxels (B, T, X, Y, Z) -> code ids (B, T, h, w)."""
        return self.tokenizer.encode_to_indices(voxels)

    def codes(self, ids: Tensor) -> Tensor:
        """code ids (B, T, h, w) -> codebook vectors (B, T, D, h, w)."""
        return self.tokenizer.quantizer.get_codebook_entry(ids.flatten(0, 1)).unflatten(
            0, ids.shape[:2])

    def pose_tokens(self, steps: Tensor, mode: Tensor) -> Tensor:
        """steps (B, T, 2), mode (B,) or per-frame (B, T) -> pose tokens (B, T, D)."""
        onehot = F.one_hot(mode.long(), self.num_modes).to(steps)  # (B, M) or (B, T, M)
        if onehot.ndim == 2:
            onehot = onehot[:, None].expand(-1, steps.shape[1], -1)
        return self.pose_encoder(torch.cat([steps, onehot], dim=-1))  # (B, T, D)

    def _ego(self, inputs: Dict[str, Tensor], B: int, T: int, device) -> tuple:
        """(steps (B, T, 2), modes (B,)); with ``ego_convention='reference'`` the
        per-frame ``rel_poses`` (B, T, 2) and ``pose_modes`` (B, T)."""
        if self.ego_convention == 'reference':
            return self._reference_ego(inputs, B, T, device)
        traj = inputs.get('trajectory')
        if traj is None:
            traj = torch.zeros(B, T, 3, device=device)
        if traj.shape[:2] != (B, T) or traj.shape[-1] != 3:
            raise ValueError(f'OccWorld: inputs["trajectory"] must be (B, T, 3) = {(B, T, 3)}, '
                             f'got {tuple(traj.shape)}')
        command = inputs.get('command')
        if command is None:
            command = torch.ones(B, dtype=torch.long, device=device)  # FORWARD
        command = command.reshape(B).to(device)
        return step_displacements(traj.float().to(device)), command_modes(command,
                                                                          self.num_modes)

    def _reference_ego(self, inputs: Dict[str, Tensor], B: int, T: int, device) -> tuple:
        rel, modes = inputs.get('rel_poses'), inputs.get('pose_modes')
        if rel is None or modes is None:
            raise ValueError(
                'OccWorld(ego_convention="reference") needs inputs["rel_poses"] (B, T, 2) and '
                'inputs["pose_modes"] (B, T), the reference\'s per-frame ego inputs; build the '
                'dataset with ego_convention="reference" (Occ3DNuScenesDataset), got keys '
                f'{sorted(inputs)}')
        if tuple(rel.shape) != (B, T, 2) or tuple(modes.shape) != (B, T):
            raise ValueError(f'OccWorld: rel_poses must be {(B, T, 2)} and pose_modes {(B, T)}'
                             f', got {tuple(rel.shape)} and {tuple(modes.shape)}')
        modes = modes.long().to(device)
        if modes.numel() and (int(modes.min()) < 0 or int(modes.max()) >= self.num_modes):
            raise ValueError(f'OccWorld: pose_modes must lie in [0, {self.num_modes}) (right, '
                             f'left, straight), got {modes.tolist()}')
        return rel.float().to(device), modes

    # -------------------------------------------------------------- modes
    def forward(self, inputs: Dict[str, Tensor], data_samples: Optional[List[OccDataSample]] = None,
                mode: str = 'tensor'):
        voxels = inputs.get('voxels')
        if voxels is None or voxels.ndim != 5:
            raise ValueError(f'OccWorld expects inputs["voxels"] of shape (B, T, X, Y, Z), got '
                             f'{None if voxels is None else tuple(voxels.shape)}')
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.teacher_forcing(inputs)[0]
        raise ValueError(f'unknown mode {mode!r}; expected "loss", "predict" or "tensor"')

    def teacher_forcing(self, inputs: Dict[str, Tensor]) -> tuple:
        """Logits (B, T-1, K, h, w) and per-mode steps (B, T-1, M, 2) of frames 1..T-1,
        with the targets: ids (B, T-1, h, w), steps (B, T-1, 2), modes (B,) (reference
        convention: per frame, (B, T-1))."""
        voxels = inputs['voxels']
        B, T = voxels.shape[:2]
        if not 2 <= T <= self.transformer.num_frames + 1:
            raise ValueError(f'OccWorld: training windows need 2..{self.transformer.num_frames + 1}'
                             f' frames (num_frames + 1), got {T}')
        ids = self.tokenize(voxels)  # (B, T, h, w)
        steps, mode = self._ego(inputs, B, T, voxels.device)
        per_frame = mode.ndim == 2  # reference: token t = (rel_poses[t], mode t)
        # given plan: token t carries the step to frame t + 1
        known = steps[:, 1:] if self.future_ego == 'given' else steps[:, :-1]
        logits, pose = self.transformer(
            self.codes(ids[:, :-1]),
            self.pose_tokens(known, mode[:, :-1] if per_frame else mode))
        return (logits, self.pose_decoder(pose), ids[:, 1:], steps[:, 1:],
                mode[:, 1:] if per_frame else mode)

    def loss(self, inputs: Dict[str, Tensor],
             data_samples: Optional[List[OccDataSample]] = None) -> Dict[str, Tensor]:
        """CE on the next frame's codes + 0.1 x L2 of the mode-selected accumulated trajectory."""
        logits, modes_xy, target, steps, mode = self.teacher_forcing(inputs)
        loss_ce = F.cross_entropy(logits.flatten(0, 1), target.flatten(0, 1))
        if mode.ndim == 2:  # reference (PlanRegLossLidar): each mode accumulated, picked per frame
            pred_xy = select_mode(modes_xy.cumsum(1), mode)
        else:
            pred_xy = select_mode(modes_xy, mode).cumsum(1)  # (B, T-1, 2) positions
        gt_xy = steps.cumsum(1)  # (B, T-1, 2)
        l2 = (pred_xy - gt_xy).norm(dim=-1).mean()
        with torch.no_grad():
            acc = (logits.argmax(2) == target).float().mean()
        return dict(loss_ce=loss_ce, loss_plan=self.pose_loss_weight * l2, plan_l2=l2.detach(),
                    code_acc=acc)

    # -------------------------------------------------------------- forecasting
    @torch.no_grad()
    def forecast(self, ids: Tensor, steps: Tensor, mode: Tensor, num_future: int,
                 use_cache: Optional[bool] = None, plan: Optional[Tensor] = None) -> tuple:
        """Roll the world model out from history codes.

        Args:
            ids: (B, H, h, w) code ids of the history frames.
            steps: (B, H, 2) ego step displacements of the history frames.
            mode: (B,) trajectory mode of the command, or per frame (B, H + num_future)
                (reference convention: frame H + k's mode picks and re-encodes its step).
            num_future: F frames to forecast.
            use_cache: KV cache (default: ``self.use_cache``); False recomputes the whole
                history at each step.
            plan: (B, F, 2) the given steps of the future frames (``future_ego='given'``):
                history token t carries step t + 1, future token H + k the plan's step
                k + 1, and the plan is returned as the steps.

        Returns:
            ids (B, F, h, w) of the future frames and their step displacements (B, F, 2).
        """
        use_cache = self.use_cache if use_cache is None else use_cache
        H = ids.shape[1]
        if H + num_future - 1 > self.transformer.num_frames:
            raise ValueError(f'OccWorld.forecast: {H} history + {num_future} future frames need '
                             f'a context of {H + num_future - 1} > num_frames='
                             f'{self.transformer.num_frames}')
        per_frame = mode.ndim == 2
        if per_frame and mode.shape[1] != H + num_future:
            raise ValueError(f'OccWorld.forecast: per-frame modes must cover {H} + {num_future}'
                             f' frames, got {tuple(mode.shape)}')
        if plan is not None and (per_frame or tuple(plan.shape) != (ids.shape[0], num_future, 2)):
            raise ValueError(f'OccWorld.forecast: plan must be (B, {num_future}, 2) with one '
                             f'mode per window, got {tuple(plan.shape)}')
        tokens = self.codes(ids)  # (B, H, D, h, w)
        known = steps if plan is None else torch.cat([steps[:, 1:], plan[:, :1]], dim=1)
        poses = self.pose_tokens(known, mode[:, :H] if per_frame else mode)
        cache = self.transformer.new_cache() if use_cache else None
        new_tokens, new_poses = tokens, poses
        out_ids, out_steps = [], []
        bar = tqdm(total=num_future, desc='forecast', unit='frame',
                   disable=not self.show_progress)
        for k in range(num_future):
            if cache is not None:
                logits, pose = self.transformer.step(new_tokens, new_poses, cache)
            else:
                logits, pose = self.transformer(tokens, poses)
                logits, pose = logits[:, -1], pose[:, -1]  # (B, K, h, w), (B, C)
            nxt = logits.argmax(1)  # (B, h, w)
            mode_k = mode[:, H + k:H + k + 1] if per_frame else mode
            step = select_mode(self.pose_decoder(pose)[:, None], mode_k)  # (B, 1, 2)
            if plan is not None:
                step = plan[:, k:k + 1]
            out_ids.append(nxt)
            out_steps.append(step[:, 0])
            bar.update(1)
            if k == num_future - 1:
                break
            new_tokens = self.codes(nxt[:, None])  # (B, 1, D, h, w)
            # given plan: frame H + k's token carries the step to frame H + k + 1
            new_poses = self.pose_tokens(step if plan is None else plan[:, k + 1:k + 2],
                                         mode_k)  # (B, 1, D)
            if cache is None:
                tokens = torch.cat([tokens, new_tokens], dim=1)
                poses = torch.cat([poses, new_poses], dim=1)
        bar.close()
        return torch.stack(out_ids, 1), torch.stack(out_steps, 1)

    @torch.no_grad()
    def predict(self, inputs: Dict[str, Tensor],
                data_samples: Optional[List[OccDataSample]] = None) -> List[OccDataSample]:
        """Forecast F frames from the first H of each window.

        Windows of H + F frames are scored against their last F frames (``gt_semantics``
        and masks are sliced to them); windows of H frames only get predictions. Each sample
        gets ``pred_semantics`` (F, X, Y, Z), ``pred_ego_trajectory`` (F, 2) (metres, from
        the last history frame), ``gt_ego_trajectory`` (F, 2) when the window has the future,
        and ``forecast_seconds`` (its share of the batch's wall time: encode, roll out,
        decode).
        """
        voxels = inputs['voxels']
        B, T, X, Y = voxels.shape[:4]
        H, Fu = self.history_frames, self.future_frames
        reference = self.ego_convention == 'reference'
        allowed = (H, H + Fu, H + Fu + 1) if reference else (H, H + Fu)
        if T not in allowed:
            raise ValueError(f'OccWorld.predict: windows must have {" or ".join(map(str, allowed))}'
                             f' frames (history_frames={H}, future_frames={Fu}), got {T} (set '
                             f'the test dataset\'s num_frames to {allowed[-1]})')
        steps, mode = self._ego(inputs, B, T, voxels.device)
        gt_steps = None
        if self.future_ego == 'given' and T != H + Fu:
            raise ValueError(f'OccWorld(future_ego="given").predict: windows must have H + F = '
                             f'{H + Fu} frames (the trajectory of the future frames is the '
                             f'plan), got {T}')
        if reference:
            if T == H + Fu + 1:  # the reference's window: its last frame feeds no forecast
                voxels, steps, mode = voxels[:, :-1], steps[:, :-1], mode[:, :-1]
                _drop_last_frame(data_samples, T)
                T -= 1
            if T == H:  # no future modes known: the last history frame's mode
                mode = torch.cat([mode, mode[:, -1:].expand(-1, Fu)], dim=1)
            else:
                gt_steps = steps[:, H:]
        sync = voxels.is_cuda
        if sync:
            torch.cuda.synchronize(voxels.device)
        t0 = time.perf_counter()
        ids = self.tokenize(voxels[:, :H])  # (B, H, h, w)
        plan = steps[:, H:] if self.future_ego == 'given' else None
        fut_ids, fut_steps = self.forecast(ids, steps[:, :H], mode, Fu, plan=plan)
        logits = self.tokenizer.decode_indices(fut_ids, size=(X, Y))  # (B, K, F, X, Y, Z)
        pred = logits.argmax(1).to(torch.uint8)  # (B, F, X, Y, Z)
        if sync:
            torch.cuda.synchronize(voxels.device)
        seconds = (time.perf_counter() - t0) / B
        return pack_forecast(voxels, pred, fut_steps.cumsum(1), steps, H, seconds, data_samples,
                             gt_steps=gt_steps)


def _drop_last_frame(data_samples: Optional[List[OccDataSample]], T: int) -> None:
    """Cut the per-frame fields of T-frame samples to their first T - 1 frames."""
    for ds in data_samples or []:
        for key in ('gt_semantics', 'ego_poses', 'trajectory', 'rel_poses',
                    'pose_modes') + MASK_KEYS:
            if key in ds and getattr(ds, key).shape[0] == T:
                ds.set_field(getattr(ds, key)[:T - 1], key)
