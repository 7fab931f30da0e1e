"""The paper's reported numbers, as data (Gu et al. 2016, Table 1 and Table 2).

Keyed by domain name (``"cartpole"``, ``"reacher"``, ...), not by task id, so a task version
bump does not touch them; :data:`DOMAIN_TASK` maps each domain to the task id that follows it.
Reports print these beside our measurements; the tasks' reward scale is calibrated against
:data:`TABLE1` (random-agent column).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Table1Row:
    """One domain of Table 1: random agent's test reward, then each algorithm's best test
    reward and the episodes it needed to reach within 5% of that best."""

    random: float
    ddpg_best: float
    ddpg_episodes: int
    naf_best: float
    naf_episodes: int

    @property
    def best(self) -> float:
        """The better of the two algorithms' best test rewards."""
        return max(self.ddpg_best, self.naf_best)


# Table 1: best test rewards of DDPG and NAF, episodes to within 5% of the best; "-" = random.
TABLE1: dict[str, Table1Row] = {
    "cartpole": Table1Row(-2.1, -0.601, 420, -0.604, 190),
    "reacher": Table1Row(-2.3, -0.509, 1370, -0.331, 1260),
    "peg": Table1Row(-11.0, -0.950, 690, -0.438, 130),
    "gripper": Table1Row(-29.0, 1.03, 2420, 1.81, 1920),
    "gripperm": Table1Row(-90.0, -20.2, 1350, -12.4, 730),
    "canada2d": Table1Row(-12.0, -4.64, 1040, -4.21, 900),
    "cheetah": Table1Row(-0.3, 8.23, 1590, 7.91, 2390),
    "swimmer6": Table1Row(-325.0, -174.0, 220, -172.0, 190),
    "ant": Table1Row(-4.8, -2.54, 2450, -2.58, 1350),
    "walker2d": Table1Row(0.3, 2.96, 850, 1.85, 1530),
}

# Table 2 (appendix 8.6): NAF with true dynamics; column -> (best test reward, episodes).
# Columns: no model, 0.5 MPC episodes, imagination rollouts (ImR), ImR + 0.5 MPC, ImR + 1 MPC.
TABLE2_COLUMNS: tuple[str, ...] = ("none", "mpc0.5", "imr", "imr+mpc0.5", "imr+mpc1")
TABLE2: dict[str, dict[str, tuple[float, int]]] = {
    "reacher": {
        "none": (-0.488, 740),
        "mpc0.5": (-0.449, 670),
        "imr": (-0.448, 450),
        "imr+mpc0.5": (-0.426, 430),
        "imr+mpc1": (-0.548, 90),
    },
    "canada2d": {
        "none": (-6.23, 1970),
        "mpc0.5": (-6.23, 1580),
        "imr": (-5.89, 570),
        "imr+mpc0.5": (-5.88, 140),
        "imr+mpc1": (-12.0, 210),
    },
    "cheetah": {
        "none": (7.00, 580),
        "mpc0.5": (7.10, 1080),
        "imr": (7.36, 590),
        "imr+mpc0.5": (7.29, 740),
        "imr+mpc1": (6.43, 390),
    },
}
# Imagination rollout length l of Table 2: 10 for reacher and canada2d, 5 for the cheetah.
TABLE2_ROLLOUT_LENGTH: dict[str, int] = {"reacher": 10, "canada2d": 10, "cheetah": 5}

# The task id that follows each domain (bumped together with the task's reward version).
DOMAIN_TASK: dict[str, str] = {
    "cartpole": "nafrl/Cartpole-v1",
    "reacher": "nafrl/Reacher-v1",
    "peg": "nafrl/Peg-v1",
    "gripper": "nafrl/Gripper-v1",
    "gripperm": "nafrl/GripperM-v1",
    "canada2d": "nafrl/Canada2d-v1",
    "cheetah": "nafrl/Cheetah-v1",
    "swimmer6": "nafrl/Swimmer6-v1",
    "ant": "nafrl/Ant-v1",
    "walker2d": "nafrl/Walker2d-v1",
}


def domain_of(task_id: str) -> str | None:
    """The paper domain a task id follows (single-target variants map to their parent)."""
    for domain, tid in DOMAIN_TASK.items():
        if task_id == tid:
            return domain
    base = task_id.split("/")[-1].split("-")[0].lower().replace("single", "")
    return base if base in TABLE1 else None
