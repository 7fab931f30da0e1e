"""Model-guided exploration (section 5.1): the component the NAF trainer drives."""

import gymnasium as gym
import jax
import numpy as np
import pytest

import nafrl.envs  # noqa: F401
from nafrl.planning.guided import GuidedConfig, GuidedExploration


def _episode(env, guide, key, seed, rng):
    obs, _ = env.reset(seed=seed)
    key, k = jax.random.split(key)
    driven = guide.start_episode(k, env)
    xs, us, ret = [obs], [], 0.0
    for t in range(env.unwrapped.horizon):
        if driven:
            key, k = jax.random.split(key)
            u = guide.act(obs, t, k)
            assert u.shape == env.action_space.shape and np.all(np.abs(u) <= 1.0)
        else:
            u = np.clip(0.3 * rng.standard_normal(env.action_space.shape), -1, 1)
        obs, r, *_ = env.step(u)
        xs.append(obs)
        us.append(u)
        ret += r
    guide.observe_episode(np.array(xs), np.array(us))
    return driven, ret, key


def test_linear_ilqg_guide_refits_every_n_episodes_within_the_trust_region():
    env = gym.make("nafrl/ReacherSingle-v1")
    guide = GuidedExploration(
        env, GuidedConfig(ilqg_fraction=1.0, model="linear", refit_every=5, kl_step=0.5)
    )
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
    info = guide.last_info
    assert abs(info.kl - info.kl_bound) <= 0.1 * info.kl_bound


def test_fraction_zero_never_drives_and_bad_config_is_rejected():
    env = gym.make("nafrl/ReacherSingle-v1")
    guide = GuidedExploration(env, ilqg_fraction=0.0, model="true", mode="mpc")
    assert guide.ready
    assert not any(guide.start_episode(jax.random.PRNGKey(i), env) for i in range(20))
    with pytest.raises(ValueError, match="ilqg_fraction"):
        GuidedConfig(ilqg_fraction=1.5)
    with pytest.raises(ValueError, match="mode"):
        GuidedConfig(mode="shooting")  # type: ignore[arg-type]


def test_true_model_mpc_guide_acts_from_the_simulator_state():
    env = gym.make("nafrl/Cartpole-v1")
    guide = GuidedExploration(
        env, ilqg_fraction=1.0, model="true", mode="mpc", mpc_horizon=10, action_noise=False
    )
    obs, _ = env.reset(seed=0)
    assert guide.start_episode(jax.random.PRNGKey(0), env)
    u0 = guide.act(obs, 0)
    assert u0.shape == (1,) and np.all(np.abs(u0) <= 1.0)
    # Planning ran on a private copy: the training env is where it was.
    np.testing.assert_array_equal(env.unwrapped.observe(), obs)
