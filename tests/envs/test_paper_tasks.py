"""Task-specific checks for Cartpole, Reacher, ReacherSingle, Peg and Canada2d (Table 3).

Generic checks (env checker, determinism, state round trip, reward equality,
rendering, bad actions) run over the whole registry in test_registry_tasks.py.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from nafrl.envs import TASKS
from nafrl.envs.canada2d import Canada2dEnv
from nafrl.envs.cartpole import CartpoleEnv
from nafrl.envs.peg import HOLE, PegEnv
from nafrl.envs.reacher import ReacherEnv, ReacherSingleEnv, scripted_policy
from nafrl.envs.scripted import planar_ik3
from nafrl.rollout import run_episode

SEEDS = (0, 1, 2, 3)

#: Mean return over SEEDS: scripted must beat uniform-random actions by this much.
#: Measured over SEEDS (scripted vs random): Cartpole -0.55 vs -2.0, Reacher -0.17 vs
#: -2.7, ReacherSingle -0.20 vs -2.7, Peg -0.22 vs -11.2, Canada2d -3.1 vs -6.9.
MARGINS = {
    "nafrl/Cartpole-v1": 1.0,
    "nafrl/Reacher-v1": 1.0,
    "nafrl/ReacherSingle-v1": 1.0,
    "nafrl/Peg-v1": 4.0,
    "nafrl/Canada2d-v1": 1.5,
}


def _episode(env: gym.Env, policy, seed: int) -> tuple[float, np.ndarray]:
    trace: list[np.ndarray] = []
    result = run_episode(
        env, lambda o, t: policy(o), seed=seed, on_step=lambda o, r: trace.append(o)
    )
    return result.total_reward, np.array(trace)


@pytest.mark.parametrize("task_id", list(MARGINS))
def test_scripted_beats_random(task_id: str) -> None:
    env = gym.make(task_id)
    scripted = TASKS[task_id].scripted(env)
    rng = np.random.default_rng(0)

    def rand(_obs: np.ndarray) -> np.ndarray:
        return rng.uniform(-1, 1, env.action_space.shape)

    s = np.mean([_episode(env, scripted, seed)[0] for seed in SEEDS])
    r = np.mean([_episode(env, rand, seed)[0] for seed in SEEDS])
    assert s > r + MARGINS[task_id], (s, r)


def test_cartpole_starts_down_stays_down_without_force_and_swings_up_scripted() -> None:
    env = CartpoleEnv()
    for seed in SEEDS:
        obs, _ = env.reset(seed=seed)
        assert obs[1] < -0.99  # cos(theta): hanging down
    _, passive = _episode(env, lambda o: np.zeros(1), seed=0)
    assert passive[:, 1].max() < -0.95
    policy = TASKS["nafrl/Cartpole-v1"].scripted(env)
    for seed in SEEDS[:2]:
        _, trace = _episode(env, policy, seed)
        up = trace[50:, 1]  # after 2.5 s
        assert up.min() > 0.98, seed  # balanced upright for the rest of the episode
        assert np.abs(trace[50:, 0]).max() < 0.5  # near the centre of the rail


def test_cartpole_reward_formula() -> None:
    env = CartpoleEnv()
    obs, _ = env.reset(seed=0)
    u = np.array([0.7], np.float32)
    _, r, *_ = env.step(u)
    expected = -0.01 * ((1 - obs[1]) + 0.1 * obs[0] ** 2 + 0.01 * float(u[0]) ** 2)
    assert r == pytest.approx(expected, abs=1e-12)


def _tip(env: gym.Env) -> np.ndarray:
    return env.unwrapped.data.site("tip").xpos[:2].copy()


def test_reacher_observation_fields_and_reward_use_pre_step_observation() -> None:
    env = ReacherEnv()
    obs, _ = env.reset(seed=5)
    q, qd = env.data.qpos, env.data.qvel
    np.testing.assert_allclose(obs[0:3], np.cos(q))
    np.testing.assert_allclose(obs[3:6], np.sin(q))
    np.testing.assert_allclose(obs[6:9], qd)
    np.testing.assert_allclose(obs[9:11], _tip(env))
    np.testing.assert_allclose(obs[11:13], env.data.mocap_pos[0, :2])
    # Forward kinematics of three 0.1 m links agrees with the tip.
    c = np.cumsum(q)
    np.testing.assert_allclose(obs[9:11], 0.1 * np.array([np.cos(c).sum(), np.sin(c).sum()]))
    u = np.array([2.0, -0.5, 0.25], np.float32)  # first entry clipped to 1
    nxt, r, *_ = env.step(u)
    expected = -0.09 * (np.linalg.norm(obs[9:11] - obs[11:13]) + 0.01 * (1 + 0.25 + 0.0625))
    assert r == pytest.approx(expected, abs=1e-12)
    assert not np.allclose(nxt[9:11], obs[9:11])  # the arm moved; the reward used x_t


def test_reacher_random_targets_and_starts_vary_single_target_does_not() -> None:
    multi, single = ReacherEnv(), ReacherSingleEnv()
    tm, ts, qs = [], [], []
    for seed in range(20):
        o, _ = multi.reset(seed=seed)
        tm.append(o[11:13])
        o, _ = single.reset(seed=seed)
        ts.append(o[11:13])
        qs.append(single.data.qpos.copy())
    tm = np.array(tm)
    r = np.linalg.norm(tm, axis=1)
    assert r.min() >= 0.05 and r.max() <= 0.28 and tm.std(axis=0).min() > 0.08
    np.testing.assert_array_equal(np.array(ts), np.tile([0.05, 0.2], (20, 1)))
    qs = np.array(qs)
    assert np.abs(qs).max() <= 0.05 and qs.std() > 0.01  # low-variance but random


@pytest.mark.parametrize("cls", [ReacherEnv, ReacherSingleEnv])
def test_reacher_scripted_reaches_target(cls: type[ReacherEnv]) -> None:
    env = cls()
    policy = scripted_policy(env)
    for seed in SEEDS:
        _, trace = _episode(env, policy, seed)
        final = trace[-1]
        assert np.linalg.norm(final[9:11] - final[11:13]) < 0.01, seed
        assert np.abs(final[6:9]).max() < 0.05  # and stopped there


def test_peg_starts_near_nominal_and_scripted_inserts() -> None:
    env = PegEnv()
    starts = [env.reset(seed=s)[0][9:11] for s in range(10)]
    assert np.ptp(np.array(starts), axis=0).max() < 0.08  # locally perturbed
    assert min(np.linalg.norm(s - np.array(HOLE)) for s in starts) > 0.08
    policy = TASKS["nafrl/Peg-v1"].scripted(env)
    for seed in SEEDS[:2]:
        _, trace = _episode(env, policy, seed)
        assert np.linalg.norm(trace[-1][9:11] - np.array(HOLE)) < 0.003, seed


def test_peg_walls_block_the_peg() -> None:
    """Driving the tip at a point inside the slot's right wall (y in [-0.023, 0.007]) from
    the start below the block: the peg stops on the wall's lower face."""
    env = PegEnv()
    env.reset(seed=0)
    q_goal = planar_ik3(0.25, -0.008, 0.0, (0.1, 0.1, 0.1), 1.0)
    assert q_goal is not None
    for _ in range(60):
        env.step(np.clip(3.0 * (q_goal - env.data.qpos) - 0.6 * env.data.qvel, -1, 1))
    tip = _tip(env)
    assert 0.22 < tip[0] < 0.27
    assert tip[1] < -0.023 - 0.0065  # lower wall face minus the peg radius (7 mm)
    walls = {env.model.geom(c.geom2).name for c in env.data.contact[: env.data.ncon]}
    assert walls == {"wall_right"}


def test_canada_puck_moves_only_when_hit() -> None:
    env = Canada2dEnv()
    obs0, _ = env.reset(seed=0)
    _, trace = _episode(env, lambda o: np.zeros(3), seed=0)
    np.testing.assert_allclose(trace[:, 11:13], np.tile(obs0[11:13], (len(trace), 1)))
    assert np.abs(trace[:, 13:15]).max() == 0.0
    policy = TASKS["nafrl/Canada2d-v1"].scripted(env)
    d0, d1 = [], []
    for seed in SEEDS:
        _, trace = _episode(env, policy, seed)
        d0.append(np.linalg.norm(trace[0][11:13] - trace[0][15:17]))
        d1.append(np.linalg.norm(trace[-1][11:13] - trace[-1][15:17]))
    # Measured over SEEDS: mean puck-target distance 0.15 m at the start, 0.05 m at the end.
    assert np.mean(d1) < 0.5 * np.mean(d0), (d0, d1)


def test_canada_start_distribution() -> None:
    env = Canada2dEnv()
    for seed in range(20):
        obs, _ = env.reset(seed=seed)
        puck, target = obs[11:13], obs[15:17]
        assert 0.17 <= np.linalg.norm(puck) <= 0.23
        assert 0.22 <= np.linalg.norm(target) <= 0.36
        assert np.linalg.norm(target - puck) >= 0.06
        assert np.all(obs[13:15] == 0)
