"""Shared pieces of the inference rows of ``benchmark_vs_reference.py``: the rows, how each
side's whole time is made up, and the row lines (standard library only: the driver process
loads neither side; the timing itself is the tool's ``measure_parts``)."""

# Inference rows (kind sample / forecast / codec, no grad; 'model': the training kind whose
# config / builder they reuse). Samplers: (name, steps of the whole sampling).
OURS_SAMPLER = ('dpmpp_2m', 25)  # benchmark_sampling.py's default: DPM-Solver++ 2M, 25 steps
INFERENCE_ROWS = {
    'sample_25_steps_cfg_uniscene': dict(
        ref='UniScene', kind='sample', model='dit', frames=5, grid=(200, 200, 16),
        latent=(4, 5, 50, 50), cfg=4.0, ours_sampler=OURS_SAMPLER, ref_sampler=('ddim', 50),
        small=dict(frames=1, latent=(4, 1, 50, 50)),  # the OccDiT's 625 tokens a frame
        tiny=dict(frames=2, grid=(32, 32, 16), latent=(4, 2, 8, 8))),
    'sample_25_steps_cfg_dynamiccity': dict(
        ref='DynamicCity', kind='sample', model='dit', frames=16, grid=(128, 128, 8),
        latent=(16, 76, 76), cfg=4.0, ours_sampler=OURS_SAMPLER, ref_sampler=('ddpm', 1000),
        small=dict(frames=8, grid=(32, 32, 8), latent=(16, 24, 24))),
    'sample_25_steps_cfg_occsora': dict(  # batch 1 (the reference's hard-coded batch 2 is
        # the doubled CFG batch); small: the DiT's only latent, the decode on a crop of it
        ref='OccSora', kind='sample', model='dit', frames=32, grid=(200, 200, 16),
        latent=(128, 4, 25, 25), cfg=4.0, ours_sampler=OURS_SAMPLER, ref_sampler=('ddpm', 1000),
        small=dict(decode_latent=(128, 1, 8, 8)), tiny=dict(latent=(128, 1, 5, 5))),
    'forecast_rollout': dict(ref='OccWorld', kind='forecast', model='wm', frames=11, history=5,
                             grid=(200, 200, 16), small=dict(grid=(64, 64, 16)),
                             tiny=dict(frames=7, grid=(32, 32, 16))),
    'tokenizer_encode_decode_uniscene': dict(
        ref='UniScene', kind='codec', model='vae', frames=5, grid=(200, 200, 16),
        small=dict(frames=2, grid=(64, 64, 16)), tiny=dict(frames=2, grid=(32, 32, 16))),
    'tokenizer_encode_decode_occworld': dict(
        ref='OccWorld', kind='codec', model='vqvae', frames=5, grid=(200, 200, 16),
        small=dict(grid=(64, 64, 16)), tiny=dict(frames=2, grid=(32, 32, 16))),
}
INFERENCE_KINDS = ('sample', 'forecast', 'codec')
# Names of issue 16's table that stand for their variants (rows named NAME_<reference>).
ROW_GROUPS = ('sample_25_steps_cfg', 'tokenizer_encode_decode')
NOT_BUILT = ()
TIMED_STEPS = 2  # solver steps timed per sampling loop (each side's own loop; the DiT
# codebases' respacing cannot make a 1-step DDPM chain)
KIND_TIME_TARGET = dict(sample=5.0)  # issue 16: sampling >= 5x the reference sampler


def inference_detail(kind: str, res: dict) -> str:
    """How the whole inference time of a side is made up (printed and stored)."""
    p = res['parts']
    if kind == 'sample':
        loop, dec = p['loop'], p['decode']
        return (f'{res["steps"]} {res["sampler"]} steps x {loop["sec_per_unit"]:.3f} s (network '
                f'batch {res["network_batch"]}; timed {loop["timed_units"]} steps) + decode '
                f'{dec["sec"]:.2f} s = {res["sec_per_iter"]:.2f} s a scene (estimate)')
    if kind == 'forecast':
        return (f'{res["history"]} -> {res["future"]} frames in {res["sec_per_iter"]:.2f} s '
                f'(whole forecast timed) = {res["fps"]:.3f} FPS')
    return f'encode {p["encode"]["sec"]:.2f} s + decode {p["decode"]["sec"]:.2f} s'


def extra_line(s: dict) -> str:
    """Inference rows: the step counts and per-step ratio (sampling), FPS (forecast)."""
    if 'steps' in s:
        st, sp = s['steps'], s['samplers']
        return (f'\n    sampling: ours {st["ours"]} {sp["ours"]} steps, reference '
                f'{st["reference"]} {sp["reference"]} steps ({st["reference"] / st["ours"]:.1f}x '
                f'the steps); per-step time ratio {s["per_step_time_ratio"]:.2f} (ours '
                f'{s["sec_per_step"]["ours"]:.3f} s, reference '
                f'{s["sec_per_step"]["reference"]:.3f} s a step); whole = steps x per-step '
                '+ decode (estimate)')
    if 'fps' in s:
        return (f'\n    forecast: ours {s["fps"]["ours"]:.3f} FPS, reference '
                f'{s["fps"]["reference"]:.3f} FPS')
    return ''
