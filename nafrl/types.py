"""Typed containers that cross module boundaries."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax

Params = Any  # a Flax variables dict: {"params": ..., "batch_stats": ...}


class Batch(NamedTuple):
    """Transitions (x, u, r, x', terminated); leading axes (..., m).

    ``terminated`` is 1.0 only where the environment reached a true terminal state; an
    episode cut by a time limit (Gymnasium's ``truncated``) is stored with 0.0 so its target
    bootstraps from V'(x').
    """

    obs: Any
    action: Any
    reward: Any
    next_obs: Any
    terminated: Any


class TrainState(NamedTuple):
    """Everything an agent's update changes: parameters, targets, optimiser states, counter."""

    params: Params
    target_params: Params
    opt_state: Any
    step: jax.Array
    actor_params: Params = None  # DDPG only
    target_actor_params: Params = None
    actor_opt_state: Any = None
    # (2,) smallest and largest reward seen in minibatches, with ``Config.clip_target``.
    reward_range: Any = None
    # Running observation statistics (nafrl.agents.obs_norm.ObsStats), with ``Config.obs_norm``.
    obs_stats: Any = None
