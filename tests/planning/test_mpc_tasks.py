"""MPC with the true simulator (section 6.2, appendix 8.6) on cartpole swing-up and reacher.

Reference returns (seeds 0-4, T = 100): cartpole random -2.07, scripted -0.55;
single-target reacher random -3.1, scripted -0.20.
"""

import time

import gymnasium as gym
import numpy as np
import pytest

import nafrl.envs  # noqa: F401
from nafrl.models.simulator import SimulatorDynamics
from nafrl.planning.mpc import MPC
from nafrl.rollout import run_episode


def _run(task, horizon, seed):
    env = gym.make(task)
    obs, _ = env.reset(seed=seed)
    sim = SimulatorDynamics(env)
    mpc = MPC(
        sim,
        env.unwrapped.reward,
        horizon=horizon,
        iterations=2,
        episode_horizon=env.unwrapped.horizon,
    )

    def act(obs: np.ndarray, t: int) -> np.ndarray:
        u = mpc.act(env.unwrapped.get_state(), t)
        assert u.shape == env.action_space.shape and np.all(np.abs(u) <= 1.0)
        return u

    last: list[np.ndarray] = []
    start = time.perf_counter()
    result = run_episode(env, act, seed=seed, on_step=lambda o, r: last.append(o))  # same start
    return result.total_reward, last[-1], time.perf_counter() - start


@pytest.mark.slow
def test_mpc_true_model_swings_up_cartpole():
    ret, obs, _ = _run("nafrl/Cartpole-v1", horizon=30, seed=1)
    assert ret > -0.6, ret  # random -2.07, scripted -0.55; measured -0.42 (before: x100)
    assert obs[1] > 0.99 and abs(obs[4]) < 0.5  # balanced upright at the end


@pytest.mark.slow
def test_mpc_true_model_solves_single_target_reacher():
    ret, obs, _ = _run("nafrl/ReacherSingle-v1", horizon=20, seed=1)
    assert ret > -0.27, ret  # random -3.1, scripted -0.20; measured -0.17 (before: /0.09)
    assert np.hypot(obs[9] - obs[11], obs[10] - obs[12]) < 0.01
