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

Linearisation (for iLQG) is by central finite differences through ``set_state`` and
``step``: 2 (dz + du) environment steps per time step give F_t; the same perturbed
states give the observation Jacobian J = dh/dz and the diagonal second derivatives
d^2 h / dz_i^2 at no extra cost. The planner chains the reward's autodiff expansion in
(observation, action) through them: r_zz ~ J^T r_oo J + diag(sum_o r_o d^2 h_o / dz_i^2)
(Gauss-Newton plus the diagonal curvature of h, which carries e.g. the curvature of
cos(theta) in a swing-up reward; mixed second derivatives of h are dropped). The noise
covariance is zero: MuJoCo is deterministic.

Every planned step starts from ``set_state`` of the template with the step's z, so a
terminal state (a fallen walker) does not stop a plan: planning continues the physics.

Limitations: ``qpos`` is perturbed component-wise, so tasks with free or ball joints
(quaternions) get approximate derivatives; finite differences across contact events are
noisy; all of this runs in Python (about 50 us per environment step for cartpole).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

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

    Attributes:
        dx: dz, the size of the planning state; ``du`` the action size; ``do`` the
            observation size.
    """

    jittable = False

    def __init__(self, env: gym.Env | str, eps: float = 1e-5) -> None:
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

    def _step(self, u: np.ndarray) -> np.ndarray:
        self.env.step(u)
        return self.env.get_state()[self._z_slice].copy()

    def step(self, x: Array, u: Array, t: int | Array = 0, key: Any = None) -> np.ndarray:
        """Next z for a batch x (B, dz), u (B, du); ``t`` and ``key`` are ignored."""
        x, u = np.atleast_2d(np.asarray(x, np.float64)), np.atleast_2d(np.asarray(u, np.float64))
        out = np.empty_like(x)
        for i in range(len(x)):
            self._set(x[i])
            out[i] = self._step(u[i])
        return out

    def observe(self, z: Array) -> np.ndarray:
        """Observations h(z) for z (..., dz)."""
        z = np.asarray(z, np.float64)
        flat = z.reshape(-1, self.dx)
        obs = np.stack([self._set(zi) for zi in flat])
        return obs.reshape(*z.shape[:-1], self.do)

    def rollout(self, x0: Array, u: Array, t0: int = 0, key: Any = None) -> np.ndarray:
        """Open-loop rollout of u (H, du) from z0: (H+1, dz)."""
        u = np.asarray(u, np.float64)
        xs = [np.asarray(x0, np.float64)]
        for ut in u:
            self._set(xs[-1])  # from the template each step: terminal flags never stop a plan
            xs.append(self._step(ut))
        return np.stack(xs)

    def step_observed(self, z: Array, u: Array) -> tuple[np.ndarray, np.ndarray]:
        """Next z (B, dz) and its observations (B, do) for a batch z (B, dz), u (B, du).

        Each step starts from ``set_state`` of the template with that z, so terminal flags
        never stop a plan. One environment step per row, as :meth:`step`.
        """
        z = np.atleast_2d(np.asarray(z, np.float64))
        u = np.atleast_2d(np.asarray(u, np.float64))
        nxt = np.empty_like(z)
        obs = np.empty((len(z), self.do))
        for i in range(len(z)):
            self._set(z[i])
            nxt[i] = self._step(u[i])
            obs[i] = self.env.observe()
        return nxt, obs

    def linearize(self, x_hat: Array, u_hat: Array, t0: int = 0) -> LinearDynamics:
        """F_t by central differences along (x_hat (H+1, dz), u_hat (H, du)); f_t, N_t = 0 noise."""
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
        F = np.empty((H, dz, dz + du))
        f = np.empty((H, dz))
        obs = np.empty((H + 1, self.do))
        J = np.empty((H + 1, self.do, dz))
        D2 = np.empty((H + 1, self.do, dz))
        lo_u, hi_u = -1.0, 1.0
        for t in range(H + 1):
            z0 = xh[t]
            obs[t] = self._set(z0)
            if t < H:
                fz0 = self._step(uh[t])
            for i in range(dz):
                e = np.zeros(dz)
                e[i] = eps
                o_p = self._set(z0 + e)
                if t < H:
                    f_p = self._step(uh[t])
                o_m = self._set(z0 - e)
                if t < H:
                    f_m = self._step(uh[t])
                    F[t, :, i] = (f_p - f_m) / (2 * eps)
                J[t, :, i] = (o_p - o_m) / (2 * eps)
                D2[t, :, i] = (o_p - 2 * obs[t] + o_m) / eps**2
            if t < H:
                for j in range(du):
                    # Actions are clipped to [-1, 1] by the env: difference inside the box.
                    up, um = uh[t].copy(), uh[t].copy()
                    up[j] = min(up[j] + eps, hi_u)
                    um[j] = max(um[j] - eps, lo_u)
                    width = up[j] - um[j]
                    self._set(z0)
                    f_p = self._step(up)
                    self._set(z0)
                    f_m = self._step(um)
                    F[t, :, dz + j] = (f_p - f_m) / width if width > 0 else 0.0
                f[t] = fz0 - F[t] @ np.concatenate([z0, uh[t]])
        lin = LinearDynamics(F, f, np.zeros((H, dz, dz)))
        return lin, obs, J, D2
