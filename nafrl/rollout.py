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


#: Test episodes of training seed s use seeds TEST_SEED_BASE + s * TEST_SEEDS_PER_RUN + i: above
#: every training seed (< 2**32) and disjoint across training seeds for up to 65,536 episodes.
TEST_SEED_BASE = 2**40
TEST_SEEDS_PER_RUN = 2**16


def evaluation_seed(training_seed: int, episodes: int = 1) -> int:
    """The first test-episode seed of a run trained with ``training_seed``; its ``episodes``
    test episodes use this seed and the next ``episodes - 1``."""
    if not 1 <= episodes <= TEST_SEEDS_PER_RUN:
        raise ValueError(f"test episodes must be in [1, {TEST_SEEDS_PER_RUN}], got {episodes}")
    return TEST_SEED_BASE + int(training_seed) * TEST_SEEDS_PER_RUN


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


__all__ = ["EpisodeResult", "TimedPolicy", "evaluate_policy", "run_episode", "evaluation_seed"]
