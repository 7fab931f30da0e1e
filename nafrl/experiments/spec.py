"""Sweep specifications: a TOML file (or the same content as a :class:`SweepSpec`), expanded
into runs with stable ids, and validated as a whole before anything starts.

    name = "reacher-grid"
    algos = ["naf", "ddpg"]
    tasks = ["nafrl/Reacher-v1"]
    seeds = [0, 1, 2]
    budget = { episodes = 300 }          # or { steps = 50000 }
    eval_episodes = 10                   # final test episodes of each run (default 10)
    [config]                             # fixed Config fields
    updates_per_step = 5
    [grid]                               # the cross product of these
    learning_rate = [1e-4, 1e-3, 1e-2]
    noise_scale = [0.1, 0.3, 1.0]
    batch_norm = [false, true]
    [variants.imr]                       # optional: named Config overrides, crossed with the grid
    model = "true"
    imagination_length = 10

Every algo x task x variant x grid point x seed is one run. Its id names its folder: a
readable prefix (algo, task, grid values, seed) and a hash of everything that defines the run
except its budget, so the same run always gets the same folder and a larger budget extends it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nafrl.config import (
    FIELD_NAMES,
    ConfigError,
    identity_dict,
    make_config,
    validate_for_algo,
)
from nafrl.errors import NafrlError
from nafrl.runs import ALGOS, BUDGET_KINDS, RunError, RunSpec

SPEC_KEYS: tuple[str, ...] = (
    "name",
    "algos",
    "tasks",
    "seeds",
    "budget",
    "eval_episodes",
    "config",
    "grid",
    "variants",
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class SpecError(NafrlError, ValueError):
    """A sweep specification that cannot run; the message names the field or grid point."""


@dataclass(frozen=True)
class SweepSpec:
    """A sweep: ``algos`` x ``tasks`` x ``variants`` x the cross product of ``grid`` x
    ``seeds``, each run with ``config`` (fixed Config fields) and ``budget``
    (``{"steps": N}`` or ``{"episodes": N}``), then ``eval_episodes`` final test episodes."""

    name: str
    algos: Sequence[str]
    tasks: Sequence[str]
    seeds: Sequence[int]
    budget: Mapping[str, int]
    config: Mapping[str, Any] = field(default_factory=dict)
    grid: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    variants: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    eval_episodes: int = 10

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "spec") -> SweepSpec:
        """From the TOML content; unknown or missing keys are a :class:`SpecError`."""
        if not isinstance(d, Mapping):
            raise SpecError(f"{source}: expected a table of {', '.join(SPEC_KEYS)}")
        unknown = sorted(set(d) - set(SPEC_KEYS))
        if unknown:
            raise SpecError(
                f"{source}: unknown key(s) {', '.join(unknown)}; accepted: {', '.join(SPEC_KEYS)}"
            )
        missing = [k for k in ("name", "algos", "tasks", "seeds", "budget") if k not in d]
        if missing:
            raise SpecError(f"{source}: missing required key(s) {', '.join(missing)}")
        return cls(**{k: d[k] for k in SPEC_KEYS if k in d})

    def to_dict(self) -> dict[str, Any]:
        """JSON/TOML-ready content (the manifest's ``spec``)."""
        return {
            "name": self.name,
            "algos": list(self.algos),
            "tasks": list(self.tasks),
            "seeds": list(self.seeds),
            "budget": dict(self.budget),
            "eval_episodes": self.eval_episodes,
            "config": _jsonable(dict(self.config)),
            "grid": {k: _jsonable(list(v)) for k, v in self.grid.items()},
            "variants": {k: _jsonable(dict(v)) for k, v in self.variants.items()},
        }


@dataclass(frozen=True)
class PlannedRun:
    """One run of a sweep: its stable ``id`` (folder name), the :class:`RunSpec`, and the
    ``point`` it stands for (grid field -> value, plus ``variant`` when variants are used)."""

    id: str
    spec: RunSpec
    point: dict[str, Any]
    sweep: str

    def manifest_entry(self) -> dict[str, Any]:
        """The entry of ``sweep.json``'s ``runs`` list."""
        return {
            "id": self.id,
            "sweep": self.sweep,
            "algo": self.spec.algo,
            "task": self.spec.env,
            "seed": self.spec.seed,
            "point": _jsonable(self.point),
            "budget": dict(self.spec.budget),
            "config": self.spec.config.to_dict(),
            "eval_episodes": self.spec.final_eval_episodes,
        }


def load_spec(path: str | Path) -> SweepSpec:
    """Read a TOML sweep spec (:mod:`tomllib`)."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise SpecError(f"no sweep spec at {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{path} is not valid TOML: {e}") from None
    return SweepSpec.from_dict(data, source=str(path))


def run_content(spec: RunSpec) -> dict[str, Any]:
    """What identifies a run: its ``config.json`` layout without the budget, the config
    without options added later at their neutral values."""
    content = {k: v for k, v in spec.to_dict().items() if k != "budget"}
    content["config"] = identity_dict(spec.config)
    return content


def run_id(spec: RunSpec, point: Mapping[str, Any]) -> str:
    """Stable id: readable prefix + hash of the run's content (all but its budget)."""
    content = run_content(spec)
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:10]
    task = spec.env.split("/")[-1].lower()
    parts = [spec.algo, task]
    if "variant" in point:
        parts.append(str(point["variant"]))
    parts += [f"{_abbrev(k)}{_short(v)}" for k, v in point.items() if k != "variant"]
    prefix = re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join(parts))[:80]
    return f"{prefix}-s{spec.seed}-{digest}"


def expand(specs: SweepSpec | Sequence[SweepSpec]) -> list[PlannedRun]:
    """Validate every spec and every run they make, then return the runs; raise one
    :class:`SpecError` naming the first problem (and its grid point) before anything runs."""
    specs = [specs] if isinstance(specs, SweepSpec) else list(specs)
    if not specs:
        raise SpecError("no sweep spec given")
    runs: list[PlannedRun] = []
    checked_tasks: dict[str, str | None] = {}
    for s in specs:
        _check_top(s)
        for task in s.tasks:
            if task not in checked_tasks:
                checked_tasks[task] = _task_problem(task)
            if checked_tasks[task]:
                raise SpecError(f"sweep {s.name!r}: {checked_tasks[task]}")
        runs += _expand_one(s)
    seen: dict[str, PlannedRun] = {}
    for r in runs:
        if r.id in seen:
            raise SpecError(
                f"run {r.id} ({r.spec.algo} on {r.spec.env}, point {r.point}, seed "
                f"{r.spec.seed}) appears twice: two grid points or variants give the same "
                "configuration"
            )
        seen[r.id] = r
    return runs


# ---------------------------------------------------------------------------- internals
def _check_top(s: SweepSpec) -> None:
    where = f"sweep {s.name!r}" if isinstance(s.name, str) else "sweep"
    if not isinstance(s.name, str) or not _NAME.match(s.name):
        raise SpecError(
            f"invalid name {s.name!r}: expected letters, digits, '.', '_' or '-' (it names files)"
        )
    _list_of(where, "algos", s.algos, str)
    for a in s.algos:
        if a not in ALGOS:
            raise SpecError(f"{where}: unknown algo {a!r} in algos; accepted: {', '.join(ALGOS)}")
    _list_of(where, "tasks", s.tasks, str)
    _list_of(where, "seeds", s.seeds, int)
    for seed in s.seeds:
        if not 0 <= seed < 2**32:
            raise SpecError(f"{where}: seed {seed} out of range; accepted: 0 <= seed < 2**32")
    b = s.budget
    if (
        not isinstance(b, Mapping)
        or len(b) != 1
        or next(iter(b)) not in BUDGET_KINDS
        or not _is_int(next(iter(b.values())))
        or next(iter(b.values())) < 1
    ):
        raise SpecError(
            f"{where}: invalid budget {b!r}; accepted: {{ steps = N }} or {{ episodes = N }} "
            "with N >= 1"
        )
    if not _is_int(s.eval_episodes) or s.eval_episodes < 1:
        raise SpecError(
            f"{where}: invalid eval_episodes={s.eval_episodes!r}; expected an integer >= 1"
        )
    for table, keys in (("config", s.config), ("grid", s.grid)):
        if not isinstance(keys, Mapping):
            raise SpecError(f"{where}: [{table}] must be a table of Config fields")
        _known_fields(where, f"[{table}]", keys)
    for k, values in s.grid.items():
        if isinstance(values, str | bytes) or not isinstance(values, Sequence) or not values:
            raise SpecError(f"{where}: [grid] {k} must be a non-empty list of values")
        if len({json.dumps(_jsonable(v)) for v in values}) != len(values):
            raise SpecError(f"{where}: [grid] {k} lists a value twice: {list(values)}")
    both = sorted(set(s.config) & set(s.grid))
    if both:
        raise SpecError(f"{where}: {', '.join(both)} in both [config] and [grid]; keep one")
    if not isinstance(s.variants, Mapping):
        raise SpecError(f"{where}: [variants] must be a table of named Config overrides")
    for vname, over in s.variants.items():
        if not isinstance(over, Mapping):
            raise SpecError(f"{where}: [variants.{vname}] must be a table of Config fields")
        _known_fields(where, f"[variants.{vname}]", over)
        clash = sorted(set(over) & set(s.grid))
        if clash:
            raise SpecError(
                f"{where}: [variants.{vname}] sets {', '.join(clash)}, which [grid] sweeps"
            )


def _expand_one(s: SweepSpec) -> list[PlannedRun]:
    keys = list(s.grid)
    variants = list(s.variants.items()) or [(None, {})]
    runs = []
    for algo, task, (vname, over) in itertools.product(s.algos, s.tasks, variants):
        for values in itertools.product(*(s.grid[k] for k in keys)):
            point: dict[str, Any] = {} if vname is None else {"variant": vname}
            point.update(zip(keys, values, strict=True))
            fields = {**s.config, **over, **dict(zip(keys, values, strict=True))}
            label = f"grid point {point}" if point else "its [config]"
            try:
                cfg = make_config(**{k: _tuple_if_list(v) for k, v in fields.items()})
                cfg = validate_for_algo(cfg, algo)
            except (ConfigError, TypeError, ValueError) as e:
                raise SpecError(f"sweep {s.name!r}, {algo} on {task}, {label}: {e}") from None
            for seed in s.seeds:
                try:
                    rs = RunSpec(algo, task, seed, dict(s.budget), cfg, s.eval_episodes)
                except RunError as e:
                    raise SpecError(f"sweep {s.name!r}, {algo} on {task}, {label}: {e}") from None
                runs.append(PlannedRun(run_id(rs, point), rs, point, s.name))
    return runs


def _task_problem(task: str) -> str | None:
    """None if ``task`` is one of our ids or a Gymnasium id with a continuous (1-D float Box)
    action space; else why not."""
    import gymnasium as gym
    import numpy as np

    import nafrl.envs  # noqa: F401  (registers the nafrl/ ids)
    from nafrl.envs.registry import task_ids

    ours = task_ids()
    if task in ours:
        return None
    if task not in gym.envs.registry:
        return (
            f"unknown task {task!r}; accepted: one of {', '.join(ours)}, or a Gymnasium id "
            "with a continuous (Box) action space such as 'HalfCheetah-v5'"
        )
    try:
        env = gym.make(task)
    except Exception as e:  # noqa: BLE001  (a missing optional dependency, for example)
        return f"task {task!r} cannot be made: {type(e).__name__}: {e}"
    try:
        act = env.action_space
        if not (
            isinstance(act, gym.spaces.Box)
            and len(act.shape) == 1
            and act.shape[0] > 0
            and np.issubdtype(act.dtype, np.floating)
        ):
            return (
                f"task {task!r} has action space {act}; accepted: tasks with a continuous "
                "(1-D float Box) action space"
            )
    finally:
        env.close()
    return None


def _known_fields(where: str, table: str, keys: Mapping[str, Any]) -> None:
    unknown = sorted(set(keys) - set(FIELD_NAMES))
    if unknown:
        raise SpecError(
            f"{where}: unknown field(s) {', '.join(unknown)} in {table}; accepted Config "
            f"fields: {', '.join(FIELD_NAMES)}"
        )


def _list_of(where: str, name: str, values: Any, kind: type) -> None:
    ok = (
        isinstance(values, Sequence)
        and not isinstance(values, str | bytes)
        and len(values) > 0
        and all((_is_int(v) if kind is int else isinstance(v, kind)) for v in values)
    )
    if not ok:
        raise SpecError(
            f"{where}: {name} must be a non-empty list of {kind.__name__}s, got {values!r}"
        )
    if len(set(values)) != len(values):
        raise SpecError(f"{where}: {name} lists a value twice: {list(values)}")


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _tuple_if_list(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def _jsonable(v: Any) -> Any:
    if isinstance(v, tuple | list):
        return [_jsonable(x) for x in v]
    if isinstance(v, Mapping):
        return {k: _jsonable(x) for k, x in v.items()}
    return v


_ABBREV = {
    "learning_rate": "lr",
    "noise_scale": "noise",
    "batch_norm": "bn",
    "imagination_length": "l",
    "ilqg_fraction": "ilqg",
    "exploration": "",
}


def _abbrev(key: str) -> str:
    return _ABBREV.get(key, "".join(w[0] for w in key.split("_")))


def _short(v: Any) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list | tuple):
        return "x".join(_short(x) for x in v)
    return str(v)


__all__ = [
    "PlannedRun",
    "SpecError",
    "SweepSpec",
    "expand",
    "load_spec",
    "run_id",
]
