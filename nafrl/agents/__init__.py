"""Agents as pure functions: ``init(key) -> TrainState``, ``policy``, ``value``, ``update``.

``naf`` (section 4, Algorithm 1) and ``ddpg`` (the baseline of section 6.1) expose the same
:class:`~nafrl.agents.common.Agent` interface, so the training loop is shared.

:data:`ALGORITHMS` is the one registry of algorithm names: adding an algorithm is adding a
module with ``make(config, obs_dim, act_dim) -> Agent`` and one entry here (the user API, the
CLI and checkpoints read the names from it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

from nafrl.agents import ddpg, naf
from nafrl.agents.common import Agent
from nafrl.agents.obs_norm import with_obs_norm
from nafrl.config import Config, for_algo

#: algorithm name -> ``make(config, obs_dim, act_dim) -> Agent``
ALGORITHMS: dict[str, Callable[[Config, int, int], Agent]] = {
    "naf": naf.make,
    "ddpg": ddpg.make,
}

#: The accepted names as a type (for tyro / the CLI's ``--algo`` choices). A static type
#: spells the names out; the check below keeps it equal to :data:`ALGORITHMS`.
AlgoName = Literal["naf", "ddpg"]
if get_args(AlgoName) != tuple(ALGORITHMS):
    raise RuntimeError(f"nafrl.agents.AlgoName must list the names of ALGORITHMS: {ALGORITHMS}")


def algorithm_names() -> tuple[str, ...]:
    """Registered algorithm names, in registration order."""
    return tuple(ALGORITHMS)


def make_agent(algo: str, config: Config, obs_dim: int, act_dim: int) -> Agent:
    """The agent of algorithm ``algo`` (one of :func:`algorithm_names`)."""
    if algo not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algo!r}; accepted: {', '.join(ALGORITHMS)}")
    config = for_algo(config, algo)  # obs_norm, layer_norm: None is the algorithm's default
    agent = ALGORITHMS[algo](config, obs_dim, act_dim)
    return with_obs_norm(agent, obs_dim) if config.obs_norm else agent


__all__ = ["ALGORITHMS", "Agent", "AlgoName", "algorithm_names", "make_agent", "naf", "ddpg"]
