"""Classifier-free guidance in one batched forward, and the RePaint step schedule."""
from collections import defaultdict
from typing import Callable, List, Optional, Sequence, Tuple

import torch


def _duplicate(value, batch: int):
    """[value; value] along the batch: tensors and length-B lists; anything else as is."""
    if torch.is_tensor(value) and value.ndim > 0 and value.shape[0] == batch:
        return torch.cat([value, value])
    if isinstance(value, (list, tuple)) and len(value) == batch:
        return type(value)(list(value) + list(value))
    return value


class ClassifierFreeGuidance:
    """Wrap a denoiser so one call returns the guided output.

    With scale s != 1 the network runs ONCE on the doubled batch
    ``model(cat([x, x]), cat([t, t]), **{k: cat([c, c])}, drop={k: cat([d_k, ones(B)])})``
    where ``d_k`` is the caller's own ``drop[k]`` (default zeros) for every guided key ``k``;
    the first C output channels are combined as pred_u + s (pred_c - pred_u) and the
    learned-variance channels (if any) come from the conditional half.

    Args:
        model: ``model(x_t, t, **cond) -> (B, C or 2C, ...)``.
        cond: the conditions (B, ...); may hold ``drop``.
        scale: the guidance scale s (1 = plain conditional call).
        keys: conditions dropped in the unconditional half; default every key of ``cond``.
    """

    def __init__(self, model: Callable, cond: Optional[dict] = None, scale: float = 1.0,
                 keys: Optional[Sequence[str]] = None):
        self.model = model
        self.cond = dict(cond or {})
        self.scale = float(scale)
        names = [k for k in self.cond if k != 'drop']
        self.keys = list(names if keys is None else keys)
        if self.scale != 1.0:
            missing = [k for k in self.keys if k not in names]
            if missing or not self.keys:
                raise ValueError(f'ClassifierFreeGuidance: guidance_keys {self.keys} must be '
                                 f'a non-empty subset of the condition keys {names}')
        self.calls = 0  # network calls made (one per guided step)

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.scale == 1.0:
            return self.model(x, t, **self.cond)
        batch, channels = x.shape[:2]
        user_drop = dict(self.cond.get('drop') or {})
        doubled = {k: _duplicate(v, batch) for k, v in self.cond.items() if k != 'drop'}
        drop = {k: _duplicate(v, batch) for k, v in user_drop.items()}
        for key in self.keys:
            first = user_drop.get(key)
            if first is None:
                first = torch.zeros(batch, dtype=torch.bool, device=x.device)
            drop[key] = torch.cat([first.to(x.device, torch.bool),
                                   torch.ones(batch, dtype=torch.bool, device=x.device)])
        out = self.model(torch.cat([x, x]), torch.cat([t, t]), **doubled, drop=drop)
        out = out.to(x.dtype)  # under autocast (a bf16 network) the mix stays in x's dtype
        out_c, out_u = out[:batch], out[batch:]  # (B, C or 2C, ...) each
        guided = out_u[:, :channels] + self.scale * (out_c[:, :channels] - out_u[:, :channels])
        if out.shape[1] > channels:
            guided = torch.cat([guided, out_c[:, channels:]], dim=1)
        return guided


def repaint_moves(num_steps: int, jump_length: int = 1,
                  jump_n_sample: int = 1) -> List[Tuple[str, int, int]]:
    """The walk over chain positions K-1 .. 0 with RePaint resampling.

    Each move is ``('down', i, i - 1)`` (one denoising step from position i; i - 1 = -1 is
    the clean sample) or ``('up', i, i + jump_length)`` (re-noise back up the chain). Every
    block of ``jump_length`` down-steps is traversed ``jump_n_sample`` times in all.

    Args:
        num_steps: K, positions of the sampling chain.
        jump_length: j, steps per block (RePaint's jump length).
        jump_n_sample: r, passes per block (1 = plain sampling, no up-moves).
    """
    if jump_length < 1 or jump_n_sample < 1:
        raise ValueError(f'repaint_moves: resample_steps and resample_jumps must be >= 1, '
                         f'found {jump_length} and {jump_n_sample}')
    moves, pos, done = [], num_steps - 1, defaultdict(int)
    while pos >= 0:
        moves.append(('down', pos, pos - 1))
        pos -= 1
        if (pos >= 0 and (num_steps - 1 - pos) % jump_length == 0
                and done[pos] < jump_n_sample - 1):
            done[pos] += 1
            moves.append(('up', pos, pos + jump_length))
            pos += jump_length
    return moves
