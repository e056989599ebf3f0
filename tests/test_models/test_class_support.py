"""Tokenizers record the classes of their training targets (``seen_classes``); a generator
with ``mask_unseen_classes=True`` never decodes a class that no training batch held; old
checkpoints (no buffer) load strictly as all classes seen."""
import os.path as osp
import sys

import torch

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'test_apis'))
from tiny_models import VOXELS, tiny_model_cfg  # noqa: E402

import occworld4d.diffusion  # noqa: E402,F401  (registers the engine)
from occworld4d.registry import MODELS  # noqa: E402


def test_training_batches_fill_seen_classes_and_ignore_labels():
    tok = MODELS.build(dict(type='TinyHexTokenizer', num_classes=3))
    assert tok.class_support() is None  # nothing recorded: no mask
    v = torch.zeros(1, *VOXELS, dtype=torch.long)
    v[0, 0, 0, 0, 0] = 2
    tok(dict(voxels=v), mode='loss')
    assert tok.seen_classes.tolist() == [True, False, True]
    tok(dict(voxels=torch.ones(1, *VOXELS, dtype=torch.long)), mode='tensor')  # not training
    assert tok.seen_classes.tolist() == [True, False, True]
    assert 'seen_classes' in tok.state_dict()


def test_checkpoint_without_buffer_loads_strictly_as_all_seen():
    tok = MODELS.build(dict(type='TinyHexTokenizer', num_classes=3))
    sd = {k: v for k, v in tok.state_dict().items() if k != 'seen_classes'}
    tok.load_state_dict(sd, strict=True)
    assert tok.seen_classes.all()


def test_generator_decodes_only_seen_classes_when_asked():
    torch.manual_seed(0)
    masked = MODELS.build(tiny_model_cfg(mask_unseen_classes=True)).eval()
    plain = MODELS.build(tiny_model_cfg()).eval()
    plain.load_state_dict(masked.state_dict())
    # a decoder that prefers class 1 everywhere, which training never showed
    with torch.no_grad():
        for m in (masked, plain):
            m.tokenizer.dec.bias.copy_(torch.tensor([0.0, 50.0, 0.0]))
            m.tokenizer.seen_classes.copy_(torch.tensor([True, False, True]))
    x0 = masked.sample(1, generator=torch.Generator().manual_seed(3))
    a = masked.decode_latent(x0).argmax(1)
    b = plain.decode_latent(x0).argmax(1)
    assert (b == 1).float().mean() > 0.9  # unmasked: the unseen class wins
    assert torch.count_nonzero(a == 1) == 0  # masked: never drawn
    masked.tokenizer.seen_classes.fill_(True)  # every class seen: the mask is a no-op
    assert torch.equal(masked.decode_latent(x0), plain.decode_latent(x0))
