"""NAF: continuous Q-learning with normalized advantage functions (section 4, Algorithm 1).

Pure functions over a :class:`~nafrl.types.TrainState`. One ``update`` is one minibatch of
Algorithm 1's inner loop; the training loop runs I of them per environment step inside a
single jitted ``lax.scan`` (see :mod:`nafrl.agents.common`).

Departures from the paper, all documented choices:
- mu is squashed by tanh to the normalised action range [-1, 1] (the paper does not say how
  mu is bounded); the training loop rescales to the environment's bounds.
- log diag(L) is bounded smoothly to (-max_log_diag, max_log_diag) so P stays finite; a
  clip would stop its gradient and trap P at either end (networks.fill_lower_triangular).
  ``Config.min_log_diag`` raises the lower side (P's floor), off by default.
- The target is y = r + gamma (1 - terminated) V'(x'): episodes cut by a time limit
  (Gymnasium ``truncated``) are bootstrapped; only true terminal states stop it.
- Optional global-norm gradient clipping (off by default).
- With batch norm, the target's V' uses the statistics of the next-state batch, as Q uses
  those of the batch (the paper does not say; running statistics there made V diverge).
- Optional target policy smoothing (``Config.target_smoothing``, off by default): the
  expected target Q' under Gaussian noise on mu', which for a quadratic Q' is closed form.
- Optional clipped double V (``Config.twin_v``, off by default): two V networks, one target
  r + gamma min(V1', V2'), as TD3's clipped double Q.
"""

from __future__ import annotations

from typing import Any, cast

import jax
import jax.numpy as jnp
import optax

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
from nafrl.networks import NAFNetwork, NAFOutputs, member_index, q_value
from nafrl.types import Batch, TrainState


def make_network(config: Config, act_dim: int) -> NAFNetwork:
    config = for_algo(config, "naf")  # layer_norm None: NAF's default
    return NAFNetwork(
        action_dim=act_dim,
        hidden_sizes=tuple(config.hidden_sizes),
        shared_trunk=config.shared_trunk,
        batch_norm=config.batch_norm,
        max_log_diag=config.max_log_diag,
        min_log_diag=config.min_log_diag,
        layer_norm=bool(config.layer_norm),
        twin_v=config.twin_v,
    )


def mu_rate_scale(config: Config, act_dim: int) -> optax.GradientTransformation:
    """Scales mu's share of each Adam step by ``mu_learning_rate / learning_rate``.

    Adam's step is elementwise, so this is Adam with step size ``mu_learning_rate`` on mu's
    parameters. The V, mu and L networks are stacked along a leading member axis
    (:class:`~nafrl.networks.StackedMLP`, V members first), so mu is member ``nv`` of every
    hidden layer and output head ``nv``; with a shared trunk only mu's output columns. The
    input batch norm, shared by all members, keeps ``learning_rate``.
    """
    ratio = (config.mu_learning_rate or config.learning_rate) / config.learning_rate
    nv = 2 if config.twin_v else 1

    def scale(path: tuple[Any, ...], u: jax.Array) -> jax.Array:
        if config.shared_trunk:  # one head: outputs (V..., mu, L entries) side by side
            name = str(getattr(path[-1], "key", path[-1]))
            if name == "W_out0":
                return u.at[:, nv : nv + act_dim].multiply(ratio)
            if name == "b_out0":
                return u.at[nv : nv + act_dim].multiply(ratio)
            return u
        idx = member_index(path, nv)
        return u if idx is None else u.at[idx].multiply(ratio)

    return optax.stateless(lambda updates, params: jax.tree_util.tree_map_with_path(scale, updates))


def td_loss(
    net: NAFNetwork,
    params: Any,
    target_params: Any,
    batch: Batch,
    gamma: float,
    reward_range: jax.Array | None = None,
    target_smoothing: float = 0.0,
) -> tuple[jax.Array, tuple[dict[str, Any], NAFOutputs, jax.Array]]:
    """Algorithm 1's loss L = 1/N sum_i (y_i - Q(x_i, u_i))^2, y_i = r_i + gamma V'(x_{i+1}).

    With a ``reward_range`` (``Config.clip_target``) y is clipped to the possible returns
    (:func:`nafrl.agents.common.clip_target`). With a ``twin_v`` network V' is min(V1', V2')
    and the loss sums both heads' squared errors. With ``target_smoothing`` = sigma > 0, V' is
    replaced by E[Q'(x', mu' + eps)], eps ~ N(0, sigma^2 I), = V' - sigma^2/2 tr P'. Returns
    the loss and (updated batch-norm statistics, the online outputs, the TD errors
    y_i - Q(x_i, u_i)).
    """
    out: NAFOutputs
    out, updates = apply_train(net, params, batch.obs)
    if target_smoothing > 0.0:
        target: NAFOutputs = apply_in_update(net, target_params, batch.next_obs)
        # Eq. (2)-(3): A = -1/2 (u - mu)^T P (u - mu), so E[A] = -1/2 sigma^2 tr P, and
        # tr P = tr(L L^T) = sum of the squares of L's entries.
        v_target = target.V if target.V2 is None else jnp.minimum(target.V, target.V2)
        v_next = v_target - 0.5 * target_smoothing**2 * jnp.sum(target.chol() ** 2, axis=(-2, -1))
    else:
        v_next = apply_in_update(net, target_params, batch.next_obs, value_only=True)
    y = batch.reward + gamma * (1.0 - batch.terminated) * jax.lax.stop_gradient(v_next)
    y = clip_target(y, reward_range, gamma)
    td = y - q_value(out, batch.action)
    loss = jnp.mean(td**2)
    if out.V2 is not None:  # twin_v: the second V head fits the same target with the same A
        loss = loss + jnp.mean((td + out.V - out.V2) ** 2)
    return loss, (updates, out, td)


def make(config: Config, obs_dim: int, act_dim: int) -> Agent:
    """Build the NAF agent's pure functions for the given observation/action sizes."""
    net = make_network(config, act_dim)
    optimizer = make_optimizer(config.learning_rate, config.grad_clip_norm)
    if config.mu_learning_rate is not None and config.mu_learning_rate != config.learning_rate:
        optimizer = optax.chain(optimizer, mu_rate_scale(config, act_dim))

    def init(key: jax.Array) -> TrainState:
        variables = net.init(key, jnp.zeros((1, obs_dim), jnp.float32))
        variables = dict(variables)
        return TrainState(
            params=variables,
            target_params=jax.tree.map(jnp.array, variables),  # theta' <- theta
            opt_state=optimizer.init(variables["params"]),
            step=jnp.zeros((), jnp.int32),
            reward_range=initial_reward_range(config),
        )

    def policy(
        state: TrainState, obs: jax.Array, with_precision: bool = True
    ) -> tuple[jax.Array, jax.Array | None]:
        heads = "policy" if with_precision else "mu"
        # flax annotates apply()'s result as `Any | tuple[output, collections]`; without
        # `mutable` it is the output alone.
        out = cast(NAFOutputs, net.apply(state.params, obs, train=False, heads=heads))
        return out.mu, out.L

    def update(state: TrainState, batch: Batch) -> tuple[TrainState, dict[str, jax.Array]]:
        reward_range = widen_reward_range(state.reward_range, batch.reward)

        def loss_of(p: Any) -> tuple[jax.Array, Any]:
            return td_loss(
                net,
                {**state.params, "params": p},
                state.target_params,
                batch,
                config.gamma,
                reward_range,
                config.target_smoothing,
            )

        (loss, (bn_updates, out, td)), grads = jax.value_and_grad(loss_of, has_aux=True)(
            state.params["params"]
        )
        params, opt_state = gradient_step(
            optimizer, state.params, grads, state.opt_state, bn_updates
        )
        new_state = state._replace(
            params=params,
            target_params=soft_update(state.target_params, params, config.tau),
            opt_state=opt_state,
            step=state.step + 1,
            reward_range=reward_range,
        )
        # diag(P) = row norms of L squared; its size against |TD| shows whether the advantage
        # term dominates the fit (issue 13's diagnosis).
        diag_p = jnp.sum(out.chol() ** 2, axis=-1)
        metrics = {
            "q_loss": loss,
            "mean_v": jnp.mean(out.V),
            "td_abs": jnp.mean(jnp.abs(td)),
            "mean_diag_p": jnp.mean(diag_p),
            "max_diag_p": jnp.max(diag_p),
            # Fraction of mu entries in tanh's flat tails, where mu gets almost no gradient.
            "mu_saturated": jnp.mean(jnp.abs(out.mu) > 0.99),
        }
        return new_state, metrics

    return Agent(init, policy, update)
