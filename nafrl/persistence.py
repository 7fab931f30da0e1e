"""Saving and loading an agent: what a checkpoint holds and how its header is validated.

A checkpoint (the container is :mod:`nafrl.checkpoint`) holds the network state
(parameters, optimiser state, targets: ``state/...``), the replay buffer R
(``buffer/...``), the JAX key (``rng/key``), the model-based state of Algorithm 2
(``mb/...``) and a JSON header with the algorithm, env id, seed, config, counters and the
NumPy bit-generator states of replay sampling and of the environment, so a resumed run
continues exactly as an uninterrupted one.

Loading trusts nothing in the file: the header is checked against a schema (types,
ranges, only known bit-generator names, which are looked up in a fixed table, never by
attribute name), every array's name, shape, dtype and finiteness is checked, and every
failure is a :class:`~nafrl.errors.CheckpointError` naming the problem.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import jax.numpy as jnp
import numpy as np

from nafrl.checkpoint import (
    check_finite,
    flatten_tree,
    load_checkpoint,
    save_checkpoint,
    unflatten_tree,
)
from nafrl.config import ALGOS, MAX_SEED, Config, validate_for_algo
from nafrl.errors import CheckpointError, ConfigError, TrainingDivergedError

if TYPE_CHECKING:
    from nafrl.api import OffPolicyAgent

#: The NumPy bit generators a checkpoint may name; the name selects a class from this table.
BIT_GENERATORS: dict[str, Callable[[], np.random.BitGenerator]] = {
    "PCG64": np.random.PCG64,
    "PCG64DXSM": np.random.PCG64DXSM,
    "MT19937": np.random.MT19937,
    "Philox": np.random.Philox,
    "SFC64": np.random.SFC64,
}

_BUFFER_PREFIX, _MB_PREFIX = "buffer/", "mb/"


@dataclass(frozen=True)
class Header:
    """A checkpoint's validated JSON header."""

    algo: str
    env_id: str | None
    seed: int
    config: Config
    obs_dim: int
    act_dim: int
    num_timesteps: int
    num_episodes: int
    wall_time: float
    time_split: dict[str, float]
    env_seeded: bool
    replay_rng: dict[str, Any]
    env_rng: dict[str, Any] | None


# ------------------------------------------------------------------ save
def save_agent(agent: OffPolicyAgent, path: str | os.PathLike) -> Path:
    """Write ``agent`` to ``path`` atomically (see :func:`nafrl.checkpoint.save_checkpoint`).

    Raises :class:`TrainingDivergedError` without touching the file when the network state is
    not finite, so a diverged run never replaces its last good checkpoint."""
    state = flatten_tree(agent.state, "state")
    try:
        check_finite(state, "the network state")
    except CheckpointError as e:
        raise TrainingDivergedError(
            f"the network parameters became non-finite by episode {agent.num_episodes} (step "
            f"{agent.num_timesteps}): {e}; no checkpoint was written to {path}"
        ) from None
    arrays = dict(state)
    arrays.update({f"{_BUFFER_PREFIX}{k}": v for k, v in agent.buffer.state_dict().items()})
    arrays["rng/key"] = np.asarray(agent.key)
    if agent.model_based is not None:
        arrays.update({f"{_MB_PREFIX}{k}": v for k, v in agent.model_based.state_dict().items()})
    meta = {
        "algo": agent.algo,
        "env_id": agent.env_id,
        "seed": agent.seed,
        "config": agent.config.to_dict(),
        "obs_dim": agent.obs_dim,
        "act_dim": agent.act_dim,
        "num_timesteps": agent.num_timesteps,
        "num_episodes": agent.num_episodes,
        "wall_time": agent.wall_time,
        "time_split": agent.time_split(),
        "env_seeded": agent._env_seeded,
        "replay_rng": agent.rng.bit_generator.state,
        "env_rng": env_rng_state(agent.env),
    }
    return save_checkpoint(path, arrays, meta)


# ------------------------------------------------------------------ load
def load_agent(
    path: str | os.PathLike,
    classes: Mapping[str, type[OffPolicyAgent]],
    expected: type[OffPolicyAgent] | None = None,
    env: str | gym.Env | None = None,
    run_dir: str | os.PathLike | None = None,
    **kwargs: Any,
) -> OffPolicyAgent:
    """Rebuild an agent from :func:`save_agent`'s file.

    ``classes`` maps algorithm names to agent classes; ``expected`` (a class) refuses a
    checkpoint of another algorithm; ``env`` defaults to the saved env id."""
    arrays, meta = load_checkpoint(path)
    header = parse_header(meta, path)
    klass = classes.get(header.algo)
    if klass is None:
        raise CheckpointError(f"{path} holds an unknown algorithm {header.algo!r}")
    if expected is not None and klass is not expected:
        raise CheckpointError(
            f"{path} holds a {header.algo.upper()} agent, not {expected.algo.upper()}"
        )
    if env is None:
        if header.env_id is None:
            raise CheckpointError(f"{path} was saved with an unregistered env: pass env=")
        env = header.env_id
    model = klass(env, seed=header.seed, run_dir=run_dir, config=header.config, **kwargs)
    try:
        restore(model, arrays, header, path)
    except BaseException:
        model.close()
        raise
    return model


def restore(
    model: OffPolicyAgent, arrays: dict[str, np.ndarray], header: Header, path: Any
) -> None:
    """Fill a freshly built ``model`` from a checkpoint's arrays and validated header."""
    if (model.obs_dim, model.act_dim) != (header.obs_dim, header.act_dim):
        raise CheckpointError(
            f"{path} was trained with observation/action sizes "
            f"({header.obs_dim}, {header.act_dim}), the env has "
            f"({model.obs_dim}, {model.act_dim})"
        )
    state = unflatten_tree(model.state, arrays, "state")
    buffer = _buffer_arrays(model, arrays, header, path)
    key = arrays.get("rng/key")
    ref_key = np.asarray(model.key)
    if key is None:
        raise CheckpointError(f"{path} lacks the JAX key 'rng/key'")
    if key.shape != ref_key.shape or key.dtype.kind not in "iu":
        raise CheckpointError(
            f"{path}: 'rng/key' is a {key.dtype} array of shape {key.shape}, expected unsigned "
            f"integers of shape {ref_key.shape}"
        )
    mb = {k[len(_MB_PREFIX) :]: v for k, v in arrays.items() if k.startswith(_MB_PREFIX)}
    if mb and model.model_based is None:
        raise CheckpointError(f"{path} holds model-based state but the config has model='none'")
    check_finite(mb, f"{path}")
    replay_rng = _generator(header.replay_rng, "replay_rng", path)

    model.state = state
    model.buffer.load_state_dict(buffer)
    model.key = jnp.asarray(key, dtype=ref_key.dtype)
    if model.model_based is not None:
        try:
            model.model_based.load_state_dict(mb)
        except (KeyError, ValueError, TypeError, IndexError) as e:
            raise CheckpointError(f"{path} has unusable model-based state: {e}") from e
    if type(model.rng.bit_generator) is type(replay_rng.bit_generator):
        model.rng.bit_generator.state = replay_rng.bit_generator.state  # keep the object
    else:
        model.rng = replay_rng
    model.num_timesteps, model.num_episodes = header.num_timesteps, header.num_episodes
    model.wall_time = header.wall_time
    # Like wall_time, the time split goes on across a resume (from zero for checkpoints
    # written before it was saved).
    model.restore_time_split(header.time_split)
    model._env_seeded = header.env_seeded
    if header.env_rng is not None:
        model.env.unwrapped.np_random = _generator(header.env_rng, "env_rng", path)


def _buffer_arrays(
    model: OffPolicyAgent, arrays: dict[str, np.ndarray], header: Header, path: Any
) -> dict[str, np.ndarray]:
    """The replay buffer's arrays, checked against the model's buffer: fields, dtypes,
    lengths, finiteness and the write position."""
    buf = model.buffer
    got = {k[len(_BUFFER_PREFIX) :]: v for k, v in arrays.items() if k.startswith(_BUFFER_PREFIX)}
    unknown = sorted(set(got) - set(buf.data) - {"_pos"})
    if unknown:
        raise CheckpointError(f"{path} has unknown replay-buffer fields {unknown}")
    n = None
    for name, ref in buf.data.items():
        a = got.get(name)
        if a is None:
            raise CheckpointError(f"{path} lacks replay-buffer field {name!r}")
        if a.ndim != ref.ndim or a.shape[1:] != ref.shape[1:] or a.dtype.kind != ref.dtype.kind:
            raise CheckpointError(
                f"{path}: replay-buffer field {name!r} is a {a.dtype} array of shape "
                f"{a.shape}, expected shape (n, {', '.join(map(str, ref.shape[1:]))})"
            )
        if n is None:
            n = len(a)
        elif len(a) != n:
            raise CheckpointError(
                f"{path}: replay-buffer fields have different lengths ({name!r} has "
                f"{len(a)}, expected {n})"
            )
    n = n or 0
    if n > buf.capacity or n > header.num_timesteps:
        raise CheckpointError(
            f"{path}: the replay buffer holds {n} transitions, more than its capacity "
            f"{buf.capacity} or the {header.num_timesteps} steps taken"
        )
    check_finite({k: v for k, v in got.items() if k != "_pos"}, f"{path}: replay buffer")
    pos = got.get("_pos")
    if pos is None or pos.shape != () or pos.dtype.kind not in "iu":
        raise CheckpointError(f"{path}: the replay buffer's '_pos' must be an integer scalar")
    pos_ok = int(pos) == n % buf.capacity if n < buf.capacity else 0 <= int(pos) < buf.capacity
    if not pos_ok:
        raise CheckpointError(
            f"{path}: the replay buffer's write position _pos={int(pos)} is impossible for "
            f"{n} transitions in a buffer of capacity {buf.capacity}"
        )
    return got


# ------------------------------------------------------------------ header schema
def parse_header(meta: Mapping[str, Any], path: Any = "checkpoint") -> Header:
    """Validate a checkpoint's JSON header; :class:`CheckpointError` names the bad field."""

    def bad(field: str, value: Any, expected: str) -> CheckpointError:
        return CheckpointError(
            f"{path} has a corrupt header: {field}={_short(value)}, expected {expected}"
        )

    def get(field: str, check: Callable[[Any], bool], expected: str, default: Any = ...) -> Any:
        if field not in meta:
            if default is not ...:
                return default
            raise CheckpointError(f"{path} has a corrupt header: it lacks {field!r}")
        value = meta[field]
        if not check(value):
            raise bad(field, value, expected)
        return value

    algo = get("algo", lambda v: v in ALGOS, f"one of {', '.join(ALGOS)}")
    env_id = get("env_id", lambda v: v is None or isinstance(v, str), "a string or null")
    seed = get("seed", lambda v: _int(v) and 0 <= v <= MAX_SEED, f"an integer in [0, {MAX_SEED}]")
    raw_config = get("config", lambda v: isinstance(v, dict), "an object of config fields")
    try:
        config = validate_for_algo(Config.from_dict(dict(raw_config)), algo)
    except (ConfigError, TypeError) as e:
        raise CheckpointError(f"{path} has an invalid config: {e}") from e
    dims = {
        f: get(f, lambda v: _int(v) and v >= 1, "an integer >= 1") for f in ("obs_dim", "act_dim")
    }
    counts = {
        f: get(f, lambda v: _int(v) and v >= 0, "an integer >= 0")
        for f in ("num_timesteps", "num_episodes")
    }
    wall_time = get(
        "wall_time",
        lambda v: _real(v) and math.isfinite(v) and v >= 0,
        "a finite number >= 0",
        0.0,
    )
    time_split = get(
        "time_split",
        lambda v: (
            isinstance(v, dict)
            and all(
                isinstance(k, str) and _real(x) and math.isfinite(x) and x >= 0
                for k, x in v.items()
            )
        ),
        "an object of finite numbers >= 0",
        {},
    )
    env_seeded = get("env_seeded", lambda v: isinstance(v, bool), "true or false")
    replay_rng = get("replay_rng", _is_rng_state, "a NumPy bit-generator state")
    env_rng = get(
        "env_rng", lambda v: v is None or _is_rng_state(v), "null or a bit-generator state"
    )
    return Header(
        algo=algo,
        env_id=env_id,
        seed=int(seed),
        config=config,
        num_timesteps=int(counts["num_timesteps"]),
        num_episodes=int(counts["num_episodes"]),
        wall_time=float(wall_time),
        time_split={k: float(x) for k, x in time_split.items()},
        env_seeded=env_seeded,
        replay_rng=replay_rng,
        env_rng=env_rng,
        **{k: int(v) for k, v in dims.items()},
    )


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _real(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_rng_state(v: Any) -> bool:
    return isinstance(v, dict) and v.get("bit_generator") in BIT_GENERATORS


def _generator(state: dict[str, Any], field: str, path: Any) -> np.random.Generator:
    """A Generator of the named (allow-listed) bit generator, set to ``state``."""
    name = state["bit_generator"]
    bitgen = BIT_GENERATORS[name]()
    if name in ("PCG64", "PCG64DXSM"):
        inner = state.get("state")
        ok = (
            isinstance(inner, dict)
            and all(_int(inner.get(k)) and 0 <= inner[k] < 2**128 for k in ("state", "inc"))
            and state.get("has_uint32") in (0, 1)
            and _int(state.get("uinteger"))
            and 0 <= state["uinteger"] < 2**32
        )
        if not ok:
            raise CheckpointError(
                f"{path} has a corrupt header: {field} is not a valid {name} state "
                "({'state': {'state': int, 'inc': int}, 'has_uint32': 0|1, 'uinteger': int})"
            )
    try:
        bitgen.state = state
    except (TypeError, ValueError, KeyError, OverflowError) as e:
        raise CheckpointError(
            f"{path} has a corrupt header: {field} is not a valid {name} state ({e})"
        ) from e
    return np.random.Generator(bitgen)


def env_rng_state(env: gym.Env) -> dict | None:
    """The bit-generator state of an environment's ``np_random`` (None before it exists)."""
    rng = getattr(env.unwrapped, "_np_random", None)
    return None if rng is None else rng.bit_generator.state


__all__ = [
    "BIT_GENERATORS",
    "Header",
    "env_rng_state",
    "load_agent",
    "parse_header",
    "restore",
    "save_agent",
]
