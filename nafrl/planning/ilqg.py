"""iLQG with a KL-divergence trust region (paper section 3 and appendix 8.1).

Rewards are maximised (the paper's convention: Q and V are sums of rewards). Along a
nominal trajectory (x_hat (T+1, dx), u_hat (T, du)) the dynamics are linearised,
x_{t+1} ~ N(F_t [x_t; u_t] + f_t, N_t), and the reward r(x_t, u_t) is expanded to second
order by JAX autodiff. The backward pass is equation (5):

    Q_{xu,xu t} = r_{xu,xu t} + F_t^T V_{x,x t+1} F_t
    Q_{xu t}    = r_{xu t} + F_t^T (V_{x t+1} + V_{x,x t+1} c_t)
    V_{x,x t}   = Q_{x,x t} - Q_{u,x t}^T Q_{u,u t}^{-1} Q_{u,x t}
    V_{x t}     = Q_{x t} - Q_{u,x t}^T Q_{u,u t}^{-1} Q_{u t}

with c_t = F_t [x_hat_t; u_hat_t] + f_t - x_hat_{t+1} (zero when the nominal is a rollout of
the model) and V at T given by an optional terminal reward. It yields the linear-Gaussian
controller of equations (4)/(6),

    pi_t(u_t | x_t) = N(u_hat_t + k_t + K_t (x_t - x_hat_t), -c Q_{u,u t}^{-1}),
    k_t = -Q_{u,u t}^{-1} Q_{u t},  K_t = -Q_{u,u t}^{-1} Q_{u,x t}.

Two modes (:func:`ilqg` / :func:`ilqg_solve`):

* **Unconstrained** (no previous controller): iterate linearise -> backward pass ->
  forward rollouts with a line search over the step size alpha of k (all alphas rolled out
  in one batch), with Levenberg-Marquardt regularisation Q_uu - mu I when Q_uu is not
  negative definite or no step improves (mu schedule of Tassa, Erez & Todorov 2012). With
  action bounds the backward pass clamps k to the box and zeroes the clamped rows of K.
  On a linear-quadratic problem one iteration returns the finite-horizon Riccati solution.
* **KL-constrained** (``prev`` given; Levine & Abbeel 2014): maximise E[sum r] subject to
  KL(p_new(tau) || p_prev(tau)) <= kl_step * T. The Lagrangian's optimum for a dual
  variable eta is the maximum-entropy controller of the augmented reward
  r/eta + log p_prev(u|x); its covariance is -Q~_uu^{-1} (so c = eta). The KL of the
  resulting trajectory distribution (Gaussian forward pass through the linearisation) is
  decreasing in eta; eta is found by geometric bisection until the KL is within 10% of the
  bound (a non-negative-definite Q~_uu counts as "KL too large", so eta grows).

Rewards, expansions, backward and forward passes and the KL are jitted (``lax.scan``
over time, ``vmap`` over line-search step sizes); the outer loops are Python. Models
whose ``jittable`` is False (the true simulator) are rolled out through their own
``rollout_controller`` and linearised by finite differences in their own state
coordinates; the reward, a function of the observation o = h(z), is chained through h
(Gauss-Newton plus the diagonal curvature of h; see :func:`chain_observation`).

Arrays follow the dtype of ``x0``: float32 by default, float64 under ``jax.enable_x64``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nafrl.models.base import Array, DynamicsModel, LinearDynamics

RewardFn = Callable[[jax.Array, jax.Array], jax.Array]
"""r(x, u) -> scalar on one observation (dx,) and action (du,); pure JAX."""
TerminalFn = Callable[[jax.Array], jax.Array]
"""r_T(x) -> scalar on the final observation; pure JAX."""


# ----------------------------------------------------------------------------- containers
class LinearGaussianController(NamedTuple):
    """pi_t(u|x) = N(u_hat_t + k_t + K_t (x - x_hat_t), cov_t)  (equations 4 and 6).

    Attributes:
        K: (T, du, dx) feedback gains.
        k: (T, du) feed-forward term relative to u_hat.
        x_hat: (T+1, dx) nominal states the controller was computed around.
        u_hat: (T, du) nominal actions.
        cov: (T, du, du) action covariance -c Q_uu^{-1}.
    """

    K: Array
    k: Array
    x_hat: Array
    u_hat: Array
    cov: Array

    @property
    def horizon(self) -> int:
        return int(self.K.shape[0])

    def mean_action(self, x: Array, t: int) -> Array:
        """Mean action at time t for state x (dx,) (or a batch (B, dx))."""
        return self.u_hat[t] + self.k[t] + (x - self.x_hat[t]) @ self.K[t].T

    def sample(self, x: Array, t: int, key: jax.Array) -> jax.Array:
        """An action drawn from pi_t(.|x) for one state x (dx,) (jitted)."""
        return _sample_action(
            self, jnp.asarray(x, jnp.asarray(self.k).dtype), jnp.asarray(t, jnp.int32), key
        )

    def affine(self) -> tuple[Array, Array]:
        """(K, k_abs) with mean action K_t x + k_abs_t."""
        k_abs = self.u_hat + self.k - jnp.einsum("tij,tj->ti", self.K, self.x_hat[:-1])
        return self.K, k_abs

    def recenter(self, x_hat: Array, u_hat: Array) -> LinearGaussianController:
        """The same policy written around a new nominal (x_hat (T+1, dx), u_hat (T, du))."""
        k = (
            self.u_hat
            + self.k
            + jnp.einsum("tij,tj->ti", self.K, x_hat[:-1] - self.x_hat[:-1])
            - u_hat
        )
        return self._replace(k=k, x_hat=x_hat, u_hat=u_hat)

    @classmethod
    def open_loop(
        cls, x_hat: Array, u_hat: Array, std: float | Array = 1.0
    ) -> LinearGaussianController:
        """K = 0, k = 0 around (x_hat (T+1, dx), u_hat (T, du)) with covariance std^2 I."""
        x_hat, u_hat = jnp.asarray(x_hat), jnp.asarray(u_hat)
        T, du = u_hat.shape
        std = jnp.broadcast_to(jnp.asarray(std, u_hat.dtype), (T, du))
        cov = jax.vmap(jnp.diag)(std**2)
        return cls(
            jnp.zeros((T, du, x_hat.shape[1]), u_hat.dtype),
            jnp.zeros_like(u_hat),
            x_hat,
            u_hat,
            cov,
        )

    @classmethod
    def from_samples(cls, x: Array, u: Array, min_std: float = 0.05) -> LinearGaussianController:
        """Open-loop Gaussian controller matching the per-step action mean and covariance of
        episodes x (E, T+1, dx), u (E, T, du) (eigenvalues floored at min_std^2); K = 0.

        Used as the "previous controller" of the first KL step when the data came from
        another policy, so the trust region keeps the new controller near the data.
        """
        x, u = np.asarray(x, np.float64), np.asarray(u, np.float64)
        mu = u.mean(0)
        d = u - mu
        cov = np.einsum("eti,etj->tij", d, d) / u.shape[0]
        w, V = np.linalg.eigh(cov)
        cov = (V * np.maximum(w, min_std**2)[:, None, :]) @ np.swapaxes(V, -1, -2)
        T, du = mu.shape
        return cls(
            jnp.zeros((T, du, x.shape[2])),
            jnp.zeros((T, du)),
            jnp.asarray(x.mean(0)),
            jnp.asarray(mu),
            jnp.asarray(cov),
        )


@jax.jit
def _sample_action(
    ctrl: LinearGaussianController, x: jax.Array, t: jax.Array, key: jax.Array
) -> jax.Array:
    mean = ctrl.u_hat[t] + ctrl.k[t] + ctrl.K[t] @ (x - ctrl.x_hat[t])
    cov = ctrl.cov[t]
    chol = jnp.linalg.cholesky(cov + 1e-12 * jnp.eye(cov.shape[0], dtype=cov.dtype))
    return mean + chol @ jax.random.normal(key, mean.shape, mean.dtype)


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


class ILQGInfo(NamedTuple):
    """Diagnostics of :func:`ilqg_solve`."""

    x: np.ndarray
    """(T+1, dx) states of the final (mean) trajectory under the model."""
    u: np.ndarray
    """(T, du) actions of the final (mean) trajectory."""
    expected_return: float
    """Sum of rewards along (x, u) (unconstrained) or the Gaussian (Laplace) estimate of
    E[sum r] under the KL-constrained controller."""
    iterations: int
    eta: float
    """Dual variable of the KL constraint (nan when unconstrained)."""
    kl: float
    """KL(p_new(tau) || p_prev(tau)) (nan when unconstrained)."""
    kl_bound: float
    reg: float
    """Final Levenberg-Marquardt regularisation mu."""
    converged: bool
    returns: tuple[float, ...]
    """Return after each accepted iteration (unconstrained mode)."""


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
def _chol_solve(L: jax.Array, B: jax.Array) -> jax.Array:
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
        sol = _chol_solve(L, jnp.concatenate([Q_u[:, None], Q_ux_r], axis=1))
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
        sol_b = _chol_solve(Lm, jnp.concatenate([rhs_k[:, None], rhs_K], axis=1))
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
        (lin.F, c, quad.r_z, quad.r_zz, u_hat),
        reverse=True,
    )
    V_x = jnp.concatenate([V_x, quad.r_final_x[None]], axis=0)
    V_xx = jnp.concatenate([V_xx, quad.r_final_xx[None]], axis=0)
    ok = jnp.all(ok) & jnp.all(jnp.isfinite(K)) & jnp.all(jnp.isfinite(k))
    return Backward(K, k, Q_uu, V_x, V_xx, improvement.sum(0), ok)


def _inv_neg(Q_uu: jax.Array) -> jax.Array:
    """(-Q_uu)^{-1} for a batch (T, du, du) of negative-definite matrices."""
    L = jnp.linalg.cholesky(-Q_uu)
    eye = jnp.broadcast_to(jnp.eye(Q_uu.shape[-1], dtype=Q_uu.dtype), Q_uu.shape)
    cov = jax.vmap(_chol_solve)(L, eye)
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
        (lin.F, lin.f, lin.cov, ctrl.K, ctrl.k, ctrl.x_hat[:-1], ctrl.u_hat, ctrl.cov),
    )
    return Marginals(jnp.concatenate([x0[None], ms]), jnp.concatenate([x0_cov[None], Ss]), mu, Sz)


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
        P0 = _chol_solve(L0, jnp.eye(du, dtype=S0.dtype))
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
    cov = _inv_neg(bw.Q_uu)
    ctrl = LinearGaussianController(bw.K, bw.k, x_hat, u_hat, cov)
    marg = forward_marginals(lin, ctrl, x0, x0_cov)
    kl = trajectory_kl(ctrl, prev, marg)
    ok = bw.ok & jnp.isfinite(kl) & jnp.all(jnp.isfinite(cov))
    return ctrl, jnp.where(ok, kl, jnp.inf), ok, marg


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
            body, x0, (jnp.arange(T), ctrl.K, ctrl.k, ctrl.x_hat[:-1], ctrl.u_hat, mask)
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

    Returns states (A, T+1, dx) in the model's coordinates, actions (A, T, du), returns (A,).
    """
    x0 = jnp.asarray(x0)
    dt = x0.dtype
    T = ctrl.k.shape[0]
    lo, hi = (-jnp.inf, jnp.inf) if u_bounds is None else u_bounds
    mask = jnp.ones(T, dt) if mask is None else jnp.asarray(mask, dt)
    alphas = jnp.asarray(alphas, dt)
    if dynamics.jittable:
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
    xs, us, obs = dynamics.rollout_controller(  # type: ignore[attr-defined]
        np.asarray(x0), ctrl, np.asarray(alphas), t0=t0, u_bounds=u_bounds
    )
    rets = _returns(reward, terminal_reward, jnp.asarray(obs, dt), jnp.asarray(us, dt), mask)
    return jnp.asarray(xs, dt), jnp.asarray(us, dt), rets


def _expand(
    dynamics: DynamicsModel,
    reward: RewardFn,
    terminal_reward: TerminalFn | None,
    x_hat: jax.Array,
    u_hat: jax.Array,
    t0: int,
    mask: jax.Array,
) -> tuple[LinearDynamics, QuadraticReward]:
    """Linearise the dynamics and quadratise the reward along the nominal."""
    dt = x_hat.dtype
    if dynamics.jittable:
        lin = dynamics.linearize(x_hat, u_hat, t0)
        quad = quadratize(reward, terminal_reward, x_hat, u_hat, mask)
    else:
        lin, obs, J, D2 = dynamics.linearize_with_observation(  # type: ignore[attr-defined]
            x_hat, u_hat, t0
        )
        quad = quadratize(reward, terminal_reward, jnp.asarray(obs, dt), u_hat, mask)
        quad = chain_observation(quad, jnp.asarray(J, dt), jnp.asarray(D2, dt))
    return LinearDynamics(*(jnp.asarray(a, dt) for a in lin)), quad


# ----------------------------------------------------------------------------- solvers
ALPHAS = (1.0, 0.5, 0.25, 0.1, 0.03, 0.01)
"""Step sizes tried by the line search, all rolled out in one batch."""


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
    prev: LinearGaussianController | None = None,
    kl_step: float = 0.2,
    x0_cov: Array | None = None,
    iterations: int | None = None,
    c: float = 1.0,
    terminal_reward: TerminalFn | None = None,
    t0: int = 0,
    u_bounds: tuple[float, float] | None = None,
    reward_mask: Array | None = None,
    reg: float = 0.0,
    max_reg: float = 1e10,
    tol: float = 1e-6,
    eta0: float = 1.0,
    eta_bounds: tuple[float, float] = (1e-8, 1e16),
    kl_tol: float = 0.1,
) -> tuple[LinearGaussianController, ILQGInfo]:
    """Optimise a linear-Gaussian controller for ``reward`` under ``dynamics``.

    Args:
        dynamics: a :class:`~nafrl.models.DynamicsModel` (or bare :class:`LinearDynamics`).
        reward: r(x, u) -> scalar, pure JAX, on one observation and action (maximised).
        x0: (dx,) initial state (the mean, in KL mode).
        u_init: (T, du) initial actions; the nominal is their rollout. Ignored in KL mode,
            where the nominal is the mean trajectory of ``prev`` under the model.
        prev: previous controller; if given, solve the KL-constrained problem.
        kl_step: per-step KL bound; the constraint is KL(p_new || p_prev) <= kl_step * T.
        x0_cov: (dx, dx) initial-state covariance for the KL forward pass (default 0).
        iterations: unconstrained: maximum iLQG iterations (default 20); KL mode: number of
            re-expansions around the new mean trajectory (default 1).
        c: temperature of the unconstrained controller's covariance -c Q_uu^{-1} (eq. 4).
        terminal_reward: optional r_final(x_T).
        t0: time index of the first step (time-varying models, MPC).
        u_bounds: (low, high) clip actions in rollouts (unconstrained mode).
        reward_mask: (T,) per-step reward weights (MPC beyond the episode end).
        reg: initial Levenberg-Marquardt mu (unconstrained mode).
        tol: stop when the relative improvement of the return falls below ``tol``.
        eta0, eta_bounds: start and bracket of the dual variable (KL mode).
        kl_tol: accept |KL - bound| <= kl_tol * bound (KL mode).

    Returns:
        (controller, info). The controller's (x_hat, u_hat) is the nominal it was computed
        around (the last linearisation point) and k its (line-searched) step; ``info.x``,
        ``info.u`` is the resulting mean trajectory under the model.
    """
    if isinstance(dynamics, LinearDynamics):
        from nafrl.models.linear_gaussian import LinearGaussianDynamics

        dynamics = LinearGaussianDynamics.from_params(*dynamics)
    x0 = jnp.asarray(x0)
    dt = x0.dtype
    u_init = jnp.asarray(u_init, dt)
    if u_init.ndim != 2 or x0.ndim != 1:
        raise ValueError(
            f"ilqg: expected x0 (dx,) and u_init (T, du); got {x0.shape}, {u_init.shape}"
        )
    T, du = u_init.shape
    if iterations is not None and iterations < 1:
        raise ValueError(f"ilqg: iterations must be >= 1, got {iterations}")
    mask = jnp.ones(T, dt) if reward_mask is None else jnp.asarray(reward_mask, dt)
    if prev is not None:
        return _ilqg_kl(
            dynamics,
            reward,
            x0,
            prev,
            kl_step,
            x0_cov,
            iterations or 1,
            terminal_reward,
            t0,
            mask,
            eta0,
            eta_bounds,
            kl_tol,
        )

    zero_ctrl = LinearGaussianController(
        jnp.zeros((T, du, x0.shape[0]), dt),
        jnp.zeros((T, du), dt),
        jnp.zeros((T + 1, x0.shape[0]), dt),
        u_init,
        jnp.zeros((T, du, du), dt),
    )
    xs, us, rets = rollout_controller(
        dynamics,
        reward,
        x0,
        zero_ctrl,
        jnp.zeros(1, dt),
        t0=t0,
        u_bounds=u_bounds,
        terminal_reward=terminal_reward,
        mask=mask,
    )
    x_hat, u_hat, J = xs[0], us[0], float(rets[0])
    alphas = jnp.asarray(ALPHAS, dt)
    lo, hi = (-jnp.inf, jnp.inf) if u_bounds is None else u_bounds
    lo, hi = jnp.asarray(lo, dt), jnp.asarray(hi, dt)
    mu, delta = float(reg), 1.0
    ctrl: LinearGaussianController | None = None
    returns: list[float] = []
    converged = False
    expand = True
    it = 0
    while it < (iterations or 20):
        it += 1
        if expand:  # re-linearise only when the nominal moved
            lin, quad = _expand(dynamics, reward, terminal_reward, x_hat, u_hat, t0, mask)
            expand = False
        bw = backward_pass(lin, quad, x_hat, u_hat, mu, lo, hi)
        while not bool(bw.ok) and mu <= max_reg:
            mu, delta = _increase(mu, delta)
            bw = backward_pass(lin, quad, x_hat, u_hat, mu, lo, hi)
        if not bool(bw.ok):
            break
        if float(bw.improvement[0] + bw.improvement[1]) <= tol * (abs(J) + 1.0):
            # Converged: keep the gains at the final nominal (k is negligible here).
            ctrl = LinearGaussianController(bw.K, bw.k, x_hat, u_hat, c * _inv_neg(bw.Q_uu))
            converged = True
            break
        trial = LinearGaussianController(bw.K, bw.k, x_hat, u_hat, bw.Q_uu)
        xs, us, rets = rollout_controller(
            dynamics,
            reward,
            x0,
            trial,
            alphas,
            t0=t0,
            u_bounds=u_bounds,
            terminal_reward=terminal_reward,
            mask=mask,
        )
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
        ctrl = LinearGaussianController(bw.K, alphas[a] * bw.k, x_hat, u_hat, c * _inv_neg(bw.Q_uu))
        x_hat, u_hat, expand = xs[a], us[a], True
        improvement, J = float(gain[a]), float(rets_np[a])
        returns.append(J)
        mu, delta = _decrease(mu, delta)
        if improvement <= tol * (abs(J) + 1.0):
            converged = True
            break
    if ctrl is None:  # no step improved: hold the initial actions, with the last gains if any
        ctrl = LinearGaussianController(
            jnp.zeros((T, du, x0.shape[0]), dt),
            jnp.zeros((T, du), dt),
            x_hat,
            u_hat,
            jnp.broadcast_to(jnp.eye(du, dtype=dt) * c, (T, du, du)),
        )
    info = ILQGInfo(
        np.asarray(x_hat),
        np.asarray(u_hat),
        J,
        it,
        math.nan,
        math.nan,
        math.nan,
        mu,
        converged,
        tuple(returns),
    )
    return ctrl, info


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
    ctrl = LinearGaussianController(*(jnp.asarray(a, dt) for a in ctrl))
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
    lin, quad = _expand(dynamics, reward, terminal_reward, xs[0], us[0], t0, mask)
    marg = forward_marginals(lin, ctrl, x0, S0)
    return float(expected_reward(quad, xs[0], us[0], marg))


def _increase(mu: float, delta: float, factor: float = 2.0) -> tuple[float, float]:
    """Tassa et al. (2012) schedule: grow the factor geometrically while failing."""
    delta = max(factor, delta * factor)
    return max(1e-6, mu * delta), delta


def _decrease(mu: float, delta: float, factor: float = 2.0) -> tuple[float, float]:
    delta = min(1.0 / factor, delta / factor)
    mu = mu * delta
    return (mu if mu > 1e-6 else 0.0), delta


def _ilqg_kl(
    dynamics: DynamicsModel,
    reward: RewardFn,
    x0: jax.Array,
    prev: LinearGaussianController,
    kl_step: float,
    x0_cov: Array | None,
    iterations: int,
    terminal_reward: TerminalFn | None,
    t0: int,
    mask: jax.Array,
    eta0: float,
    eta_bounds: tuple[float, float],
    kl_tol: float,
) -> tuple[LinearGaussianController, ILQGInfo]:
    dt = x0.dtype
    prev = LinearGaussianController(*(jnp.asarray(a, dt) for a in prev))
    T = prev.horizon
    S0 = jnp.zeros((x0.shape[0],) * 2, dt) if x0_cov is None else jnp.asarray(x0_cov, dt)
    bound = float(kl_step) * T
    # Nominal: the mean trajectory of the previous controller under the model.
    xs, us, _ = rollout_controller(
        dynamics,
        reward,
        x0,
        prev,
        jnp.ones(1, dt),
        t0=t0,
        terminal_reward=terminal_reward,
        mask=mask,
    )
    x_hat, u_hat = xs[0], us[0]
    ctrl, kl, eta, marg, quad = prev, 0.0, float(eta0), None, None
    for _ in range(iterations):
        lin, quad = _expand(dynamics, reward, terminal_reward, x_hat, u_hat, t0, mask)
        ctrl, kl, eta, marg = _dual_search(
            lin, quad, prev, x_hat, u_hat, x0, S0, bound, eta, eta_bounds, kl_tol
        )
        x_hat, u_hat = marg.x_mean, marg.u_mean
        ctrl = ctrl.recenter(x_hat, u_hat)
    assert marg is not None and quad is not None
    exp_ret = float(expected_reward(quad, ctrl.x_hat, ctrl.u_hat, marg))
    info = ILQGInfo(
        np.asarray(marg.x_mean),
        np.asarray(marg.u_mean),
        exp_ret,
        iterations,
        eta,
        float(kl),
        bound,
        0.0,
        abs(kl - bound) <= kl_tol * bound,
        (),
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

    def evaluate(e: float):
        c, kl, _, m = kl_step_for_eta(
            lin, quad, prev, x_hat, u_hat, x0, S0, jnp.asarray(e, x0.dtype)
        )
        return c, float(kl), m

    lo, hi = None, None  # eta with KL > bound, eta with KL <= bound
    feasible: tuple[Any, float, float, Marginals] | None = None
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
