"""Three-joint planar reacher (paper Table 3) and its single-target variant (§6.3)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from nafrl.envs.base import MujocoTaskEnv, TaskSpec
from nafrl.envs.scripted import arm_ik, arm_pd, planar_fk

LINKS = (0.1, 0.1, 0.1)
JOINT_LIMIT = 2.6
CONTROL_COST = 0.01
REWARD_SCALE = 0.09
"""Calibrated so a uniform-random agent's mean return (-2.3) matches Table 1's random -2.3."""


class ReacherEnv(MujocoTaskEnv):
    """3-DOF planar arm moving its tip from a random start to a random target.

    Physics (``assets/reacher.xml``): three 0.1 m links turning about z in the
    horizontal plane (joint 0 continuous, joints 1-2 limited to +-2.6 rad), no
    gravity, no contacts. Timestep 2 ms, ``frame_skip`` 25: one step is
    0.05 s; horizon T = 100 (5 s).

    Action (3,): joint torques, [-1, 1] -> [-0.1, 0.1] N m; clipped.

    Observation (13,), float64:
        0-2    cos(q0), cos(q1), cos(q2)   joint angles (relative)
        3-5    sin(q0), sin(q1), sin(q2)
        6-8    joint velocities (rad/s)
        9-10   tip position (x, y) (m)
        11-12  target position (x, y) (m)

    Reward r(x_t, u_t) = -0.09 (||tip - target|| + 0.01 ||u||^2), from the
    observation before the step (distance in metres; 0 at the target at
    rest). The paper gives no formula; a distance-to-target cost follows its
    description ("move a 3-DOF arm ... to random target positions", Table 3),
    scaled (``REWARD_SCALE``) to Table 1: uniform-random actions average -2.3
    over 50 seeded episodes (Table 1: -2.3), the scripted IK + PD controller
    -0.20 (Table 1's best: -0.331 NAF).

    Horizon T = 100 (``truncated`` at T). Initial state: q0 ~ U(-pi, pi),
    q1, q2 ~ U(-2.4, 2.4), zero velocity; target uniform in the annulus
    0.05 m <= r <= 0.28 m. No terminal states.
    """

    xml_file = "reacher.xml"
    frame_skip = 25
    horizon = 100
    obs_size = 13
    has_reward_fn = True
    has_obs_projection = True
    render_camera = "top"

    def _bind_views(self) -> None:
        super()._bind_views()
        self._qpos, self._qvel = self.data.qpos, self.data.qvel
        self._tip = self.data.site("tip").xpos
        self._target = self.data.mocap_pos[0]

    def _reset_task(self, rng: np.random.Generator) -> None:
        self.data.qpos[:] = [rng.uniform(-np.pi, np.pi), *rng.uniform(-2.4, 2.4, size=2)]
        r = np.sqrt(rng.uniform(0.05**2, 0.28**2))
        a = rng.uniform(-np.pi, np.pi)
        self.data.mocap_pos[0] = [r * np.cos(a), r * np.sin(a), 0.0]

    def _observe(self) -> np.ndarray:
        q = self._qpos
        return np.concatenate((np.cos(q), np.sin(q), self._qvel, self._tip[:2], self._target[:2]))

    def project_obs(self, obs: Any) -> Any:
        """Joint angles q = atan2(sin, cos) give consistent cos/sin and the tip position
        (forward kinematics); velocities and target are kept."""
        import jax.numpy as jnp

        q = jnp.arctan2(obs[..., 3:6], obs[..., 0:3])
        tip = jnp.stack(planar_fk(q, LINKS), -1)
        return jnp.concatenate([jnp.cos(q), jnp.sin(q), obs[..., 6:9], tip, obs[..., 11:13]], -1)

    def _reward_impl(self, obs: Any, action: Any, xp: Any) -> Any:
        dx, dy = obs[9] - obs[11], obs[10] - obs[12]
        u0, u1, u2 = action[0], action[1], action[2]
        dist = xp.sqrt(dx * dx + dy * dy)
        return -REWARD_SCALE * (dist + CONTROL_COST * (u0 * u0 + u1 * u1 + u2 * u2))


class ReacherSingleEnv(ReacherEnv):
    """Single-target reacher with a low-variance start, for fitted models (§6.3).

    As :class:`ReacherEnv` (same observation, action, reward, T = 100, no terminal
    states; section 6.3's single-target variant) but the
    target is fixed at (0.05, 0.2) m and the arm starts near q = (0, 0, 0)
    (the arm stretched along +x): q ~ U(-0.05, 0.05) per joint, zero velocity.
    """

    TARGET = (0.05, 0.2)

    def _reset_task(self, rng: np.random.Generator) -> None:
        self.data.qpos[:] = rng.uniform(-0.05, 0.05, size=3)
        self.data.mocap_pos[0] = [*self.TARGET, 0.0]


def scripted_policy(env: gym.Env) -> Callable[[np.ndarray], np.ndarray]:
    """Inverse kinematics to the target (nearest reachable configuration) + joint PD."""
    cache: dict[tuple[float, float], np.ndarray] = {}

    def policy(obs: np.ndarray) -> np.ndarray:
        q = np.arctan2(obs[3:6], obs[0:3])
        key = (float(obs[11]), float(obs[12]))
        if key not in cache:
            q_ref = arm_ik(*key, q, LINKS, JOINT_LIMIT - 0.1)
            cache[key] = q if q_ref is None else q_ref
        return arm_pd(q, obs[6:9], cache[key], kp=3.0, kd=0.6)

    return policy


SPEC = TaskSpec.of(
    ReacherEnv,
    "nafrl/Reacher-v1",
    tags=("manipulation",),
    scripted=scripted_policy,
    description="3-DOF arm, random start and random target",
)
SINGLE_SPEC = TaskSpec.of(
    ReacherSingleEnv,
    "nafrl/ReacherSingle-v1",
    tags=("manipulation", "single-target"),
    scripted=scripted_policy,
    description="3-DOF arm, fixed target, low-variance start (§6.3)",
)
