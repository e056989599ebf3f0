"""occworld4d.converters.common: invertible key rules, weight selection, the full-list key
check, safe reading and atomic writing."""
import argparse

import pytest
import torch

from occworld4d.converters import (Conversion, ConversionError, KeyRule, TensorTransform,
                                   check_state_dict, convert, prefix_rules, read_checkpoint,
                                   rename_state_dict, save_occworld4d_checkpoint, select_weights)


def test_key_rule_templates_and_inverse():
    rule = KeyRule('blocks.{i}.attn.{rest*}', 'layers.{i}.sa.{rest*}')
    assert rule.apply('blocks.3.attn.qkv.weight') == 'layers.3.sa.qkv.weight'
    assert rule.inverted().apply('layers.3.sa.qkv.weight') == 'blocks.3.attn.qkv.weight'
    assert rule.apply('x.blocks.3.attn.qkv') is None  # whole-key match only
    assert KeyRule('a.{i}.w', 'b.{i}.w').apply('a.1.2.w') is None  # {i}: one segment
    with pytest.raises(ValueError, match='same placeholders'):
        KeyRule('a.{i}', 'b.{j}')
    assert prefix_rules([('enc.', 'encoder.')])[0].apply('enc.conv.0.bias') == \
        'encoder.conv.0.bias'


def test_first_rule_wins_and_unknown_keys_are_all_listed():
    rules = [KeyRule('a.special', 'x.special'), KeyRule('a.{k}', 'y.{k}')]
    state = {'a.special': torch.zeros(1), 'a.b': torch.zeros(1)}
    assert sorted(rename_state_dict(state, rules, 'f.pth')) == ['x.special', 'y.b']
    with pytest.raises(ConversionError) as err:
        rename_state_dict({'a.b': torch.zeros(1), 'q.r': torch.zeros(1), 'q.s': torch.zeros(1)},
                          rules, 'f.pth')
    msg = str(err.value)
    assert msg.startswith('f.pth: 2 key(s)') and 'q.r' in msg and 'q.s' in msg
    with pytest.raises(ConversionError, match='mapped twice'):
        rename_state_dict({'a.b': torch.zeros(1), 'c.b': torch.zeros(1)},
                          [KeyRule('a.b', 'z.b'), KeyRule('c.b', 'z.b')], 'f.pth')


def test_convert_round_trip_with_transform_drop_and_extra():
    conv = Conversion(
        rules=(KeyRule('ref.{i}.weight', 'ours.{i}.weight'),),
        transforms=(TensorTransform('ours.{i}.weight', lambda t: t.flatten(1),
                                    lambda t: t.unflatten(1, (2, 1, 1))),),
        drop_src=('ref.buffer',),
        extra_src=(('ref.buffer', lambda ours: torch.arange(3.0)),))
    src = {'ref.0.weight': torch.randn(4, 2, 1, 1), 'ref.buffer': torch.arange(3.0)}
    ours = convert(src, conv, 'f.pth')
    assert list(ours) == ['ours.0.weight'] and ours['ours.0.weight'].shape == (4, 2)
    back = convert(ours, conv, 'g.pth', reverse=True)
    assert sorted(back) == sorted(src)
    assert all(torch.equal(back[k], src[k]) for k in src)


def test_check_state_dict_lists_missing_unexpected_and_shapes():
    expected = {'a': (2,), 'b': (3,), 'c': (1,)}
    check_state_dict({'a': torch.zeros(2), 'b': torch.zeros(3), 'c': torch.zeros(1)}, expected,
                     'f.pth', 'ours')
    with pytest.raises(ConversionError) as err:
        check_state_dict({'a': torch.zeros(5), 'd': torch.zeros(1)}, expected, 'f.pth', 'ours')
    msg = str(err.value)
    assert 'f.pth does not convert to ours' in msg
    assert '2 missing key(s)' in msg and '    b' in msg and '    c' in msg
    assert '1 unexpected key(s)' in msg and '    d' in msg
    assert 'a: (5,) (expected (2,))' in msg


def test_select_weights():
    sd = {'w': torch.ones(1)}
    dit = {'model': {'w': torch.zeros(1)}, 'ema': sd, 'opt': {}, 'args': None}
    assert select_weights(dit, 'f') == (sd, 'ema')  # EMA by default, as the references sample
    assert select_weights(dit, 'f', 'model')[1] == 'model'
    assert select_weights({'state_dict': {'module.w': torch.ones(1)}, 'epoch': 3}, 'f')[0] \
        .keys() == {'w'}
    assert select_weights(sd, 'f') == (sd, '<root>')
    with pytest.raises(ConversionError, match="f: no 'ema' entry"):
        select_weights({'state_dict': sd}, 'f', 'ema')
    with pytest.raises(ConversionError, match='no weights found'):
        select_weights({'epoch': 1}, 'f')
    with pytest.raises(ConversionError, match='non-tensor'):
        select_weights({'state_dict': {'w': 1}}, 'f')


def test_read_checkpoint_safe_and_clear_errors(tmp_path):
    good = tmp_path / 'dit.pt'
    torch.save({'model': {'w': torch.ones(2)}, 'ema': {'w': torch.ones(2)}, 'opt': {},
                'args': argparse.Namespace(model='DiT-XL/2', lr=1e-4)}, good)
    ckpt = read_checkpoint(str(good))  # argparse.Namespace is allowed by the safe loader
    assert ckpt['args'].model == 'DiT-XL/2'
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(good.read_bytes()[:200])
    for path in (truncated, tmp_path / 'missing.pth'):
        with pytest.raises(ConversionError) as err:
            read_checkpoint(str(path))
        assert str(path) in str(err.value) and '\n' not in str(err.value)
    text = tmp_path / 'config.py'
    text.write_text('model = dict()\n')
    with pytest.raises(ConversionError, match='not a file written by torch.save'):
        read_checkpoint(str(text))
    empty = tmp_path / 'empty.pth'
    empty.write_bytes(b'')
    with pytest.raises(ConversionError, match='empty'):
        read_checkpoint(str(empty))
    with pytest.raises(ConversionError, match='truncated or corrupt'):
        read_checkpoint(str(truncated))


class _Evil:
    def __reduce__(self):
        return (print, ('pwned',))


def test_read_checkpoint_refuses_code(tmp_path):
    bad = tmp_path / 'bad.pth'
    torch.save({'state_dict': {}, 'x': _Evil()}, bad)
    with pytest.raises(ConversionError, match='refused by the safe loader'):
        read_checkpoint(str(bad))


def test_save_is_loadable_strictly_by_mmengine(tmp_path):
    from mmengine.runner.checkpoint import load_checkpoint
    model = torch.nn.Linear(2, 3)
    dst = tmp_path / 'out.pth'
    save_occworld4d_checkpoint(model.state_dict(), str(dst), {'converted_from': 'x'})
    assert sorted(p.name for p in tmp_path.iterdir()) == ['out.pth']  # no temporary left
    other = torch.nn.Linear(2, 3)
    load_checkpoint(other, str(dst), map_location='cpu', strict=True)
    assert torch.equal(other.weight, model.weight)
    assert torch.load(dst, weights_only=True)['meta'] == {'converted_from': 'x'}


def test_group_rule_fuse_split_round_trip_and_incomplete():
    from occworld4d.converters import GroupRule
    fuse = GroupRule(('{p}.q', '{p}.k', '{p}.v'), ('{p}.qkv',),
                     lambda ts: [torch.cat(ts)], lambda ts: list(ts[0].chunk(3)))
    conv = Conversion(rules=(KeyRule('{p}.o', '{p}.o'),), groups=(fuse,),
                      extra_dst=(('buf', lambda ref: torch.zeros(2)),), drop_dst=('buf',))
    src = {f'a.{n}': torch.full((1, 2), float(i)) for i, n in enumerate('qkv')}
    src['a.o'] = torch.ones(1)
    ours = convert(src, conv, 'f.pth')
    assert sorted(ours) == ['a.o', 'a.qkv', 'buf']
    assert ours['a.qkv'][:, 0].tolist() == [0.0, 1.0, 2.0]
    back = convert(ours, conv, 'g.pth', reverse=True)
    assert sorted(back) == sorted(src) and all(torch.equal(back[k], src[k]) for k in src)
    with pytest.raises(ConversionError, match=r'incomplete fused/split weights'):
        convert({'a.q': torch.ones(1), 'a.k': torch.ones(1)}, conv, 'f.pth')
