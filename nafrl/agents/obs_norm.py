"""Running observation normalisation (``Config.obs_norm``; not in the paper, issue 13).

Every observation the agent acts on updates a running mean and variance (the parallel form
of Welford's algorithm with a batch of one, initialised as Stable-Baselines3's
``VecNormalize``: mean 0, variance 1, count 1e-4). The networks see
clip((x - mean) / sqrt(var + eps), -clip, clip); the replay buffer keeps the raw x, so a
minibatch is normalised by the statistics at the time of the update, and x and x' of one
transition always by the same ones.

Why not batch norm: batch norm normalises each minibatch by its own spread, which on a task
whose good states are all alike (a balanced pendulum) is tiny, so small differences between
states become large inputs (bench/results/reliability/README.md). Running statistics over
every visited state keep the scale of the whole experience.

The statistics live in ``TrainState.obs_stats``, so they are jitted with the update, saved
in checkpoints and restored on resume like the parameters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp

from nafrl.types import Batch, TrainState

if TYPE_CHECKING:
    from nafrl.agents.common import Agent

EPS = 1e-8
CLIP = 10.0  # as VecNormalize's clip_obs
INITIAL_COUNT = 1e-4  # as VecNormalize's RunningMeanStd(epsilon=1e-4)


class ObsStats(NamedTuple):
    """Running statistics of the observations: count (), mean (dx,), var (dx,)."""

    count: jax.Array
    mean: jax.Array
    var: jax.Array


def init_stats(obs_dim: int) -> ObsStats:
    return ObsStats(
        jnp.asarray(INITIAL_COUNT, jnp.float32),
        jnp.zeros((obs_dim,), jnp.float32),
        jnp.ones((obs_dim,), jnp.float32),
    )


def update_stats(stats: ObsStats, x: jax.Array) -> ObsStats:
    """The statistics after one more observation x (dx,) (Chan et al.'s parallel update with
    a batch of one, exact for the mean and the population variance)."""
    count = stats.count + 1.0
    delta = x - stats.mean
    mean = stats.mean + delta / count
    m2 = stats.var * stats.count + delta**2 * stats.count / count
    return ObsStats(count, mean, m2 / count)


def normalize(stats: ObsStats, x: jax.Array) -> jax.Array:
    """x (..., dx) in units of the running standard deviation, clipped to [-CLIP, CLIP]."""
    return jnp.clip((x - stats.mean) / jnp.sqrt(stats.var + EPS), -CLIP, CLIP)


def observe(state: TrainState, x: jax.Array) -> TrainState:
    """``state`` with the observation x (dx,) counted in its statistics (no-op without)."""
    if state.obs_stats is None:
        return state
    return state._replace(obs_stats=update_stats(state.obs_stats, x))


def with_obs_norm(agent: Agent, obs_dim: int) -> Agent:
    """``agent`` whose networks see normalised observations; its state carries the
    statistics (updated by :func:`observe`, which the training step calls on every new
    observation; an update leaves them as they are)."""

    def init(key: jax.Array) -> TrainState:
        return agent.init(key)._replace(obs_stats=init_stats(obs_dim))

    def policy(state: TrainState, obs: jax.Array, *args: Any, **kwargs: Any) -> Any:
        return agent.policy(state, normalize(state.obs_stats, obs), *args, **kwargs)

    def update(state: TrainState, batch: Batch) -> tuple[TrainState, dict[str, jax.Array]]:
        stats = state.obs_stats
        batch = batch._replace(
            obs=normalize(stats, batch.obs), next_obs=normalize(stats, batch.next_obs)
        )
        return agent.update(state, batch)  # updates replace their fields of state only

    return agent._replace(init=init, policy=policy, update=update)
