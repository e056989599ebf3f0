"""`make demo` (tools/demo.py) end to end at a smoke size: every CLI step runs, the pictures are
written and the final printout carries the statistics line next to the val split's. The real
sizes are measured in docs/learning.md ("make demo"), not here."""
import os.path as osp
import subprocess
import sys

from helpers import ROOT


def test_demo_runs_every_step_and_prints_the_statistics(tmp_path):
    out = tmp_path / 'demo'
    proc = subprocess.run(
        [sys.executable, 'tools/demo.py', '--out', str(out), '--vae-iters', '2',
         '--dit-iters', '2', '--num-samples', '1', '--train-scenes', '8', '--sample-steps', '3'],
        cwd=ROOT, capture_output=True, text=True, env=dict(__import__('os').environ,
                                                           OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = proc.stdout
    tail = text[text.index('demo finished in'):]
    for step in ('vae', 'vae_test', 'cache', 'dit', 'sample', 'pictures', 'stats'):
        assert f'{step} ' in tail.split('\n')[0], tail.split('\n')[0]
    assert 'VAE reconstruction on the synthetic-city val split: dynamiccity@valid_mask/mIoU' in tail
    stats = [line for line in tail.splitlines() if line.startswith('stats: ')]
    assert len(stats) == 1 and 'TV ' in stats[0] and 'change rate' in stats[0]
    assert 'layout mIoU' in stats[0]  # the condition of the default (UniScene) pipeline
    assert '| freq building |' in tail  # class frequencies, samples next to val
    gifs = list((out / 'pictures').glob('*.gif'))
    assert len(gifs) == 1 and osp.getsize(gifs[0]) > 1000
    assert (out / 'sample_stats.json').is_file() and (out / 'vae_test_metrics.json').is_file()
    assert len(list((out / 'latents').glob('*.npz'))) == 8  # --train-scenes reached the cache
