"""The true dynamics: the task's own MuJoCo simulator used as a model (paper section 6.2).

:class:`SimulatorDynamics` owns a private copy of the environment and drives it through
``get_state`` / ``set_state`` / ``step`` (:class:`nafrl.envs.base.MujocoTaskEnv`), so
planning never disturbs the episode being executed.

State coordinates. Observations are not invertible in general (angles as cos/sin,
targets, kinematics), so the planner works in the simulator's physics coordinates
z = [qpos; qvel; act] (dz = nq + nv + na). The rest of the full state vector (mocap
targets, task extras, applied forces) is held at a *template*: the full state at which
planning started (:meth:`SimulatorDynamics.state_from` / :meth:`set_template`). The step
counter of the template is set to 0 so rollouts of any horizon up to T run without the
environment's truncation. Rewards are evaluated on observations h(z) (``observe``).

Linearisation (for iLQG) is by finite differences through the simulator: forward
differences by default (dz + du + 1 environment steps per time step give F_t, MuJoCo's own
default in ``mjd_transitionFD``), central ones with ``differences="central"`` (2 (dz + du)).
The observation Jacobian J = dh/dz and the diagonal second derivatives d^2 h / dz_i^2 are
central differences of h, which needs no physics. The planner chains the reward's autodiff
expansion in (observation, action) through them: r_zz ~ J^T r_oo J + diag(sum_o r_o
d^2 h_o / dz_i^2) (Gauss-Newton plus the diagonal curvature of h, which carries e.g. the
curvature of cos(theta) in a swing-up reward; mixed second derivatives of h are dropped).
The noise covariance is zero: MuJoCo is deterministic.

Every planned step starts from ``set_state`` of the template with the step's z, so a
terminal state (a fallen walker) does not stop a plan: planning continues the physics.
Batches of such steps (all perturbations of a linearisation, all step sizes of a line
search) run in one call of MuJoCo's C ``rollout``, which sets each row's state, the
template's controls-side state (mocap targets, applied forces) and warm start, and steps
``frame_skip`` times: bit-identical to ``env.step`` from ``set_state``, without a Python
loop over rows (tests/models/test_simulator_model.py checks the identity on every task).

Limitations: ``qpos`` is perturbed component-wise, so tasks with free or ball joints
(quaternions) get approximate derivatives; finite differences across contact events are
noisy.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from mujoco import rollout as mj_rollout

from nafrl.envs.base import MujocoTaskEnv
from nafrl.models.base import Array, DynamicsModel, LinearDynamics


def private_copy(env: gym.Env | str) -> MujocoTaskEnv:
    """A fresh, unwrapped instance of the same task (same id and kwargs) to step freely."""
    if isinstance(env, str):
        copy = gym.make(env).unwrapped
    else:
        base = env.unwrapped
        spec = env.spec if env.spec is not None else base.spec
        copy = gym.make(spec.id, **dict(spec.kwargs or {})).unwrapped if spec else type(base)()
    if not isinstance(copy, MujocoTaskEnv):
        raise TypeError(
            f"SimulatorDynamics needs an environment with get_state/set_state/observe "
            f"(a nafrl MujocoTaskEnv); got {type(copy).__name__}"
        )
    return copy


class SimulatorDynamics(DynamicsModel):
    """The task's simulator as a deterministic dynamics model in coordinates z = [qpos; qvel; act].

    Args:
        env: a nafrl task (id, or an environment whose ``unwrapped`` is a
            :class:`~nafrl.envs.base.MujocoTaskEnv`); a private copy is created.
        eps: finite-difference step on z and u.
        differences: ``"forward"`` (dz + du + 1 simulator steps per linearised time step)
            or ``"central"`` (2 (dz + du), second-order accurate).

    Attributes:
        dx: dz, the size of the planning state; ``du`` the action size; ``do`` the
            observation size.
    """

    jittable = False

    def __init__(self, env: gym.Env | str, eps: float = 1e-5, differences: str = "forward") -> None:
        if differences not in ("forward", "central"):
            raise ValueError(
                f"SimulatorDynamics: differences={differences!r}; expected 'forward' or 'central'"
            )
        self.differences = differences
        self.env = e = private_copy(env)
        m = e.model
        self.nq, self.nv, self.na = int(m.nq), int(m.nv), int(m.na)
        self.dx = self.nq + self.nv + self.na
        self.du = int(m.nu)
        self.eps = float(eps)
        # mjSTATE_INTEGRATION layout: time, qpos, qvel, act, ...; then the step counter.
        self._z_slice = slice(1, 1 + self.dx)
        self._counter = int(mujoco.mj_stateSize(m, mujoco.mjtState.mjSTATE_INTEGRATION))
        e.reset(seed=0)
        self.do = int(np.asarray(e.observe()).size)
        self.template = e.get_state()
        self.template[self._counter] = 0.0
        # Batched stepping (``_physics``) through MuJoCo's rollout on this thread; a task
        # that acts between env.step and mj_step keeps the Python loop.
        self._rollout = mj_rollout.Rollout(nthread=0)
        self._batched = type(e)._before_physics is MujocoTaskEnv._before_physics
        self._inputs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._inputs_of: np.ndarray | None = None

    # -- state coordinates --------------------------------------------------------------
    def set_template(self, full_state: Array) -> None:
        """Hold the non-physics part of the state (targets, extras) at ``full_state``."""
        s = np.array(full_state, dtype=np.float64)
        s[self._counter] = 0.0
        self.template = s

    def encode(self, full_state: Array) -> np.ndarray:
        """z = [qpos; qvel; act] of full state vector(s) (..., S) from ``get_state``."""
        return np.asarray(full_state, np.float64)[..., self._z_slice].copy()

    def decode(self, z: Array) -> np.ndarray:
        """Full state vector with physics z (dz,) and everything else from the template."""
        s = self.template.copy()
        s[self._z_slice] = z
        return s

    def state_from(self, obs: Array, env_state: Array | None = None) -> np.ndarray:
        """Planning state z from a full env state (``env.unwrapped.get_state()``).

        Accepts the full state either as ``env_state`` or as the first argument (a vector of
        length ``env.state_size``), and then makes it the template; a vector of length dz
        is taken as z itself. Observations are not invertible and are rejected.
        """
        s = np.asarray(obs if env_state is None else env_state, np.float64)
        if s.shape == (self.template.size,):
            self.set_template(s)
            return self.encode(s)
        if s.shape == (self.dx,):
            return s.copy()
        raise ValueError(
            f"SimulatorDynamics plans in simulator coordinates: pass the full state "
            f"env.unwrapped.get_state() (length {self.template.size}) or z (length {self.dx}); "
            f"got shape {s.shape}"
        )

    # -- model interface ----------------------------------------------------------------
    def fit(self, x: Array, u: Array) -> SimulatorDynamics:
        """The true model needs no fitting; returns ``self``."""
        return self

    def _set(self, z: np.ndarray) -> np.ndarray:
        self.env.set_state(self.decode(z))
        return self.env.observe()

    def _obs_of(self, z: np.ndarray) -> np.ndarray:
        """h(z), by forward kinematics only (the derivatives need (H+1)(2 dz+1) of these)."""
        return self.env.observe_state(self.decode(z))

    def _step(self, u: np.ndarray) -> np.ndarray:
        self.env.step(u)
        return self.env.get_state()[self._z_slice].copy()

    def _rollout_inputs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The template as rollout inputs: its physics state (mjSTATE_FULLPHYSICS), its
        user inputs (mjSTATE_USER: ctrl, applied forces, mocap, ...) and its warm start."""
        if self._inputs is None or self._inputs_of is not self.template:
            self._inputs_of = self.template  # rebuilt when the template is replaced
            m, d = self.env.model, self.env.data
            self.env.set_state(self.template)
            full = np.empty(mujoco.mj_stateSize(m, mujoco.mjtState.mjSTATE_FULLPHYSICS))
            mujoco.mj_getState(m, d, full, mujoco.mjtState.mjSTATE_FULLPHYSICS)
            user = np.empty(mujoco.mj_stateSize(m, mujoco.mjtState.mjSTATE_USER))
            mujoco.mj_getState(m, d, user, mujoco.mjtState.mjSTATE_USER)
            self._inputs = (full, user, d.qacc_warmstart.copy())
        return self._inputs

    def _physics(self, z: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Next z of ``env.step(u_i)`` from ``set_state`` of the template with z_i, per row
        of z (B, dz), u (B, du), in one C call (bit-identical to that Python loop)."""
        if not self._batched:
            out = np.empty_like(z)
            for i in range(len(z)):
                self._set(z[i])
                out[i] = self._step(u[i])
            return out
        if not (np.isfinite(z).all() and np.isfinite(u).all()):
            raise ValueError(
                "SimulatorDynamics: NaN or inf in the states or actions to step; expected "
                "finite values (actions in [-1, 1], larger ones are clipped)"
            )
        e = self.env
        full, user, warm = self._rollout_inputs()
        init = np.repeat(full[None], len(z), axis=0)
        init[:, self._z_slice] = z
        # env.step's affine map to ctrl; MuJoCo clamps ctrl to ctrlrange as in env.step.
        ctrl = u if e._ctrl_identity else e._ctrl_center + e._ctrl_half * u
        inputs = np.repeat(user[None, None], len(z), axis=0)
        inputs[:, 0, : self.du] = ctrl
        states, _ = self._rollout.rollout(
            e.model,
            e.data,
            init,
            inputs,
            control_spec=int(mujoco.mjtState.mjSTATE_USER),
            nstep=e.frame_skip,
            initial_warmstart=warm[None],
        )
        return states[:, -1, self._z_slice]

    def step(self, x: Array, u: Array, t: int | Array = 0, key: Any = None) -> np.ndarray:
        """Next z for a batch x (B, dz), u (B, du); ``t`` and ``key`` are ignored."""
        x, u = np.atleast_2d(np.asarray(x, np.float64)), np.atleast_2d(np.asarray(u, np.float64))
        return self._physics(x, u)

    def observe(self, z: Array) -> np.ndarray:
        """Observations h(z) for z (..., dz)."""
        z = np.asarray(z, np.float64)
        flat = z.reshape(-1, self.dx)
        obs = np.stack([self._obs_of(zi) for zi in flat])
        return obs.reshape(*z.shape[:-1], self.do)

    def rollout(self, x0: Array, u: Array, t0: int = 0, key: Any = None) -> np.ndarray:
        """Open-loop rollout of u (H, du) from z0: (H+1, dz)."""
        u = np.asarray(u, np.float64)
        xs = [np.asarray(x0, np.float64)]
        for ut in u:  # from the template each step: terminal flags never stop a plan
            xs.append(self._physics(xs[-1][None], ut[None])[0])
        return np.stack(xs)

    def step_observed(self, z: Array, u: Array) -> tuple[np.ndarray, np.ndarray]:
        """Next z (B, dz) and its observations (B, do) for a batch z (B, dz), u (B, du).

        Each step starts from ``set_state`` of the template with that z, so terminal flags
        never stop a plan. One batched simulator call, as :meth:`step`.
        """
        z = np.atleast_2d(np.asarray(z, np.float64))
        u = np.atleast_2d(np.asarray(u, np.float64))
        nxt = self._physics(z, u)
        return nxt, self.observe(nxt)

    def linearize(self, x_hat: Array, u_hat: Array, t0: int = 0) -> LinearDynamics:
        """F_t by finite differences (``differences``) along (x_hat (H+1, dz), u_hat (H, du));
        f_t; N_t = 0 noise."""
        return self.linearize_with_observation(x_hat, u_hat)[0]

    def linearize_with_observation(
        self, x_hat: Array, u_hat: Array, t0: int = 0
    ) -> tuple[LinearDynamics, np.ndarray, np.ndarray, np.ndarray]:
        """Dynamics and observation derivatives along the nominal in one sweep.

        Returns:
            (LinearDynamics (F (H, dz, dz+du), f (H, dz), cov zeros),
             obs (H+1, do), J (H+1, do, dz) = dh/dz, D2 (H+1, do, dz) = d^2 h / dz_i^2).
        """
        xh = np.asarray(x_hat, np.float64)
        uh = np.asarray(u_hat, np.float64)
        H, dz, du, eps = len(uh), self.dx, self.du, self.eps
        central = self.differences == "central"
        # Every simulator step of the sweep in one batch: per time step the nominal, then
        # z perturbations (+eps e_i, and -eps e_i if central), then u perturbations.
        signs = (1.0, -1.0) if central else (1.0,)
        n_t = 1 + len(signs) * (dz + du)
        Z = np.repeat(xh[:H], n_t, axis=0).reshape(H, n_t, dz)
        U = np.repeat(uh, n_t, axis=0).reshape(H, n_t, du)
        k = 1
        for sgn in signs:
            Z[:, k + np.arange(dz), np.arange(dz)] += sgn * eps
            k += dz
        # Actions are clipped to [-1, 1] by the env: difference inside the box.
        u_pert: list[np.ndarray] = (
            [np.minimum(uh + eps, 1.0), np.maximum(uh - eps, -1.0)]
            if central
            else [np.where(uh + eps <= 1.0, uh + eps, uh - eps)]  # one-sided: up if room
        )
        for j, up in enumerate(u_pert):
            rows = 1 + len(signs) * dz + j * du + np.arange(du)
            U[:, rows, np.arange(du)] = up
        nxt = self._physics(Z.reshape(-1, dz), U.reshape(-1, du)).reshape(H, n_t, dz)
        fz0 = nxt[:, 0]
        zp = nxt[:, 1 : 1 + dz]  # (H, i, dz): f(z + eps e_i, u)
        F = np.empty((H, dz, dz + du))
        if central:
            zm = nxt[:, 1 + dz : 1 + 2 * dz]
            F[:, :, :dz] = np.swapaxes(zp - zm, 1, 2) / (2 * eps)
            fu_a, fu_b = nxt[:, 1 + 2 * dz : 1 + 2 * dz + du], nxt[:, 1 + 2 * dz + du :]
            width = u_pert[0] - u_pert[1]
        else:
            F[:, :, :dz] = np.swapaxes(zp - fz0[:, None], 1, 2) / eps
            fu_a, fu_b = nxt[:, 1 + dz :], fz0[:, None]
            width = u_pert[0] - uh
        ok = width != 0  # zero width: the action sits at a clip on both sides
        Fu = (fu_a - fu_b) / np.where(ok, width, 1.0)[:, :, None] * ok[:, :, None]
        F[:, :, dz:] = np.swapaxes(Fu, 1, 2)
        f = fz0 - np.einsum("tij,tj->ti", F, np.concatenate([xh[:H], uh], axis=1))

        # Observation derivatives: central differences of h (no physics).
        obs = np.empty((H + 1, self.do))
        J = np.empty((H + 1, self.do, dz))
        D2 = np.empty((H + 1, self.do, dz))
        for t in range(H + 1):
            z0 = xh[t]
            obs[t] = self._obs_of(z0)
            for i in range(dz):
                e = np.zeros(dz)
                e[i] = eps
                o_p = self._obs_of(z0 + e)
                o_m = self._obs_of(z0 - e)
                J[t, :, i] = (o_p - o_m) / (2 * eps)
                D2[t, :, i] = (o_p - 2 * obs[t] + o_m) / eps**2
        lin = LinearDynamics(F, f, np.zeros((H, dz, dz)))
        return lin, obs, J, D2
