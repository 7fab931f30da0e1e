"""Agents as pure functions: ``init(key) -> TrainState``, ``act``, ``update``.

``naf`` (section 4, Algorithm 1) and ``ddpg`` (the baseline of section 6.1) expose the same
:class:`~nafrl.agents.common.Agent` interface, so the training loop is shared.
"""

from nafrl.agents import ddpg, naf
from nafrl.agents.common import Agent, make_agent

__all__ = ["Agent", "make_agent", "naf", "ddpg"]
