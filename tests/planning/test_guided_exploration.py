"""Model-guided exploration (section 5.1): Algorithm 2's controller, driven without an agent."""

import gymnasium as gym
import jax
import numpy as np
import pytest

import nafrl.envs  # noqa: F401
from nafrl.algorithms.model_based import ModelBasedAcceleration
from nafrl.config import Config, ConfigError


def _guide(env, **fields):
    """Algorithm 2's model side with guided exploration only (no imagination, no agent)."""
    return ModelBasedAcceleration(Config(**fields), env)


def _episode(env, guide, key, seed, rng):
    obs, _ = env.reset(seed=seed)
    driven, key = guide.begin_episode(obs, key)
    ret = 0.0
    for t in range(env.unwrapped.horizon):
        noise = 0.3 * rng.standard_normal(env.action_space.shape)  # N_t
        if driven:
            u = guide.guided_action(obs, t, noise)
            assert u.shape == env.action_space.shape and np.all(np.abs(u) <= 1.0)
        else:
            u = np.clip(noise, -1, 1)
        obs, r, *_ = env.step(u)
        guide.record(u, obs)
        ret += r
    guide.end_episode()
    return driven, ret, key


def test_linear_ilqg_guide_refits_every_n_episodes_within_the_trust_region():
    env = gym.make("nafrl/ReacherSingle-v1")
    guide = _guide(env, ilqg_fraction=1.0, model="linear", refit_every=5, kl_step=0.5)
    key, rng = jax.random.PRNGKey(0), np.random.default_rng(0)
    driven = []
    for ep in range(10):
        d, _, key = _episode(env, guide, key, ep, rng)
        driven.append(d)
    # No controller before the first n = 5 episodes; then every episode (fraction 1).
    assert driven == [False] * 5 + [True] * 5
    assert guide.refits == 2 and guide.controller is not None
    T = env.unwrapped.horizon
    assert guide.controller.K.shape == (T, 3, 13)
    info = guide.controller_info
    assert abs(info.kl - info.kl_bound) <= 0.1 * info.kl_bound


def test_fraction_zero_never_drives_and_bad_config_is_rejected():
    env = gym.make("nafrl/ReacherSingle-v1")
    guide = _guide(env, ilqg_fraction=0.0, model="true", planner="mpc")
    obs, _ = env.reset(seed=0)
    assert not any(guide.begin_episode(obs, jax.random.PRNGKey(i))[0] for i in range(20))
    with pytest.raises(ConfigError, match="ilqg_fraction"):
        Config(model="linear", ilqg_fraction=1.5)
    with pytest.raises(ConfigError, match="planner"):
        Config(model="linear", planner="shooting")  # type: ignore[arg-type]


def test_true_model_mpc_guide_acts_from_the_simulator_state():
    env = gym.make("nafrl/Cartpole-v1")
    guide = _guide(env, ilqg_fraction=1.0, model="true", planner="mpc", mpc_horizon=10)
    obs, _ = env.reset(seed=0)
    assert guide.begin_episode(obs, jax.random.PRNGKey(0))[0]
    assert guide.controller_ready
    u0 = guide.guided_action(obs, 0, np.zeros(1))  # the controller's mean action
    assert u0.shape == (1,) and np.all(np.abs(u0) <= 1.0)
    # Planning ran on a private copy: the training env is where it was.
    np.testing.assert_array_equal(env.unwrapped.observe(), obs)
