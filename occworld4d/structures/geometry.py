"""Ego poses -> trajectory and driving command; rigid transforms (pure numpy, shared by the
dataset readers, the sensors and the layout rasterizer).

Conventions: a pose is a (4, 4) world-from-ego transform; ego axes are x forward, y left,
z up. A trajectory row is ``(dx, dy, yaw)`` of frame t relative to frame 0, expressed in
frame 0's ego axes. Commands: 0 STATIC, 1 FORWARD, 2 LEFT, 3 RIGHT.
"""
from typing import Sequence

import numpy as np

STATIC, FORWARD, LEFT, RIGHT = 0, 1, 2, 3
# DynamicCity's command thresholds (per-frame steps of a 10 Hz sequence).
YAW_STEP_THRESHOLD = 0.0025  # rad
XY_STEP_THRESHOLD = 0.03  # m
# The heading / lateral rule for real trajectories (command_from_heading_lateral); see its doc.
TURN_HEADING = float(np.radians(30.0))  # a turn on its own
TURN_HEADING_CONFIRM = float(np.radians(5.0))  # a turn when the lateral offset confirms it
TURN_LATERAL = 2.0  # m: VAD's lateral-offset threshold (right / left at |x| >= 2 m)
STOP_DISTANCE = 0.5  # m: a window whose ego stays within 0.5 m of its start is STATIC
# VAD's one-hot order in ``gt_ego_fut_cmd``: (right, left, straight).
VAD_ONEHOT_TO_COMMAND = (RIGHT, LEFT, FORWARD)


def quaternion_to_matrix(q: Sequence[float]) -> np.ndarray:
    """Rotation matrix (3, 3) of a unit quaternion given as (w, x, y, z) (nuScenes order).

    Raises:
        ValueError: for a quaternion with NaN / Inf components or (near) zero norm (it has no
            rotation; normalising it would give NaN).
    """
    q = np.asarray(q, dtype=np.float64)
    if q.shape != (4, ) or not np.isfinite(q).all():
        raise ValueError(f'quaternion {q.tolist()} is not 4 finite numbers (w, x, y, z)')
    norm = np.linalg.norm(q)
    if norm < 1e-6:
        raise ValueError(f'quaternion {q.tolist()} has norm {norm:.3g}; expected a unit '
                         'quaternion (w, x, y, z)')
    w, x, y, z = q / norm
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def quaternion_from_matrix(R: np.ndarray) -> list:
    """(w, x, y, z) of a 3 x 3 rotation, w >= 0 (nuScenes order).

    Shepperd's method: the component of largest magnitude is taken from the diagonal and
    the others from the off-diagonal sums, so rotations by ~180 degrees (w ~ 0) keep the
    relative signs of x, y, z.
    """
    R = np.asarray(R, np.float64)
    tr = R[0, 0] + R[1, 1] + R[2, 2]
    cands = (1.0 + tr, 1.0 + R[0, 0] - R[1, 1] - R[2, 2], 1.0 - R[0, 0] + R[1, 1] - R[2, 2],
             1.0 - R[0, 0] - R[1, 1] + R[2, 2])  # 4 q_i^2 for i = w, x, y, z
    k = int(np.argmax(cands))
    r = 2.0 * np.sqrt(max(cands[k], 0.0))  # 4 |q_k|
    if k == 0:
        q = [r / 4, (R[2, 1] - R[1, 2]) / r, (R[0, 2] - R[2, 0]) / r, (R[1, 0] - R[0, 1]) / r]
    elif k == 1:
        q = [(R[2, 1] - R[1, 2]) / r, r / 4, (R[0, 1] + R[1, 0]) / r, (R[0, 2] + R[2, 0]) / r]
    elif k == 2:
        q = [(R[0, 2] - R[2, 0]) / r, (R[0, 1] + R[1, 0]) / r, r / 4, (R[1, 2] + R[2, 1]) / r]
    else:
        q = [(R[1, 0] - R[0, 1]) / r, (R[0, 2] + R[2, 0]) / r, (R[1, 2] + R[2, 1]) / r, r / 4]
    q = np.array(q)
    if q[0] < 0:
        q = -q
    return (q / np.linalg.norm(q)).tolist()


def pose_matrix(rotation: Sequence[float], translation: Sequence[float]) -> np.ndarray:
    """(4, 4) transform from a (w, x, y, z) quaternion or a (3, 3) matrix and a translation (3,)."""
    rot = np.asarray(rotation, dtype=np.float64)
    mat = np.eye(4)
    mat[:3, :3] = rot if rot.shape == (3, 3) else quaternion_to_matrix(rot)
    mat[:3, 3] = np.asarray(translation, dtype=np.float64)
    return mat


def pose_problem(pose, tol: float = 1e-3):
    """What is wrong with a (4, 4) world-from-ego pose, or None if it is a rigid transform:
    finite entries, last row (0, 0, 0, 1), rotation block orthonormal (``R^T R = I`` within
    ``tol``) with determinant +1."""
    mat = np.asarray(pose, dtype=np.float64)
    if mat.shape != (4, 4):
        return f'has shape {mat.shape}, expected (4, 4)'
    if not np.isfinite(mat).all():
        return 'has NaN / Inf entries'
    if not np.allclose(mat[3], (0.0, 0.0, 0.0, 1.0), atol=tol):
        return f'last row {mat[3].tolist()}, expected [0, 0, 0, 1]'
    rot = mat[:3, :3]
    err = float(np.abs(rot.T @ rot - np.eye(3)).max())
    if err > tol:
        return f'rotation block is not orthonormal (max |R^T R - I| = {err:.3g})'
    if np.linalg.det(rot) < 0:
        return 'rotation block is a reflection (determinant -1)'
    return None


def wrap_angle(angle: np.ndarray) -> np.ndarray:
    """Wrap radians into [-pi, pi)."""
    return (np.asarray(angle) + np.pi) % (2 * np.pi) - np.pi


def trajectory_from_poses(poses: np.ndarray) -> np.ndarray:
    """Relative trajectory of a window.

    Args:
        poses: (T, 4, 4) world-from-ego transforms.

    Returns:
        float32 (T, 3): (dx, dy, yaw) of frame t in frame 0's ego axes; row 0 is zeros.
    """
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (4, 4):
        raise ValueError(f'expected poses of shape (T, 4, 4), found {poses.shape}')
    rel = np.linalg.inv(poses[0])[None] @ poses  # (T, 4, 4) frame-0-from-frame-t
    yaw = np.arctan2(rel[:, 1, 0], rel[:, 0, 0])
    return np.stack([rel[:, 0, 3], rel[:, 1, 3], yaw], axis=1).astype(np.float32)


def command_from_trajectory(trajectory: np.ndarray,
                            yaw_threshold: float = YAW_STEP_THRESHOLD,
                            xy_threshold: float = XY_STEP_THRESHOLD) -> int:
    """DynamicCity's rule: LEFT if any wrapped yaw step > threshold, RIGHT if any
    < -threshold, else FORWARD if any xy step > xy threshold, else STATIC.

    Kept for the DynamicCity reproduction (CarlaSC, the synthetic city, the transforms). It
    is not meant for real, noisy poses: 0.0025 rad (0.14 degrees) is below their heading
    jitter and LEFT is tested first, so on the real nuScenes infos most windows come out
    LEFT; real readers use :func:`command_from_heading_lateral`.

    Args:
        trajectory: (T, 3) rows (x, y, yaw) in any one fixed frame (steps are invariant).
    """
    traj = np.asarray(trajectory, dtype=np.float64)
    if traj.ndim != 2 or traj.shape[1] < 3:
        raise ValueError(f'expected a trajectory of shape (T, 3), found {traj.shape}')
    if len(traj) < 2:
        return STATIC
    yaw_steps = wrap_angle(np.diff(traj[:, 2]))
    if np.any(yaw_steps > yaw_threshold):
        return LEFT
    if np.any(yaw_steps < -yaw_threshold):
        return RIGHT
    xy_steps = np.linalg.norm(np.diff(traj[:, :2], axis=0), axis=1)
    if np.any(xy_steps > xy_threshold):
        return FORWARD
    return STATIC


def command_from_heading_lateral(trajectory: np.ndarray,
                                 heading_threshold: float = TURN_HEADING,
                                 confirm_heading: float = TURN_HEADING_CONFIRM,
                                 lateral_threshold: float = TURN_LATERAL,
                                 stop_distance: float = STOP_DISTANCE) -> int:
    """Driving command of a window from its net heading change and lateral offset.

    In frame 0's axes (x forward, y left), with ``dyaw`` = wrapped heading change from the
    first to the last frame and ``lat`` = lateral offset of the last position:

    - STATIC if no position is more than ``stop_distance`` from the first;
    - LEFT if ``dyaw >= heading_threshold``, or ``dyaw >= confirm_heading`` and
      ``lat >= lateral_threshold``; RIGHT likewise with the signs reversed;
    - else FORWARD.

    The two heading levels are the hysteresis band: a heading change between them (5 to 30
    degrees by default) makes a turn only when the ego also moved ``lateral_threshold``
    sideways in the same direction, so heading jitter and curves of the road stay FORWARD,
    and a lateral drift without a heading change (a lane change) too. Left and right are
    symmetric (no direction is tested first). Thresholds: 2 m lateral is VAD's rule for
    ``gt_ego_fut_cmd`` (3 s of future at 2 Hz); the 5 / 30 degree levels are this project's
    choice, checked against the real nuScenes infos' ``gt_ego_fut_cmd`` (docs/reliability.md,
    section 8). They are for windows of about VAD's 3 s; the lateral threshold grows with the
    distance a window covers, so pass smaller values for much shorter windows.

    Args:
        trajectory: (T, 3) rows (x, y, yaw) in any one fixed frame; re-expressed in frame 0's
            axes here.
    """
    traj = np.asarray(trajectory, dtype=np.float64)
    if traj.ndim != 2 or traj.shape[1] < 3:
        raise ValueError(f'expected a trajectory of shape (T, 3), found {traj.shape}')
    if not np.isfinite(traj).all():
        raise ValueError('trajectory has NaN / Inf entries; no command can be derived')
    if len(traj) < 2:
        return STATIC
    c, s = np.cos(traj[0, 2]), np.sin(traj[0, 2])
    d = traj[:, :2] - traj[0, :2]
    fwd, lat = d[:, 0] * c + d[:, 1] * s, -d[:, 0] * s + d[:, 1] * c  # frame 0's axes
    if np.hypot(fwd, lat).max() <= stop_distance:
        return STATIC
    dyaw, lat = float(wrap_angle(traj[-1, 2] - traj[0, 2])), float(lat[-1])
    for sign, command in ((1.0, LEFT), (-1.0, RIGHT)):
        turn, side = sign * dyaw, sign * lat
        if turn >= heading_threshold or (turn >= confirm_heading and side >= lateral_threshold):
            return command
    return FORWARD


def command_from_vad_onehot(onehot: Sequence[float]) -> int:
    """Map VAD's ``gt_ego_fut_cmd`` one-hot (right, left, straight) to our command id."""
    onehot = np.asarray(onehot).reshape(-1)
    if onehot.shape != (3,):
        raise ValueError(f'expected a 3-way one-hot (right, left, straight), found shape '
                         f'{onehot.shape}')
    return VAD_ONEHOT_TO_COMMAND[int(np.argmax(onehot))]


def vad_command_from_offsets(fut_offsets: np.ndarray, fut_mask: np.ndarray = None,
                             lateral_threshold: float = 2.0) -> int:
    """VAD's rule on per-step future offsets in the LiDAR frame (x right, y forward):
    cumulative x >= 2 m -> RIGHT, <= -2 m -> LEFT, else FORWARD."""
    offsets = np.asarray(fut_offsets, dtype=np.float64)
    if fut_mask is not None:
        offsets = offsets[np.asarray(fut_mask) > 0]
    lateral = offsets[:, 0].sum() if len(offsets) else 0.0
    if lateral >= lateral_threshold:
        return RIGHT
    if lateral <= -lateral_threshold:
        return LEFT
    return FORWARD


def vad_command_onehot(fut_offsets: np.ndarray, fut_mask: np.ndarray = None) -> np.ndarray:
    """``gt_ego_fut_cmd`` of a frame: VAD's rule as a float32 one-hot (right, left, straight)."""
    onehot = np.zeros(3, np.float32)
    onehot[VAD_ONEHOT_TO_COMMAND.index(vad_command_from_offsets(fut_offsets, fut_mask))] = 1
    return onehot


def vad_ego_trajectories(global_from_lidar: np.ndarray, index: int, fut_steps: int = 6,
                         his_steps: int = 2):
    """VAD's per-step ego trajectories of keyframe ``index`` of a scene.

    The convention of the real temporal infos (checked on the 81 real frames: history
    exact to 3e-7 m, future within 2 cm): positions are those of the LiDAR origin, expressed
    in the CURRENT frame's LiDAR axes (x right, y forward), and every entry is one step
    between consecutive keyframes.

    Args:
        global_from_lidar: (T, 4, 4) ego2global @ lidar2ego of the scene's keyframes.
        index: the current keyframe i.

    Returns:
        fut (fut_steps, 2) float32: ``fut[k]`` = step from frame i + k to i + k + 1; zero
        past the scene end. fut_mask (fut_steps,) float32: 1 where the step exists.
        his (his_steps, 2) float32: the steps into frame i, oldest first
        (``his[-1]`` = step from i - 1 to i); a step before the scene start copies the
        nearest existing one (the earliest step of the scene, i.e. ``fut[0]`` at i = 0);
        zeros for a one-frame scene.
    """
    poses = np.asarray(global_from_lidar, np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (4, 4):
        raise ValueError(f'expected global_from_lidar of shape (T, 4, 4), found {poses.shape}')
    num = len(poses)
    if not 0 <= index < num:
        raise IndexError(f'frame index {index} outside a scene of {num} frames')
    pos = (np.linalg.inv(poses[index])[None] @ poses[:, :, 3:4])[:, :2, 0]  # (T, 2) in lidar_i
    steps = np.diff(pos, axis=0)  # (T - 1, 2): steps[j] = pos[j + 1] - pos[j]
    fut = np.zeros((fut_steps, 2), np.float32)
    mask = np.zeros(fut_steps, np.float32)
    n_fut = max(0, min(fut_steps, num - 1 - index))
    fut[:n_fut], mask[:n_fut] = steps[index:index + n_fut], 1
    his = np.zeros((his_steps, 2), np.float32)
    if num > 1:
        for k in range(his_steps):
            j = index - his_steps + k  # step j goes from frame j to j + 1
            his[k] = steps[j] if j >= 0 else steps[max(index - 1, 0)]
    return fut, mask, his


def se2_compose_relative(trajectory: np.ndarray, base: int) -> np.ndarray:
    """Re-express a trajectory relative to frame ``base`` instead of frame 0.

    Args:
        trajectory: (T, 3) (dx, dy, yaw) relative to frame 0.

    Returns:
        float32 (T, 3) relative to frame ``base`` in its ego axes.
    """
    traj = np.asarray(trajectory, dtype=np.float64)
    x0, y0, yaw0 = traj[base]
    c, s = np.cos(yaw0), np.sin(yaw0)
    dx, dy = traj[:, 0] - x0, traj[:, 1] - y0
    out = np.stack([c * dx + s * dy, -s * dx + c * dy, wrap_angle(traj[:, 2] - yaw0)], axis=1)
    return out.astype(np.float32)


def yaw_of(rotation: np.ndarray) -> float:
    """Heading (radians, about +z) of a 3 x 3 (or 4 x 4) rotation."""
    return float(np.arctan2(rotation[1, 0], rotation[0, 0]))
