"""The paper's task domains (Table 3) under the ``nafrl/`` Gymnasium namespace.

``TASKS`` maps each id to its :class:`~nafrl.envs.base.TaskSpec` (entry point,
horizon T, tags, whether a pure JAX reward r(x, u) exists, scripted
controller). To add a task, append one ``"module:ATTRIBUTE"`` line to
``SPEC_PATHS`` pointing at the task module's ``TaskSpec`` (see
:mod:`nafrl.envs.base`). :func:`register_all` registers every entry with
Gymnasium; it is idempotent and runs on ``import nafrl.envs``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Any

import gymnasium as gym

from nafrl.envs.base import TaskSpec

__all__ = ["SPEC_PATHS", "TASKS", "TaskSpec", "make", "register_all", "task_ids"]

#: One line per task: ``"module:ATTRIBUTE"`` of a ``TaskSpec``.
SPEC_PATHS: list[str] = [
    "nafrl.envs.cartpole:SPEC",
    "nafrl.envs.reacher:SPEC",
    "nafrl.envs.reacher:SINGLE_SPEC",
    "nafrl.envs.peg:SPEC",
    "nafrl.envs.canada2d:SPEC",
    "nafrl.envs.gripper:SPEC",
    "nafrl.envs.gripper:MOBILE_SPEC",
    "nafrl.envs.gripper:SINGLE_SPEC",
    "nafrl.envs.locomotion:CHEETAH_SPEC",
    "nafrl.envs.locomotion:SWIMMER6_SPEC",
    "nafrl.envs.locomotion:ANT_SPEC",
    "nafrl.envs.locomotion:WALKER2D_SPEC",
]


def _load(path: str) -> TaskSpec:
    module, _, attr = path.partition(":")
    spec = getattr(importlib.import_module(module), attr)
    if not isinstance(spec, TaskSpec):
        raise TypeError(f"{path} is a {type(spec).__name__}, expected a nafrl TaskSpec")
    return spec


class _Tasks(Mapping[str, TaskSpec]):
    """Read-only, insertion-ordered ``id -> TaskSpec``; unknown ids list the known ones."""

    def __init__(self, specs: list[TaskSpec]) -> None:
        self._specs: dict[str, TaskSpec] = {}
        for s in specs:
            if s.id in self._specs:
                raise ValueError(f"task id {s.id!r} is listed twice in SPEC_PATHS")
            self._specs[s.id] = s

    def __getitem__(self, task_id: str) -> TaskSpec:
        try:
            return self._specs[task_id]
        except KeyError:
            raise KeyError(
                f"unknown nafrl task {task_id!r}; known tasks: {', '.join(self._specs)}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def __repr__(self) -> str:
        return f"TASKS({list(self._specs)})"

    def with_tag(self, tag: str) -> list[str]:
        """Ids of the tasks carrying ``tag`` (e.g. ``"manipulation"``)."""
        return [i for i, s in self._specs.items() if tag in s.tags]


TASKS = _Tasks([_load(p) for p in SPEC_PATHS])


def task_ids() -> list[str]:
    """All registered nafrl task ids, in registry order."""
    return list(TASKS)


def register_all() -> None:
    """Register every task in :data:`TASKS` with Gymnasium (idempotent)."""
    for spec in TASKS.values():
        if spec.id in gym.registry:
            continue
        gym.register(
            id=spec.id,
            entry_point=spec.entry_point,
            max_episode_steps=spec.horizon,
            kwargs=dict(spec.kwargs),
        )


def make(task_id: str, **kwargs: Any) -> gym.Env:
    """``gymnasium.make`` for a nafrl task with a clear error listing known ids."""
    if task_id not in TASKS:
        name, _, version = task_id.rpartition("-")
        newer = [t for t in TASKS if t.rpartition("-")[0] == name and version.startswith("v")]
        hint = (
            f" ({', '.join(newer)} is the current version; a task's version changes with its"
            " reward)"
            if newer
            else ""
        )
        raise ValueError(f"unknown nafrl task {task_id!r}{hint}; known tasks: {', '.join(TASKS)}")
    register_all()
    return gym.make(task_id, **kwargs)
