"""One episode of a policy in an environment, written once: test episodes of the training loop,
the CLI's ``eval``, task helpers, benches and tests all run episodes through here."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import gymnasium as gym
import numpy as np

#: ``policy(obs, t) -> action`` in the environment's action box; t counts steps from 0.
TimedPolicy = Callable[[np.ndarray, int], np.ndarray]


class EpisodeResult(NamedTuple):
    total_reward: float  # the undiscounted return
    length: int  # environment steps
    terminated: bool  # ended in a terminal state (False: cut by the time limit)


def run_episode(
    env: gym.Env,
    policy: TimedPolicy,
    seed: int | None = None,
    on_step: Callable[[np.ndarray, float], None] | None = None,
) -> EpisodeResult:
    """Reset ``env`` (with ``seed`` if given), act with ``policy(obs, t)`` until the episode
    terminates or is truncated. ``on_step(obs, reward)`` is called after the reset (reward 0)
    and after every step, e.g. to render frames."""
    obs, _ = env.reset(seed=seed)
    if on_step is not None:
        on_step(np.asarray(obs), 0.0)
    total, t, terminated, truncated = 0.0, 0, False, False
    while not (terminated or truncated):
        obs, r, terminated, truncated, _ = env.step(policy(np.asarray(obs, np.float32), t))
        total, t = total + float(r), t + 1
        if on_step is not None:
            on_step(np.asarray(obs), float(r))
    return EpisodeResult(total, t, bool(terminated))


def evaluate_policy(
    policy: Callable[[np.ndarray], np.ndarray], env: gym.Env, episodes: int, seed: int
) -> list[float]:
    """Returns of ``episodes`` episodes of ``policy(obs) -> action``, seeded seed, seed+1, ..."""
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    return [
        run_episode(env, lambda o, t: policy(o), seed=seed + i).total_reward
        for i in range(episodes)
    ]


__all__ = ["EpisodeResult", "TimedPolicy", "evaluate_policy", "run_episode"]
