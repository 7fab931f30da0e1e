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
    ("cls", "vel_field", "scale", "bonus"),
    [(CheetahEnv, 15, 0.5 * 0.05, 0.0), (Walker2dEnv, 15, 0.008, 3.0)],
)
def test_forward_velocity_reward(cls, vel_field: int, scale: float, bonus: float) -> None:
    """r = scale·(v_x + bonus − c‖u‖²): cheetah 0.5·dt, walker dt with 3 per second upright."""
    env = cls()
    assert env.reward_scale == pytest.approx(scale) and getattr(env, "alive_bonus", 0.0) == bonus
    for v in (1.5, -1.5):
        obs = _with_velocity(env, slice(0, 1), np.array([v]))
        assert obs[vel_field] == v
        _, r, *_ = env.step(np.zeros(6))
        assert r == pytest.approx(scale * (v + bonus))  # zero action: no control cost
    assert float(env.reward(env.observe(), np.ones(6))) < float(
        env.reward(env.observe(), np.zeros(6))
    )  # control is penalised


@pytest.mark.parametrize(
    ("cls", "to_target", "scale"),
    [(AntEnv, slice(21, 23), 1 / 200), (Swimmer6Env, slice(0, 2), 0.36)],
)
def test_distance_to_target_reward(cls, to_target: slice, scale: float) -> None:
    """r = −scale·(|target − body| + c‖u‖²): a cost, zero only at the target."""
    env = cls()
    nu = env.model.nu
    obs, _ = env.reset(seed=0)
    d = float(np.linalg.norm(obs[to_target]))
    _, r, *_ = env.step(np.zeros(nu))
    assert r == pytest.approx(-scale * d, rel=1e-5)
    near = obs.copy()
    near[to_target] = 0.1 * obs[to_target]  # ten times closer
    assert float(env.reward(near, np.zeros(nu))) == pytest.approx(-scale * 0.1 * d, rel=1e-4)
    assert float(env.reward(obs, np.ones(nu))) < float(env.reward(obs, np.zeros(nu)))


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
        assert env.data.qpos[0] - x0 > 20.0  # metres forward in 10 s
        scripted.append(ret)
        obs, _ = env.reset(seed=seed)
        rand.append(sum(env.step(rng.uniform(-1, 1, 6))[1] for _ in range(env.horizon)))
    # Measured: gait 10.7-11.0 (half the distance run, less control cost), random -1 to 1.
    assert np.mean(scripted) > 10.0 > np.mean(rand) + 8.0


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
        d0, d_min, ret = math.hypot(obs[0], obs[1]), np.inf, 0.0
        for _ in range(env.horizon):
            obs, r, *_ = env.step(policy(obs))
            ret += r
            d_min = min(d_min, math.hypot(obs[0], obs[1]))
        # Measured: passes within 1 cm of the target (from 0.88 m); random actions move the
        # head < 0.1 m (return about -320).
        assert d_min < 0.05 and d0 > 0.85
        assert ret > -172.0  # Table 1's best (NAF)


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
