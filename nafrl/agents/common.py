"""What NAF and DDPG share: the agent interface, Adam, soft target updates, and the fused
jitted step that does Algorithm 1's I updates and selects the next action in one call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from nafrl.agents.obs_norm import observe
from nafrl.config import Config
from nafrl.exploration import sample_noise
from nafrl.types import Batch, TrainState


class Agent(NamedTuple):
    """An agent's pure functions.

    - ``init(key) -> TrainState``
    - ``policy(state, obs (B, dx), with_precision=True) -> (mu (B, du), L (B, du, du) or
      None)``, deterministic; L is None for DDPG, and for NAF when not ``with_precision``
    - ``update(state, batch) -> (state, metrics)``: one minibatch update plus soft target update
    """

    init: Callable[[jax.Array], TrainState]
    policy: Callable[..., tuple[jax.Array, jax.Array | None]]
    update: Callable[[TrainState, Batch], tuple[TrainState, dict[str, jax.Array]]]


def make_optimizer(learning_rate: float, grad_clip_norm: float) -> optax.GradientTransformation:
    adam = optax.adam(learning_rate)
    if grad_clip_norm > 0:
        return optax.chain(optax.clip_by_global_norm(grad_clip_norm), adam)
    return adam


def gradient_step(
    optimizer: optax.GradientTransformation,
    variables: dict[str, Any],
    grads: Any,
    opt_state: Any,
    collections: dict[str, Any],
) -> tuple[dict[str, Any], Any]:
    """One optimiser step on ``variables["params"]``; the other collections (batch-norm
    statistics) take the values the loss's forward pass returned (:func:`apply_train`)."""
    step, opt_state = optimizer.update(grads, opt_state, variables["params"])
    params = optax.apply_updates(variables["params"], step)
    return {**variables, **collections, "params": params}, opt_state


def soft_update(target: Any, online: Any, tau: float) -> Any:
    """theta' <- tau theta + (1 - tau) theta' (Algorithm 1, last line)."""
    return jax.tree.map(lambda t, o: tau * o + (1.0 - tau) * t, target, online)


def apply_train(
    module: Any, variables: Any, *args: jax.Array, **kwargs: Any
) -> tuple[Any, dict[str, Any]]:
    """Train-mode ``module.apply``: with batch norm, normalised by this batch's statistics,
    and the running-statistics update ({} without batch norm)."""
    if "batch_stats" not in variables:
        return module.apply(variables, *args, train=True, **kwargs), {}
    return module.apply(variables, *args, train=True, mutable=["batch_stats"], **kwargs)


def apply_in_update(module: Any, variables: Any, *args: jax.Array, **kwargs: Any) -> Any:
    """Evaluate a network inside an update: with batch norm, by the statistics of this batch.

    The online network's Q is computed with the minibatch's statistics (train mode), so the
    other side of the Bellman equation (the target's V' or Q'(x', pi'(x'))) is computed the
    same way: with the target network's running statistics instead, the two sides are
    different functions of the state, and V diverged (10^4 within 15k steps on canada2d, for
    NAF and DDPG; bench/results/reliability/canada2d/README.md). Running statistics serve
    acting only. The statistics update of this call is dropped. Without batch norm this is
    ``module.apply``.
    """
    return apply_train(module, variables, *args, **kwargs)[0]


def initial_reward_range(config: Config) -> jax.Array | None:
    """The empty reward range (+inf, -inf) when ``config.clip_target``, else None."""
    return jnp.array([jnp.inf, -jnp.inf], jnp.float32) if config.clip_target else None


def widen_reward_range(reward_range: jax.Array | None, reward: jax.Array) -> jax.Array | None:
    """The reward range widened by a minibatch's rewards (None stays None)."""
    if reward_range is None:
        return None
    return jnp.stack(
        [
            jnp.minimum(reward_range[0], jnp.min(reward)),
            jnp.maximum(reward_range[1], jnp.max(reward)),
        ]
    )


def clip_target(y: jax.Array, reward_range: jax.Array | None, gamma: float) -> jax.Array:
    """With a reward range, clip the TD target y to the discounted returns those rewards
    allow, [min(r_min, 0), max(r_max, 0)] / (1 - gamma) (0 for termination). No value outside
    that interval is a possible V or Q, so the clip changes only targets that are already
    wrong, and it cuts the feedback by which an overestimated V' raises the next targets
    (issue 13). Without one (None), y is unchanged."""
    if reward_range is None:
        return y
    scale = 1.0 / (1.0 - gamma)
    lo = jnp.minimum(reward_range[0], 0.0) * scale
    return jnp.clip(y, lo, jnp.maximum(reward_range[1], 0.0) * scale)


class StepOutput(NamedTuple):
    state: TrainState
    noise: jax.Array  # the exploration process state (du,)
    action: jax.Array  # clipped mu(x) + noise, (du,)
    key: jax.Array  # the next random key (split inside the call: one dispatch less per step)
    metrics: dict[str, jax.Array]  # means over the I updates (NaN when none were done)


def make_train_step(agent: Agent, config: Config) -> Callable[..., StepOutput]:
    """One environment step's learning and acting, jitted as one call.

    ``train_step(state, noise, batches, obs, key, do_update, noise_kind)`` (returns the next
    key alongside the new state, noise and action): if ``do_update``,
    scan ``agent.update`` over the I minibatches ``batches`` (leading axis I); then select
    u = clip(mu(obs) + N_t, -1, 1) with the *updated* parameters. Doing step t-1's updates and
    step t's action selection in one call keeps Algorithm 1's order and halves the dispatches.
    ``do_update`` and ``noise_kind`` are static.
    """

    def train_step(
        state: TrainState,
        noise: jax.Array,
        batches: Batch,
        obs: jax.Array,
        key: jax.Array,
        do_update: bool,
        noise_kind: str,
    ) -> StepOutput:
        if do_update:
            state, metrics = jax.lax.scan(agent.update, state, batches)
            metrics = jax.tree.map(jnp.mean, metrics)
        else:
            metrics = {"q_loss": jnp.float32(jnp.nan), "mean_v": jnp.float32(jnp.nan)}
        state = observe(state, obs)  # with Config.obs_norm, x_t joins the running statistics
        key, sub = jax.random.split(key)
        mu, L = agent.policy(state, obs[None], with_precision=noise_kind == "precision")
        noise = sample_noise(
            noise_kind, noise, sub, config.noise_scale, config.ou_theta, None if L is None else L[0]
        )
        action = jnp.clip(mu[0] + noise, -1.0, 1.0)
        return StepOutput(state, noise, action, key, metrics)

    return jax.jit(
        train_step, static_argnames=("do_update", "noise_kind"), donate_argnames=("state",)
    )
