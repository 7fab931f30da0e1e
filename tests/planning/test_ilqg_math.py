"""iLQG (appendix 8.1): Riccati gains on LQ problems, the KL trust region, box bounds."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nafrl.models import DynamicsModel, LinearDynamics, LinearGaussianDynamics
from nafrl.planning import (
    LinearGaussianController,
    forward_marginals,
    ilqg,
    ilqg_solve,
    kl_constrained_step,
    trajectory_kl,
)


def _lq(rng, T=20, dx=4, du=2):
    A = np.eye(dx) + 0.1 * rng.standard_normal((T, dx, dx))
    B = rng.standard_normal((T, dx, du))
    Q = np.diag(rng.uniform(0.5, 2.0, dx))
    R = 0.1 * np.eye(du)
    Qf = 5.0 * np.eye(dx)
    return A, B, Q, R, Qf


def _riccati(A, B, Q, R, Qf):
    """Finite-horizon discrete Riccati recursion for max -1/2 x'Qx - 1/2 u'Ru, u = K x."""
    P, Ks = Qf, []
    for t in reversed(range(len(A))):
        K = -np.linalg.solve(R + B[t].T @ P @ B[t], B[t].T @ P @ A[t])
        P = Q + A[t].T @ P @ A[t] + A[t].T @ P @ B[t] @ K
        Ks.append(K)
    return np.array(Ks[::-1]), P


def test_lq_gains_equal_finite_horizon_riccati():
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        A, B, Q, R, Qf = _lq(rng)
        T, dx, du = B.shape
        model = LinearGaussianDynamics.from_params(np.concatenate([A, B], 2), np.zeros((T, dx)))
        Qj, Rj, Qfj = jnp.asarray(Q), jnp.asarray(R), jnp.asarray(Qf)

        def reward(x, u):
            return -0.5 * x @ Qj @ x - 0.5 * u @ Rj @ u

        def terminal(x):
            return -0.5 * x @ Qfj @ x

        x0 = rng.standard_normal(dx)
        ctrl, info = ilqg_solve(model, reward, x0, np.zeros((T, du)), terminal_reward=terminal)
        K_ref, P0 = _riccati(A, B, Q, R, Qf)
        assert ctrl.K.dtype == jnp.float64
        assert ctrl.K.shape == (T, du, dx) and ctrl.k.shape == (T, du)
        assert ctrl.x_hat.shape == (T + 1, dx) and ctrl.u_hat.shape == (T, du)
        assert np.abs(np.asarray(ctrl.K) - K_ref).max() < 1e-6
        # The mean action is the optimal feedback u = K x at every state.
        np.testing.assert_allclose(
            np.asarray(ctrl.mean_action(ctrl.x_hat[3], 3)),
            K_ref[3] @ np.asarray(ctrl.x_hat[3]),
            atol=1e-9,
        )
        assert info.expected_return == pytest.approx(-0.5 * x0 @ P0 @ x0, rel=1e-9)
        assert info.converged
        # Covariance -c Q_uu^-1 = c (R + B'PB)^-1 at the last step (P_T = Qf).
        cov_T = 2.0 * np.linalg.inv(R + B[-1].T @ Qf @ B[-1])
        c_ctrl = ilqg(model, reward, x0, np.zeros((T, du)), terminal_reward=terminal, c=2.0)
        np.testing.assert_allclose(np.asarray(c_ctrl.cov[-1]), cov_T, rtol=1e-9)


def test_bare_linear_dynamics_and_offsets_are_accepted():
    with jax.enable_x64(True):
        rng = np.random.default_rng(1)
        A, B, Q, R, Qf = _lq(rng, T=10, dx=3, du=1)
        f = 0.3 * rng.standard_normal((10, 3))
        lin = LinearDynamics(np.concatenate([A, B], 2), f, np.zeros((10, 3, 3)))
        Qj, Rj = jnp.asarray(Q), jnp.asarray(R)
        ctrl = ilqg(
            lin, lambda x, u: -0.5 * x @ Qj @ x - 0.5 * u @ Rj @ u, np.ones(3), np.zeros((10, 1))
        )
        K_ref, _ = _riccati(A, B, Q, R, np.zeros((3, 3)))
        assert np.abs(np.asarray(ctrl.K) - K_ref).max() < 1e-6


def _kl_problem(rng):
    T, dx, du = 15, 3, 2
    A = np.eye(dx) + 0.1 * rng.standard_normal((T, dx, dx))
    B = 0.5 * rng.standard_normal((T, dx, du))
    N = np.broadcast_to(0.01 * np.eye(dx), (T, dx, dx)).copy()
    F = np.concatenate([A, B], 2)
    f = 0.1 * np.ones((T, dx))
    return F, f, N


def _mc_kl(rng, F, f, N, x0, S0, new, old, M=20_000):
    """Monte-Carlo KL(p_new(tau) || p_old(tau)) = E_new[sum_t log pi_new - log pi_old]."""

    def logp(c, x, u, t):
        mean = np.asarray(c.u_hat[t] + c.k[t]) + (x - np.asarray(c.x_hat[t])) @ np.asarray(c.K[t]).T
        S = np.asarray(c.cov[t])
        d = u - mean
        return (
            -0.5 * np.einsum("ni,ij,nj->n", d, np.linalg.inv(S), d)
            - 0.5 * np.linalg.slogdet(2 * np.pi * S)[1]
        )

    x = x0 + rng.standard_normal((M, len(x0))) @ np.linalg.cholesky(S0).T
    kl = np.zeros(M)
    for t in range(len(f)):
        mean = (
            np.asarray(new.u_hat[t] + new.k[t])
            + (x - np.asarray(new.x_hat[t])) @ np.asarray(new.K[t]).T
        )
        u = (
            mean
            + rng.standard_normal((M, mean.shape[1])) @ np.linalg.cholesky(np.asarray(new.cov[t])).T
        )
        kl += logp(new, x, u, t) - logp(old, x, u, t)
        x = (
            np.concatenate([x, u], 1) @ F[t].T
            + f[t]
            + rng.standard_normal(x.shape) @ np.linalg.cholesky(N[t]).T
        )
    return kl.mean(), kl.std() / np.sqrt(M)


@pytest.mark.parametrize("kl_step", [0.05, 0.5])
def test_kl_step_satisfies_its_constraint(kl_step):
    with jax.enable_x64(True):
        rng = np.random.default_rng(2)
        F, f, N = _kl_problem(rng)
        T, dx = f.shape
        du = F.shape[2] - dx
        model = LinearGaussianDynamics.from_params(F, f, N)

        def reward(x, u):
            return -0.5 * x @ x - 0.05 * u @ u

        x0, S0 = np.ones(dx), 0.01 * np.eye(dx)
        prev = LinearGaussianController.open_loop(np.zeros((T + 1, dx)), np.zeros((T, du)), 0.5)
        ctrl, info = kl_constrained_step(model, reward, x0, prev, kl_step=kl_step, x0_cov=S0)
        bound = kl_step * T
        assert info.kl_bound == pytest.approx(bound)
        assert abs(info.kl - bound) <= 0.1 * bound
        # The reported KL is the true one: recompute it analytically and by sampling.
        marg = forward_marginals(model.linear, ctrl, jnp.asarray(x0), jnp.asarray(S0))
        assert float(trajectory_kl(ctrl, prev, marg)) == pytest.approx(info.kl, rel=1e-6)
        mc, se = _mc_kl(rng, F, f, N, x0, S0, ctrl, prev)
        assert abs(mc - info.kl) < 5 * se + 1e-3
        # Improvement over the previous controller, and a larger bound improves more.
        assert info.eta > 0
        if kl_step == 0.5:
            small = kl_constrained_step(model, reward, x0, prev, kl_step=0.05, x0_cov=S0)[1]
            assert info.expected_return > small.expected_return


def test_recenter_and_affine_keep_the_policy():
    rng = np.random.default_rng(3)
    T, dx, du = 5, 3, 2
    c = LinearGaussianController(
        jnp.asarray(rng.standard_normal((T, du, dx))),
        jnp.asarray(rng.standard_normal((T, du))),
        jnp.asarray(rng.standard_normal((T + 1, dx))),
        jnp.asarray(rng.standard_normal((T, du))),
        jnp.broadcast_to(jnp.eye(du), (T, du, du)),
    )
    c2 = c.recenter(
        jnp.asarray(rng.standard_normal((T + 1, dx))), jnp.asarray(rng.standard_normal((T, du)))
    )
    x = jnp.asarray(rng.standard_normal(dx))
    K, k = c.affine()
    for t in range(T):
        np.testing.assert_allclose(c.mean_action(x, t), c2.mean_action(x, t), atol=1e-5)
        np.testing.assert_allclose(c.mean_action(x, t), K[t] @ x + k[t], atol=1e-5)


class Pendulum(DynamicsModel):
    """Torque-limited pendulum in JAX, x = (theta, omega), theta = 0 hanging down."""

    def __init__(self, dt=0.05):
        self.dx, self.du, self.dt = 2, 1, dt

    @property
    def params(self):
        return jnp.asarray(self.dt)

    @staticmethod
    def step_fn(params, x, u, t, key):
        th, w = x
        w = w + params * (-9.8 * jnp.sin(th) + 3.0 * u[0] - 0.1 * w)
        return jnp.stack([th + params * w, w])

    @staticmethod
    def linearize_fn(params, x_hat, u_hat, t0):
        z = jnp.concatenate([x_hat[:-1], u_hat], 1)
        f = lambda zz: Pendulum.step_fn(params, zz[:2], zz[2:], 0, None)  # noqa: E731
        F = jax.vmap(jax.jacfwd(f))(z)
        return LinearDynamics(
            F, jax.vmap(f)(z) - jnp.einsum("tij,tj->ti", F, z), jnp.zeros((z.shape[0], 2, 2))
        )

    def fit(self, x, u):
        return self


def test_nonlinear_swing_up_improves_monotonically_and_respects_bounds():
    model = Pendulum()

    def reward(x, u):
        return -(1.0 + jnp.cos(x[0])) - 0.001 * x[1] ** 2 - 0.01 * u[0] ** 2

    T = 100
    ctrl, info = ilqg_solve(
        model, reward, np.array([0.1, 0.0]), np.zeros((T, 1)), iterations=100, u_bounds=(-1.0, 1.0)
    )
    assert np.all(np.diff(info.returns) > 0)
    assert np.all(np.abs(info.u) <= 1.0 + 1e-6)
    # Torque 3 < gravity 9.8: it must pump; the end state is near upright (theta = pi).
    assert np.cos(info.x[-1, 0]) < -0.9, info.x[-1]
    assert info.converged and info.expected_return > -130.0  # hanging still: -200
    assert ctrl.K.shape == (T, 1, 2)
