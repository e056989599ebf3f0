"""Time conditioned scene generation of a latent-diffusion config: sampling + decoding.

Builds the generator of CONFIG (random weights, or --checkpoint), draws one batch of scenes
with the given sampler, step count and classifier-free guidance (a LEFT command and a
left-turn trajectory as conditions when the denoiser takes them), decodes them with the
tokenizer and prints the seconds of each phase (median of --repeats) as a JSON line.

    python tools/analysis_tools/benchmark_sampling.py \
        configs/dynamiccity/dynamiccity_dit_8xb16-1200e_carlasc.py --sampler dpmpp_2m --steps 25 --cfg 4

--checkpoint loads safely (torch.load weights_only=True with mmengine's checkpoint types
allow-listed, or a .safetensors state dict); --trust-checkpoint (or trust_checkpoint = True in
the config) allows a full pickle, which can run code: only for files you trust
(docs/reliability.md, section 1).
"""
import argparse
import json
import statistics

import torch
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint

import occworld4d  # noqa: F401
from occworld4d.apis.cli import (CLIError, DictAction, HelpFormatter, add_device_argument,
                                 resolve_device, add_trust_checkpoint_argument,
                                 apply_trust_checkpoint, check_checkpoint, checkpoint_errors,
                                 load_config, resolve_checkpoint_arg)
from occworld4d.apis.generation import trajectory_preset
from occworld4d.evaluation.benchmark import MemoryProbe, time_iterations
from occworld4d.registry import MODELS


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=HelpFormatter)
    p.add_argument('config')
    p.add_argument('--checkpoint', help='generator checkpoint or a work dir (its latest '
                   'checkpoint; default: random weights)')
    p.add_argument('--sampler', default='dpmpp_2m',
                   choices=['ddpm', 'ddim', 'dpmpp_2m', 'dpmpp_3m', 'unipc'])
    p.add_argument('--steps', type=int, default=25)
    p.add_argument('--cfg', type=float, default=4.0, help='guidance scale (1 = no CFG)')
    p.add_argument('--batch-size', type=int, default=1)
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--threads', type=int, default=2)
    add_device_argument(p)
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    add_trust_checkpoint_argument(p)
    args = p.parse_args(argv)
    args.device = resolve_device(args.device)
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config, args.cfg_options)
    apply_trust_checkpoint(args, cfg)
    model_cfg = cfg.model.copy()
    model_cfg['tokenizer_ckpt'] = None
    init_default_scope('occworld4d')
    model = MODELS.build(model_cfg)
    if not callable(getattr(model, 'sample', None)) or not hasattr(model, 'decode_latent'):
        raise CLIError(f'{args.config}: model {type(model).__name__} is not a latent generator')
    if args.checkpoint:
        args.checkpoint = resolve_checkpoint_arg(args.checkpoint, '--checkpoint')
        check_checkpoint(args.checkpoint)
        try:  # the safe loader (docs/reliability.md); refused / unreadable: one error line
            load_checkpoint(model, args.checkpoint, map_location='cpu', strict=True,
                            revise_keys=[(r'^module\.', '')])
        except checkpoint_errors() as err:
            raise CLIError(str(err)) from err
        except RuntimeError as err:
            lines = [line for line in str(err).splitlines() if line.strip()][:6]
            raise CLIError(f'checkpoint {args.checkpoint!r} does not match the model of '
                           f'{args.config}:\n  ' + '\n  '.join(lines)) from err
    model.to(args.device).eval()

    B = args.batch_size
    T = model.adapter.voxel_shape[0] if getattr(model, 'adapter', None) is not None else None
    cond = {}
    keys = getattr(model, 'condition_keys', ())
    if 'command' in keys:
        cond['command'] = torch.full((B, ), 2, dtype=torch.long, device=args.device)  # LEFT
    if 'trajectory' in keys and T:
        traj = torch.as_tensor(trajectory_preset('left', T), dtype=torch.float32)
        cond['trajectory'] = traj[None].repeat(B, 1, 1).to(args.device)

    device = torch.device(args.device)
    probe = MemoryProbe(device)
    probe.start()
    with torch.no_grad():
        def draw():
            return model.sample(B, cond=cond, sampler=args.sampler, num_steps=args.steps,
                                guidance_scale=args.cfg)
        t_sample = time_iterations(draw, args.repeats, warmup=1, device=device)
        x0 = draw()
        t_decode = time_iterations(lambda: model.decode_latent(x0).argmax(1), args.repeats,
                                   warmup=1, device=device)
    s, d = statistics.median(t_sample), statistics.median(t_decode)
    print(json.dumps(dict(config=args.config, device=args.device, threads=args.threads,
                          batch_size=B, sampler=args.sampler, steps=args.steps, cfg=args.cfg,
                          conditions=sorted(cond), sample_s=round(s, 3),
                          decode_s=round(d, 3), total_s=round(s + d, 3),
                          memory=probe.peak())))


if __name__ == '__main__':
    main()
