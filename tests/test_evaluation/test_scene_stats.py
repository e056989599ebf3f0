"""Scene statistics: hand-checked values, memorisation of copies, command recovery on the
synthetic city (every scenario) and on hand-made moving scenes."""
import numpy as np
import pytest

from occworld4d.datasets.synthetic_city import SCENARIOS, SyntheticCityDataset
from occworld4d.evaluation.functional import (change_rate, class_frequencies,
                                              command_from_motion, confusion_matrix,
                                              frame_change_rates, integrate_steps,
                                              iou_from_confusion, memorisation,
                                              recover_commands, register_frames,
                                              static_classes, total_variation)
from occworld4d.evaluation.functional.scene_stats import (FORWARD, LEFT, RIGHT,
                                                          SCENARIO_COMMANDS, STATIC)
from occworld4d.structures.vocabularies import get_vocabulary

PC_RANGE = (-25.6, -25.6, -2.0, 25.6, 25.6, 1.0)  # the tiny city's range (1.6 m voxels)


def test_class_frequencies_hand():
    scene = np.zeros((2, 2, 2, 1), np.uint8)  # 8 voxels: 4 free, 3 of class 1, 1 of class 2
    scene[0, 0, 0, 0] = scene[0, 0, 1, 0] = scene[1, 1, 1, 0] = 1
    scene[1, 0, 0, 0] = 2
    np.testing.assert_allclose(class_frequencies(scene, 3), [0.5, 0.375, 0.125])
    np.testing.assert_allclose(class_frequencies([scene, scene], 3, free_label=0,
                                                 exclude_free=True), [0, 0.75, 0.25])
    with pytest.raises(ValueError, match=r'class ids span \[0, 2\]'):
        class_frequencies(scene, 2)


def test_total_variation_hand():
    assert total_variation([0.5, 0.5, 0.0], [0.25, 0.25, 0.5]) == pytest.approx(0.5)
    assert total_variation([2, 2, 0], [1, 1, 2]) == pytest.approx(0.5)  # normalised first
    assert total_variation([1, 0], [0, 1]) == pytest.approx(1.0)
    assert total_variation([0.3, 0.7], [0.3, 0.7]) == 0.0
    with pytest.raises(ValueError, match='different lengths'):
        total_variation([1, 0], [1, 0, 0])


def test_change_rate_hand():
    scene = np.zeros((3, 2, 2, 1), np.uint8)  # 4 voxels a frame
    scene[0, :, :, 0] = [[0, 1], [1, 1]]
    scene[1, :, :, 0] = [[0, 1], [1, 2]]  # 1 of 4 changes
    scene[2, :, :, 0] = [[1, 0], [1, 2]]  # 2 of 4 change
    np.testing.assert_allclose(frame_change_rates(scene), [[0.25, 0.5]])
    assert change_rate(scene) == pytest.approx(0.375)
    assert change_rate(np.stack([scene, scene[:1].repeat(3, 0)])) == pytest.approx(0.1875)
    with pytest.raises(ValueError, match='at least 2 frames'):
        change_rate(scene[:1])


def test_memorisation_hand_and_copy():
    # training scene r: 4 voxels [1, 1, 2, 0]; sample s: [1, 2, 2, 2]
    r = np.array([1, 1, 2, 0], np.uint8).reshape(1, 1, 4, 1, 1)
    s = np.array([1, 2, 2, 2], np.uint8).reshape(1, 1, 4, 1, 1)
    out = memorisation(s, r, num_classes=3, free_label=0)
    # class 1: TP 1, union 2 -> 0.5; class 2: TP 1, union 3 -> 1/3; binary: 3 / 4
    assert out['miou'][0] == pytest.approx((0.5 + 1 / 3) / 2)
    assert out['iou'][0] == pytest.approx(0.75)
    # the class absent from the training scene (GT) is skipped (dynamiccity convention)
    r2 = np.array([1, 1, 0, 0], np.uint8).reshape(1, 1, 4, 1, 1)
    assert memorisation(s, r2, 3, 0)['miou'][0] == pytest.approx(0.5)

    g = np.random.default_rng(0)
    train = g.integers(0, 5, (10, 2, 4, 4, 2)).astype(np.uint8)
    samples = g.integers(0, 5, (3, 2, 4, 4, 2)).astype(np.uint8)
    samples[1] = train[7]  # a copy
    res = memorisation(samples, train, 5, 0, chunk=3)
    assert res['miou'][1] == 1.0 and res['iou'][1] == 1.0 and res['miou_index'][1] == 7
    for m in (0, 2):  # best over pairs = iou_from_confusion of the best pair
        ref = [float(iou_from_confusion(confusion_matrix(samples[m], t, 5), 'dynamiccity',
                                        0).miou) for t in train]
        assert res['miou'][m] == pytest.approx(max(ref))
        assert res['miou_index'][m] == int(np.argmax(ref))
        assert res['miou'][m] < 0.5
    streamed = memorisation(samples, iter(list(train)), 5, 0, chunk=4)  # one scene at a time
    np.testing.assert_allclose(streamed['miou'], res['miou'])
    np.testing.assert_allclose(streamed['iou'], res['iou'])
    with pytest.raises(ValueError, match='training scenes of shape'):
        memorisation(samples, train[:, :1], 5, 0)


def test_integrate_steps_and_command_hand():
    steps = np.array([[np.pi / 2, 1.0, 0.0], [0.0, 1.0, 0.0]])
    traj = integrate_steps(steps)  # turn left by 90 deg while moving 1 m, then 1 m ahead
    np.testing.assert_allclose(traj, [[0, 0, 0], [1, 0, np.pi / 2], [1, 1, np.pi / 2]],
                               atol=1e-12)
    assert command_from_motion(traj) == LEFT
    assert command_from_motion(traj * [1, 1, -1]) == RIGHT
    assert command_from_motion(np.array([[0, 0, 0], [3.0, 0.2, 0.05]])) == FORWARD
    assert command_from_motion(np.array([[0, 0, 0], [0.5, 0.2, 0.05]])) == STATIC


def test_register_frames_hand_shift():
    """A world scrolled by one voxel a frame towards -x: the ego drives +x 1.6 m a frame."""
    g = np.random.default_rng(1)
    world = (g.random((64, 32)) < 0.3).astype(np.uint8) + 1  # static classes 1 / 2
    frames = np.stack([world[t:t + 32] for t in range(4)])  # (T, X, Y): frame t sees x + t
    scene = np.repeat(frames[..., None], 2, -1)  # (T, X, Y, Z)
    steps = register_frames(scene, static_ids=(1, 2), dynamic_ids=(), pc_range=PC_RANGE)
    np.testing.assert_allclose(steps[0], [[0, 1.6, 0]] * 3, atol=0.05)
    still = register_frames(scene[:1].repeat(4, 0), (1, 2), (), PC_RANGE)
    np.testing.assert_allclose(still, 0, atol=1e-6)
    # a 90 degree rotation per frame at 1 Hz (about the ego at the grid centre)
    turned = np.stack([np.rot90(world[:32], -k) for k in range(3)])[..., None]
    steps = register_frames(turned, (1, 2), (), PC_RANGE, frame_rate=1.0)
    np.testing.assert_allclose(steps[0, :, 0], [np.pi / 2] * 2, atol=0.02)  # left = +yaw
    np.testing.assert_allclose(steps[0, :, 1:], 0, atol=0.1)


@pytest.fixture(scope='module')
def city():
    vocab = get_vocabulary('dynamiccity_carlasc')
    ds = SyntheticCityDataset(num_scenes=16, num_frames=8, grid_size=(32, 32, 8), seed=1,
                              vocabulary=vocab.name)
    wins = [ds.load_window(ds.get_data_info(i)) for i in range(len(ds))]
    return vocab, np.stack([w['semantics'] for w in wins]), np.array(
        [w['command'] for w in wins]), [ds.get_data_info(i)['scenario'] for i in range(16)]


def test_recover_commands_synthetic_city(city):
    """Every scenario (4 windows each) gets its own command back from the voxels alone."""
    vocab, sem, cmd, scenarios = city
    assert sorted(set(scenarios)) == sorted(SCENARIOS)
    assert [SCENARIO_COMMANDS[s] for s in scenarios] == cmd.tolist()
    assert static_classes(vocab.classes, vocab.free_label) == (1, 2, 3, 5, 6, 7, 8, 9)
    out = recover_commands(sem, vocab.classes, vocab.free_label, PC_RANGE, frame_rate=10.0)
    assert out['command'].tolist() == cmd.tolist()
    turns = np.isin(cmd, (LEFT, RIGHT))
    assert np.abs(out['yaw'][turns]).min() > 0.2
    assert np.abs(out['yaw'][~turns]).max() < 0.05
    assert out['distance'][cmd == FORWARD].min() > 3.0
    assert out['distance'][cmd == STATIC].max() < 0.5
    frozen = recover_commands(sem[:, :1].repeat(8, 1), vocab.classes, 0, PC_RANGE)
    assert (frozen['command'] == STATIC).all()  # a frozen world: no motion


def test_recover_commands_under_label_noise(city):
    vocab, sem, cmd, _ = city
    g = np.random.default_rng(0)
    noisy = sem.copy()
    flip = g.random(sem.shape) < 0.05
    noisy[flip] = g.integers(0, vocab.num_classes, int(flip.sum()))
    out = recover_commands(noisy, vocab.classes, vocab.free_label, PC_RANGE)
    assert (out['command'] == cmd).mean() >= 0.9
