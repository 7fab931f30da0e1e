"""2D peg insertion with a 3-DOF arm (paper Table 3, Fig. 1c)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from nafrl.envs.base import MujocoTaskEnv, TaskSpec
from nafrl.envs.scripted import arm_pd, planar_ik3

LINKS = (0.1, 0.1, 0.1)
CONTROL_COST = 1e-3
REWARD_SCALE = 1.75
"""Calibrated so a uniform-random agent's mean return (-11) matches Table 1's random -11."""
HOLE = (0.263, 0.02)  # tip position with the peg at the bottom of the hole (site "hole")
MOUTH_X = 0.22
Q_START = (-1.2, 0.9, 0.6)


class PegEnv(MujocoTaskEnv):
    """Insert the tip of a 3-DOF arm into a fixed hole from locally perturbed starts.

    Physics (``assets/peg.xml``): the reacher's arm (three 0.1 m links about
    z, horizontal plane, joint 0 continuous, joints 1-2 limited to +-2.6 rad)
    whose last link is a peg of radius 7 mm. A fixed block has a slot of
    half-width 13 mm from x = 0.22 m (mouth) to x = 0.27 m (bottom) at
    y = 0.02 m, opening towards the arm; the arm collides with the block
    (friction 0.3). Timestep 2 ms, ``frame_skip`` 25: one step is 0.05 s;
    horizon T = 100 (5 s).

    Action (3,): joint torques, [-1, 1] -> [-0.1, 0.1] N m; clipped.

    Observation (11,), float64:
        0-2    cos(q0), cos(q1), cos(q2)   joint angles (relative)
        3-5    sin(q0), sin(q1), sin(q2)
        6-8    joint velocities (rad/s)
        9-10   tip position (x, y) (m)

    The hole is fixed at (0.263, 0.02) m (the tip position with the peg
    touching the bottom), so it is not in the observation.

    Reward r(x_t, u_t) = -1.75 (||tip - hole||^2 + 0.001 ||u||^2), from the
    observation before the step (metres; 0 when fully inserted and at rest).
    The paper gives no formula; a squared distance to the hole follows its
    description ("insert the tip ... to a fixed hole", Table 3) and, unlike
    the plain distance, puts a random arm (tip about 0.22 m away on average)
    as far below an inserting one as Table 1 does (random -11, best -0.438
    NAF). Scaled (``REWARD_SCALE``): uniform-random actions average -11 over
    50 seeded episodes, the scripted controller -0.21.

    Horizon T = 100 (``truncated`` at T). Initial state: q = (-1.2, 0.9, 0.6)
    + U(-0.1, 0.1) per joint (tip about (0.23, -0.09) m, below the block), zero
    velocity. No terminal states.
    """

    xml_file = "peg.xml"
    frame_skip = 25
    horizon = 100
    obs_size = 11
    has_reward_fn = True
    render_camera = "top"

    def __init__(self, render_mode: str | None = None, width: int = 240, height: int = 240) -> None:
        super().__init__(render_mode, width, height)
        hole = self.model.site("hole").pos[:2]
        assert np.allclose(hole, HOLE), "peg.xml hole site and HOLE disagree"

    def _bind_views(self) -> None:
        super()._bind_views()
        self._qpos, self._qvel = self.data.qpos, self.data.qvel
        self._tip = self.data.site("tip").xpos

    def _reset_task(self, rng: np.random.Generator) -> None:
        self.data.qpos[:] = np.asarray(Q_START) + rng.uniform(-0.1, 0.1, size=3)

    def _observe(self) -> np.ndarray:
        q = self._qpos
        return np.concatenate((np.cos(q), np.sin(q), self._qvel, self._tip[:2]))

    def _reward_impl(self, obs: Any, action: Any, xp: Any) -> Any:
        dx, dy = obs[9] - HOLE[0], obs[10] - HOLE[1]
        u0, u1, u2 = action[0], action[1], action[2]
        return -REWARD_SCALE * (dx * dx + dy * dy + CONTROL_COST * (u0 * u0 + u1 * u1 + u2 * u2))


def scripted_policy(env: gym.Env) -> Callable[[np.ndarray], np.ndarray]:
    """Joint PD through IK waypoints (one elbow branch): to 3 cm before the mouth with the
    peg along +x, then along the slot axis to the bottom, advancing 2 cm at a time (the
    next waypoint once the tip is within 1 cm of the current one)."""
    e = env.unwrapped
    assert isinstance(e, PegEnv)
    pre = np.array([MOUTH_X - 0.03, HOLE[1]])
    path = [pre + np.array([dx, 0.0]) for dx in np.arange(0.0, HOLE[0] - pre[0], 0.02)]
    path.append(np.array(HOLE))
    refs = [planar_ik3(float(p[0]), float(p[1]), 0.0, LINKS, 1.0) for p in path]
    assert all(r is not None for r in refs)
    progress = {"i": 0}

    def policy(obs: np.ndarray) -> np.ndarray:
        if e.step_count == 0:
            progress["i"] = 0
        q = np.arctan2(obs[3:6], obs[0:3])
        i = progress["i"]
        if i < len(path) - 1 and np.linalg.norm(obs[9:11] - path[i]) < 0.01:
            progress["i"] = i = i + 1
        return arm_pd(q, obs[6:9], np.asarray(refs[i]), kp=5.0, kd=0.6)

    return policy


SPEC = TaskSpec.of(
    PegEnv,
    "nafrl/Peg-v1",
    tags=("manipulation",),
    scripted=scripted_policy,
    description="3-DOF arm inserts its tip into a fixed hole",
)
