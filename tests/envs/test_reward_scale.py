"""Every Table 1 domain on the paper's reward scale (issue 12).

For each of the ten domains of Table 1 (``nafrl.experiments.paper``), the task that follows
it (``DOMAIN_TASK``):

* a uniform-random agent's mean return (``nafrl.envs.cli.random_return``, fixed seeds) is
  within 25% of Table 1's random value, or within 0.3 of it where that value is smaller than
  1.2 in magnitude (cheetah, walker2d);
* the task's scripted controller, where it has one, reaches at least Table 1's better best
  value (the task is solvable to the paper's level). Canada2d's does not (-5.5 against
  -4.21, see ``nafrl/envs/canada2d.py``); its test pins that measured shortfall instead.
"""

from __future__ import annotations

import numpy as np
import pytest

from nafrl.envs import TASKS, make
from nafrl.envs.cli import random_return
from nafrl.experiments.paper import DOMAIN_TASK, TABLE1, domain_of
from nafrl.rollout import run_episode

#: Episodes of the random agent per domain: 50 where episodes are cheap; fewer where the
#: return barely varies between episodes and episodes are long, so the mean is still stable.
#: Measured spread (std of one episode's return / tolerance): cartpole 0.19 / 0.53, reacher
#: 0.85 / 0.58, peg 7.1 / 2.75, gripper 4.2 / 7.3, gripperm 11.6 / 22.5, canada2d 7.2 / 3.0,
#: cheetah 0.87 / 0.3, swimmer6 11 / 81, ant 1.0 / 1.2, walker2d 0.21 / 0.3. The tightest is
#: the cheetah: its mean over 50 episodes (-0.39, standard error 0.12) is 0.2 inside.
RANDOM_EPISODES = {d: 50 for d in TABLE1} | {"swimmer6": 10, "ant": 20}
#: Scripted episodes (seeds 0..n-1) per domain with a scripted controller.
SCRIPTED_EPISODES = {"swimmer6": 2, "cheetah": 3}
SCRIPTED_SHORT_OF_PAPER = {"canada2d"}


def _tolerance(value: float) -> float:
    return 0.3 if abs(value) < 1.2 else 0.25 * abs(value)


def _scripted_return(task_id: str, episodes: int) -> float:
    env = make(task_id)
    policy = TASKS[task_id].scripted(env)
    returns = [
        run_episode(env, lambda o, t: policy(o), seed=seed).total_reward for seed in range(episodes)
    ]
    env.close()
    return float(np.mean(returns))


def test_every_table1_domain_has_a_task_and_back() -> None:
    assert set(DOMAIN_TASK) == set(TABLE1)
    for domain, task_id in DOMAIN_TASK.items():
        assert task_id in TASKS
        assert domain_of(task_id) == domain
    # The single-target variants map to (and share the reward of) their parent domain.
    single = TASKS.with_tag("single-target")
    assert len(single) == 2 and {domain_of(t) for t in single} == {"reacher", "gripper"}


@pytest.mark.parametrize("domain", list(TABLE1))
def test_random_agent_return_is_on_table1_scale(domain: str) -> None:
    paper = TABLE1[domain].random
    ret, _ = random_return(DOMAIN_TASK[domain], episodes=RANDOM_EPISODES[domain], seed=0)
    assert abs(ret - paper) <= _tolerance(paper), (domain, ret, paper)
    # Same sign as the paper's value (the tolerance alone allows 0 for cheetah/walker).
    assert np.sign(ret) == np.sign(paper), (domain, ret, paper)


SCRIPTED = [d for d in TABLE1 if TASKS[DOMAIN_TASK[d]].scripted is not None]


def test_scripted_controllers_are_where_expected() -> None:
    # Ant and Walker2d have none; every other domain has one.
    assert set(TABLE1) - set(SCRIPTED) == {"ant", "walker2d"}


@pytest.mark.parametrize("domain", [d for d in SCRIPTED if d not in SCRIPTED_SHORT_OF_PAPER])
def test_scripted_controller_reaches_table1_best(domain: str) -> None:
    best = TABLE1[domain].best
    ret = _scripted_return(DOMAIN_TASK[domain], SCRIPTED_EPISODES.get(domain, 4))
    assert ret >= best, (domain, ret, best)


def test_canada2d_scripted_halves_the_random_cost() -> None:
    """Short of Table 1's best on average: measured over seeds 0-19 the scripted controller
    gets -5.5 (seeds 0-3: -3.1), a random agent -12.1 (50 episodes); Table 1: -4.21, -12."""
    scripted = _scripted_return(DOMAIN_TASK["canada2d"], 4)
    assert scripted > 0.5 * TABLE1["canada2d"].random, scripted


@pytest.mark.parametrize("task_id", TASKS.with_tag("single-target"))
def test_single_target_variant_shares_the_parent_reward(task_id: str) -> None:
    parent = DOMAIN_TASK[domain_of(task_id)]
    env, ref = make(task_id).unwrapped, make(parent).unwrapped
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(20):
        u = rng.uniform(-1, 1, env.action_space.shape)
        assert float(env.reward(obs, u)) == float(ref.reward(obs, u))
        obs, *_ = env.step(u)
