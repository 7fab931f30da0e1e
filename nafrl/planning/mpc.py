"""iLQG in model-predictive-control mode (paper appendix 8.6, Figures 5a-c and Table 2).

At every step t, plan from the current state over a receding horizon of H steps with
:func:`~nafrl.planning.ilqg.ilqg_solve` (a few iterations, warm-started from the previous
plan shifted by one step), execute the first action, repeat. Works with any dynamics
model: the true simulator (:class:`~nafrl.models.SimulatorDynamics`, planning in simulator
coordinates from ``env.unwrapped.get_state()``) or a learned model of observations
(:class:`~nafrl.models.LinearGaussianDynamics`, :class:`~nafrl.models.NeuralDynamics`).

Rewards of planned steps at or beyond the episode end (``t + i >= episode_horizon``)
are masked out, so the horizon stays fixed (one compilation) while the episode ends.
Time-varying models are indexed from the current t; beyond their last fitted step they
reuse it.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nafrl.models.base import Array, DynamicsModel
from nafrl.planning.controller import LinearGaussianController
from nafrl.planning.ilqg import ILQGInfo, ilqg_solve
from nafrl.planning.lqr import RewardFn, TerminalFn


class MPC:
    """Receding-horizon iLQG.

    Args:
        dynamics: any :class:`~nafrl.models.DynamicsModel`.
        reward: r(x, u) on one observation and action, pure JAX (e.g. ``env.unwrapped.reward``).
        horizon: H, planning steps.
        iterations: iLQG iterations per control step (the first call uses
            ``first_iterations``).
        first_iterations: iterations for the first plan of an episode (cold start).
        episode_horizon: the task's T; rewards at t + i >= T are masked. None: no mask.
        u_bounds: action box, applied in rollouts and by the clamped backward pass.
        terminal_reward: optional r_T(x_H).
        c: temperature of the action covariance -c Q_uu^{-1} used when ``act`` gets a key.
        u_init: (H, du) actions of the first plan (default zeros).

    Use ``reset()`` at the start of every episode, then ``act(x, t)``; for the simulator,
    pass ``x = env.unwrapped.get_state()``; for models of observations pass the observation.
    """

    def __init__(
        self,
        dynamics: DynamicsModel,
        reward: RewardFn,
        horizon: int = 30,
        iterations: int = 2,
        *,
        first_iterations: int = 10,
        episode_horizon: int | None = None,
        u_bounds: tuple[float, float] | None = (-1.0, 1.0),
        terminal_reward: TerminalFn | None = None,
        c: float = 1.0,
        u_init: Array | None = None,
        **ilqg_kwargs: Any,
    ) -> None:
        if horizon < 1 or iterations < 1 or first_iterations < 1:
            raise ValueError(
                f"MPC: horizon, iterations and first_iterations must be >= 1; got "
                f"{horizon}, {iterations}, {first_iterations}"
            )
        self.dynamics, self.reward = dynamics, reward
        self.horizon, self.iterations = int(horizon), int(iterations)
        self.first_iterations = int(first_iterations)
        self.episode_horizon = episode_horizon
        self.u_bounds, self.terminal_reward, self.c = u_bounds, terminal_reward, float(c)
        self.u_init = None if u_init is None else np.asarray(u_init, np.float64)
        self.ilqg_kwargs = ilqg_kwargs
        self.controller: LinearGaussianController | None = None
        self.info: ILQGInfo | None = None
        self.reset()

    def reset(self) -> None:
        """Forget the warm start (call at the start of each episode)."""
        H, du = self.horizon, self.dynamics.du
        self._plan = np.zeros((H, du)) if self.u_init is None else self.u_init.copy()
        self._reg = 0.0
        self._fresh = True

    def plan(self, x: Array, t: int = 0) -> LinearGaussianController:
        """Plan H steps from x at time t; returns the linear-Gaussian controller."""
        z = self.dynamics.state_from(x)
        mask = None
        if self.episode_horizon is not None:
            mask = (t + np.arange(self.horizon) < self.episode_horizon).astype(np.float64)
        ctrl, info = ilqg_solve(
            self.dynamics,
            self.reward,
            z,
            self._plan,
            iterations=self.first_iterations if self._fresh else self.iterations,
            terminal_reward=self.terminal_reward,
            t0=t,
            u_bounds=self.u_bounds,
            reward_mask=mask,
            reg=self._reg,
            c=self.c,
            **self.ilqg_kwargs,
        )
        self.controller, self.info = ctrl, info
        self._reg = info.reg if info.reg <= 1e6 else 0.0  # warm-start mu unless it blew up
        self._plan = np.concatenate([info.u[1:], info.u[-1:]], axis=0)
        self._fresh = False
        return ctrl

    def act(self, x: Array, t: int = 0, key: jax.Array | None = None) -> np.ndarray:
        """Replan from x at time t and return the first action (sampled if ``key`` is given)."""
        self.plan(x, t)
        assert self.info is not None and self.controller is not None
        u = jnp.asarray(self.info.u[0])
        if key is not None:
            cov = jnp.asarray(self.controller.cov[0], u.dtype)
            u = u + jnp.linalg.cholesky(cov + 1e-12 * jnp.eye(u.shape[0])) @ jax.random.normal(
                key, u.shape, u.dtype
            )
        u = np.asarray(u, np.float64)
        if self.u_bounds is not None:
            u = np.clip(u, *self.u_bounds)
        return u
