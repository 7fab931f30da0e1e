"""Locomotion tasks (Gu et al. 2016, Table 3): cheetah, swimmer6, ant, walker2d.

Task-specific checks; the generic ones run over the whole registry elsewhere.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from nafrl.envs.locomotion import (
    AntEnv,
    CheetahEnv,
    Swimmer6Env,
    Walker2dEnv,
    scripted_policy,
)


def _with_velocity(env, qvel_index: slice, v: np.ndarray) -> np.ndarray:
    """Reset, set some generalized velocities, return the resulting observation."""
    env.reset(seed=0)
    env.data.qvel[qvel_index] = v
    env.set_state(env.get_state())
    return env.observe()


@pytest.mark.parametrize(
    ("cls", "vel_field", "bonus"), [(CheetahEnv, 15, 0.0), (Walker2dEnv, 15, 1.0)]
)
def test_forward_velocity_reward_sign(cls, vel_field: int, bonus: float) -> None:
    env = cls()
    for v in (1.5, -1.5):
        obs = _with_velocity(env, slice(0, 1), np.array([v]))
        assert obs[vel_field] == v
        _, r, *_ = env.step(np.zeros(6))
        assert r == pytest.approx(v + bonus)  # zero action: no control cost
    assert float(env.reward(env.observe(), np.ones(6))) < float(
        env.reward(env.observe(), np.zeros(6))
    )  # control is penalised


@pytest.mark.parametrize(
    ("cls", "to_target"), [(AntEnv, slice(21, 23)), (Swimmer6Env, slice(0, 2))]
)
def test_progress_towards_target_reward_sign(cls, to_target: slice) -> None:
    env = cls()
    vel = slice(0, 2)  # horizontal velocity of the torso (ant) or head (swimmer)
    d = env.reset(seed=0)[0][to_target]
    d_hat = d / np.linalg.norm(d)
    nu = env.model.nu
    for sign in (1.0, -1.0):
        _with_velocity(env, vel, sign * 0.3 * d_hat)
        _, r, *_ = env.step(np.zeros(nu))
        assert r == pytest.approx(sign * 0.3, rel=1e-5)
    # Sideways motion makes no progress.
    _with_velocity(env, vel, 0.3 * np.array([-d_hat[1], d_hat[0]]))
    _, r, *_ = env.step(np.zeros(nu))
    assert abs(r) < 1e-6


def test_cheetah_gait_runs_forward_and_beats_random() -> None:
    env = CheetahEnv()
    policy = scripted_policy(env)
    rng = np.random.default_rng(0)
    scripted, rand = [], []
    for seed in (0, 1):
        obs, _ = env.reset(seed=seed)
        x0, ret = env.data.qpos[0], 0.0
        for _ in range(env.horizon):
            obs, r, *_ = env.step(policy(obs))
            ret += r
        assert env.data.qpos[0] - x0 > 3.0  # metres forward in 10 s
        scripted.append(ret)
        obs, _ = env.reset(seed=seed)
        rand.append(sum(env.step(rng.uniform(-1, 1, 6))[1] for _ in range(env.horizon)))
    # Measured: gait about +80, random about -20 to -115 (T = 200).
    assert np.mean(scripted) > 50.0 > np.mean(rand) + 40.0


def test_swimmer_has_six_joints_random_poses_and_steered_gait_closes_in() -> None:
    env = Swimmer6Env()
    assert env.action_space.shape == (6,)
    assert env.model.nq == 3 + 6
    starts = np.array([env.reset(seed=s)[0] for s in range(5)])
    assert np.ptp(starts[:, 2]) > 0.5  # random heading (sin h)
    assert np.all(starts[:, 0:2] == starts[0, 0:2])  # fixed target, head at the origin
    policy = scripted_policy(env)
    for seed in (0, 1):
        obs, _ = env.reset(seed=seed)
        d0, ret = math.hypot(obs[0], obs[1]), 0.0
        for _ in range(env.horizon):
            obs, r, *_ = env.step(policy(obs))
            ret += r
        # Measured: about 0.4 m closer; random actions move the head < 0.1 m.
        assert math.hypot(obs[0], obs[1]) < d0 - 0.25
        assert ret > 8.0


def test_ant_start_is_fixed() -> None:
    env = AntEnv()
    a, _ = env.reset(seed=0)
    b, _ = env.reset(seed=123)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a[21:23], env.target)  # torso starts at the origin
    assert env.model.geom("target").contype == 0  # marker only, no collisions


def test_walker_terminates_on_falling_only() -> None:
    env = Walker2dEnv()
    obs, _ = env.reset(seed=0)
    steps, terminated = 0, False
    while not terminated:
        obs, _, terminated, truncated, _ = env.step(np.zeros(6))
        steps += 1
        healthy = 0.8 < obs[0] < 2.0 and abs(math.atan2(obs[1], obs[8])) < 1.0
        assert terminated == (not healthy)
        assert steps < env.horizon and not truncated
    # Pitching too far forward also ends the episode.
    env.reset(seed=0)
    env.data.qpos[2] = 1.1
    env.set_state(env.get_state())
    assert env.step(np.zeros(6))[2]


def test_walker_upright_episode_truncates_at_horizon() -> None:
    env = Walker2dEnv()
    env.reset(seed=0)
    state = env.get_state()
    state[-1] = env.horizon - 1  # step counter: last entry (MujocoTaskEnv.get_state, no extras)
    env.set_state(state)
    _, _, terminated, truncated, _ = env.step(np.zeros(6))
    assert truncated and not terminated and env.step_count == env.horizon
