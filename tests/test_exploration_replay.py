"""Noise processes (appendix 8.2) and the replay ring buffer."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nafrl.exploration import precision_noise, precision_scale, sample_noise
from nafrl.replay import ReplayBuffer


def _run_process(kind, steps, du=2, scale=0.5, theta=0.15, L=None, seed=0):
    def body(noise, key):
        noise = sample_noise(kind, noise, key, scale, theta, L)
        return noise, noise

    keys = jax.random.split(jax.random.PRNGKey(seed), steps)
    _, xs = jax.lax.scan(body, jnp.zeros(du), keys)
    return np.asarray(xs, np.float64)


def test_ou_stationary_variance_is_sigma2_over_2theta():
    theta, scale = 0.15, 0.5
    sigma = scale * np.sqrt(2 * theta)  # the continuous-time OU diffusion
    xs = _run_process("ou", 200_000, scale=scale, theta=theta)[1000:]
    np.testing.assert_allclose(xs.var(axis=0), sigma**2 / (2 * theta), rtol=0.05)
    # Temporal correlation: lag-1 autocorrelation exp(-theta), unlike white Gaussian noise.
    rho = np.mean(xs[1:, 0] * xs[:-1, 0]) / xs[:, 0].var()
    np.testing.assert_allclose(rho, np.exp(-theta), atol=0.02)
    g = _run_process("gaussian", 50_000, scale=scale)
    assert abs(np.mean(g[1:, 0] * g[:-1, 0]) / g[:, 0].var()) < 0.02
    np.testing.assert_allclose(g.var(axis=0), scale**2, rtol=0.05)


def test_naf_p_sample_covariance_matches_c_P_inverse():
    L = jnp.array([[2.0, 0.0, 0.0], [1.5, 0.5, 0.0], [-0.3, 0.8, 1.2]])
    scale = 0.3
    keys = jax.random.split(jax.random.PRNGKey(0), 200_000)
    z = np.asarray(jax.vmap(lambda k: precision_noise(k, L, scale))(keys), np.float64)
    P = np.asarray(L @ L.T, np.float64)
    c = float(precision_scale(L, scale))
    expected = c * np.linalg.inv(P)
    np.testing.assert_allclose(np.cov(z.T), expected, atol=0.03 * np.abs(expected).max())
    # The adaptive c fixes the average variance at scale^2 whatever the magnitude of P.
    np.testing.assert_allclose(np.trace(expected) / 3, scale**2, rtol=1e-5)
    c_big = float(precision_scale(10.0 * L, scale))
    np.testing.assert_allclose(c_big * np.trace(np.linalg.inv(100 * P)) / 3, scale**2, rtol=1e-5)


def test_precision_ou_keeps_the_shape_of_P_inverse():
    L = jnp.array([[1.0, 0.0], [0.9, 0.2]])
    xs = _run_process("precision", 100_000, L=L, scale=0.4)[500:]
    P_inv = np.linalg.inv(np.asarray(L @ L.T, np.float64))
    corr = np.corrcoef(xs.T)[0, 1]
    np.testing.assert_allclose(corr, P_inv[0, 1] / np.sqrt(P_inv[0, 0] * P_inv[1, 1]), atol=0.03)


def test_unknown_noise_kind_is_an_error():
    with pytest.raises(ValueError, match="accepted: ou, gaussian, precision"):
        sample_noise("pink", jnp.zeros(2), jax.random.PRNGKey(0), 0.1, 0.15)


def test_replay_wraps_around_and_keeps_the_newest():
    buf = ReplayBuffer(5, obs_dim=2, act_dim=1)
    for i in range(8):
        buf.add(np.full(2, i), np.full(1, -i), float(i), np.full(2, i + 1), i == 7)
    assert len(buf) == 5 and buf.pos == 3
    assert sorted(buf.data["reward"].tolist()) == [3.0, 4.0, 5.0, 6.0, 7.0]
    np.testing.assert_array_equal(buf.chronological("reward"), [3, 4, 5, 6, 7])
    np.testing.assert_array_equal(buf.chronological("terminated"), [0, 0, 0, 0, 1])
    other = ReplayBuffer(5, 2, 1)
    other.load_state_dict(buf.state_dict())
    assert other.pos == buf.pos and len(other) == len(buf)
    np.testing.assert_array_equal(
        other.sample(np.random.default_rng(7), 8).next_obs,
        buf.sample(np.random.default_rng(7), 8).next_obs,
    )  # same layout: the same random numbers draw the same transitions
    b = buf.sample(np.random.default_rng(0), batch_size=1000, num_batches=2)
    assert b.obs.shape == (2, 1000, 2) and b.action.shape == (2, 1000, 1)
    assert set(np.unique(b.reward).tolist()) == {3.0, 4.0, 5.0, 6.0, 7.0}
    np.testing.assert_array_equal(b.next_obs[..., 0], b.obs[..., 0] + 1)  # rows stay aligned


def test_replay_add_batch_wraps():
    buf = ReplayBuffer(4, 1, 1)
    n = 6
    buf.add_batch(
        obs=np.arange(n)[:, None],
        action=np.zeros((n, 1)),
        reward=np.arange(n),
        next_obs=np.zeros((n, 1)),
        terminated=np.zeros(n),
    )
    assert len(buf) == 4 and buf.pos == 2
    np.testing.assert_array_equal(buf.chronological("reward"), [2, 3, 4, 5])


def test_replay_million_halfcheetah_transitions_under_200mb():
    buf = ReplayBuffer(1_000_000, obs_dim=17, act_dim=6)
    assert buf.nbytes < 200e6
    with pytest.raises(ValueError, match="empty"):
        buf.sample(np.random.default_rng(0), 4)


@pytest.mark.parametrize("capacity", [7, 1000])
def test_presample_then_add_equals_add_then_sample(capacity):
    """The training loop gathers step t+1's minibatches while step t's update runs; they
    must equal what sampling after the add would give, also when the add overwrites a
    sampled slot (capacity 7: the buffer is full and wraps)."""
    rng = np.random.default_rng(0)
    a, b = ReplayBuffer(capacity, 3, 2), ReplayBuffer(capacity, 3, 2)
    ra, rb = np.random.default_rng(1), np.random.default_rng(1)
    hits = 0
    for t in range(40):
        tr = (rng.normal(size=3), rng.normal(size=2), float(t), rng.normal(size=3), t % 5 == 0)
        pending = a.presample(ra, 4, 3) if len(a) > 0 else None
        a.add(*tr)
        b.add(*tr)
        want = b.sample(rb, 4, 3)
        if pending is None:
            a.sample(ra, 4, 3)
            continue
        hits += int(np.sum(pending[0] == (a.pos - 1) % capacity))
        got = a.complete(pending)
        for x, y in zip(got, want, strict=True):
            np.testing.assert_array_equal(x, y)
    assert hits > 0  # the overwritten-slot path was exercised
