"""PaddedRollout: exact round trip, canvas layout, validity / patch / region masks."""
import pytest
import torch

from occworld4d.models.tokenizers.rollout import PLANE_KEYS, PaddedRollout
from occworld4d.registry import MODELS


def random_planes(hex_shape, B=2, C=3):
    r = PaddedRollout(hex_shape)
    return {k: torch.randn(B, C, *s) for k, s in r.plane_shapes.items()}


@pytest.mark.parametrize('hex_shape', [(8, 64, 64, 4), (8, 100, 100, 8), (2, 5, 5, 3)])
def test_round_trip_exact(hex_shape):
    r = PaddedRollout(hex_shape)
    planes = random_planes(hex_shape)
    canvas = r.rollout(planes)
    S = hex_shape[1] + hex_shape[0] + hex_shape[3]
    assert canvas.shape == (2, 3, S, S)
    back = r.unroll(canvas)
    for k in PLANE_KEYS:
        assert torch.equal(back[k], planes[k]), k
    # Padding is exactly zero and the valid mask covers exactly the plane cells.
    valid = r.valid_mask()
    assert torch.count_nonzero(canvas[:, :, ~valid]) == 0
    area = sum(a * b for a, b in r.plane_shapes.values())
    assert int(valid.sum()) == area


def test_canvas_layout_by_hand():
    # (T', X', Y', Z') = (1, 2, 2, 1): S = 4. Fill each plane with a distinct constant and
    # check every cell against the documented layout.
    r = PaddedRollout((1, 2, 2, 1))
    planes = {k: torch.full((1, 1, *s), float(i + 1)) for i, (k, s) in
              enumerate(r.plane_shapes.items())}  # xy=1 xz=2 yz=3 tx=4 ty=5 tz=6
    planes['xy'] = torch.tensor([[[[10., 11.], [12., 13.]]]])  # xy[x, y]
    planes['tx'] = torch.tensor([[[[40., 41.]]]])  # tx[t, x]
    expected = torch.tensor([
        [10, 11, 2, 40],
        [12, 13, 2, 41],
        [5, 5, 6, 0],
        [3, 3, 0, 0],
    ], dtype=torch.float32)
    assert torch.equal(r.rollout(planes)[0, 0], expected)


def test_carlasc_and_waymo_token_counts():
    carla = MODELS.build(dict(type='PaddedRollout', hex_shape=(8, 64, 64, 4)))
    assert carla.canvas_size == 76
    keep = carla.patch_mask(2)
    assert keep.numel() == 1444 and int(keep.sum()) == 1416
    # The dropped patches are the T'xT' block right of ty|tz (4x4 patches) and the
    # Z'x(Z'+T') block right of yz^T (2x6 patches).
    grid = keep.view(38, 38)
    assert not grid[32:36, 34:38].any() and not grid[36:38, 32:38].any()
    waymo = PaddedRollout((8, 100, 100, 8))
    assert waymo.canvas_size == 116
    # 116/2 = 58; dropped: T'xT' = 4x4 patches and Z'x(Z'+T') = 4x8 patches.
    assert int(waymo.patch_mask(2).sum()) == 58 * 58 - 16 - 32


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match='square'):
        PaddedRollout((8, 64, 32, 4))
    r = PaddedRollout((8, 64, 64, 4))
    planes = random_planes((8, 64, 64, 4))
    planes.pop('tz')
    with pytest.raises(KeyError, match='tz'):
        r.rollout(planes)
    planes = random_planes((8, 64, 64, 4))
    planes['xz'] = planes['xz'][..., :3]
    with pytest.raises(ValueError, match="'xz'"):
        r.rollout(planes)
    with pytest.raises(ValueError, match='divisible'):
        PaddedRollout((8, 64, 64, 5)).patch_mask(2)


def test_region_mask_selects_planes_meeting_the_box():
    # Voxels (T, X, Y, Z) = (4, 8, 8, 4), planes (2, 4, 4, 2): every plane cell covers 2 voxels.
    r = PaddedRollout((2, 4, 4, 2), voxel_shape=(4, 8, 8, 4))
    m = r.region_mask((0, 2, 6, 8, 0, 4))  # x in [0,2) -> cell 0; y in [6,8) -> cell 3
    planes = r.unroll(m[None, None].float())
    expected_xy = torch.zeros(4, 4)
    expected_xy[0, 3] = 1
    assert torch.equal(planes['xy'][0, 0], expected_xy)
    assert planes['xz'][0, 0].sum() == 2 and planes['xz'][0, 0, 0].all()
    assert planes['tx'][0, 0].sum() == 2 and planes['tx'][0, 0, :, 0].all()
    assert planes['tz'][0, 0].all()  # the box spans all t and z
    assert not m[~r.valid_mask()].any()
    with pytest.raises(ValueError, match='outside'):
        r.region_mask((0, 9, 0, 1, 0, 1))
