"""Environment creation and checks for the agents: ids, action bounds, clear errors."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class EnvError(ValueError):
    """An environment the agents cannot use; the message says why and what is accepted."""


def make_env(env: str | gym.Env, render_mode: str | None = None, **kwargs: Any) -> gym.Env:
    """A Gymnasium env from an id (``'nafrl/Reacher-v1'``, ``'HalfCheetah-v5'``), or as given."""
    if isinstance(env, gym.Env):
        return env
    if not isinstance(env, str):
        raise EnvError(
            f"env must be a Gymnasium id string or a gymnasium.Env, got {type(env).__name__}"
        )
    import nafrl.envs  # noqa: F401  (registers the nafrl/ ids)

    if env not in gym.envs.registry:
        ours = sorted(k for k in gym.envs.registry if k.startswith("nafrl/"))
        raise EnvError(
            f"unknown env id {env!r}; accepted: a registered Gymnasium id, e.g. one of "
            f"{', '.join(ours) or '(no nafrl tasks registered)'} or 'HalfCheetah-v5' "
            "(see `nafrl tasks`)"
        )
    return gym.make(env, render_mode=render_mode, **kwargs)


def env_id(env: gym.Env) -> str | None:
    spec = getattr(env, "spec", None)
    return spec.id if spec is not None else None


def check_spaces(env: gym.Env, algo: str = "NAF") -> tuple[int, int]:
    """Return (obs_dim, act_dim), or raise :class:`EnvError` for spaces the agents can't use."""
    act, obs = env.action_space, env.observation_space
    if not isinstance(act, gym.spaces.Box):
        raise EnvError(
            f"{algo} needs continuous actions: the action space is {act}, accepted: a "
            "gymnasium.spaces.Box with finite bounds"
        )
    if len(act.shape) != 1 or not (np.all(np.isfinite(act.low)) and np.all(np.isfinite(act.high))):
        raise EnvError(
            f"{algo} needs a 1-D action Box with finite bounds, got shape {act.shape}, "
            f"low={act.low}, high={act.high}"
        )
    if not isinstance(obs, gym.spaces.Box) or len(obs.shape) != 1:
        raise EnvError(
            f"{algo} needs a 1-D Box observation space, got {obs}; flatten it first "
            "(gymnasium.wrappers.FlattenObservation)"
        )
    return int(obs.shape[0]), int(act.shape[0])


class ActionScaler:
    """Maps normalised actions in [-1, 1] to the environment's [low, high] and back."""

    def __init__(self, space: gym.spaces.Box) -> None:
        self.low = np.asarray(space.low, np.float64)
        self.high = np.asarray(space.high, np.float64)
        self.dtype = space.dtype
        self.identity = bool(np.all(self.low == -1.0) and np.all(self.high == 1.0))

    def to_env(self, a: np.ndarray) -> np.ndarray:
        if self.identity:  # already [-1, 1] (most MuJoCo tasks): skip the affine map
            return np.clip(a, -1.0, 1.0).astype(self.dtype)
        a = np.clip(np.asarray(a, np.float64), -1.0, 1.0)
        return (self.low + 0.5 * (a + 1.0) * (self.high - self.low)).astype(self.dtype)

    def from_env(self, u: np.ndarray) -> np.ndarray:
        return 2.0 * (np.asarray(u, np.float64) - self.low) / (self.high - self.low) - 1.0
