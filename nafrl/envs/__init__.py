"""The paper's task domains (§6, Table 3) as Gymnasium environments.

Importing this package registers every task in :data:`TASKS` under the
``nafrl/`` namespace, e.g. ``gymnasium.make("nafrl/Reacher-v1")``.
"""

from nafrl.envs.base import MujocoTaskEnv, TaskSpec
from nafrl.envs.registry import TASKS, make, register_all, task_ids

register_all()

__all__ = ["TASKS", "MujocoTaskEnv", "TaskSpec", "make", "register_all", "task_ids"]
