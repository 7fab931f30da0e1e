"""Environment creation and checks for the agents: ids, action bounds, clear errors."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np

from nafrl.errors import EnvError, TrainingDivergedError

__all__ = ["ActionScaler", "EnvError", "FiniteCheck", "check_spaces", "env_id", "make_env"]


class FiniteCheck(gym.Wrapper):
    """Raise :class:`EnvError` when the environment returns a NaN or infinite observation or
    reward, naming the env, the step and the field, before it can reach a replay buffer."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self._name = env_id(env) or type(env.unwrapped).__name__
        self._episode = 0
        self._t = 0

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._episode += 1
        self._t = 0
        if not np.isfinite(obs).all():
            self._fail("observation", obs, "reset()")
        return obs, info

    def step(self, action: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._t += 1
        if not math.isfinite(reward):
            self._fail("reward", reward, f"step {self._t}")
        if not np.isfinite(obs).all():
            self._fail("observation", obs, f"step {self._t}")
        return obs, reward, terminated, truncated, info

    def _fail(self, field: str, value: Any, when: str) -> None:
        raise EnvError(
            f"env {self._name} returned a non-finite {field} at {when} of episode "
            f"{self._episode} ({np.array2string(np.asarray(value), threshold=8)}); the agents "
            "need finite observations and rewards, so the transition was not stored"
        )


def make_env(
    env: str | gym.Env, render_mode: str | None = None, check_finite: bool = False, **kwargs: Any
) -> gym.Env:
    """A Gymnasium env from an id (``'nafrl/Reacher-v1'``, ``'HalfCheetah-v5'``), or as given.

    ``check_finite=True`` wraps it in :class:`FiniteCheck` (the agents' training env)."""
    if isinstance(env, gym.Env):
        return FiniteCheck(env) if check_finite else env
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
    try:
        made = gym.make(env, render_mode=render_mode, **kwargs)
    except gym.error.DependencyNotInstalled as e:
        raise EnvError(f"env {env!r} needs {extra_hint(env)}: {e}") from e
    except ImportError as e:
        raise EnvError(f"env {env!r} needs {extra_hint(env)} (missing module: {e})") from e
    return FiniteCheck(made) if check_finite else made


def extra_hint(env: str) -> str:
    """Which pip extra provides a Gymnasium env's optional dependency."""
    entry = str(getattr(gym.spec(env), "entry_point", ""))
    parts = entry.split(":")[0].split(".")
    if len(parts) > 2 and parts[:2] == ["gymnasium", "envs"]:
        extra = parts[2].replace("_", "-")
        return f"an optional dependency: pip install 'gymnasium[{extra}]'"
    return f"an optional dependency of {entry.split(':')[0] or 'its package'}"


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
    if act.shape[0] == 0 or not np.issubdtype(act.dtype, np.floating):
        raise EnvError(
            f"{algo} needs a non-empty float action Box, got {act} (dtype {act.dtype}); "
            "accepted: at least one continuous (float32 or float64) action dimension"
        )
    if not np.all(act.high > act.low):
        raise EnvError(f"{algo} needs action bounds with high > low, got {act}")
    if not isinstance(obs, gym.spaces.Box) or len(obs.shape) != 1 or obs.shape[0] == 0:
        raise EnvError(
            f"{algo} needs a non-empty 1-D Box observation space, got {obs}; flatten it first "
            "(gymnasium.wrappers.FlattenObservation)"
        )
    return int(obs.shape[0]), int(act.shape[0])


class ActionScaler:
    """Maps normalised actions in [-1, 1] to the environment's [low, high] and back."""

    def __init__(self, space: gym.Space[Any]) -> None:
        if not isinstance(space, gym.spaces.Box):
            raise EnvError(f"ActionScaler needs a gymnasium.spaces.Box action space, got {space}")
        self.low = np.asarray(space.low, np.float64)
        self.high = np.asarray(space.high, np.float64)
        self.dtype = space.dtype
        self.identity = bool(np.all(self.low == -1.0) and np.all(self.high == 1.0))

    def to_env(self, a: np.ndarray) -> np.ndarray:
        if not np.isfinite(a).all():  # only a diverged network outputs these
            raise TrainingDivergedError(
                f"the policy produced a non-finite action ({a}): the network diverged. Try a "
                "smaller learning_rate, grad_clip_norm > 0 or batch_norm"
            )
        if self.identity:  # already [-1, 1] (most MuJoCo tasks): skip the affine map
            return np.clip(a, -1.0, 1.0).astype(self.dtype)
        a = np.clip(np.asarray(a, np.float64), -1.0, 1.0)
        return (self.low + 0.5 * (a + 1.0) * (self.high - self.low)).astype(self.dtype)
