"""Time-varying linear-Gaussian dynamics (section 5.3): fit, conditioning, priors."""

import jax
import numpy as np
import pytest

from nafrl.models import (
    GaussianPrior,
    GMMPrior,
    LinearGaussianDynamics,
)
from nafrl.models.linear_gaussian import condition_gaussian


def _system(rng, T, dx, du, time_varying=True, noise=0.05):
    """Random stable time-varying linear system: F (T, dx, dx+du), f (T, dx), N (T, dx, dx)."""
    A0 = np.linalg.qr(rng.standard_normal((dx, dx)))[0] * 0.9
    B0 = rng.standard_normal((dx, du)) * 0.5
    s = 0.1 if time_varying else 0.0
    A = np.stack([A0 + s * rng.standard_normal((dx, dx)) for _ in range(T)])
    B = np.stack([B0 + s * rng.standard_normal((dx, du)) for _ in range(T)])
    F = np.concatenate([A, B], axis=2)
    if time_varying:
        f = 0.1 * rng.standard_normal((T, dx))
    else:
        f = np.tile(0.1 * rng.standard_normal(dx), (T, 1))
    M = rng.standard_normal((T, dx, dx)) * noise
    N = M @ np.swapaxes(M, 1, 2) + noise**2 * np.eye(dx)
    if not time_varying:
        N = np.tile(N[0], (T, 1, 1))
    return F, f, N


def _sample(rng, F, f, N, E, x0_std=1.0, u_std=1.0):
    T, dx = f.shape
    du = F.shape[2] - dx
    x = np.zeros((E, T + 1, dx))
    u = u_std * rng.standard_normal((E, T, du))
    x[:, 0] = x0_std * rng.standard_normal((E, dx))
    L = np.linalg.cholesky(N)
    for t in range(T):
        z = np.concatenate([x[:, t], u[:, t]], axis=1)
        x[:, t + 1] = z @ F[t].T + f[t] + rng.standard_normal((E, dx)) @ L[t].T
    return x, u


def test_fit_recovers_known_time_varying_system():
    rng = np.random.default_rng(0)
    F, f, N = _system(rng, T=6, dx=4, du=2)
    x, u = _sample(rng, F, f, N, E=20_000)
    m = LinearGaussianDynamics(prior=None, reg=0.0).fit(x, u)
    assert m.F.shape == (6, 4, 6) and m.f.shape == (6, 4) and m.cov.shape == (6, 4, 4)
    np.testing.assert_allclose(m.F, F, atol=0.01)
    np.testing.assert_allclose(m.f, f, atol=0.01)
    np.testing.assert_allclose(m.cov, N, atol=0.01 * np.abs(N).max())


def test_conditioning_equals_least_squares():
    rng = np.random.default_rng(1)
    F, f, N = _system(rng, T=3, dx=3, du=2)
    x, u = _sample(rng, F, f, N, E=40)
    m = LinearGaussianDynamics(prior=None, reg=0.0, noise_floor=0.0).fit(x, u)
    for t in range(3):
        X = np.concatenate([x[:, t], u[:, t], np.ones((40, 1))], axis=1)
        beta, *_ = np.linalg.lstsq(X, x[:, t + 1], rcond=None)
        resid = x[:, t + 1] - X @ beta
        np.testing.assert_allclose(m.F[t], beta[:-1].T, atol=1e-9)
        np.testing.assert_allclose(m.f[t], beta[-1], atol=1e-9)
        np.testing.assert_allclose(m.cov[t], resid.T @ resid / 40, atol=1e-9)


def test_condition_gaussian_matches_textbook_formula():
    rng = np.random.default_rng(2)
    A = rng.standard_normal((5, 5))
    S = A @ A.T + np.eye(5)
    mu = rng.standard_normal(5)
    F, f, cov = condition_gaussian(mu, S, 3)
    np.testing.assert_allclose(F, S[3:, :3] @ np.linalg.inv(S[:3, :3]), atol=1e-12)
    np.testing.assert_allclose(f, mu[3:] - F @ mu[:3], atol=1e-12)
    np.testing.assert_allclose(
        cov, S[3:, 3:] - S[3:, :3] @ np.linalg.solve(S[:3, :3], S[:3, 3:]), atol=1e-12
    )


@pytest.mark.parametrize("prior", [GMMPrior(), GaussianPrior()], ids=["gmm", "gaussian"])
def test_prior_makes_n5_fit_well_posed_in_20_dimensions(prior):
    # dx + du = 20 with n = 5 episodes: the per-step covariance has rank <= 4.
    rng = np.random.default_rng(3)
    F, f, N = _system(rng, T=10, dx=16, du=4, time_varying=False, noise=0.01)
    old_x, old_u = _sample(rng, F, f, N, E=15)
    x, u = _sample(rng, F, f, N, E=5)
    bare = LinearGaussianDynamics(prior=None, reg=1e-6).fit(x, u)
    err_bare = np.abs(bare.F - F).max()
    m = LinearGaussianDynamics(prior=prior)
    m.prior.update(old_x, old_u)  # informative prior data from earlier episodes
    m.fit(x, u)
    assert np.all(np.isfinite(m.F)) and np.all(np.isfinite(m.f)) and np.all(np.isfinite(m.cov))
    assert np.all(np.linalg.eigvalsh(m.cov) > 0)
    err = np.abs(m.F - F).max()
    assert err < 0.08, err
    assert err < 0.2 * err_bare
    np.testing.assert_allclose(m.f, f, atol=0.05)


def test_prior_keeps_only_recent_episodes():
    rng = np.random.default_rng(4)
    F, f, N = _system(rng, T=4, dx=2, du=1)
    prior = GaussianPrior(max_episodes=7, reg=0.0)
    batches = [_sample(rng, F, f, N, E=5) for _ in range(3)]
    for x, u in batches:
        prior.update(x, u)
    x = np.concatenate([b[0] for b in batches])
    u = np.concatenate([b[1] for b in batches])

    def moments(x, u):  # the pooled [x_t; u_t; x_t+1] points of these episodes
        pts = np.concatenate([x[:, :-1], u, x[:, 1:]], axis=-1).reshape(-1, 5)
        return pts.mean(0), np.cov(pts.T, bias=True)

    mean7, cov7 = moments(x[-7:], u[-7:])
    np.testing.assert_allclose(prior.mean, mean7, atol=1e-12)
    np.testing.assert_allclose(prior.cov, cov7, atol=1e-12)
    mean15, _ = moments(x, u)  # all 15 episodes would give another mean
    assert np.abs(prior.mean - mean15).max() > 1e-3


def test_step_mean_noise_and_from_params():
    rng = np.random.default_rng(5)
    F, f, N = _system(rng, T=3, dx=3, du=1)
    m = LinearGaussianDynamics.from_params(F, f, N)
    x = rng.standard_normal((4, 3)).astype(np.float32)
    u = rng.standard_normal((4, 1)).astype(np.float32)
    t = np.array([0, 1, 2, 5])  # beyond the horizon reuses the last step
    mean = np.asarray(m.step(x, u, t))
    tc = np.minimum(t, 2)
    ref = np.einsum("bij,bj->bi", F[tc], np.concatenate([x, u], 1)) + f[tc]
    np.testing.assert_allclose(mean, ref, atol=1e-5)
    xb = np.repeat(x[:1], 20_000, 0)
    ub = np.repeat(u[:1], 20_000, 0)
    samples = np.asarray(m.step(xb, ub, 1, key=jax.random.PRNGKey(0)))
    np.testing.assert_allclose(np.cov(samples.T), N[1], atol=0.1 * np.abs(N[1]).max())
    roll = np.asarray(m.rollout(x[0], np.zeros((3, 1))))
    assert roll.shape == (4, 3)


def test_fit_rejects_bad_shapes():
    m = LinearGaussianDynamics()
    with pytest.raises(ValueError, match="one\\s+more time step"):
        m.fit(np.zeros((5, 10, 3)), np.zeros((5, 10, 1)))
    with pytest.raises(ValueError, match="NaN"):
        m.fit(np.full((5, 11, 3), np.nan), np.zeros((5, 10, 1)))
    with pytest.raises(RuntimeError, match="fit"):
        _ = LinearGaussianDynamics().F
