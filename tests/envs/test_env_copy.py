"""A deep copy of a task env is an independent env that behaves like the original.

``OffPolicyAgent.evaluate`` builds its test env with ``copy.deepcopy`` when the training env
cannot be rebuilt with ``gym.make``; before the copy rebound its views into MuJoCo's data, a
copied reacher wrote its actions to a dead array and observed a frozen target, so every test
return on the nafrl tasks measured a policy that could not move.
"""

import copy

import numpy as np
import pytest

from nafrl.envs.registry import make, task_ids

#: One seeded episode prefix is enough: a dead action array or a stale observation view
#: shows in the first steps.
STEPS = 8


@pytest.mark.parametrize("task_id", task_ids())
def test_deep_copy_steps_like_the_original(task_id):
    env = make(task_id)
    env.reset(seed=3)
    twin = copy.deepcopy(env)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, size=(STEPS, *env.action_space.shape))
    obs_a, _ = env.reset(seed=11)
    obs_b, _ = twin.reset(seed=11)
    np.testing.assert_array_equal(obs_a, obs_b)
    for a in actions:
        obs_a, r_a, *_ = env.step(a)
        obs_b, r_b, *_ = twin.step(a)
        np.testing.assert_allclose(obs_b, obs_a, rtol=0, atol=1e-12)
        assert r_b == pytest.approx(r_a, abs=1e-12)
    # Independent: stepping the copy leaves the original where it was.
    before = np.array(obs_a)
    twin.step(actions[0])
    np.testing.assert_array_equal(env.unwrapped._observe(), before)


def test_a_copy_sees_its_own_reset_target():
    """The copied reacher observes the target its reset drew, not the original's."""
    env = make("nafrl/Reacher-v1")
    env.reset(seed=0)
    twin = copy.deepcopy(env)
    targets = {tuple(np.round(twin.reset(seed=s)[0][11:13], 6)) for s in range(5)}
    assert len(targets) == 5
