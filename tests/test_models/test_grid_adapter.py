"""GridLatentAdapter: voxel box / frames -> latent cells by hand on a small grid (halo, time
range, boundaries), identity round trip, shape errors, and its use in LatentDiffusion (sample
shape, shapes taken from the generator, strict checkpoint keys unchanged)."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import occworld4d  # noqa: F401
from occworld4d.models.tokenizers import GridLatentAdapter
from occworld4d.registry import MODELS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
OCCSORA_TINY = osp.join(ROOT, 'configs', 'occsora', 'occsora_dit_tiny_synthetic-city.py')

# latent (3, 4, 4, 4) over voxels (8, 16, 16, 4): stride (2, 4, 4)
LATENT, VOXELS = (3, 4, 4, 4), (8, 16, 16, 4)


def cells(ts, hs, ws):
    m = torch.zeros(4, 4, 4, dtype=torch.bool)
    for t in ts:
        for h in hs:
            for w in ws:
                m[t, h, w] = True
    return m


def test_region_mask_by_hand():
    a = GridLatentAdapter(LATENT, VOXELS, halo=0)
    assert a.stride == (2, 4, 4)
    # chained windows keep a slice known from (1 + halo_t) * st overlap frames
    assert a.default_overlap == 2
    assert GridLatentAdapter(LATENT, VOXELS, halo=(1, 0, 0)).default_overlap == 4
    # x [4, 8) -> h cell 1; y [0, 3) -> w cell 0; frame 2 -> t cell 1
    assert torch.equal(a.region_mask((4, 8, 0, 3, 0, 4, 2, 3)), cells([1], [1], [0]))
    # straddling boundaries: x [3, 5) -> h 0, 1; y [7, 9) -> w 1, 2; frames [1, 5) -> t 0..2
    assert torch.equal(a.region_mask((3, 5, 7, 9, 1, 2, 1, 5)), cells([0, 1, 2], [0, 1], [1, 2]))
    # no time range = all frames; z does not select cells
    assert torch.equal(a.region_mask((12, 16, 12, 16, 3, 4)), cells(range(4), [3], [3]))


def test_region_mask_halo_and_frame_mask():
    a = GridLatentAdapter(LATENT, VOXELS, halo=1)
    # the first example grown by one cell per axis (clipped at the edges): 3 x 3 x 2 = 18 cells
    m = a.region_mask((4, 8, 0, 3, 0, 4, 2, 3))
    assert torch.equal(m, cells([0, 1, 2], [0, 1, 2], [0, 1])) and int(m.sum()) == 18
    b = GridLatentAdapter(LATENT, VOXELS, halo=(0, 2, 1))  # per-axis halo (t, h, w)
    assert torch.equal(b.region_mask((4, 8, 0, 3, 0, 4, 6, 8)), cells([3], [0, 1, 2, 3], [0, 1]))
    # frames -> cells: frame 0 is t cell 0; with the time halo also cell 1
    assert torch.equal(a.frame_mask([0], halo=0), cells([0], range(4), range(4)))
    assert torch.equal(a.frame_mask([0]), cells([0, 1], range(4), range(4)))
    assert torch.equal(a.frame_mask([7, 4], halo=0), cells([2, 3], range(4), range(4)))
    assert torch.equal(b.frame_mask([3]), cells([1], range(4), range(4)))
    with pytest.raises(ValueError, match=r'frames \[8\] outside \[0, 8\)'):
        a.frame_mask([8])


def test_round_trip_and_shape_errors():
    a = GridLatentAdapter(LATENT, VOXELS)
    x = torch.randn(2, *LATENT)
    assert a.from_latent(a.to_latent(x)) is x
    with pytest.raises(ValueError, match=r'expected a latent \(B, 3, 4, 4, 4\); found \(2, 3, 4, '
                                         r'4, 5\)'):
        a.to_latent(torch.randn(2, 3, 4, 4, 5))
    with pytest.raises(ValueError, match=r'expected \(B, 3, 4, 4, 4\); found \(3, 4, 4, 4\)'):
        a.from_latent(torch.randn(*LATENT))
    with pytest.raises(ValueError, match=r'region y range \[10, 17\) is empty or outside'):
        a.region_mask((0, 4, 10, 17, 0, 4))
    with pytest.raises(ValueError, match='region must be'):
        a.region_mask((0, 4, 0, 4))
    with pytest.raises(ValueError, match='not a whole multiple'):
        GridLatentAdapter(LATENT, (8, 15, 16, 4))
    with pytest.raises(ValueError, match=r'stride \(2, 2, 4\) disagrees'):
        GridLatentAdapter(LATENT, VOXELS, stride=(2, 2, 4))
    with pytest.raises(ValueError, match='halo must be'):
        GridLatentAdapter(LATENT, VOXELS, halo=(1, 1))


def test_shapes_from_stride_and_bind():
    a = GridLatentAdapter(stride=(2, 4, 4))
    with pytest.raises(ValueError, match='shapes not set'):
        a.region_mask((0, 4, 0, 4, 0, 4))

    class Tok:  # a tokenizer exposing its height like the OccSora / UniScene ones
        class semantic:
            height = 4

    a.bind(latent_shape=LATENT, tokenizer=Tok())
    assert a.latent_shape == LATENT and a.voxel_shape == VOXELS
    with pytest.raises(ValueError, match='disagrees with the latent adapter'):
        GridLatentAdapter(LATENT, VOXELS).bind(latent_shape=(3, 4, 4, 8))
    with pytest.raises(ValueError, match='voxel_shape is unknown'):
        GridLatentAdapter(stride=2).bind(latent_shape=LATENT)


def test_latent_diffusion_with_grid_adapter():
    init_default_scope('occworld4d')
    cfg = Config.fromfile(OCCSORA_TINY).model
    model = MODELS.build(cfg)
    assert isinstance(model.adapter, GridLatentAdapter)
    assert model.adapter.voxel_shape == (8, 32, 32, 8)  # Z = the tokenizer's height
    assert model.latent_shape(2) == (2, 16, 4, 8, 8)
    assert model.valid_mask() is None
    # parameter-free: the same state_dict keys as without the adapter (checkpoints load)
    plain = MODELS.build(dict(cfg, latent_adapter=None))
    assert list(model.state_dict()) == list(plain.state_dict())
    # the adapter's and the generator's latent shapes must agree
    with pytest.raises(ValueError, match='disagrees with the latent adapter'):
        MODELS.build(dict(cfg, latent_adapter=dict(type='GridLatentAdapter',
                                                   latent_shape=(16, 4, 8, 4), stride=2)))
