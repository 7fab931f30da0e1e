"""Locomotion tasks (Gu et al. 2016, §6.1, Table 3): cheetah, swimmer6, ant, walker2d.

The bodies are not ours: the MJCF comes at run time from the installed
packages (nothing is copied into nafrl):

* Cheetah, Ant, Walker2d: Gymnasium's ``half_cheetah.xml``, ``ant.xml`` and
  ``walker2d_v5.xml`` (Ant gets a visual target marker added through ``MjSpec``).
* Swimmer6: dm_control's procedural swimmer (``swimmer.get_model_and_assets``)
  with 7 links, i.e. **six actuated joints** as Table 3 says ("using six
  joints"; dm_control's own ``swimmer6`` has 6 links and 5 joints), in a
  viscous fluid; the target is moved to a fixed position.

Horizons and control steps (the paper gives none; ours keep episodes a few
seconds long, the swimmer's 30 s as dm_control's swimmer):

===================  ====  ======  ===  ===  ==================================
id                   T     dt (s)  nu   obs  reward r(x_t, u_t)
===================  ====  ======  ===  ===  ==================================
nafrl/Cheetah-v1     200   0.05    6    24   0.5·dt·(v_x − 0.01‖u‖²)
nafrl/Swimmer6-v1    1000  0.03    6    25   −0.36·(‖target − head‖ + 0.001‖u‖²)
nafrl/Ant-v1         200   0.05    8    37   −(‖target − torso‖ + 0.1‖u‖²) / T
nafrl/Walker2d-v1    500   0.008   6    24   dt·(v_x + 3 − 0.001‖u‖²)
===================  ====  ======  ===  ===  ==================================

The paper gives no formulas; the forms follow its descriptions (Table 3: cheetah
and walker "move forward as quickly as possible", the swimmer and the ant move
"toward the fixed target") and the signs of Table 1: forward progress for cheetah
and walker (best returns positive), distance-to-target costs for swimmer and ant
(best returns negative). Each scale puts the mean return of uniform-random actions
(50 seeded episodes) on Table 1's random column: cheetah −0.40 (Table 1: −0.3),
swimmer6 −321 (−325), ant −4.9 (−4.8), walker2d 0.37 (0.3). So a cheetah return is
half the distance run in metres, a walker return the distance walked plus 3 per
second upright, an ant return its mean distance to the target over the episode.

All rewards are computed from the pre-step observation x_t and the clipped action
u_t, like the other tasks: v_x is the forward velocity of the torso, an observation
field, and the distances to the target are observation fields too. So every
locomotion task has the pure JAX ``env.reward(obs, action)``. (Velocity is that of
state x_t, so the effect of u_t shows in the next reward; the sum over an episode
differs from a displacement-based return only at the two ends.) Walker2d's bonus
of 3 per second upright makes standing beat falling.

Terminal states: only Walker2d's fall (torso height outside (0.8, 2.0) m or
pitch |θ| ≥ 1 rad, Gymnasium's "healthy" range), returned as ``terminated=True``
on the step that reaches it. Everything else ends by ``truncated=True`` at T.

Actions are ``Box(-1, 1)``, clipped, onto the models' own ``ctrlrange`` [-1, 1]
(torque = gear × action: cheetah 30–120 N·m, ant 150, walker 100, swimmer 5e-4).

:func:`scripted_policy` is an open-loop gait for Cheetah (return 10.7, Table 1's
best 8.23) and a steered travelling wave for Swimmer6 (−123, Table 1's best −172);
no scripted controller for Ant and Walker2d.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import mujoco
import numpy as np

from nafrl.envs.base import MujocoTaskEnv, TaskSpec

__all__ = [
    "CheetahEnv",
    "Swimmer6Env",
    "AntEnv",
    "Walker2dEnv",
    "scripted_policy",
    "CHEETAH_SPEC",
    "SWIMMER6_SPEC",
    "ANT_SPEC",
    "WALKER2D_SPEC",
]

GYM_ASSETS = Path(gym.__file__).resolve().parent / "envs" / "mujoco" / "assets"
"""Gymnasium's MuJoCo model directory (read at run time)."""

_EPS = 1e-3  # smooths the distance to the target so r stays differentiable at d = 0


@contextmanager
def _xml_on_disk(xml: str) -> Iterator[str]:
    """Write a self-contained MJCF string to a temporary file for ``from_xml_path``."""
    with tempfile.TemporaryDirectory(prefix="nafrl-") as tmp:
        path = Path(tmp) / "model.xml"
        path.write_text(xml)
        yield str(path)


class _LocomotionEnv(MujocoTaskEnv):
    """Locomotion task: observations read only ``qpos``/``qvel``.

    So the post-step kinematics pass is skipped (wrapper overhead): after
    ``step``, ``data.xpos`` and friends lag by one physics substep
    (``render`` and ``set_state`` refresh them).
    """

    def _after_physics(self) -> None:
        pass


class _GeneratedModelEnv(_LocomotionEnv):
    """A task whose MJCF is built at run time by :meth:`_build_xml`.

    :class:`MujocoTaskEnv` loads ``assets/<xml_file>``; this overrides
    :meth:`_load_model` to compile the generated string (built once per class)
    through a temporary file, deleted once loaded.
    """

    _xml_cache: ClassVar[dict[type, str]] = {}

    @classmethod
    def _build_xml(cls) -> str:
        raise NotImplementedError

    def _load_model(self) -> mujoco.MjModel:
        cls = type(self)
        if cls not in self._xml_cache:  # building (dm_control, MjSpec) is the slow part
            self._xml_cache[cls] = cls._build_xml()
        with _xml_on_disk(self._xml_cache[cls]) as path:
            return mujoco.MjModel.from_xml_path(path)


def _ctrl_sq(action: Any, n: int) -> Any:
    return sum(action[i] * action[i] for i in range(n))


def _distance(dx: Any, dy: Any, xp: Any) -> Any:
    """|d|, smoothed at d = 0 so the reward stays differentiable there."""
    return xp.sqrt(dx * dx + dy * dy + _EPS * _EPS)


# ----------------------------------------------------------------------------- cheetah
class CheetahEnv(_LocomotionEnv):
    """Planar cheetah runs forward as fast as possible (Table 3 "Cheetah").

    Model: Gymnasium's ``half_cheetah.xml`` (timestep 10 ms, ``frame_skip`` 5,
    dt = 0.05 s); T = 200 (10 s).

    Action (6,): torques of bthigh, bshin, bfoot, fthigh, fshin, ffoot.

    Observation (24,), float64:
        0       torso height z (m)
        1       sin of torso pitch
        2:8     sin of the six leg joint angles (order as the actions)
        8       cos of torso pitch
        9:15    cos of the six leg joint angles
        15      forward velocity v_x (m/s)
        16      vertical velocity v_z (m/s)
        17      pitch rate (rad/s)
        18:24   leg joint velocities (rad/s)

    Reward r(x_t, u_t) = 0.5·dt·(v_x − 0.01‖u‖²): the return is half the
    distance run (m) less a small control cost. Forward progress as the paper's
    description ("move forward as quickly as possible", Table 3) and Table 1's
    positive best; the factor 0.5 puts uniform-random actions on Table 1's random
    column (−0.40 over 50 seeded episodes, Table 1 −0.3), the scripted gait
    gets 10.7 (Table 1's best 8.23 DDPG). Horizon T = 200 (``truncated``).
    Initial state: Gymnasium's, qpos + U(−0.1, 0.1), qvel + 0.1·N(0, 1). No
    terminal states.
    """

    xml_file = str(GYM_ASSETS / "half_cheetah.xml")
    frame_skip = 5
    horizon = 200
    obs_size = 24
    has_reward_fn = True
    render_camera = "track"
    ctrl_cost: ClassVar[float] = 0.01
    reward_scale: ClassVar[float] = 0.5 * 0.05
    """0.5·dt (dt = 0.05 s)."""

    def __init__(self, render_mode: str | None = None, width: int = 240, height: int = 240) -> None:
        super().__init__(render_mode, width, height)
        assert self.reward_scale == 0.5 * self.dt
        self._z0 = float(self.model.body_pos[self.model.body("torso").id][2])

    def _reset_task(self, rng: np.random.Generator) -> None:
        d = self.data
        d.qpos[:] = self.model.qpos0 + rng.uniform(-0.1, 0.1, self.model.nq)
        d.qvel[:] = 0.1 * rng.standard_normal(self.model.nv)

    def _observe(self) -> np.ndarray:
        q = self.data.qpos.tolist()
        a = q[2:]  # pitch, then the six leg joints
        return np.array(
            [self._z0 + q[1], *map(math.sin, a), *map(math.cos, a), *self.data.qvel.tolist()]
        )

    def _reward_impl(self, obs: Any, action: Any, xp: Any) -> Any:
        return self.reward_scale * (obs[15] - self.ctrl_cost * _ctrl_sq(action, 6))


# ----------------------------------------------------------------------------- walker
class Walker2dEnv(_LocomotionEnv):
    """Planar biped walks forward without falling or pitching too far (Table 3 "Walker2d").

    Model: Gymnasium's ``walker2d_v5.xml`` (RK4, timestep 2 ms, ``frame_skip``
    4, dt = 0.008 s); T = 500 (4 s).

    Action (6,): torques of right thigh, leg, foot, left thigh, leg, foot.

    Observation (24,), float64:
        0       torso height z (m)
        1       sin of torso pitch θ
        2:8     sin of the six leg joint angles (order as the actions)
        8       cos of torso pitch θ
        9:15    cos of the six leg joint angles
        15      forward velocity v_x (m/s)
        16      vertical velocity v_z (m/s)
        17      pitch rate (rad/s)
        18:24   leg joint velocities (rad/s)

    Reward r(x_t, u_t) = dt·(v_x + 3 − 0.001‖u‖²): the return is the distance
    walked (m) plus 3 per second upright (Gymnasium's alive bonus, per second
    instead of per step), less a small control cost. Forward progress as the
    paper's description (Table 3) and Table 1's positive best; the bonus of 3
    puts uniform-random actions, which fall after about 0.17 s, on Table 1's
    random column (0.37 over 50 seeded episodes, Table 1 0.3). No scripted
    controller. Horizon T = 500 (``truncated``); terminated when the torso
    height leaves (0.8, 2.0) m or |θ| ≥ 1 rad. Initial state: Gymnasium's, qpos
    and qvel + U(−0.005, 0.005).
    """

    xml_file = str(GYM_ASSETS / "walker2d_v5.xml")
    frame_skip = 4
    horizon = 500
    obs_size = 24
    has_reward_fn = True
    render_camera = "track"
    ctrl_cost: ClassVar[float] = 1e-3
    alive_bonus: ClassVar[float] = 3.0
    """Per second upright (m/s units, like v_x)."""
    reward_scale: ClassVar[float] = 0.008
    """dt (s)."""
    healthy_z: ClassVar[tuple[float, float]] = (0.8, 2.0)
    healthy_pitch: ClassVar[float] = 1.0

    def _reset_task(self, rng: np.random.Generator) -> None:
        d = self.data
        d.qpos[:] = self.model.qpos0 + rng.uniform(-5e-3, 5e-3, self.model.nq)
        d.qvel[:] = rng.uniform(-5e-3, 5e-3, self.model.nv)

    def _observe(self) -> np.ndarray:
        q = self.data.qpos.tolist()
        a = q[2:]  # pitch, then the six leg joints
        return np.array([q[1], *map(math.sin, a), *map(math.cos, a), *self.data.qvel.tolist()])

    def _reward_impl(self, obs: Any, action: Any, xp: Any) -> Any:
        return self.reward_scale * (
            obs[15] + self.alive_bonus - self.ctrl_cost * _ctrl_sq(action, 6)
        )

    def _terminated(self, obs: np.ndarray) -> bool:
        z = float(obs[0])
        lo, hi = self.healthy_z
        # |θ| < 1 rad  <=>  cos θ > cos 1 (for |θ| < 2π − 1, i.e. before any full flip).
        upright = float(obs[8]) > math.cos(self.healthy_pitch)
        return not (lo < z < hi and upright)


# ----------------------------------------------------------------------------- ant
class AntEnv(_GeneratedModelEnv):
    """Four-legged 3D ant walks to a fixed target from a fixed start (Table 3 "Ant").

    Model: Gymnasium's ``ant.xml`` (RK4, timestep 10 ms, ``frame_skip`` 5,
    dt = 0.05 s) plus a visual target marker; T = 200 (10 s). The target is
    fixed at (3, 3) m; the start (Gymnasium's initial posture at the origin,
    at rest) is the same every episode.

    Action (8,): hip and ankle torques of legs 4, 1, 2, 3 (Gymnasium's order).

    Observation (37,), float64:
        0       torso height z (m)
        1:5     torso orientation quaternion (w, x, y, z)
        5:13    sin of the eight hip/ankle angles (qpos order: hip_1, ankle_1, ... ankle_4)
        13:21   cos of those angles
        21:23   target − torso, x and y (m)
        23:26   torso linear velocity, world frame (m/s)
        26:29   torso angular velocity, body frame (rad/s)
        29:37   hip/ankle velocities (rad/s)

    Reward r(x_t, u_t) = −(‖target − torso‖ + 0.1‖u‖²) / T (horizontal distance,
    m): the return is the episode's mean distance to the target plus a control
    cost. A distance cost as the paper's description ("move toward the fixed
    target", Table 3) and Table 1's negative best (−2.54 DDPG); uniform-random
    actions get −4.9 over 50 seeded episodes (Table 1: −4.8): the target is
    4.24 m away and a random ant drifts. No scripted controller. Horizon
    T = 200 (``truncated``); no terminal states (a flipped ant just keeps its
    episode).
    """

    xml_file = "gymnasium ant.xml + target (built at run time)"
    frame_skip = 5
    horizon = 200
    obs_size = 37
    has_reward_fn = True
    render_camera = "track"
    ctrl_cost: ClassVar[float] = 0.1
    target: ClassVar[tuple[float, float]] = (3.0, 3.0)

    @classmethod
    def _build_xml(cls) -> str:
        spec = mujoco.MjSpec.from_file(str(GYM_ASSETS / "ant.xml"))
        spec.worldbody.add_geom(
            name="target",
            type=mujoco.mjtGeom.mjGEOM_SPHERE,
            size=[0.25, 0, 0],
            pos=[cls.target[0], cls.target[1], 0.25],
            rgba=[0.2, 0.8, 0.2, 0.6],
            contype=0,
            conaffinity=0,
        )
        return spec.to_xml()

    def _reset_task(self, rng: np.random.Generator) -> None:
        self.data.qpos[:] = self.model.qpos0
        self.data.qvel[:] = 0.0

    def _observe(self) -> np.ndarray:
        q = self.data.qpos.tolist()
        a = q[7:]
        tx, ty = self.target
        return np.array(
            [*q[2:7], *map(math.sin, a), *map(math.cos, a), tx - q[0], ty - q[1],
             *self.data.qvel.tolist()]
        )  # fmt: skip

    def _reward_impl(self, obs: Any, action: Any, xp: Any) -> Any:
        dist = _distance(obs[21], obs[22], xp)
        return -(dist + self.ctrl_cost * _ctrl_sq(action, 8)) / self.horizon


# ----------------------------------------------------------------------------- swimmer
class Swimmer6Env(_GeneratedModelEnv):
    """Six-joint planar snake swims to a fixed target from random poses (Table 3 "Swimmer6").

    Model: dm_control's procedural swimmer with 7 links and 6 hinge joints
    (limits ±360°/7) in a viscous fluid, timestep 2 ms, ``frame_skip`` 15,
    dt = 0.03 s (dm_control's control step); T = 1000 (30 s, dm_control's time
    limit; ``truncated`` at T). The target is
    fixed at (0.6, 0.6) m; the head starts at the origin with a uniformly random
    heading and uniformly random joint angles, at rest.

    Action (6,): joint torques, head to tail.

    Observation (25,), float64 (the "head" is the head's root point, 1 cm
    behind the nose):
        0, 1    target − head, x and y (m)
        2       sin of the heading h (the nose points along (sin h, −cos h))
        3:9     sin of the six joint angles (head to tail)
        9       cos of the heading
        10:16   cos of the six joint angles
        16, 17  head velocity, x and y (m/s, world frame)
        18      heading rate (rad/s)
        19:25   joint velocities (rad/s)

    Reward r(x_t, u_t) = −0.36·(‖target − head‖ + 0.001‖u‖²) (distance in m). A
    distance cost as the paper's description ("swim ... toward the fixed target",
    Table 3) and Table 1's negative best (−172 NAF); the scale 0.36 puts
    uniform-random actions, which barely move the head from 0.88 m away, on
    Table 1's random column (−321 over 50 seeded episodes, Table 1 −325); the
    steered gait gets −123. No terminal states.
    """

    xml_file = "dm_control swimmer, 7 links (built at run time)"
    frame_skip = 15
    horizon = 1000
    obs_size = 25
    has_reward_fn = True
    render_camera = "tracking1"
    ctrl_cost: ClassVar[float] = 1e-3
    reward_scale: ClassVar[float] = 0.36
    target: ClassVar[tuple[float, float]] = (0.6, 0.6)
    n_joints: ClassVar[int] = 6

    @classmethod
    def _build_xml(cls) -> str:
        from dm_control.suite import swimmer

        xml, includes = swimmer.get_model_and_assets(cls.n_joints + 1)
        spec = mujoco.MjSpec.from_string(xml.decode(), include=includes)
        spec.geom("target").pos = np.array([cls.target[0], cls.target[1], 0.05])
        spec.light("target_light").pos = np.array([cls.target[0], cls.target[1], 1.5])
        return spec.to_xml()

    def __init__(self, render_mode: str | None = None, width: int = 240, height: int = 240) -> None:
        super().__init__(render_mode, width, height)
        m = self.model
        # The root joints act at the point (0, -0.05) of the head frame; head body at (0, 0).
        root = m.jnt_pos[m.joint("rootx").id][:2] + m.body_pos[m.body("head").id][:2]
        self._target_rel = (self.target[0] - float(root[0]), self.target[1] - float(root[1]))
        self._jnt_range = m.jnt_range[3:].copy()

    def _reset_task(self, rng: np.random.Generator) -> None:
        d = self.data
        d.qpos[2] = rng.uniform(-np.pi, np.pi)
        d.qpos[3:] = rng.uniform(self._jnt_range[:, 0], self._jnt_range[:, 1])

    def _observe(self) -> np.ndarray:
        q = self.data.qpos.tolist()
        a = q[2:]  # heading, then the six joints
        dx, dy = self._target_rel
        return np.array(
            [dx - q[0], dy - q[1], *map(math.sin, a), *map(math.cos, a),
             *self.data.qvel.tolist()]
        )  # fmt: skip

    def _reward_impl(self, obs: Any, action: Any, xp: Any) -> Any:
        dist = _distance(obs[0], obs[1], xp)
        return -self.reward_scale * (dist + self.ctrl_cost * _ctrl_sq(action, self.n_joints))


# ----------------------------------------------------------------------------- scripted
# Cheetah gait, per joint (bthigh, bshin, bfoot, fthigh, fshin, ffoot): amplitude, phase
# (rad), offset; 2.3 Hz. Found by a cross-entropy search over the 19 numbers (distance run
# in 3 seeded episodes); it runs 21-23 m in 10 s on every seed tried.
_CHEETAH_FREQ = 2.3
_CHEETAH_AMP = np.array([1.5, 1.5, 0.0, 0.65, 0.27, 0.0])
_CHEETAH_PHASE = np.array([0.06, -1.11, 3.11, 4.21, 5.83, 6.51])
_CHEETAH_OFFSET = np.array([0.88, 0.06, 0.28, -0.23, 0.21, -0.82])


def scripted_policy(env: gym.Env) -> Callable[[np.ndarray], np.ndarray]:
    """Open-loop gait for Cheetah, steered travelling wave for Swimmer6.

    Cheetah: joint i gets ``a_i sin(2π f t − φ_i) + b_i`` (t from
    ``env.unwrapped.step_count``), the constants above. Swimmer6: joint i gets
    ``sin(2π f t − 1.5 i)`` plus a bias proportional to the heading error (the
    angle from its heading to the target direction), which bends the body to turn
    it.
    """
    e = env.unwrapped
    if isinstance(e, CheetahEnv):
        freq, amp, phase, offset = _CHEETAH_FREQ, _CHEETAH_AMP, _CHEETAH_PHASE, _CHEETAH_OFFSET
    elif isinstance(e, Swimmer6Env):
        # Frequency (Hz), phase lag between neighbouring joints (rad), amplitude: tuned by a
        # small grid search over 3 seeded episodes.
        freq, amp, offset = 0.5, 1.0, 0.0
        phase = 1.5 * np.arange(e.model.nu)
    else:
        raise TypeError(f"no scripted gait for {type(e).__name__}")
    swimmer = isinstance(e, Swimmer6Env)

    def policy(obs: np.ndarray) -> np.ndarray:
        t = e.step_count * e.dt
        u = amp * np.sin(2 * np.pi * freq * t - phase) + offset
        if swimmer:
            # Heading of the nose is −y in the head frame: (sin h, −cos h) in the world.
            s, c = float(obs[2]), float(obs[9])
            nose = math.atan2(-c, s)
            err = math.atan2(float(obs[1]), float(obs[0])) - nose
            err = (err + math.pi) % (2 * math.pi) - math.pi
            u = u - 0.6 * err
        return np.clip(u, -1.0, 1.0).astype(np.float32)

    return policy


CHEETAH_SPEC = TaskSpec.of(
    CheetahEnv,
    "nafrl/Cheetah-v1",
    tags=("locomotion",),
    scripted=scripted_policy,
    description="planar cheetah runs forward (Gymnasium half_cheetah model)",
)
SWIMMER6_SPEC = TaskSpec.of(
    Swimmer6Env,
    "nafrl/Swimmer6-v1",
    tags=("locomotion",),
    scripted=scripted_policy,
    description="six-joint swimmer swims to a fixed target from random poses (dm_control model)",
)
ANT_SPEC = TaskSpec.of(
    AntEnv,
    "nafrl/Ant-v1",
    tags=("locomotion",),
    description="3D ant walks to a fixed target from a fixed start (Gymnasium ant model)",
)
WALKER2D_SPEC = TaskSpec.of(
    Walker2dEnv,
    "nafrl/Walker2d-v1",
    tags=("locomotion",),
    description="planar biped walks forward without falling (Gymnasium walker2d model)",
)
