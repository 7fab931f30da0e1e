"""DDPG (Lillicrap et al. 2016), the baseline of section 6.1, sized like NAF for a fair test.

Same hidden sizes as NAF, the same I updates per environment step, each updating the critic
and then the actor, with soft target updates of both.

Departures from Lillicrap et al., documented choices:
- the action enters the critic at the input layer (not the second layer);
- ``learning_rate`` (default 1e-3) for the critic and ``actor_learning_rate`` (default 1e-4)
  for the actor, as in Lillicrap et al.; no L2 weight decay on the critic;
- truncated episodes bootstrap from Q'(x', pi'(x')); only true terminal states stop it;
- with batch norm, every network evaluated inside an update (the targets, the critic in the
  actor's loss) uses the statistics of its batch, as the trained critic does
  (:func:`nafrl.agents.common.apply_in_update`), and the critic normalises the state only,
  never the action (:class:`nafrl.networks.Critic`).
"""

from __future__ import annotations

from typing import Any, cast

import jax
import jax.numpy as jnp

from nafrl.agents.common import (
    Agent,
    apply_in_update,
    apply_train,
    clip_target,
    gradient_step,
    initial_reward_range,
    make_optimizer,
    soft_update,
    widen_reward_range,
)
from nafrl.config import Config, for_algo
from nafrl.networks import Actor, Critic
from nafrl.types import Batch, TrainState


def make_networks(config: Config, act_dim: int) -> tuple[Actor, Critic]:
    """DDPG's actor pi(x) and critic Q(x, u) as ``config`` sizes them."""
    config = for_algo(config, "ddpg")  # layer_norm None: DDPG's default
    hidden = tuple(config.hidden_sizes)
    actor = Actor(act_dim, hidden, config.batch_norm, bool(config.layer_norm))
    return actor, Critic(hidden, config.batch_norm, bool(config.layer_norm))


def make(config: Config, obs_dim: int, act_dim: int) -> Agent:
    """Build the DDPG agent's pure functions."""
    config = for_algo(config, "ddpg")
    actor, critic = make_networks(config, act_dim)
    critic_opt = make_optimizer(config.learning_rate, config.grad_clip_norm)
    actor_opt = make_optimizer(
        config.actor_learning_rate or config.learning_rate, config.grad_clip_norm
    )

    def init(key: jax.Array) -> TrainState:
        k_actor, k_critic = jax.random.split(key)
        x = jnp.zeros((1, obs_dim), jnp.float32)
        u = jnp.zeros((1, act_dim), jnp.float32)
        critic_vars = dict(critic.init(k_critic, x, u))
        actor_vars = dict(actor.init(k_actor, x))
        return TrainState(
            params=critic_vars,
            target_params=jax.tree.map(jnp.array, critic_vars),
            opt_state=critic_opt.init(critic_vars["params"]),
            step=jnp.zeros((), jnp.int32),
            actor_params=actor_vars,
            target_actor_params=jax.tree.map(jnp.array, actor_vars),
            actor_opt_state=actor_opt.init(actor_vars["params"]),
            reward_range=initial_reward_range(config),
        )

    def policy(
        state: TrainState, obs: jax.Array, with_precision: bool = False
    ) -> tuple[jax.Array, None]:
        # flax annotates apply()'s result as `Any | tuple[output, collections]` whatever
        # `mutable` is; without `mutable` it is the output alone.
        return cast(jax.Array, actor.apply(state.actor_params, obs, train=False)), None

    def update(state: TrainState, batch: Batch) -> tuple[TrainState, dict[str, jax.Array]]:
        reward_range = widen_reward_range(state.reward_range, batch.reward)
        y = critic_target(actor, critic, state, batch, config.gamma, reward_range)
        (q_loss, (c_upd, q)), c_grads = jax.value_and_grad(critic_loss, argnums=1, has_aux=True)(
            critic, state.params["params"], state.params, batch, y
        )
        critic_vars, critic_opt_state = gradient_step(
            critic_opt, state.params, c_grads, state.opt_state, c_upd
        )
        # The actor follows the updated critic.
        (pi_loss, (a_upd, u_pi)), a_grads = jax.value_and_grad(actor_loss, argnums=2, has_aux=True)(
            actor, critic, state.actor_params["params"], state.actor_params, critic_vars, batch.obs
        )
        actor_vars, actor_opt_state = gradient_step(
            actor_opt, state.actor_params, a_grads, state.actor_opt_state, a_upd
        )

        new_state = state._replace(
            params=critic_vars,
            target_params=soft_update(state.target_params, critic_vars, config.tau),
            opt_state=critic_opt_state,
            step=state.step + 1,
            actor_params=actor_vars,
            target_actor_params=soft_update(state.target_actor_params, actor_vars, config.tau),
            actor_opt_state=actor_opt_state,
            reward_range=reward_range,
        )
        metrics = {
            "q_loss": q_loss,
            "mean_v": jnp.mean(q),
            "pi_loss": pi_loss,
            "td_abs": jnp.mean(jnp.abs(y - q)),
            "mu_saturated": jnp.mean(jnp.abs(u_pi) > 0.99),
        }
        return new_state, metrics

    return Agent(init, policy, update)


def critic_target(
    actor: Actor,
    critic: Critic,
    state: TrainState,
    batch: Batch,
    gamma: float,
    reward_range: jax.Array | None = None,
) -> jax.Array:
    """The critic's TD target y = r + gamma (1 - terminated) Q'(x', pi'(x')) from the target
    networks, clipped to the returns ``reward_range`` allows (``Config.clip_target``)."""
    u_next = apply_in_update(actor, state.target_actor_params, batch.next_obs)
    q_next = apply_in_update(critic, state.target_params, batch.next_obs, u_next)
    y = batch.reward + gamma * (1.0 - batch.terminated) * q_next
    return jax.lax.stop_gradient(clip_target(y, reward_range, gamma))


def critic_loss(
    critic: Critic, params: Any, variables: dict, batch: Batch, y: jax.Array
) -> tuple[jax.Array, tuple[dict, jax.Array]]:
    """Mean squared TD error of Q(x, u) with weights ``params`` (the rest of the critic's
    ``variables``, batch-norm statistics, held fixed); aux: (statistics updates, Q)."""
    q, upd = apply_train(critic, {**variables, "params": params}, batch.obs, batch.action)
    return jnp.mean((y - q) ** 2), (upd, q)


def actor_loss(
    actor: Actor, critic: Critic, params: Any, variables: dict, critic_vars: dict, obs: jax.Array
) -> tuple[jax.Array, tuple[dict, jax.Array]]:
    """-mean Q(x, pi(x)) through the critic ``critic_vars``, for the actor's weights
    ``params``; aux: (statistics updates, pi(x))."""
    u, upd = apply_train(actor, {**variables, "params": params}, obs)
    q_pi = cast(jax.Array, apply_in_update(critic, critic_vars, obs, u))
    return -jnp.mean(q_pi), (upd, u)
