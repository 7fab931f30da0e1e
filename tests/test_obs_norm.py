"""Running observation normalisation (Config.obs_norm): exact statistics, what the networks
see, and the statistics' life in training and checkpoints."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nafrl
from nafrl.agents import make_agent
from nafrl.agents.obs_norm import CLIP, init_stats, normalize, update_stats
from nafrl.config import make_config
from nafrl.types import Batch


def test_running_statistics_equal_the_sample_mean_and_variance():
    x = np.random.default_rng(0).normal([3.0, -1.0, 0.0], [2.0, 0.1, 5.0], size=(400, 3))
    stats = init_stats(3)
    for row in x.astype(np.float32):
        stats = jax.jit(update_stats)(stats, jnp.asarray(row))
    # The prior (mean 0, var 1) weighs 1e-4 of one observation: invisible at 1e-4 relative.
    np.testing.assert_allclose(stats.mean, x.mean(0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(stats.var, x.var(0), rtol=1e-3)
    z = np.asarray(normalize(stats, jnp.asarray(x, jnp.float32)))
    np.testing.assert_allclose(z.mean(0), 0.0, atol=1e-3)
    np.testing.assert_allclose(z.std(0), 1.0, rtol=1e-3)
    far = normalize(stats, jnp.asarray([[1e6, -1e6, 0.0]], jnp.float32))
    np.testing.assert_array_equal(far[0, :2], [CLIP, -CLIP])


@pytest.mark.parametrize("algo", ["naf", "ddpg"])
def test_networks_see_normalised_inputs_and_updates_keep_the_statistics(algo):
    cfg = make_config(hidden_sizes=(16,), obs_norm=True)
    plain = make_agent(algo, make_config(hidden_sizes=(16,), obs_norm=False), 2, 1)
    agent = make_agent(algo, cfg, 2, 1)
    state = agent.init(jax.random.PRNGKey(0))
    for x in [[10.0, 0.0], [12.0, 1.0], [14.0, 2.0]]:
        state = state._replace(obs_stats=update_stats(state.obs_stats, jnp.asarray(x)))
    obs = jnp.asarray([[12.0, 1.0], [16.0, 3.0]])
    # Same parameters: the wrapped policy at x is the plain policy at the normalised x.
    mu = agent.policy(state, obs)[0]
    np.testing.assert_allclose(mu, plain.policy(state, normalize(state.obs_stats, obs))[0])
    assert not np.allclose(mu, plain.policy(state, obs)[0])
    batch = Batch(obs, jnp.zeros((2, 1)), jnp.ones(2), obs[::-1], jnp.zeros(2))
    new, _ = jax.jit(agent.update)(state, batch)
    ref, _ = jax.jit(plain.update)(
        state,
        batch._replace(
            obs=normalize(state.obs_stats, obs), next_obs=normalize(state.obs_stats, obs[::-1])
        ),
    )
    for a, b in zip(jax.tree.leaves(new.params), jax.tree.leaves(ref.params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert jax.tree.all(jax.tree.map(np.array_equal, new.obs_stats, state.obs_stats))


@pytest.mark.parametrize("cls", [nafrl.NAF, nafrl.DDPG])
def test_training_counts_every_observation_once(cls):
    m = cls(
        "Pendulum-v1",
        seed=0,
        obs_norm=True,
        hidden_sizes=(16,),
        learning_starts=100,
        eval_interval=0,
        checkpoint_interval=0,
    )
    m.learn(500)  # episodes of 200 steps: resets at 0, 200 and 400
    data = m.buffer.data
    # Every x_t acted on: the buffer's x (resets included), the two final x' of the
    # finished episodes and the latest x'.
    seen = np.concatenate([data["obs"][:500], data["next_obs"][[199, 399, 499]]])
    stats = m.state.obs_stats
    assert float(stats.count) == pytest.approx(len(seen), abs=1e-3)
    np.testing.assert_allclose(stats.mean, seen.mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(stats.var, seen.var(0), rtol=1e-3)
