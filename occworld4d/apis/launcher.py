"""Multi-process set-up of the tools under torchrun (``tools/dist_train.sh``, ``dist_test.sh``).

With CUDA nothing here changes what mmengine does. Without CUDA (CPU-only torch, or no GPU
visible), mmengine 0.10.7 cannot start a multi-process run by itself:

- its ``pytorch`` launcher (``mmengine.dist.utils._init_dist_pytorch``) calls
  ``torch.cuda.set_device(LOCAL_RANK)`` before it creates the process group;
- ``Runner.wrap_model`` gives DDP ``device_ids=[LOCAL_RANK]``, which DDP refuses for a module on
  the CPU.

Both are configuration of mmengine, not a launcher of our own: ``Runner.setup_env`` creates the
process group only when none exists (``if self.distributed and not is_distributed()``), so on a
CPU the group is created here from torchrun's ``env://`` variables with the config's
``env_cfg.dist_cfg`` (backend ``gloo``: ``nccl`` needs GPUs), and ``model_wrapper_cfg`` asks for
mmengine's ``MMDistributedDataParallel`` with ``device_ids=None`` (the CPU form of DDP).
Everything else -- samplers, hooks, checkpoints, logging -- is mmengine's own code path.

A worker also stops when torchrun dies: ``PR_SET_PDEATHSIG`` sends it SIGTERM (Linux) when its
parent exits, even by ``kill -9``, which torchrun cannot forward (it starts each worker in a
session of its own). SIGTERM during training goes through ``SignalCheckpointHook``: the ranks
finish the iteration, save ``iter_N.pth`` and exit 143. See docs/reliability.md, section 10.
"""
import ctypes
import datetime
import os
import signal
import sys
import warnings

import torch
import torch.distributed as torch_dist

from occworld4d.apis.cli import CLIError

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def under_torchrun() -> bool:
    """True in a worker started by torchrun (torch.distributed.run / elastic agent)."""
    return 'TORCHELASTIC_RUN_ID' in os.environ


def die_with_parent(sig: int = signal.SIGTERM) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent (torchrun) exits.

    Returns whether it is armed. If the parent is already gone (we were re-parented to init),
    exit at once: the group is being torn down."""
    if not sys.platform.startswith('linux'):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() == 1:  # the parent died before prctl took effect
        os.kill(os.getpid(), sig)
    return True


def setup_distributed(cfg, launcher: str) -> None:
    """Prepare ``cfg`` (and the process group on a CPU) for ``launcher``; see the module doc.

    Call after the config is loaded and before the Runner is built."""
    if launcher == 'none':
        return
    if launcher == 'pytorch' and under_torchrun():
        die_with_parent()
    if torch.cuda.is_available():
        return  # mmengine's own path: nccl, DDP with device_ids
    if launcher != 'pytorch':
        # slurm / mpi: mmengine also calls torch.cuda.set_device there; torchrun is the CPU way
        raise CLIError(f'--launcher {launcher} needs CUDA (mmengine sets a CUDA device '
                       'for it); on a CPU run several processes with torchrun: '
                       'bash tools/dist_train.sh CONFIG NPROC (--launcher pytorch)')
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = dict(env_cfg.get('dist_cfg') or {})
    backend = dist_cfg.get('backend', 'nccl')
    if backend == 'nccl':
        dist_cfg['backend'] = 'gloo'
    elif backend != 'gloo':
        warnings.warn(f'env_cfg.dist_cfg.backend={backend!r} on a machine without CUDA; '
                      'gloo is the CPU backend')
    env_cfg['dist_cfg'] = dist_cfg

    wrapper = cfg.get('model_wrapper_cfg')
    if wrapper is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    elif 'DistributedDataParallel' in str(wrapper.get('type', 'MMDistributedDataParallel')):
        wrapper.setdefault('device_ids', None)

    if not torch_dist.is_initialized():
        kwargs = dict(dist_cfg)
        timeout = kwargs.pop('timeout', None)
        if timeout is not None:  # mmengine's convention: seconds
            kwargs['timeout'] = datetime.timedelta(seconds=timeout)
        torch_dist.init_process_group(
            rank=int(os.environ['RANK']), world_size=int(os.environ['WORLD_SIZE']), **kwargs)


def setup_sampling(launcher: str):
    """``(rank, world_size)`` of a sampling tool (``tools/sample.py --launcher``).

    ``'none'``: ``(0, 1)``. ``'pytorch'`` (under torchrun): the worker dies with torchrun
    (:func:`die_with_parent`) and joins a gloo process group from torchrun's ``env://``
    variables, used only for the closing barrier (the ranks share no tensors: each samples its
    own batches, :func:`sample_batches`), so it works the same with and without CUDA."""
    if launcher == 'none':
        return 0, 1
    if launcher != 'pytorch':
        raise CLIError(f'--launcher {launcher}: sampling runs under torchrun only '
                       '(--launcher pytorch): torchrun --nproc_per_node N tools/sample.py ... '
                       '--launcher pytorch')
    missing = [k for k in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')
               if k not in os.environ]
    if missing:
        raise CLIError(f'--launcher pytorch: {", ".join(missing)} not set; start the tool '
                       'with torchrun (python -m torch.distributed.run --nproc_per_node N '
                       'tools/sample.py ... --launcher pytorch)')
    if under_torchrun():
        die_with_parent()
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(backend='gloo', rank=int(os.environ['RANK']),
                                      world_size=int(os.environ['WORLD_SIZE']))
    return torch_dist.get_rank(), torch_dist.get_world_size()


def sample_batches(num_samples: int, batch_size: int, seed: int, rank: int = 0,
                   world_size: int = 1):
    """The batches of a sampling run that ``rank`` of ``world_size`` draws.

    Samples ``0 .. num_samples - 1`` are cut into batches of ``batch_size`` (the last may be
    shorter); batch ``b`` holds samples ``b * batch_size ..`` and is drawn with seed
    ``seed + b``; batch ``b`` goes to rank ``b % world_size``. So the samples depend on
    ``seed`` and ``batch_size`` only, not on the number of processes or on which rank drew
    them. Returns ``[(first_sample_index, count, batch_seed), ...]``."""
    if num_samples < 1 or batch_size < 1:
        raise ValueError(f'num_samples and batch_size must be >= 1, got {num_samples} and '
                         f'{batch_size}')
    if not 0 <= rank < world_size:
        raise ValueError(f'rank {rank} outside world_size {world_size}')
    out = []
    for b, first in enumerate(range(0, num_samples, batch_size)):
        if b % world_size == rank:
            out.append((first, min(batch_size, num_samples - first), seed + b))
    return out
