"""The LQR machinery of iLQG (paper section 3, appendix 8.1): expansions, backward pass,
forward passes and rollouts, shared by :mod:`nafrl.planning.ilqg` (unconstrained iLQG) and
:mod:`nafrl.planning.kl_step` (the KL-constrained step).

Rewards are maximised (the paper's convention: Q and V are sums of rewards). Along a
nominal trajectory (x_hat (T+1, dx), u_hat (T, du)) the dynamics are linearised,
x_{t+1} ~ N(F_t [x_t; u_t] + f_t, N_t), and the reward r(x_t, u_t) is expanded to second
order by JAX autodiff (:func:`expand`). The backward pass is equation (5):

    Q_{xu,xu t} = r_{xu,xu t} + F_t^T V_{x,x t+1} F_t
    Q_{xu t}    = r_{xu t} + F_t^T (V_{x t+1} + V_{x,x t+1} c_t)
    V_{x,x t}   = Q_{x,x t} - Q_{u,x t}^T Q_{u,u t}^{-1} Q_{u,x t}
    V_{x t}     = Q_{x t} - Q_{u,x t}^T Q_{u,u t}^{-1} Q_{u t}

with c_t = F_t [x_hat_t; u_hat_t] + f_t - x_hat_{t+1} (zero when the nominal is a rollout of
the model) and V at T given by an optional terminal reward. It yields the gains of the
linear-Gaussian controller of equations (4)/(6) (:mod:`nafrl.planning.controller`),
k_t = -Q_{u,u t}^{-1} Q_{u t},  K_t = -Q_{u,u t}^{-1} Q_{u,x t}.

Expansions, backward and forward passes are jitted (``lax.scan`` over time, ``vmap`` over
line-search step sizes). Models of observations are rolled out and linearised through
their pure-JAX hooks; a model that plans in its own state coordinates
(:class:`~nafrl.models.base.ObservedDynamics`, the true simulator) is rolled out in Python
through ``step_observed`` and linearised by its own finite differences; the reward, a
function of the observation o = h(z), is chained through h (Gauss-Newton plus the diagonal
curvature of h; see :func:`chain_observation`).

Arrays follow the dtype of ``x0``: float32 by default, float64 under ``jax.enable_x64``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nafrl.models.base import Array, DynamicsModel, LinearDynamics, ObservedDynamics
from nafrl.models.linear_gaussian import LinearGaussianDynamics
from nafrl.planning.controller import LinearGaussianController

RewardFn = Callable[[jax.Array, jax.Array], jax.Array]
"""r(x, u) -> scalar on one observation (dx,) and action (du,); pure JAX."""
TerminalFn = Callable[[jax.Array], jax.Array]
"""r_T(x) -> scalar on the final observation; pure JAX."""


# ----------------------------------------------------------------------------- containers
class QuadraticReward(NamedTuple):
    """Second-order expansion of the reward along a nominal, in z = [x; u] (D = dx+du).

    r(x_hat_t + dx, u_hat_t + du) ~ r_t + r_z_t . dz + 1/2 dz^T r_zz_t dz, and at the end
    r_final(x_hat_T + dx) ~ r_final + r_final_x . dx + 1/2 dx^T r_final_xx dx.
    """

    r: jax.Array  # (T,)
    r_z: jax.Array  # (T, D)
    r_zz: jax.Array  # (T, D, D)
    r_final: jax.Array  # ()
    r_final_x: jax.Array  # (dx,)
    r_final_xx: jax.Array  # (dx, dx)


class Backward(NamedTuple):
    """Result of the backward pass (equation 5)."""

    K: jax.Array  # (T, du, dx)
    k: jax.Array  # (T, du)
    Q_uu: jax.Array  # (T, du, du), regularised, negative definite when ok
    V_x: jax.Array  # (T+1, dx)
    V_xx: jax.Array  # (T+1, dx, dx)
    improvement: jax.Array  # (2,): expected gain of step alpha = alpha i[0] + alpha^2 i[1]
    ok: jax.Array  # () bool: every Q_uu was negative definite


class Marginals(NamedTuple):
    """Gaussian state-action marginals of a linear-Gaussian controller under LinearDynamics."""

    x_mean: jax.Array  # (T+1, dx)
    x_cov: jax.Array  # (T+1, dx, dx)
    u_mean: jax.Array  # (T, du)
    z_cov: jax.Array  # (T, dx+du, dx+du) joint covariance of [x_t; u_t]


# ----------------------------------------------------------------------------- reward expansion
@jax.jit(static_argnums=(0, 1))
def quadratize(
    reward: RewardFn,
    terminal_reward: TerminalFn | None,
    x_hat: jax.Array,
    u_hat: jax.Array,
    mask: jax.Array | None = None,
) -> QuadraticReward:
    """Expand r around x_hat (T+1, dx), u_hat (T, du) by autodiff; ``mask`` (T,) weights steps."""
    dx = x_hat.shape[1]

    def rz(z: jax.Array) -> jax.Array:
        return reward(z[:dx], z[dx:])

    z = jnp.concatenate([x_hat[:-1], u_hat], axis=1)
    r = jax.vmap(rz)(z)
    r_z = jax.vmap(jax.grad(rz))(z)
    r_zz = jax.vmap(jax.hessian(rz))(z)
    # Kinks (e.g. a distance at exactly zero) give non-finite derivatives: treat as flat.
    r_z, r_zz = _finite(r_z), _finite(r_zz)
    if mask is not None:
        r, r_z, r_zz = r * mask, r_z * mask[:, None], r_zz * mask[:, None, None]
    r_zz = 0.5 * (r_zz + jnp.swapaxes(r_zz, -1, -2))
    xT = x_hat[-1]
    if terminal_reward is None:
        r_final, r_final_x = jnp.zeros((), xT.dtype), jnp.zeros_like(xT)
        r_final_xx = jnp.zeros((dx, dx), xT.dtype)
    else:
        r_final = terminal_reward(xT)
        r_final_x = jax.grad(terminal_reward)(xT)
        r_final_xx = jax.hessian(terminal_reward)(xT)
        r_final_xx = 0.5 * (_finite(r_final_xx) + _finite(r_final_xx).T)
        r_final_x = _finite(r_final_x)
    return QuadraticReward(r, r_z, r_zz, r_final, r_final_x, r_final_xx)


def _finite(a: jax.Array) -> jax.Array:
    return jnp.where(jnp.isfinite(a), a, 0.0)


@jax.jit
def chain_observation(
    quad: QuadraticReward, J: jax.Array, D2: jax.Array | None = None
) -> QuadraticReward:
    """Chain an expansion in (observation o, u) through o = h(x).

    Args:
        quad: expansion in z = [o; u] along the nominal observations.
        J: (T+1, do, dx) Jacobians dh/dx.
        D2: optional (T+1, do, dx) diagonal second derivatives d^2 h_o / dx_i^2.

    r_xx ~ J^T r_oo J + diag(sum_o r_o D2_o): Gauss-Newton plus the diagonal curvature of h
    (mixed second derivatives of h are dropped).
    """
    do = J.shape[1]
    Jt = J[:-1]
    r_o, r_u = quad.r_z[:, :do], quad.r_z[:, do:]
    r_oo, r_ou, r_uu = quad.r_zz[:, :do, :do], quad.r_zz[:, :do, do:], quad.r_zz[:, do:, do:]
    r_x = jnp.einsum("toi,to->ti", Jt, r_o)
    r_xx = jnp.einsum("toi,top,tpj->tij", Jt, r_oo, Jt)
    r_final_x, r_final_xx = J[-1].T @ quad.r_final_x, J[-1].T @ quad.r_final_xx @ J[-1]
    if D2 is not None:
        r_xx = r_xx + jax.vmap(jnp.diag)(jnp.einsum("to,toi->ti", r_o, D2[:-1]))
        r_final_xx = r_final_xx + jnp.diag(quad.r_final_x @ D2[-1])
    r_xu = jnp.einsum("toi,tou->tiu", Jt, r_ou)
    top = jnp.concatenate([r_xx, r_xu], axis=2)
    bottom = jnp.concatenate([jnp.swapaxes(r_xu, 1, 2), r_uu], axis=2)
    return QuadraticReward(
        quad.r,
        jnp.concatenate([r_x, r_u], axis=1),
        jnp.concatenate([top, bottom], axis=1),
        quad.r_final,
        r_final_x,
        r_final_xx,
    )


# ----------------------------------------------------------------------------- backward pass
def chol_solve(L: jax.Array, B: jax.Array) -> jax.Array:
    """X with (L L^T) X = B for a lower-triangular Cholesky factor L."""
    Y = jax.scipy.linalg.solve_triangular(L, B, lower=True)
    return jax.scipy.linalg.solve_triangular(L.T, Y, lower=False)


@jax.jit
def backward_pass(
    lin: LinearDynamics,
    quad: QuadraticReward,
    x_hat: jax.Array,
    u_hat: jax.Array,
    reg: jax.Array | float = 0.0,
    u_lo: jax.Array | float = -jnp.inf,
    u_hi: jax.Array | float = jnp.inf,
) -> Backward:
    """The backward pass of equation (5), regularised and optionally box-clamped.

    Args:
        lin: dynamics along the nominal, F (T, dx, dx+du), f (T, dx).
        quad: reward expansion along the nominal.
        x_hat: (T+1, dx), u_hat: (T, du) the nominal.
        reg: Levenberg-Marquardt term mu >= 0: K and k use Q_uu - mu I; the value update
            uses the exact Q (Tassa, Erez & Todorov 2012, eq. 11).
        u_lo, u_hi: action bounds. Where u_hat + k would leave the box the action is
            clamped, its feedback row zeroed and the free actions re-solved given it (one
            projected-Newton step, exact for du = 1).

    With reg = 0 and no bounds this is exactly equation (5), so on a linear-quadratic
    problem K_t are the finite-horizon Riccati gains.
    """
    dx = x_hat.shape[1]
    du = u_hat.shape[1]
    dt = x_hat.dtype
    eye_u = jnp.eye(du, dtype=dt)
    lo = jnp.broadcast_to(jnp.asarray(u_lo, dt), (du,))
    hi = jnp.broadcast_to(jnp.asarray(u_hi, dt), (du,))
    z_hat = jnp.concatenate([x_hat[:-1], u_hat], axis=1)
    c = jnp.einsum("tij,tj->ti", lin.F, z_hat) + lin.f - x_hat[1:]

    def step(carry: tuple[jax.Array, jax.Array], inp: tuple[jax.Array, ...]):
        V_x, V_xx = carry
        F, c_t, r_z, r_zz, uh = inp
        Q_z = r_z + F.T @ (V_x + V_xx @ c_t)
        Q_zz = r_zz + F.T @ V_xx @ F
        Q_zz = 0.5 * (Q_zz + Q_zz.T)
        Q_x, Q_u = Q_z[:dx], Q_z[dx:]
        Q_xx, Q_ux, Q_uu = Q_zz[:dx, :dx], Q_zz[dx:, :dx], Q_zz[dx:, dx:]
        Q_uu_r = Q_uu - reg * eye_u
        Q_ux_r = Q_ux
        L = jnp.linalg.cholesky(-Q_uu_r)
        sol = chol_solve(L, jnp.concatenate([Q_u[:, None], Q_ux_r], axis=1))
        k, K = sol[:, 0], sol[:, 1:]
        # Box: clamp, zero the clamped feedback, re-solve the free actions given the clamped.
        u_new = uh + k
        clamped = (u_new < lo) | (u_new > hi)
        k_c = jnp.where(clamped, jnp.clip(u_new, lo, hi) - uh, 0.0)
        free = ~clamped
        both = free[:, None] & free[None, :]
        M = jnp.where(both, -Q_uu_r, eye_u)
        rhs_k = jnp.where(free, Q_u + Q_uu_r @ k_c, k_c)
        rhs_K = jnp.where(free[:, None], Q_ux_r, 0.0)
        Lm = jnp.linalg.cholesky(M)
        sol_b = chol_solve(Lm, jnp.concatenate([rhs_k[:, None], rhs_K], axis=1))
        any_c = jnp.any(clamped)
        k = jnp.where(any_c, sol_b[:, 0], k)
        K = jnp.where(any_c, sol_b[:, 1:], K)
        V_x = Q_x + K.T @ Q_uu @ k + K.T @ Q_u + Q_ux.T @ k
        V_xx = Q_xx + K.T @ Q_uu @ K + K.T @ Q_ux + Q_ux.T @ K
        V_xx = 0.5 * (V_xx + V_xx.T)
        improvement = jnp.stack([k @ Q_u, 0.5 * k @ Q_uu @ k])
        ok = jnp.all(jnp.isfinite(L))
        return (V_x, V_xx), (K, k, Q_uu_r, V_x, V_xx, improvement, ok)

    (_, _), (K, k, Q_uu, V_x, V_xx, improvement, ok) = jax.lax.scan(
        step,
        (quad.r_final_x, quad.r_final_xx),
        (jnp.asarray(lin.F), c, quad.r_z, quad.r_zz, u_hat),
        reverse=True,
    )
    V_x = jnp.concatenate([V_x, quad.r_final_x[None]], axis=0)
    V_xx = jnp.concatenate([V_xx, quad.r_final_xx[None]], axis=0)
    ok = jnp.all(ok) & jnp.all(jnp.isfinite(K)) & jnp.all(jnp.isfinite(k))
    return Backward(K, k, Q_uu, V_x, V_xx, improvement.sum(0), ok)


def neg_inverse(Q_uu: jax.Array) -> jax.Array:
    """(-Q_uu)^{-1} for a batch (T, du, du) of negative-definite matrices."""
    L = jnp.linalg.cholesky(-Q_uu)
    eye = jnp.broadcast_to(jnp.eye(Q_uu.shape[-1], dtype=Q_uu.dtype), Q_uu.shape)
    cov = jax.vmap(chol_solve)(L, eye)
    return 0.5 * (cov + jnp.swapaxes(cov, -1, -2))


# ----------------------------------------------------------------------------- forward passes
@jax.jit
def forward_marginals(
    lin: LinearDynamics,
    ctrl: LinearGaussianController,
    x0: jax.Array,
    x0_cov: jax.Array,
) -> Marginals:
    """Propagate N(x0, x0_cov) through the controller and the linear-Gaussian dynamics."""

    def step(carry: tuple[jax.Array, jax.Array], inp: tuple[jax.Array, ...]):
        m, S = carry
        F, f, N, K, k, xh, uh, Su = inp
        mu_u = uh + k + K @ (m - xh)
        SK = S @ K.T
        Suu = K @ SK + Su
        Sz = jnp.block([[S, SK], [SK.T, Suu]])
        m_next = F @ jnp.concatenate([m, mu_u]) + f
        S_next = F @ Sz @ F.T + N
        S_next = 0.5 * (S_next + S_next.T)
        return (m_next, S_next), (m_next, S_next, mu_u, Sz)

    _, (ms, Ss, mu, Sz) = jax.lax.scan(
        step,
        (x0, x0_cov),
        tuple(
            jnp.asarray(a) for a in (*lin, ctrl.K, ctrl.k, ctrl.x_hat[:-1], ctrl.u_hat, ctrl.cov)
        ),
    )
    return Marginals(jnp.concatenate([x0[None], ms]), jnp.concatenate([x0_cov[None], Ss]), mu, Sz)


@jax.jit
def expected_reward(
    quad: QuadraticReward, x_hat: jax.Array, u_hat: jax.Array, marg: Marginals
) -> jax.Array:
    """Gaussian (Laplace) estimate of E[sum_t r_t + r_final] from the quadratic expansion."""
    dz = jnp.concatenate([marg.x_mean[:-1] - x_hat[:-1], marg.u_mean - u_hat], axis=1)
    per_step = (
        quad.r
        + jnp.einsum("td,td->t", quad.r_z, dz)
        + 0.5 * jnp.einsum("td,tde,te->t", dz, quad.r_zz, dz)
        + 0.5 * jnp.einsum("tde,ted->t", quad.r_zz, marg.z_cov)
    )
    dT = marg.x_mean[-1] - x_hat[-1]
    end = (
        quad.r_final
        + quad.r_final_x @ dT
        + 0.5 * dT @ quad.r_final_xx @ dT
        + 0.5 * jnp.trace(quad.r_final_xx @ marg.x_cov[-1])
    )
    return per_step.sum() + end


# ----------------------------------------------------------------------------- rollouts
@jax.jit(static_argnums=(0, 1, 2))
def _rollout_jax(
    step_fn: Callable[..., jax.Array],
    reward: RewardFn,
    terminal_reward: TerminalFn | None,
    params: Any,
    x0: jax.Array,
    ctrl: LinearGaussianController,
    alphas: jax.Array,
    t0: jax.Array,
    lo: jax.Array,
    hi: jax.Array,
    mask: jax.Array,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Closed-loop mean rollouts u = clip(u_hat + alpha k + K (x - x_hat)) for each alpha.

    Returns states (A, T+1, dx), actions (A, T, du), returns (A,).
    """

    def one(alpha: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        def body(x: jax.Array, inp: tuple[jax.Array, ...]):
            t, K, k, xh, uh, w = inp
            u = jnp.clip(uh + alpha * k + K @ (x - xh), lo, hi)
            xn = step_fn(params, x, u, t0 + t, None)
            return xn, (xn, u, w * reward(x, u))

        T = ctrl.k.shape[0]
        xT, (xs, us, rs) = jax.lax.scan(
            body,
            x0,
            (
                jnp.arange(T),
                *(jnp.asarray(a) for a in (ctrl.K, ctrl.k, ctrl.x_hat[:-1], ctrl.u_hat)),
                mask,
            ),
        )
        ret = rs.sum() + (0.0 if terminal_reward is None else terminal_reward(xT))
        return jnp.concatenate([x0[None], xs]), us, ret

    return jax.vmap(one)(alphas)


@jax.jit(static_argnums=(0, 1))
def _returns(
    reward: RewardFn,
    terminal_reward: TerminalFn | None,
    obs: jax.Array,
    us: jax.Array,
    mask: jax.Array,
) -> jax.Array:
    """Sum of rewards for obs (A, T+1, do), actions (A, T, du)."""
    r = jax.vmap(jax.vmap(reward))(obs[:, :-1], us) * mask
    ret = r.sum(1)
    if terminal_reward is not None:
        ret = ret + jax.vmap(terminal_reward)(obs[:, -1])
    return ret


def as_model(dynamics: DynamicsModel | LinearDynamics) -> DynamicsModel:
    """A bare :class:`LinearDynamics` as a model; models pass through."""
    if isinstance(dynamics, LinearDynamics):
        return LinearGaussianDynamics.from_params(*dynamics)
    return dynamics


def rollout_controller(
    dynamics: DynamicsModel,
    reward: RewardFn,
    x0: Array,
    ctrl: LinearGaussianController,
    alphas: Array,
    *,
    t0: int = 0,
    u_bounds: tuple[float, float] | None = None,
    terminal_reward: TerminalFn | None = None,
    mask: Array | None = None,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Mean closed-loop rollouts of ``ctrl`` with feed-forward scaled by each alpha.

    u_t = clip(u_hat_t + alpha k_t + K_t (x_t - x_hat_t)). Returns states (A, T+1, dx) in
    the model's coordinates, actions (A, T, du), returns (A,).
    """
    x0 = jnp.asarray(x0)
    dt = x0.dtype
    T = ctrl.k.shape[0]
    lo, hi = (-jnp.inf, jnp.inf) if u_bounds is None else u_bounds
    mask = jnp.ones(T, dt) if mask is None else jnp.asarray(mask, dt)
    alphas = jnp.asarray(alphas, dt)
    if isinstance(dynamics, ObservedDynamics):
        xs, us, obs = _rollout_observed(dynamics, x0, ctrl, alphas, float(lo), float(hi))
        rets = _returns(reward, terminal_reward, jnp.asarray(obs, dt), jnp.asarray(us, dt), mask)
        return jnp.asarray(xs, dt), jnp.asarray(us, dt), rets
    _require_jittable(dynamics)
    return _rollout_jax(
        type(dynamics).step_fn,
        reward,
        terminal_reward,
        dynamics.params,
        x0,
        ctrl,
        alphas,
        jnp.asarray(t0, jnp.int32),
        jnp.asarray(lo, dt),
        jnp.asarray(hi, dt),
        mask,
    )


def _rollout_observed(
    model: ObservedDynamics,
    x0: jax.Array,
    ctrl: LinearGaussianController,
    alphas: jax.Array,
    lo: float,
    hi: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`rollout_controller` in Python for a model stepped through ``step_observed``.

    All step sizes advance together, one batched model step per time step. Returns states
    (A, T+1, dz), actions (A, T, du) and observations (A, T+1, do).
    """
    K, k = np.asarray(ctrl.K, np.float64), np.asarray(ctrl.k, np.float64)
    xh, uh = np.asarray(ctrl.x_hat, np.float64), np.asarray(ctrl.u_hat, np.float64)
    a = np.asarray(alphas, np.float64)[:, None]
    z = np.tile(np.asarray(x0, np.float64), (len(a), 1))
    zs, us, obs = [z], [], [model.observe(z)]
    for t in range(len(k)):
        u = np.clip(uh[t] + a * k[t] + (z - xh[t]) @ K[t].T, lo, hi)
        z, o = model.step_observed(z, u)
        zs.append(z)
        us.append(u)
        obs.append(o)
    return np.stack(zs, 1), np.stack(us, 1), np.stack(obs, 1)


def _require_jittable(dynamics: DynamicsModel) -> None:
    if not dynamics.jittable:
        raise TypeError(
            f"the planner needs a pure-JAX model (jittable, with params/step_fn/linearize_fn) "
            f"or an ObservedDynamics model (observe/step_observed/linearize_with_observation); "
            f"{type(dynamics).__name__} is neither"
        )


def expand(
    dynamics: DynamicsModel,
    reward: RewardFn,
    terminal_reward: TerminalFn | None,
    x_hat: jax.Array,
    u_hat: jax.Array,
    t0: int,
    mask: jax.Array,
) -> tuple[LinearDynamics, QuadraticReward]:
    """Linearise the dynamics and quadratise the reward along the nominal (x_hat, u_hat)."""
    dt = x_hat.dtype
    if isinstance(dynamics, ObservedDynamics):
        lin, obs, J, D2 = dynamics.linearize_with_observation(x_hat, u_hat, t0)
        quad = quadratize(reward, terminal_reward, jnp.asarray(obs, dt), u_hat, mask)
        quad = chain_observation(quad, jnp.asarray(J, dt), jnp.asarray(D2, dt))
    else:
        _require_jittable(dynamics)
        lin = dynamics.linearize(x_hat, u_hat, t0)
        quad = quadratize(reward, terminal_reward, x_hat, u_hat, mask)
    return LinearDynamics(*(jnp.asarray(a, dt) for a in lin)), quad


def evaluate_controller(
    dynamics: DynamicsModel,
    reward: RewardFn,
    ctrl: LinearGaussianController,
    x0: Array,
    x0_cov: Array | None = None,
    *,
    terminal_reward: TerminalFn | None = None,
    t0: int = 0,
) -> float:
    """Gaussian (Laplace) estimate of E[sum r] of ``ctrl`` under ``dynamics``' linearisation.

    The state-action marginals are propagated through the model linearised along the
    controller's mean trajectory and the reward is expanded to second order there (the
    estimate GPS uses to compare predicted and actual improvement).
    """
    x0 = jnp.asarray(x0)
    dt = x0.dtype
    ctrl = ctrl.as_dtype(dt)
    T = ctrl.horizon
    mask = jnp.ones(T, dt)
    S0 = jnp.zeros((x0.shape[0],) * 2, dt) if x0_cov is None else jnp.asarray(x0_cov, dt)
    xs, us, _ = rollout_controller(
        dynamics,
        reward,
        x0,
        ctrl,
        jnp.ones(1, dt),
        t0=t0,
        terminal_reward=terminal_reward,
        mask=mask,
    )
    lin, quad = expand(dynamics, reward, terminal_reward, xs[0], us[0], t0, mask)
    marg = forward_marginals(lin, ctrl, x0, S0)
    return float(expected_reward(quad, xs[0], us[0], marg))
