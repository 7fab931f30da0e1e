"""The KL-constrained iLQG step (paper appendix 8.1; Levine & Abbeel 2014).

Given a previous linear-Gaussian controller p_prev, maximise E[sum r] subject to
KL(p_new(tau) || p_prev(tau)) <= kl_step * T. The Lagrangian's optimum for a dual variable
eta is the maximum-entropy controller of the augmented reward r/eta + log p_prev(u|x)
(:func:`kl_step_for_eta`); its covariance is -Q~_uu^{-1} (so c = eta). The KL of the
resulting trajectory distribution (Gaussian forward pass through the linearisation,
:func:`~nafrl.planning.lqr.forward_marginals`) decreases in eta; eta is found by geometric
bisection until the KL is within ``kl_tol`` of the bound (a non-negative-definite Q~_uu
counts as "KL too large", so eta grows).

This is the "iLQG OneStep" of Algorithm 2 with the fitted time-varying linear model
(section 5.3). Unconstrained iLQG is the other solver: :func:`nafrl.planning.ilqg.ilqg_solve`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nafrl.models.base import Array, DynamicsModel, LinearDynamics
from nafrl.planning.controller import LinearGaussianController
from nafrl.planning.lqr import (
    Marginals,
    QuadraticReward,
    RewardFn,
    TerminalFn,
    as_model,
    backward_pass,
    chol_solve,
    expand,
    expected_reward,
    forward_marginals,
    neg_inverse,
    rollout_controller,
)


class KLStepInfo(NamedTuple):
    """Diagnostics of :func:`kl_constrained_step`."""

    x: np.ndarray
    """(T+1, dx) mean states of the new controller's trajectory distribution."""
    u: np.ndarray
    """(T, du) mean actions."""
    expected_return: float
    """Gaussian (Laplace) estimate of E[sum r] under the new controller."""
    iterations: int
    eta: float
    """Dual variable of the KL constraint."""
    kl: float
    """KL(p_new(tau) || p_prev(tau))."""
    kl_bound: float
    converged: bool
    """True when |kl - kl_bound| <= kl_tol * kl_bound."""


@jax.jit
def trajectory_kl(
    new: LinearGaussianController, prev: LinearGaussianController, marg: Marginals
) -> jax.Array:
    """KL(p_new(tau) || p_prev(tau)) = sum_t E_{x_t ~ p_new}[KL(pi_new(.|x_t) || pi_prev(.|x_t))].

    The dynamics terms cancel because both trajectory distributions share the dynamics.
    """
    K1, k1 = new.affine()
    K0, k0 = prev.affine()
    du = k1.shape[1]

    def step(K1, k1, S1, K0, k0, S0, m, S):
        L0 = jnp.linalg.cholesky(S0)
        L1 = jnp.linalg.cholesky(S1)
        P0 = chol_solve(L0, jnp.eye(du, dtype=S0.dtype))
        dK = K1 - K0
        d = dK @ m + k1 - k0
        logdet0 = 2.0 * jnp.log(jnp.diag(L0)).sum()
        logdet1 = 2.0 * jnp.log(jnp.diag(L1)).sum()
        kl = 0.5 * (
            jnp.trace(P0 @ S1) - du + logdet0 - logdet1 + d @ P0 @ d + jnp.trace(dK.T @ P0 @ dK @ S)
        )
        return jnp.maximum(kl, 0.0)

    kls = jax.vmap(step)(K1, k1, new.cov, K0, k0, prev.cov, marg.x_mean[:-1], marg.x_cov[:-1])
    return kls.sum()


def _kl_quad(
    quad: QuadraticReward,
    prev: LinearGaussianController,
    x_hat: jax.Array,
    u_hat: jax.Array,
    eta: jax.Array,
) -> QuadraticReward:
    """Expansion of r/eta + log pi_prev(u|x) around (x_hat, u_hat) (Levine & Abbeel 2014)."""
    Kp, kp = prev.affine()
    P = jnp.linalg.inv(prev.cov)
    P = 0.5 * (P + jnp.swapaxes(P, -1, -2))
    d = jnp.einsum("tij,tj->ti", Kp, x_hat[:-1]) + kp - u_hat  # prev mean minus u_hat at x_hat
    KtP = jnp.einsum("tji,tjk->tik", Kp, P)  # K^T P
    M = jnp.concatenate(
        [
            jnp.concatenate([KtP @ Kp, -KtP], axis=2),
            jnp.concatenate([-jnp.swapaxes(KtP, 1, 2), P], axis=2),
        ],
        axis=1,
    )
    v = jnp.concatenate([jnp.einsum("tij,tj->ti", KtP, d), -jnp.einsum("tij,tj->ti", P, d)], 1)
    return QuadraticReward(
        quad.r / eta,
        quad.r_z / eta - v,
        quad.r_zz / eta - M,
        quad.r_final / eta,
        quad.r_final_x / eta,
        quad.r_final_xx / eta,
    )


@jax.jit
def kl_step_for_eta(
    lin: LinearDynamics,
    quad: QuadraticReward,
    prev: LinearGaussianController,
    x_hat: jax.Array,
    u_hat: jax.Array,
    x0: jax.Array,
    x0_cov: jax.Array,
    eta: jax.Array,
) -> tuple[LinearGaussianController, jax.Array, jax.Array, Marginals]:
    """Controller, KL and success flag of the dual problem at one eta."""
    bw = backward_pass(lin, _kl_quad(quad, prev, x_hat, u_hat, eta), x_hat, u_hat, 0.0)
    cov = neg_inverse(bw.Q_uu)
    ctrl = LinearGaussianController(bw.K, bw.k, x_hat, u_hat, cov)
    marg = forward_marginals(lin, ctrl, x0, x0_cov)
    kl = trajectory_kl(ctrl, prev, marg)
    ok = bw.ok & jnp.isfinite(kl) & jnp.all(jnp.isfinite(cov))
    return ctrl, jnp.where(ok, kl, jnp.inf), ok, marg


def kl_constrained_step(
    dynamics: DynamicsModel | LinearDynamics,
    reward: RewardFn,
    x0: Array,
    prev: LinearGaussianController,
    *,
    kl_step: float = 0.2,
    x0_cov: Array | None = None,
    iterations: int = 1,
    terminal_reward: TerminalFn | None = None,
    t0: int = 0,
    reward_mask: Array | None = None,
    eta0: float = 1.0,
    eta_bounds: tuple[float, float] = (1e-8, 1e16),
    kl_tol: float = 0.1,
) -> tuple[LinearGaussianController, KLStepInfo]:
    """One KL-constrained step from controller ``prev`` under ``dynamics``.

    Args:
        dynamics: a :class:`~nafrl.models.DynamicsModel` (or bare :class:`LinearDynamics`).
        reward: r(x, u) -> scalar, pure JAX, on one observation and action (maximised).
        x0: (dx,) mean of the initial state.
        prev: the previous controller; its horizon is T and its mean trajectory under the
            model is the first nominal.
        kl_step: per-step KL bound; the constraint is KL(p_new || p_prev) <= kl_step * T.
        x0_cov: (dx, dx) initial-state covariance for the forward pass (default 0).
        iterations: re-expansions around the new mean trajectory.
        terminal_reward: optional r_final(x_T).
        t0: time index of the first step (time-varying models).
        reward_mask: (T,) per-step reward weights.
        eta0, eta_bounds: start and bracket of the dual variable.
        kl_tol: accept |KL - bound| <= kl_tol * bound.

    Returns:
        (controller, info); the controller is written around its own mean trajectory.
    """
    model = as_model(dynamics)
    x0 = jnp.asarray(x0)
    if x0.ndim != 1:
        raise ValueError(f"kl_constrained_step: expected x0 (dx,); got {x0.shape}")
    if iterations < 1:
        raise ValueError(f"kl_constrained_step: iterations must be >= 1, got {iterations}")
    if kl_step <= 0:
        raise ValueError(f"kl_constrained_step: kl_step must be > 0, got {kl_step}")
    dt = x0.dtype
    prev = prev.as_dtype(dt)
    mask = jnp.ones(prev.horizon, dt) if reward_mask is None else jnp.asarray(reward_mask, dt)
    T = prev.horizon
    S0 = jnp.zeros((x0.shape[0],) * 2, dt) if x0_cov is None else jnp.asarray(x0_cov, dt)
    bound = float(kl_step) * T
    # Nominal: the mean trajectory of the previous controller under the model.
    xs, us, _ = rollout_controller(
        model,
        reward,
        x0,
        prev,
        jnp.ones(1, dt),
        t0=t0,
        terminal_reward=terminal_reward,
        mask=mask,
    )
    x_hat, u_hat = xs[0], us[0]
    ctrl, kl, eta = prev, 0.0, float(eta0)
    marg: Marginals | None = None
    quad: QuadraticReward | None = None
    for _ in range(iterations):
        lin, quad = expand(model, reward, terminal_reward, x_hat, u_hat, t0, mask)
        ctrl, kl, eta, marg = _dual_search(
            lin, quad, prev, x_hat, u_hat, x0, S0, bound, eta, eta_bounds, kl_tol
        )
        x_hat, u_hat = marg.x_mean, marg.u_mean
        ctrl = ctrl.recenter(x_hat, u_hat)
    assert marg is not None and quad is not None
    exp_ret = float(expected_reward(quad, ctrl.x_hat, ctrl.u_hat, marg))
    info = KLStepInfo(
        np.asarray(marg.x_mean),
        np.asarray(marg.u_mean),
        exp_ret,
        iterations,
        eta,
        float(kl),
        bound,
        abs(kl - bound) <= kl_tol * bound,
    )
    return ctrl, info


def _dual_search(
    lin: LinearDynamics,
    quad: QuadraticReward,
    prev: LinearGaussianController,
    x_hat: jax.Array,
    u_hat: jax.Array,
    x0: jax.Array,
    S0: jax.Array,
    bound: float,
    eta: float,
    eta_bounds: tuple[float, float],
    kl_tol: float,
    max_evals: int = 60,
) -> tuple[LinearGaussianController, float, float, Marginals]:
    """Find eta with KL(eta) within kl_tol of ``bound`` (KL decreases with eta).

    Brackets by factors of 10 from ``eta`` then bisects in log eta. If the tolerance is
    not reached, returns the feasible end of the bracket (KL below the bound).
    """
    lo_b, hi_b = eta_bounds
    eta = float(np.clip(eta, lo_b, hi_b))

    def evaluate(e: float) -> tuple[LinearGaussianController, float, Marginals]:
        c, kl, _, m = kl_step_for_eta(
            lin, quad, prev, x_hat, u_hat, x0, S0, jnp.asarray(e, x0.dtype)
        )
        return c, float(kl), m

    lo, hi = None, None  # eta with KL > bound, eta with KL <= bound
    feasible: tuple[LinearGaussianController, float, float, Marginals] | None = None
    for _ in range(max_evals):
        c, kl, m = evaluate(eta)
        if abs(kl - bound) <= kl_tol * bound:
            return c, kl, eta, m
        if kl > bound:
            lo = eta
        else:
            hi = eta
            feasible = (c, kl, eta, m)
        if lo is None:
            if eta <= lo_b:
                break
            eta = max(eta / 10.0, lo_b)
        elif hi is None:
            if eta >= hi_b:
                break
            eta = min(eta * 10.0, hi_b)
        else:
            if math.log(hi / lo) < 1e-9:
                break
            eta = math.sqrt(lo * hi)
    if feasible is None:  # even the largest eta violates the bound: keep the previous controller
        _, _, m = evaluate(hi_b)
        return prev, 0.0, hi_b, m
    c, kl, e, m = feasible
    return c, kl, e, m
