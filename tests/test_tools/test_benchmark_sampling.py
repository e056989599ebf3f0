import importlib.util
import json
import os.path as osp

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _tool():
    spec = importlib.util.spec_from_file_location(
        'benchmark_sampling', osp.join(ROOT, 'tools/analysis_tools/benchmark_sampling.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_prints_sampling_and_decoding_seconds(capsys):
    _tool().main([osp.join(ROOT, 'configs/dynamiccity/dynamiccity_dit_tiny_synthetic-city.py'),
                  '--steps', '3', '--repeats', '1', '--threads', '1', '--device', 'cpu'])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out['sampler'] == 'dpmpp_2m' and out['steps'] == 3 and out['cfg'] == 4.0
    assert out['conditions'] == ['command', 'trajectory']
    assert out['sample_s'] > 0 and out['decode_s'] > 0
    assert abs(out['total_s'] - out['sample_s'] - out['decode_s']) < 2e-3
