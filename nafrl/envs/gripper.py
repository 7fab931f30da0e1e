"""Gripper tasks (Gu et al. 2016, §6, Table 3): grasp an object, carry it to a fixed target.

Three tasks share one planar arm (``assets/gripper.xml``, ``assets/gripper_mobile.xml``):
a gravity-compensated 3-link arm (shoulder, elbow, wrist torques) with a
two-finger gripper (one grip-force action, positive closes) over a floor with
a 5 cm cube on it. Everything moves in the vertical x-z plane ("All the domains
except ant are 2D", Table 3).

=====================  =====  ===  =====  ==========================================
id                     T      nu   obs    initial state
=====================  =====  ===  =====  ==========================================
nafrl/Gripper-v1       150    4    26     arm near home (±0.05 rad), object x ~ U[0.15, 0.45]
nafrl/GripperM-v1      150    5    28     base at 0, object x ~ U[0.55, 0.85] (out of reach)
nafrl/GripperSingle-v1 150    4    26     arm ±0.005 rad, object x = 0.3 ± 0.005 (§6.3)
=====================  =====  ===  =====  ==========================================

T = 150 steps of dt = 0.04 s (8 substeps of 5 ms): the paper switches imagination
rollouts off "after 130 episodes (20,000 steps) on the gripper domain" (§6.3),
i.e. about 150 steps per episode. Targets are fixed: (-0.25, 0.3) for Gripper
and GripperSingle, (-0.5, 0.3) for GripperM, both in the air, so the object
must be lifted.

Actions (``Box(-1, 1)``, clipped, scaled by the actuator gears):
``[shoulder, elbow, wrist, grip]`` torques 8, 5, 2 N·m and finger force 10 N
per unit; GripperM prepends the platform force (30 N per unit).

Observation (float64), field by field (positions in metres, world x-z plane):

======  ==================================================================
index   field
======  ==================================================================
0:3     sin of shoulder, elbow, wrist angles
3:6     cos of shoulder, elbow, wrist angles
6:8     finger closings (m, 0 = open, 0.045 = shut)
8:11    shoulder, elbow, wrist angular velocities (rad/s)
11:13   finger velocities (m/s)
13:15   grip point (between the fingertips) x, z
15:17   object centre x, z
17:19   sin, cos of the object's angle
19:22   object velocity vx, vz (m/s), angular velocity (rad/s)
22:24   object − grip point
24:26   target − object
26      (GripperM only) platform x
27      (GripperM only) platform velocity
======  ==================================================================

Reward (dense distance costs plus a success bonus, a pure function of the pre-step
observation x_t and the action u_t, available as the JAX function
``env.reward(obs, action)``):

    r(x, u) = k·(−d(object − grip) − d(target − object) − 0.01·‖u‖² + 0.5·s(x)),
    d(v) = sqrt(‖v‖² + 0.01²),  s(x) = ½(1 + tanh((0.05 − d(target − object)) / 0.01))

(a smoothed distance, so r is twice differentiable for iLQG; s is a smooth step of
the object's distance to the target: above 0.97 within 3 cm, about 1/2 at 5 cm,
below 1e-4 beyond 10 cm).
The paper gives no formula. The distance terms follow its description ("grasp an
object and manoeuvre the object to a fixed target", Table 3); the success bonus
follows Table 1, whose best Gripper returns are positive (1.03 DDPG, 1.81 NAF), so
no sum of costs alone can be its reward. The scale k (``reward_scale``) puts
uniform-random actions on Table 1's random column: k = 0.18 for Gripper and
GripperSingle, 0.3 for GripperM. Returns over 50 seeded episodes of uniform-random
actions / 10 of :func:`scripted_policy`, against Table 1's random / best:

Gripper −29.0 / +4.6 (Table 1: −29 / 1.81 NAF); GripperM −88 / −3.7 (Table 1: −90 /
−12.4 NAF); GripperSingle −29.3 / +4.7 (section 6.3's variant, no Table 1 row).

Horizon T = 150 (``truncated`` at T); no terminal states (a dropped object just
lies on the floor).

:func:`scripted_policy` is a scripted controller (inverse kinematics plus
joint PD): hover above the object, descend, close, carry the object to the
target.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from nafrl.envs.base import MujocoTaskEnv, TaskSpec
from nafrl.envs.scripted import planar_fk, planar_ik3, wrap_angle

__all__ = [
    "GripperEnv",
    "GripperMobileEnv",
    "GripperSingleEnv",
    "scripted_policy",
    "SPEC",
    "MOBILE_SPEC",
    "SINGLE_SPEC",
]

SHOULDER_Z = 0.55
"""Height of the shoulder joint (m)."""
LINKS = (0.3, 0.3, 0.145)
"""Upper arm, forearm, and wrist-to-grip-point lengths (m)."""
CTRL_COST = 0.01
"""Weight of ‖u‖² in the reward."""
DIST_EPS = 0.01
"""Smoothing length (m) of the distances in the reward."""
SUCCESS_BONUS = 0.5
"""Reward (before scaling) per step with the object at the target."""
SUCCESS_RADIUS = 0.05
"""Smoothed distance (m) from the target at which the success step is one half."""
SUCCESS_WIDTH = 0.01
"""Width (m) of the smooth success step."""
HOME_GRIP = np.array([0.1, 0.3])
"""Grip-point position of the home pose (hand pointing down), relative to the platform."""

# Observation layout (shared by all three tasks; GripperM appends two fields).
_SIN, _COS, _FING, _QVEL, _FVEL = slice(0, 3), slice(3, 6), slice(6, 8), slice(8, 11), slice(11, 13)
_GRIP, _OBJ, _OBJ_ANG, _OBJ_VEL = slice(13, 15), slice(15, 17), slice(17, 19), slice(19, 22)
_OBJ_REL, _TGT_REL = slice(22, 24), slice(24, 26)
_BASE_X, _BASE_V = 26, 27


def _smooth_dist(dx: Any, dz: Any, xp: Any) -> Any:
    return xp.sqrt(dx * dx + dz * dz + DIST_EPS * DIST_EPS)


def arm_ik(grip: np.ndarray, shoulder: np.ndarray) -> np.ndarray:
    """Joint angles (3,) putting the grip point at ``grip`` (2,) with the hand pointing down.

    Planar inverse kinematics (:func:`~nafrl.envs.scripted.planar_ik3`, elbow
    bent up) in the x-z plane; wrist targets out of reach are pulled back onto
    the reachable circle.
    """
    l1, l2, l3 = LINKS
    rel = np.asarray(grip, dtype=np.float64) - shoulder
    wrist = rel + np.array([0.0, l3])
    reach = float(np.hypot(*wrist))
    if reach > 0.999 * (l1 + l2):
        rel = rel - wrist * (1.0 - 0.999 * (l1 + l2) / reach)
    q = planar_ik3(float(rel[0]), float(rel[1]), -np.pi / 2, LINKS, elbow=-1.0)
    assert q is not None
    return q


class GripperEnv(MujocoTaskEnv):
    """Planar arm with a gripper grasps a cube and carries it to a fixed target (Table 3).

    See the module docstring for actions, observation and the reward (distance costs
    plus a success bonus, scale k = 0.18). Horizon T = 150; no terminal states.
    """

    xml_file = "gripper.xml"
    frame_skip = 8
    horizon = 150
    obs_size = 26
    has_reward_fn = True
    has_obs_projection = True
    render_camera = "side"

    target: ClassVar[tuple[float, float]] = (-0.25, 0.3)
    """Fixed target of the object centre (x, z)."""
    object_x_range: ClassVar[tuple[float, float]] = (0.15, 0.45)
    """Initial object x is uniform in this range."""
    arm_noise: ClassVar[float] = 0.05
    """Half-width (rad) of the uniform noise on the home joint angles."""
    reward_scale: ClassVar[float] = 0.18
    """k in the reward (module docstring): random-agent return -29, Table 1's random -29."""

    def __init__(self, render_mode: str | None = None, width: int = 240, height: int = 240) -> None:
        super().__init__(render_mode, width, height)
        m = self.model
        # qpos = qvel layout: [base_x (GripperM only)], 3 arm, 2 fingers, object x, z, angle.
        self._qi = int(m.jnt_qposadr[m.joint("shoulder").id])
        self._q_arm = slice(self._qi, self._qi + 3)
        self._q_obj = slice(self._qi + 5, self._qi + 8)
        self._obj_body = m.body("object").id
        self._obj_pos0 = m.body_pos[self._obj_body][[0, 2]].copy()
        self._grip_site = m.site("grip").id
        self._target = np.asarray(self.target, dtype=np.float64)
        self._target_xz = (float(self._target[0]), float(self._target[1]))
        self._nu = m.nu
        tgt_site = m.site("target").id
        m.site_pos[tgt_site] = [self._target[0], 0.0, self._target[1]]

    # -- task hooks ---------------------------------------------------------------
    def _reset_task(self, rng: np.random.Generator) -> None:
        d = self.data
        q = arm_ik(HOME_GRIP, np.array([0.0, SHOULDER_Z]))
        d.qpos[self._q_arm] = q + rng.uniform(-self.arm_noise, self.arm_noise, 3)
        x = rng.uniform(*self.object_x_range)
        d.qpos[self._q_obj] = [x - self._obj_pos0[0], 0.0, 0.0]

    def _observe(self) -> np.ndarray:
        # Plain floats and one array build: this runs every step (wrapper overhead budget).
        d = self.data
        i = self._qi
        q = d.qpos[i : i + 8].tolist()  # 3 arm, 2 fingers, object x, z, angle
        v = d.qvel[i : i + 8].tolist()
        gx, _, gz = d.site_xpos[self._grip_site].tolist()
        ox, _, oz = d.xpos[self._obj_body].tolist()
        tx, tz = self._target_xz
        s0, s1, s2 = math.sin(q[0]), math.sin(q[1]), math.sin(q[2])
        c0, c1, c2 = math.cos(q[0]), math.cos(q[1]), math.cos(q[2])
        obs = [s0, s1, s2, c0, c1, c2, q[3], q[4], *v[:5], gx, gz, ox, oz]
        obs += [math.sin(q[7]), math.cos(q[7]), *v[5:], ox - gx, oz - gz, tx - ox, tz - oz]
        if i:  # GripperM: platform position and velocity
            obs += [d.qpos[0], d.qvel[0]]
        return np.array(obs)

    def project_obs(self, obs: Any) -> Any:
        """Arm and object angles from atan2 give consistent sin/cos; the grip point comes
        from forward kinematics, and the two difference vectors from the grip point, the
        object centre and the fixed target. Velocities, fingers and platform are kept."""
        import jax.numpy as jnp

        q = jnp.arctan2(obs[..., _SIN], obs[..., _COS])
        gx, gz = planar_fk(q, LINKS)  # in the x-z plane, from the shoulder
        gx = gx + (obs[..., _BASE_X] if self._qi else 0.0)
        gz = gz + SHOULDER_Z
        ox, oz = obs[..., _OBJ.start], obs[..., _OBJ.start + 1]
        ang = jnp.arctan2(obs[..., _OBJ_ANG.start], obs[..., _OBJ_ANG.start + 1])
        tx, tz = self._target_xz
        parts = [
            jnp.sin(q),
            jnp.cos(q),
            obs[..., _FING],
            obs[..., _QVEL],
            obs[..., _FVEL],
            jnp.stack([gx, gz, ox, oz, jnp.sin(ang), jnp.cos(ang)], -1),
            obs[..., _OBJ_VEL],
            jnp.stack([ox - gx, oz - gz, tx - ox, tz - oz], -1),
            obs[..., 26:],
        ]
        return jnp.concatenate(parts, -1)

    def _reward_impl(self, obs: Any, action: Any, xp: Any) -> Any:
        u2 = sum(action[i] * action[i] for i in range(self._nu))
        to_target = _smooth_dist(obs[24], obs[25], xp)
        # Smooth success step: tanh keeps it differentiable and cannot overflow (exp could).
        success = 0.5 * (1.0 + xp.tanh((SUCCESS_RADIUS - to_target) / SUCCESS_WIDTH))
        return self.reward_scale * (
            SUCCESS_BONUS * success
            - _smooth_dist(obs[22], obs[23], xp)
            - to_target
            - CTRL_COST * u2
        )


class GripperSingleEnv(GripperEnv):
    """Single-target Gripper with a low-variance initial state, for fitted models (§6.3).

    Same reward (k = 0.18), horizon (T = 150) and termination (none) as :class:`GripperEnv`.
    """

    object_x_range = (0.295, 0.305)
    arm_noise = 0.005


class GripperMobileEnv(GripperEnv):
    """Gripper on a platform sliding along x; the object starts out of the arm's reach (Table 3).

    Observation: the Gripper fields plus platform x (26) and velocity (27).
    Actions: ``[platform, shoulder, elbow, wrist, grip]``. Reward as Gripper's with
    k = 0.3 (random-agent return -88, Table 1's random -90); T = 150, no terminal states.
    """

    xml_file = "gripper_mobile.xml"
    obs_size = 28
    reward_scale = 0.3
    target = (-0.5, 0.3)
    object_x_range = (0.55, 0.85)


# -- scripted controller --------------------------------------------------------------
_KP = np.array([40.0, 30.0, 10.0])
_KD = np.array([2.0, 1.5, 0.5])
_GEAR = np.array([8.0, 5.0, 2.0])
_BASE_KP, _BASE_KD, _BASE_GEAR = 300.0, 40.0, 30.0


def scripted_policy(env: gym.Env) -> Callable[[np.ndarray], np.ndarray]:
    """Scripted grasp-and-carry controller for the gripper tasks, a function of the observation.

    Stateless phases: with the fingers open, hover above the object and descend
    onto it (grip-point height above the object shrinks with the horizontal
    error); close once the object is between the fingertips; with the object
    held, carry it to the target. Joint targets come from :func:`arm_ik` and are
    tracked by a PD law on torques; on GripperM the platform is PD-driven to
    keep the work point 0.25 m to its right.
    """
    base = env.unwrapped
    if not isinstance(base, GripperEnv):
        raise TypeError(f"scripted_policy needs a GripperEnv, got {type(base).__name__}")
    mobile = isinstance(base, GripperMobileEnv)
    target = np.asarray(base.target, dtype=np.float64)

    def policy(obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float64)
        q = np.arctan2(obs[_SIN], obs[_COS])
        grip, obj, to_obj = obs[_GRIP], obs[_OBJ], obs[_OBJ_REL]
        dist = float(np.hypot(*to_obj))
        closing = float(obs[6] + obs[7])
        near = dist < 0.03
        if near and closing > 0.03:  # held: carry the object to the target
            goal, close, step = target - to_obj, 1.0, 0.06
        elif dist < 0.012 or (near and closing > 0.004):  # in the fingers: close
            goal, close, step = obj.copy(), 1.0, 0.06
        else:  # approach from above
            goal = obj + np.array([0.0, min(0.12, 4.0 * abs(float(to_obj[0])))])
            close, step = -1.0, 0.1
        delta = goal - grip
        n = float(np.hypot(*delta))
        if n > step:
            goal = grip + delta * (step / n)
        base_x = float(obs[_BASE_X]) if mobile else 0.0
        q_star = arm_ik(goal, np.array([base_x, SHOULDER_Z]))
        err = wrap_angle(q_star - q)
        u_arm = (_KP * err - _KD * obs[_QVEL]) / _GEAR
        u = np.concatenate([u_arm, [close]])
        if mobile:
            # Platform follows the work point (object, or target when held).
            work = target[0] if (near and closing > 0.03) else float(obj[0])
            bx_star = work - 0.25
            u_base = (_BASE_KP * (bx_star - base_x) - _BASE_KD * obs[_BASE_V]) / _BASE_GEAR
            u = np.concatenate([[u_base], u])
        return np.clip(u, -1.0, 1.0).astype(np.float32)

    return policy


SPEC = TaskSpec.of(
    GripperEnv,
    "nafrl/Gripper-v1",
    tags=("manipulation",),
    scripted=scripted_policy,
    description="planar arm with gripper carries a cube to a fixed target",
)
MOBILE_SPEC = TaskSpec.of(
    GripperMobileEnv,
    "nafrl/GripperM-v1",
    tags=("manipulation",),
    scripted=scripted_policy,
    description="gripper arm on a sliding platform, cube starts out of reach",
)
SINGLE_SPEC = TaskSpec.of(
    GripperSingleEnv,
    "nafrl/GripperSingle-v1",
    tags=("manipulation", "single-target"),
    scripted=scripted_policy,
    description="gripper with one target and a low-variance start, for fitted models (§6.3)",
)
