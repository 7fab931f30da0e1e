"""iLQG in model-predictive-control mode (paper appendix 8.6, Figures 5a-c and Table 2).

At every step t, plan from the current state over a receding horizon of H steps with
:func:`~nafrl.planning.ilqg.ilqg_solve` (a few iterations, warm-started from the previous
plan shifted by one step), execute the first action, repeat. With ``replan_every = k > 1``
the plan is made every k steps and the steps between follow its time-varying feedback law
u_i = u_i^plan + K_i (z - z_i^plan) (equation 4's controller around the planned trajectory),
which costs a k-th of the planning; the paper does not say how often it replans, so 1 is
the default and ``bench/mpc_replan.py`` measures what larger k costs in return.

Works with any dynamics model: the true simulator (:class:`~nafrl.models.SimulatorDynamics`,
planning in simulator coordinates from ``env.unwrapped.get_state()``) or a learned model of
observations (:class:`~nafrl.models.LinearGaussianDynamics`,
:class:`~nafrl.models.NeuralDynamics`).

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
        replan_every: plan every this many steps (k); between plans, act with the last
            plan's feedback law. Must be <= horizon.

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
        replan_every: int = 1,
        **ilqg_kwargs: Any,
    ) -> None:
        if horizon < 1 or iterations < 1 or first_iterations < 1:
            raise ValueError(
                f"MPC: horizon, iterations and first_iterations must be >= 1; got "
                f"{horizon}, {iterations}, {first_iterations}"
            )
        if not 1 <= replan_every <= horizon:
            raise ValueError(
                f"MPC: replan_every must be between 1 and the horizon {horizon}; got {replan_every}"
            )
        self.dynamics, self.reward = dynamics, reward
        self.horizon, self.iterations = int(horizon), int(iterations)
        self.first_iterations = int(first_iterations)
        self.episode_horizon = episode_horizon
        self.u_bounds, self.terminal_reward, self.c = u_bounds, terminal_reward, float(c)
        self.u_init = None if u_init is None else np.asarray(u_init, np.float64)
        self.replan_every = int(replan_every)
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
        self._t_plan: int | None = None  # t of the last plan; None: none this episode

    def plan(self, x: Array, t: int = 0) -> LinearGaussianController:
        """Plan H steps from x at time t; returns the linear-Gaussian controller."""
        z = self.dynamics.state_from(x)
        if self._t_plan is not None:  # warm start: the last plan shifted to start at t
            s = min(max(1, t - self._t_plan), self.horizon)
            self._plan = np.concatenate([self._plan[s:], np.repeat(self._plan[-1:], s, 0)], 0)
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
        self._plan = np.asarray(info.u, np.float64)
        self._t_plan = t
        self._fresh = False
        return ctrl

    def act(self, x: Array, t: int = 0, key: jax.Array | None = None) -> np.ndarray:
        """The action at time t from x (sampled if ``key`` is given): the first action of a
        new plan from x, or, within ``replan_every`` steps of the last plan, its feedback
        law's action for x."""
        i = -1 if self._t_plan is None else t - self._t_plan
        if not 0 < i < self.replan_every:
            self.plan(x, t)
            i = 0
        assert self.info is not None and self.controller is not None
        if i == 0:
            u = jnp.asarray(self.info.u[0])
        else:  # equation 4's mean around the planned trajectory: info.u[i] on it
            z = np.asarray(self.dynamics.state_from(x), np.float64)
            dz = z - np.asarray(self.info.x[i], np.float64)
            K_i = np.asarray(self.controller.K[i], np.float64)
            u = jnp.asarray(np.asarray(self.info.u[i], np.float64) + K_i @ dz)
        if key is not None:
            cov = jnp.asarray(self.controller.cov[i], u.dtype)
            u = u + jnp.linalg.cholesky(cov + 1e-12 * jnp.eye(u.shape[0])) @ jax.random.normal(
                key, u.shape, u.dtype
            )
        u = np.asarray(u, np.float64)
        if self.u_bounds is not None:
            u = np.clip(u, *self.u_bounds)
        return u
