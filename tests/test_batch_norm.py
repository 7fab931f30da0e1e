"""Batch norm inside an update: both sides of the Bellman equation use batch statistics.

With the target network's running statistics instead, V diverged on canada2d for NAF and
DDPG (bench/results/reliability/canada2d/README.md). These tests pin the semantics: the update
does not read any running statistics, and without batch norm nothing changes.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nafrl.agents import ddpg, naf
from nafrl.agents.common import apply_in_update
from nafrl.config import Config
from nafrl.networks import Critic, NAFNetwork
from nafrl.types import Batch

DX, DU, B = 4, 2, 32


def _batch(seed: int = 0) -> Batch:
    k = jax.random.split(jax.random.PRNGKey(seed), 4)
    return Batch(
        obs=3.0 * jax.random.normal(k[0], (B, DX)) + 1.0,
        action=jax.random.uniform(k[1], (B, DU), minval=-1, maxval=1),
        reward=jax.random.normal(k[2], (B,)),
        next_obs=3.0 * jax.random.normal(k[3], (B, DX)) + 1.0,
        terminated=jnp.zeros((B,)),
    )


def _scramble_running_stats(variables):
    """Running means of 50 and variances of 1e-4: far from any batch's statistics."""
    stats = jax.tree_util.tree_map_with_path(
        lambda path, a: jnp.full_like(a, 50.0 if path[-1].key == "mean" else 1e-4),
        variables["batch_stats"],
    )
    return {**variables, "batch_stats": stats}


def test_apply_in_update_uses_the_batch_statistics():
    net = NAFNetwork(action_dim=DU, hidden_sizes=(16, 16), batch_norm=True)
    variables = net.init(jax.random.PRNGKey(0), jnp.zeros((1, DX)))
    x = _batch().obs
    v_batch = apply_in_update(net, _scramble_running_stats(variables), x, value_only=True)
    v_train, _ = net.apply(variables, x, train=True, value_only=True, mutable=["batch_stats"])
    np.testing.assert_allclose(v_batch, v_train, rtol=1e-5, atol=1e-5)
    # ... and not the running statistics, which acting uses.
    v_eval = net.apply(_scramble_running_stats(variables), x, train=False, value_only=True)
    assert float(jnp.max(jnp.abs(v_eval - v_batch))) > 1e-2


def test_apply_in_update_without_batch_norm_is_apply():
    net = NAFNetwork(action_dim=DU, hidden_sizes=(16, 16))
    variables = net.init(jax.random.PRNGKey(0), jnp.zeros((1, DX)))
    x = _batch().obs
    np.testing.assert_array_equal(
        apply_in_update(net, variables, x, value_only=True),
        net.apply(variables, x, value_only=True),
    )


@pytest.mark.parametrize("module", [naf, ddpg], ids=["NAF", "DDPG"])
def test_update_ignores_every_running_statistic(module):
    """One update from states that differ only in their running statistics (online and
    target) gives the same parameters: the loss reads batch statistics only."""
    config = Config(hidden_sizes=(16, 16), batch_norm=True)
    agent = module.make(config, DX, DU)
    state = agent.init(jax.random.PRNGKey(0))
    scrambled = state._replace(
        params=_scramble_running_stats(state.params),
        target_params=_scramble_running_stats(state.target_params),
    )
    if state.actor_params is not None:
        scrambled = scrambled._replace(
            actor_params=_scramble_running_stats(state.actor_params),
            target_actor_params=_scramble_running_stats(state.target_actor_params),
        )
    batch = _batch(1)
    a, metrics_a = jax.jit(agent.update)(state, batch)
    b, metrics_b = jax.jit(agent.update)(scrambled, batch)
    np.testing.assert_allclose(metrics_a["q_loss"], metrics_b["q_loss"], rtol=1e-5)
    for pa, pb in zip(
        jax.tree.leaves(a.params["params"]), jax.tree.leaves(b.params["params"]), strict=True
    ):
        np.testing.assert_allclose(pa, pb, rtol=1e-5, atol=1e-6)
    if a.actor_params is not None:
        for pa, pb in zip(
            jax.tree.leaves(a.actor_params["params"]),
            jax.tree.leaves(b.actor_params["params"]),
            strict=True,
        ):
            np.testing.assert_allclose(pa, pb, rtol=1e-5, atol=1e-6)


def test_ddpg_critic_batch_norm_never_sees_the_action():
    """Q(x, u) of one row in a batch-statistics pass depends on the other rows' states (the
    state is normalised) but not on their actions."""
    critic = Critic(hidden_sizes=(16, 16), batch_norm=True)
    b = _batch()
    variables = critic.init(jax.random.PRNGKey(0), b.obs[:1], b.action[:1])
    q = apply_in_update(critic, variables, b.obs, b.action)
    other_actions = b.action.at[1:].set(-b.action[1:])
    q_u = apply_in_update(critic, variables, b.obs, other_actions)
    np.testing.assert_allclose(q_u[0], q[0], rtol=1e-6, atol=1e-6)
    other_states = b.obs.at[1:].multiply(2.0)
    q_x = apply_in_update(critic, variables, other_states, b.action)
    assert abs(float(q_x[0] - q[0])) > 1e-4
