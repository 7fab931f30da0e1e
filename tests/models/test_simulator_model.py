"""The true-dynamics model (section 6.2): state coordinates, stepping, finite differences."""

import gymnasium as gym
import numpy as np
import pytest

import nafrl.envs  # noqa: F401  (registers the tasks)
from nafrl.models.simulator import SimulatorDynamics


@pytest.fixture(scope="module")
def cartpole():
    env = gym.make("nafrl/Cartpole-v1")
    env.reset(seed=3)
    return env, SimulatorDynamics(env)


def test_coordinates_roundtrip_and_private_copy(cartpole):
    env, sim = cartpole
    assert sim.env is not env.unwrapped
    s = env.unwrapped.get_state()
    z = sim.state_from(s)
    assert z.shape == (sim.dx,) == (4,)
    np.testing.assert_array_equal(
        z, np.concatenate([env.unwrapped.data.qpos, env.unwrapped.data.qvel])
    )
    np.testing.assert_allclose(sim.observe(z), env.unwrapped.observe())
    with pytest.raises(ValueError, match="full state"):
        sim.state_from(env.unwrapped.observe())


def test_step_matches_the_real_environment(cartpole):
    env, sim = cartpole
    env.reset(seed=4)
    z = sim.state_from(env.unwrapped.get_state())
    u = np.array([0.7])
    nxt = sim.step(z[None], u[None])[0]
    obs, *_ = env.step(u)
    np.testing.assert_allclose(nxt, sim.encode(env.unwrapped.get_state()), atol=1e-12)
    np.testing.assert_allclose(sim.observe(nxt), obs, atol=1e-12)
    states, obs2 = sim.step_states(env.unwrapped.get_state()[None], u[None])
    env.step(u)
    np.testing.assert_allclose(obs2[0], env.unwrapped.observe(), atol=1e-12)


def test_finite_difference_linearisation_predicts_small_perturbations(cartpole):
    env, sim = cartpole
    env.reset(seed=5)
    z0 = sim.state_from(env.unwrapped.get_state())
    u_hat = np.full((3, 1), 0.2)
    x_hat = sim.rollout(z0, u_hat)
    lin, obs, J, D2 = sim.linearize_with_observation(x_hat, u_hat)
    np.testing.assert_allclose(obs, sim.observe(x_hat), atol=1e-12)
    rng = np.random.default_rng(0)
    for t in range(3):
        dz, du = 1e-3 * rng.standard_normal(4), 1e-3 * rng.standard_normal(1)
        pred = lin.F[t] @ np.concatenate([x_hat[t] + dz, u_hat[t] + du]) + lin.f[t]
        true = sim.step((x_hat[t] + dz)[None], (u_hat[t] + du)[None])[0]
        assert np.abs(pred - true).max() < 1e-5
        o_pred = obs[t] + J[t] @ dz + 0.5 * D2[t] @ dz**2
        assert np.abs(o_pred - sim.observe(x_hat[t] + dz)).max() < 1e-5
    # cos(theta) has curvature -cos(theta) along theta (index 1 of z, row 1 of the obs).
    np.testing.assert_allclose(D2[0, 1, 1], -np.cos(x_hat[0, 1]), atol=1e-3)
