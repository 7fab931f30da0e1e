"""Unconstrained iLQG (paper section 3, appendix 8.1; Tassa, Erez & Todorov 2012).

Iterate: linearise the model and expand the reward along the nominal
(:func:`~nafrl.planning.lqr.expand`) -> backward pass of equation (5)
(:func:`~nafrl.planning.lqr.backward_pass`) -> forward rollouts with a line search over the
step size alpha of k (all alphas rolled out in one batch) -> accept the largest step that
improves the return. Levenberg-Marquardt regularisation Q_uu - mu I is applied when Q_uu is
not negative definite or no step improves (the mu schedule of Tassa et al.). With action
bounds the backward pass clamps k to the box and zeroes the clamped rows of K.

On a linear-quadratic problem one iteration returns the finite-horizon Riccati solution.
The result is the linear-Gaussian controller of equation (4),
N(u_hat + k + K (x - x_hat), -c Q_uu^{-1}).

The KL-constrained step against a previous controller is the other solver:
:func:`nafrl.planning.kl_step.kl_constrained_step`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np

from nafrl.models.base import Array, DynamicsModel, LinearDynamics
from nafrl.planning.controller import LinearGaussianController
from nafrl.planning.lqr import (
    RewardFn,
    TerminalFn,
    as_model,
    backward_pass,
    expand,
    neg_inverse,
    rollout_controller,
)

ALPHAS = (1.0, 0.5, 0.25, 0.1, 0.03, 0.01)
"""Step sizes tried by the line search, all rolled out in one batch."""


class ILQGInfo(NamedTuple):
    """Diagnostics of :func:`ilqg_solve`."""

    x: np.ndarray
    """(T+1, dx) states of the final (mean) trajectory under the model."""
    u: np.ndarray
    """(T, du) actions of the final (mean) trajectory."""
    expected_return: float
    """Sum of rewards along (x, u)."""
    iterations: int
    reg: float
    """Final Levenberg-Marquardt regularisation mu."""
    converged: bool
    returns: tuple[float, ...]
    """Return after each accepted iteration."""


def ilqg(
    dynamics: DynamicsModel | LinearDynamics,
    reward: RewardFn,
    x0: Array,
    u_init: Array,
    **kwargs: Any,
) -> LinearGaussianController:
    """iLQG; returns the linear-Gaussian controller. See :func:`ilqg_solve` for arguments."""
    return ilqg_solve(dynamics, reward, x0, u_init, **kwargs)[0]


def ilqg_solve(
    dynamics: DynamicsModel | LinearDynamics,
    reward: RewardFn,
    x0: Array,
    u_init: Array,
    *,
    iterations: int = 20,
    c: float = 1.0,
    terminal_reward: TerminalFn | None = None,
    t0: int = 0,
    u_bounds: tuple[float, float] | None = None,
    reward_mask: Array | None = None,
    reg: float = 0.0,
    max_reg: float = 1e10,
    tol: float = 1e-6,
) -> tuple[LinearGaussianController, ILQGInfo]:
    """Optimise a linear-Gaussian controller for ``reward`` under ``dynamics`` by iLQG.

    Args:
        dynamics: a :class:`~nafrl.models.DynamicsModel` (or bare :class:`LinearDynamics`).
        reward: r(x, u) -> scalar, pure JAX, on one observation and action (maximised).
        x0: (dx,) initial state.
        u_init: (T, du) initial actions; the first nominal is their rollout.
        iterations: maximum iLQG iterations.
        c: temperature of the controller's covariance -c Q_uu^{-1} (eq. 4).
        terminal_reward: optional r_final(x_T).
        t0: time index of the first step (time-varying models, MPC).
        u_bounds: (low, high) clip actions in rollouts and clamp k in the backward pass.
        reward_mask: (T,) per-step reward weights (MPC beyond the episode end).
        reg: initial Levenberg-Marquardt mu.
        max_reg: give up when mu grows beyond this.
        tol: stop when the relative improvement of the return falls below ``tol``.

    Returns:
        (controller, info). The controller's (x_hat, u_hat) is the nominal it was computed
        around (the last linearisation point) and k its (line-searched) step; ``info.x``,
        ``info.u`` is the resulting mean trajectory under the model.
    """
    model = as_model(dynamics)
    x0 = jnp.asarray(x0)
    dt = x0.dtype
    u_init = jnp.asarray(u_init, dt)
    if u_init.ndim != 2 or x0.ndim != 1:
        raise ValueError(
            f"ilqg: expected x0 (dx,) and u_init (T, du); got {x0.shape}, {u_init.shape}"
        )
    if iterations < 1:
        raise ValueError(f"ilqg: iterations must be >= 1, got {iterations}")
    T, du = u_init.shape
    dx = x0.shape[0]
    mask = jnp.ones(T, dt) if reward_mask is None else jnp.asarray(reward_mask, dt)
    rollout_kw: dict[str, Any] = dict(
        t0=t0, u_bounds=u_bounds, terminal_reward=terminal_reward, mask=mask
    )

    zero_ctrl = LinearGaussianController(
        jnp.zeros((T, du, dx), dt),
        jnp.zeros((T, du), dt),
        jnp.zeros((T + 1, dx), dt),
        u_init,
        jnp.zeros((T, du, du), dt),
    )
    xs, us, rets = rollout_controller(model, reward, x0, zero_ctrl, jnp.zeros(1, dt), **rollout_kw)
    x_hat, u_hat, J = xs[0], us[0], float(rets[0])
    alphas = jnp.asarray(ALPHAS, dt)
    lo, hi = (-jnp.inf, jnp.inf) if u_bounds is None else u_bounds
    lo, hi = jnp.asarray(lo, dt), jnp.asarray(hi, dt)
    mu, delta = float(reg), 1.0
    ctrl: LinearGaussianController | None = None
    returns: list[float] = []
    converged = False
    lin, quad = expand(model, reward, terminal_reward, x_hat, u_hat, t0, mask)
    expand_here = False
    it = 0
    while it < iterations:
        it += 1
        if expand_here:  # re-linearise only when the nominal moved
            lin, quad = expand(model, reward, terminal_reward, x_hat, u_hat, t0, mask)
            expand_here = False
        bw = backward_pass(lin, quad, x_hat, u_hat, mu, lo, hi)
        while not bool(bw.ok) and mu <= max_reg:
            mu, delta = _increase(mu, delta)
            bw = backward_pass(lin, quad, x_hat, u_hat, mu, lo, hi)
        if not bool(bw.ok):
            break
        if float(bw.improvement[0] + bw.improvement[1]) <= tol * (abs(J) + 1.0):
            # Converged: keep the gains at the final nominal (k is negligible here).
            ctrl = LinearGaussianController(bw.K, bw.k, x_hat, u_hat, c * neg_inverse(bw.Q_uu))
            converged = True
            break
        trial = LinearGaussianController(bw.K, bw.k, x_hat, u_hat, bw.Q_uu)
        xs, us, rets = rollout_controller(model, reward, x0, trial, alphas, **rollout_kw)
        rets_np = np.asarray(rets)
        a_np = np.asarray(alphas)
        expected = a_np * float(bw.improvement[0]) + a_np**2 * float(bw.improvement[1])
        gain = rets_np - J
        good = np.isfinite(gain) & (gain > 0) & (gain >= 1e-4 * np.maximum(expected, 0.0))
        if not good.any():
            mu, delta = _increase(mu, delta)
            if mu > max_reg:
                break
            continue
        a = int(np.argmax(good))  # the largest accepted step
        ctrl = LinearGaussianController(
            bw.K, alphas[a] * bw.k, x_hat, u_hat, c * neg_inverse(bw.Q_uu)
        )
        x_hat, u_hat, expand_here = xs[a], us[a], True
        improvement, J = float(gain[a]), float(rets_np[a])
        returns.append(J)
        mu, delta = _decrease(mu, delta)
        if improvement <= tol * (abs(J) + 1.0):
            converged = True
            break
    if ctrl is None:  # no step improved: hold the initial actions, with the last gains if any
        ctrl = LinearGaussianController(
            jnp.zeros((T, du, dx), dt),
            jnp.zeros((T, du), dt),
            x_hat,
            u_hat,
            jnp.broadcast_to(jnp.eye(du, dtype=dt) * c, (T, du, du)),
        )
    info = ILQGInfo(np.asarray(x_hat), np.asarray(u_hat), J, it, mu, converged, tuple(returns))
    return ctrl, info


def _increase(mu: float, delta: float, factor: float = 2.0) -> tuple[float, float]:
    """Tassa et al. (2012) schedule: grow the factor geometrically while failing."""
    delta = max(factor, delta * factor)
    return max(1e-6, mu * delta), delta


def _decrease(mu: float, delta: float, factor: float = 2.0) -> tuple[float, float]:
    delta = min(1.0 / factor, delta / factor)
    mu = mu * delta
    return (mu if mu > 1e-6 else 0.0), delta
