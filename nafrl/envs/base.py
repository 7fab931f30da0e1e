"""Common base for nafrl's MuJoCo tasks (paper §6 and Table 3).

Every task is a Gymnasium environment with a fixed horizon T, actions in
[-1, 1], a float64 observation, exact state save/restore (for the true-dynamics
model of §6.2) and, for manipulation tasks and cartpole, a pure JAX reward
r(x_t, u_t) that the iLQG planner can differentiate (§5, App. 8.1).

How to add a task
-----------------
1. Write the physics as ``nafrl/envs/assets/<task>.xml`` (MJCF). Actions in
   [-1, 1] are mapped linearly onto each actuator's ``ctrlrange`` (give
   ``ctrlrange="-1 1"`` and put the force scale in ``gear`` to keep it the
   identity). Task objects that move per episode (targets) are best mocap
   bodies: ``mocap_pos`` is then part of the saved state automatically.
2. Write ``nafrl/envs/<task>.py`` with a subclass of :class:`MujocoTaskEnv`::

       class MyEnv(MujocoTaskEnv):
           xml_file = "mytask.xml"   # in nafrl/envs/assets/
           frame_skip = 25           # physics substeps per env step
           horizon = 100             # T: truncated=True after T steps
           obs_size = 11
           has_reward_fn = True      # if _reward_impl below is pure

           def _reset_task(self, rng: np.random.Generator) -> None:
               ...  # write self.data.qpos / qvel / mocap_pos from rng

           def _observe(self) -> np.ndarray:
               ...  # kinematics (xpos, site_xpos) are current here

           def _reward_impl(self, obs, action, xp):
               ...  # r(x_t, u_t) for one transition: xp is math (lists of floats,
                    # in step) or jax.numpy (in reward); action already clipped

   Tasks whose reward is not a function of (x_t, u_t) alone (e.g. locomotion
   rewards from displacement) leave ``has_reward_fn = False`` and override
   :meth:`MujocoTaskEnv._step_reward` instead. Override
   :meth:`MujocoTaskEnv._terminated` for true terminal states (falling).
   Extra task state that is not in MuJoCo's ``mjData`` goes through
   :meth:`_get_task_state` / :meth:`_set_task_state`; a model built in code
   (not an asset file) comes from overriding :meth:`_load_model`. If the
   observation holds redundant features (sin/cos pairs, forward-kinematics
   positions), set ``has_obs_projection = True`` and override
   :meth:`project_obs` to recompute them from the independent ones: imagination
   rollouts through fitted models then stay on valid observations.
3. At the bottom of the module define
   ``SPEC = TaskSpec.of(MyEnv, "nafrl/My-v1", tags=("manipulation",), scripted=...)``
   and add the one line ``"nafrl.envs.mytask:SPEC",`` to ``SPEC_PATHS`` in
   ``nafrl/envs/registry.py``. The registry's tests then run on it.
"""

from __future__ import annotations

import atexit
import copy
import math
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import gymnasium as gym
import mujoco
import numpy as np

from nafrl.runtime import select_render_backend

if TYPE_CHECKING:
    import jax

ASSETS = Path(__file__).resolve().parent / "assets"

#: ``scripted(env) -> policy``; ``policy(obs) -> action`` may peek at ``env.unwrapped``.
ScriptedFactory = Callable[[gym.Env], Callable[[np.ndarray], np.ndarray]]

_STATE_SPEC = mujoco.mjtState.mjSTATE_INTEGRATION

# Renderers still open at interpreter exit are closed before module teardown (otherwise
# MuJoCo's OSMesa context frees itself after its library handle is gone and prints errors).
_LIVE_RENDERERS: weakref.WeakSet[mujoco.Renderer] = weakref.WeakSet()


@atexit.register
def _close_renderers() -> None:
    for r in list(_LIVE_RENDERERS):
        r.close()


@dataclass(frozen=True)
class TaskSpec:
    """Registry entry of one task (see :mod:`nafrl.envs.registry`)."""

    id: str
    """Gymnasium id, e.g. ``"nafrl/Reacher-v1"``."""
    entry_point: str
    """``"module:Class"`` given to ``gymnasium.register``."""
    horizon: int
    """Fixed episode length T (steps)."""
    tags: tuple[str, ...] = ()
    """E.g. ``("manipulation",)``, ``("locomotion",)``, ``("single-target",)``."""
    has_reward_fn: bool = False
    """True if ``env.unwrapped.reward(obs, action)`` is a pure JAX r(x_t, u_t)."""
    scripted: ScriptedFactory | None = None
    """Scripted controller factory ``scripted(env) -> policy`` or None."""
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    """Keyword arguments passed to the environment constructor."""
    description: str = ""

    @classmethod
    def of(
        cls,
        env_cls: type[MujocoTaskEnv],
        id: str,
        *,
        tags: tuple[str, ...] = (),
        scripted: ScriptedFactory | None = None,
        kwargs: Mapping[str, Any] | None = None,
        description: str = "",
    ) -> TaskSpec:
        """Build a spec whose entry point, horizon and reward flag come from ``env_cls``."""
        doc = (env_cls.__doc__ or "").strip().splitlines()
        return cls(
            id=id,
            entry_point=f"{env_cls.__module__}:{env_cls.__qualname__}",
            horizon=env_cls.horizon,
            tags=tuple(tags),
            has_reward_fn=env_cls.has_reward_fn,
            scripted=scripted,
            kwargs=dict(kwargs or {}),
            description=description or (doc[0] if doc else ""),
        )


class MujocoTaskEnv(gym.Env[np.ndarray, np.ndarray]):
    """A MuJoCo task with fixed horizon, [-1, 1] actions and exact state get/set.

    Conventions shared by all tasks:

    * ``step`` applies the clipped action for ``frame_skip`` physics substeps
      (one ``mj_step`` call), counts steps itself and returns
      ``truncated=True`` from step ``horizon`` on; ``terminated`` only for true
      terminal states. Stepping on past T is allowed (models restoring a state
      near the end of an episode may roll a few steps further).
    * Actions: ``Box(-1, 1, (nu,), float32)``; any float dtype is accepted,
      values outside [-1, 1] are clipped, and NaN/inf or a wrong shape raise
      ``ValueError``.
    * Observations: ``Box(-inf, inf, (obs_size,), float64)``.
    * The reward returned for the transition (x_t, u_t, x_{t+1}) is
      ``r(x_t, u_t)`` computed from the pre-step observation x_t for tasks with
      ``has_reward_fn``; :meth:`reward` is the same function in JAX.
    * :meth:`get_state` / :meth:`set_state`: a 1-D float64 vector holding
      MuJoCo's full integration state (time, qpos, qvel, act, ctrl, warm
      start, mocap, applied forces), the step counter and any task extras;
      restoring it reproduces later observations bit for bit.
    """

    # Not a ClassVar: __init__ sets each instance's render_fps from its dt.
    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 20}

    xml_file: ClassVar[str]
    """MJCF file name in ``nafrl/envs/assets``."""
    frame_skip: ClassVar[int] = 1
    """Physics substeps per environment step."""
    horizon: ClassVar[int]
    """Episode length T."""
    obs_size: ClassVar[int]
    """Length of the observation vector."""
    has_reward_fn: ClassVar[bool] = False
    """True if :meth:`_reward_impl` is a pure function of (x_t, u_t)."""
    has_obs_projection: ClassVar[bool] = False
    """True if :meth:`project_obs` maps arbitrary vectors onto valid observations."""
    render_camera: ClassVar[str | int] = -1
    """Camera name or id used by :meth:`render` (-1: MuJoCo's free camera)."""

    def __init__(self, render_mode: str | None = None, width: int = 240, height: int = 240) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"{type(self).__name__}: render_mode={render_mode!r} is not supported; "
                f"accepted: None or one of {self.metadata['render_modes']}"
            )
        self.render_mode = render_mode
        self.model = self._load_model()
        self.data = mujoco.MjData(self.model)
        self._width, self._height = width, height
        self._renderer: mujoco.Renderer | None = None

        nu = self.model.nu
        self.action_space = gym.spaces.Box(-1.0, 1.0, (nu,), np.float32)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (self.obs_size,), np.float64)
        lo, hi = self.model.actuator_ctrlrange.T.copy()
        self._ctrl_center = (hi + lo) / 2.0
        self._ctrl_half = (hi - lo) / 2.0
        self._ctrl_identity = bool(
            np.all(self._ctrl_center == 0.0) and np.all(self._ctrl_half == 1.0)
        )
        if not np.all(self.model.actuator_ctrllimited):
            raise ValueError(f"{self.xml_file}: every actuator needs a ctrlrange (ctrllimited)")
        self._act_shape = (nu,)
        self._bind_views()
        self._mj_state_size = mujoco.mj_stateSize(self.model, _STATE_SPEC)
        self._t = 0
        self._obs: np.ndarray = np.zeros(self.obs_size)
        self._x: list[float] = self._obs.tolist()
        self._needs_reset = True
        self.metadata = {**self.metadata, "render_fps": int(round(1.0 / self.dt))}

    def _bind_views(self) -> None:
        """Keep views into ``self.data`` (fast reads and writes on the hot path).

        Subclasses that keep their own views extend this (calling super). It runs again on
        a deep copy, whose views would otherwise be detached copies of the original's
        arrays: a copied env (a test env made by ``copy.deepcopy``) then wrote its actions to
        a dead array and observed a frozen target.
        """
        self._ctrl = self.data.ctrl

    def __deepcopy__(self, memo: dict[int, Any]) -> MujocoTaskEnv:
        new = self.__class__.__new__(self.__class__)
        memo[id(self)] = new
        for key, value in self.__dict__.items():
            object.__setattr__(new, key, copy.deepcopy(value, memo))
        new._bind_views()
        return new

    # ------------------------------------------------------------------ task hooks
    def _load_model(self) -> mujoco.MjModel:
        """Compile the physics (default: ``assets/<xml_file>``); override to build it otherwise
        (e.g. ``mujoco.MjModel.from_xml_string`` or ``MjSpec``)."""
        return mujoco.MjModel.from_xml_path(str(ASSETS / self.xml_file))

    def _reset_task(self, rng: np.random.Generator) -> None:
        """Write the initial state (qpos, qvel, mocap_pos, ...) into ``self.data``."""
        raise NotImplementedError

    def _observe(self) -> np.ndarray:
        """Observation of the current state; kinematics in ``self.data`` are current."""
        raise NotImplementedError

    def _reward_impl(self, obs: Any, action: Any, xp: Any) -> Any:
        """r(x_t, u_t) for ONE observation and action, written once for two backends.

        ``step`` calls it with ``xp = math`` and ``obs``/``action`` as lists of
        Python floats (fast); :meth:`reward` with ``xp = jax.numpy`` and 1-D
        arrays (batches go through ``jax.vmap``). So use only scalar indexing
        ``obs[i]``, arithmetic and functions both modules have (``sqrt``,
        ``cos``, ``sin``, ``exp``, ``tanh``, ``log``). ``action`` is already
        clipped to [-1, 1].
        """
        raise NotImplementedError

    def _step_reward(self, obs: list[float], action: list[float], next_obs: np.ndarray) -> float:
        """Reward returned by :meth:`step` for (x_t, u_t, x_{t+1}); default r(x_t, u_t).

        ``obs`` (x_t) and ``action`` (clipped u_t) are lists of floats, ``next_obs``
        the new observation array. Override for rewards that are not r(x_t, u_t).
        """
        return float(self._reward_impl(obs, action, math))

    def _terminated(self, obs: np.ndarray) -> bool:
        """True terminal states (default: none)."""
        return False

    def _get_task_state(self) -> np.ndarray:
        """Task state outside ``mjData`` (default: none)."""
        return np.zeros(0)

    def _set_task_state(self, extra: np.ndarray) -> None:
        """Inverse of :meth:`_get_task_state`."""

    def _before_physics(self) -> None:
        """Called right before ``mj_step`` (default: nothing)."""

    def _after_physics(self) -> None:
        """Bring derived quantities up to date after ``mj_step`` (default: kinematics)."""
        mujoco.mj_kinematics(self.model, self.data)

    # ------------------------------------------------------------------ gymnasium API
    @property
    def dt(self) -> float:
        """Duration of one environment step (s)."""
        return float(self.model.opt.timestep) * self.frame_skip

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode; ``seed`` makes the episode (and later ones) reproducible."""
        super().reset(seed=seed)
        mujoco.mj_resetData(self.model, self.data)
        self._reset_task(self.np_random)
        mujoco.mj_forward(self.model, self.data)
        self._t = 0
        self._needs_reset = False
        self._obs = self._observe()
        self._x = self._obs.tolist()
        return self._obs.copy(), {}

    def check_action(self, action: Any) -> np.ndarray:
        """Validate ``action``; return it as float64 clipped to [-1, 1] (a new array)."""
        _, u = self._validate(action)
        return np.array(u)

    def _validate(self, action: Any) -> tuple[np.ndarray, list[float]]:
        """(action as float64 array, unclipped), (clipped values as Python floats)."""
        try:
            a = np.asarray(action, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise ValueError(
                f"{type(self).__name__}: action {action!r} is not numeric; expected an "
                f"array of shape {self._act_shape} with values in [-1, 1]"
            ) from e
        if a.shape != self._act_shape:
            raise ValueError(
                f"{type(self).__name__}: action has shape {a.shape}; expected shape "
                f"{self._act_shape} (one value in [-1, 1] per actuator)"
            )
        u = a.tolist()
        if not math.isfinite(sum(u)) and not all(map(math.isfinite, u)):
            raise ValueError(
                f"{type(self).__name__}: action contains NaN or inf ({a}); expected finite "
                f"values in [-1, 1] (values outside are clipped)"
            )
        return a, [-1.0 if v < -1.0 else (1.0 if v > 1.0 else v) for v in u]

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply ``action`` for ``frame_skip`` substeps; see the class docstring."""
        if self._needs_reset:
            raise RuntimeError(f"{type(self).__name__}: call reset() before step()")
        a, u = self._validate(action)
        # MuJoCo clamps ctrl to ctrlrange (all actuators are ctrllimited), which equals
        # clipping the action to [-1, 1] before the affine map.
        if self._ctrl_identity:
            self._ctrl[:] = a
        else:
            self._ctrl[:] = self._ctrl_center + self._ctrl_half * a
        self._before_physics()
        mujoco.mj_step(self.model, self.data, self.frame_skip)
        self._after_physics()
        self._t += 1
        obs = self._observe()
        reward = self._step_reward(self._x, u, obs)
        self._obs = obs
        self._x = obs.tolist()
        return obs.copy(), reward, self._terminated(obs), self._t >= self.horizon, {}

    def render(self) -> np.ndarray | None:
        """RGB array (height, width, 3) of the current state, or None without render_mode."""
        if self.render_mode is None:
            gym.logger.warn("render() called without render_mode; pass render_mode='rgb_array'")
            return None
        if self._renderer is None:
            select_render_backend()  # OSMesa or EGL, chosen now (training needs neither)
            # Software (OSMesa) rendering time is dominated by the shadow map: cap its size.
            q = self.model.vis.quality
            q.shadowsize = min(int(q.shadowsize), 1024)
            self._renderer = mujoco.Renderer(self.model, self._height, self._width)
            _LIVE_RENDERERS.add(self._renderer)
        # Derived quantities only (cameras, lights); the integration state is untouched.
        mujoco.mj_forward(self.model, self.data)
        self._renderer.update_scene(self.data, camera=self.render_camera)
        return self._renderer.render()

    def close(self) -> None:
        """Release the renderer (safe to call more than once)."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    # ------------------------------------------------------------------ model-based API
    @property
    def step_count(self) -> int:
        """Steps taken in the current episode."""
        return self._t

    @property
    def state_size(self) -> int:
        """Length of the vector returned by :meth:`get_state`."""
        return self._mj_state_size + 1 + self._get_task_state().size

    def get_state(self) -> np.ndarray:
        """Full state as a 1-D float64 vector: MuJoCo integration state, step count, extras."""
        mj = np.empty(self._mj_state_size)
        mujoco.mj_getState(self.model, self.data, mj, _STATE_SPEC)
        return np.concatenate([mj, [float(self._t)], self._get_task_state()])

    def set_state(self, state: np.ndarray) -> None:
        """Restore a vector from :meth:`get_state`; later steps are bit-identical."""
        state = np.asarray(state, dtype=np.float64)
        if state.shape != (self.state_size,):
            raise ValueError(
                f"{type(self).__name__}: state has shape {state.shape}; expected "
                f"({self.state_size},) as returned by get_state()"
            )
        n = self._mj_state_size
        # Validate everything before writing anything: a rejected state leaves the env as it was.
        if not np.all(np.isfinite(state)):
            bad = np.flatnonzero(~np.isfinite(state)).tolist()
            raise ValueError(
                f"{type(self).__name__}: state holds NaN or inf at index(es) {bad[:8]}; "
                "expected a finite vector as returned by get_state()"
            )
        if state[n] < 0 or state[n] != int(state[n]):
            raise ValueError(
                f"{type(self).__name__}: state[{n}] (the step count) is {state[n]}; expected "
                "an integer >= 0 as returned by get_state()"
            )
        self._write_state(state)
        mujoco.mj_forward(self.model, self.data)
        self._obs = self._observe()
        self._x = self._obs.tolist()
        self._needs_reset = False

    def observe(self) -> np.ndarray:
        """Observation x of the current state (as returned by reset/step)."""
        return self._obs.copy()

    def observe_state(self, state: np.ndarray) -> np.ndarray:
        """The observation ``set_state(state)`` then ``observe()`` would give, for planners
        that need many observations of hypothetical states: forward kinematics only (no
        dynamics, no checks of ``state``; observations read positions, velocities and
        kinematics, tested bit-identical on every task). The env is left needing
        ``set_state`` or ``reset`` before its next step."""
        self._write_state(state)
        mujoco.mj_kinematics(self.model, self.data)
        self._needs_reset = True
        return self._observe()

    def _write_state(self, state: np.ndarray) -> None:
        """MuJoCo's integration state, the step count and the task's extras from a
        :meth:`get_state` vector, with nothing recomputed (the callers choose how much)."""
        n = self._mj_state_size
        mujoco.mj_setState(self.model, self.data, state[:n].copy(), _STATE_SPEC)
        self._t = int(state[n])
        self._set_task_state(state[n + 1 :].copy())

    def project_obs(self, obs: jax.Array) -> jax.Array:
        """The valid observation nearest a predicted one, in JAX (identity by default).

        Observations hold redundant features of the physical state (cos and sin of an
        angle, positions given by forward kinematics). A fitted dynamics model predicts each
        feature on its own, so its imagined observations drift off the set real states
        produce, and Q-learning then bootstraps from states no real data constrains. Tasks
        with ``has_obs_projection`` recompute the redundant features from the independent
        ones; imagination rollouts through fitted models apply this after every predicted
        step. Works on one observation or a batch (leading axes).
        """
        return obs

    def reward(self, obs: jax.Array | np.ndarray, action: jax.Array | np.ndarray) -> jax.Array:
        """Pure JAX r(x_t, u_t) with x_t the observation *before* the step.

        Equals (to float32 precision) the reward ``step(u_t)`` returns from the
        state whose observation is ``obs``. Traceable, differentiable,
        ``jax.vmap``-able; ``action`` is clipped to [-1, 1] as in :meth:`step`.
        """
        if not self.has_reward_fn:
            raise NotImplementedError(
                f"{type(self).__name__} has no pure reward function r(x, u) "
                f"(TaskSpec.has_reward_fn is False)"
            )
        import jax.numpy as jnp

        return self._reward_impl(jnp.asarray(obs), jnp.clip(jnp.asarray(action), -1.0, 1.0), jnp)
