import json
import os.path as osp

from helpers import ROOT, load_tool


def test_prints_sampling_and_decoding_seconds(capsys):
    tool = load_tool('tools/analysis_tools/benchmark_sampling.py')
    tool.main([osp.join(ROOT, 'configs/dynamiccity/dynamiccity_dit_tiny_synthetic-city.py'),
               '--steps', '3', '--repeats', '1', '--threads', '1', '--device', 'cpu'])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out['sampler'] == 'dpmpp_2m' and out['steps'] == 3 and out['cfg'] == 4.0
    assert out['conditions'] == ['command', 'trajectory']
    assert out['sample_s'] > 0 and out['decode_s'] > 0
    assert abs(out['total_s'] - out['sample_s'] - out['decode_s']) < 2e-3
