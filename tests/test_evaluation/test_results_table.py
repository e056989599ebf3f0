"""tools/analysis_tools/results_table.py: metrics JSON files -> markdown table + commands."""
import importlib.util
import json
import os.path as osp

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _tool():
    spec = importlib.util.spec_from_file_location(
        'results_table', osp.join(ROOT, 'tools/analysis_tools/results_table.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def files(tmp_path):
    vae = dict({'dynamiccity@valid_mask/mIoU': 0.2391, 'dynamiccity@valid_mask/IoU': 0.5,
                'dynamiccity@valid_mask/IoU_road': 0.81234},
               _command='python tools/test.py configs/x_vae.py a.pth --out vae.json',
               _config='configs/dynamiccity/x_vae.py')
    gen = {'gen3d@abc/FID': 12.3456, 'gen3d@abc/precision': 0.5, 'gen3d@abc/IS': float('nan')}
    paths = []
    for name, data in (('vae.json', vae), ('gen.json', gen)):
        (tmp_path / name).write_text(json.dumps(data))
        paths.append(str(tmp_path / name))
    return paths


def test_table_rows_columns_and_commands(files, tmp_path):
    tool = _tool()
    out = tmp_path / 'table.md'
    table = tool.main([files[0], '--keys', 'mIoU', 'IoU', 'IoU_road', '--percent', '--out',
                       str(out)])
    assert out.read_text() == table
    lines = table.splitlines()
    assert lines[0] == '| model | mIoU (%) | IoU (%) | IoU_road (%) |'
    assert lines[1] == '|---|---|---|---|'
    assert lines[2] == '| x_vae [1] | 23.91 | 50.00 | 81.23 |'
    assert lines[4] == '[1] `python tools/test.py configs/x_vae.py a.pth --out vae.json`'
    # all keys of both files; missing values '-'; a file without provenance says so
    table = tool.build_table(files, names=['VAE', 'DiT'], digits=3)
    rows = table.splitlines()
    assert rows[0].startswith('| model | dynamiccity@valid_mask/mIoU |')
    assert rows[0].endswith('gen3d@abc/FID | gen3d@abc/precision | gen3d@abc/IS |')
    assert rows[2] == '| VAE [1] | 0.239 | 0.500 | 0.812 | - | - | - |'
    assert rows[3] == '| DiT [2] | - | - | - | 12.346 | 0.500 | nan |'
    assert rows[6].startswith('[2] ') and 'no command recorded' in rows[6]


def test_errors_are_one_clear_message(files, tmp_path, capsys):
    tool = _tool()
    for argv, msg in (([str(tmp_path / 'none.json')], 'does not exist'),
                      ([files[0], '--keys', 'FID'], "match no metric"),
                      ([files[0], '--keys', 'IoU_', '--names', 'a', 'b'], '2 --names for 1')):
        with pytest.raises(SystemExit) as err:
            tool.main(argv)
        assert err.value.code == 2 and msg in capsys.readouterr().err
    (tmp_path / 'list.json').write_text('[1, 2]')
    with pytest.raises(SystemExit):
        tool.main([str(tmp_path / 'list.json')])
    assert 'expected an object' in capsys.readouterr().err
