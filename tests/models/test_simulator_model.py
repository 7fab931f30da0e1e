"""The true-dynamics model (section 6.2): state coordinates, stepping, finite differences."""

import gymnasium as gym
import numpy as np
import pytest

import nafrl.envs  # noqa: F401  (registers the tasks)
from nafrl.envs import TASKS
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
    # A second step from the env's new full state (the template is refreshed from it).
    nxt2 = sim.step(sim.state_from(env.unwrapped.get_state())[None], u[None])[0]
    env.step(u)
    np.testing.assert_allclose(sim.observe(nxt2), env.unwrapped.observe(), atol=1e-12)


@pytest.mark.parametrize("task", list(TASKS))
def test_batched_steps_are_the_env_steps_bit_for_bit(task):
    """``step`` / ``step_observed`` run a batch through MuJoCo's C rollout; each row must be
    exactly ``env.step`` from ``set_state`` of the template with that z (contacts, mocap
    targets and warm starts included), with actions inside and outside [-1, 1]."""
    env = gym.make(task)
    env.reset(seed=1)
    rng = np.random.default_rng(0)
    for _ in range(15):  # away from the initial state: moving, and in contact where it can be
        env.step(env.action_space.sample())
    sim = SimulatorDynamics(env)
    z0 = sim.state_from(env.unwrapped.get_state())
    z = z0 + 1e-3 * rng.standard_normal((5, sim.dx)) * (np.arange(5) > 0)[:, None]
    u = rng.uniform(-1.3, 1.3, (5, sim.du))
    nxt, obs = sim.step_observed(z, u)
    for i in range(5):
        sim._set(z[i])
        want = sim._step(u[i])
        np.testing.assert_array_equal(nxt[i], want)
        np.testing.assert_array_equal(obs[i], sim.env.observe())
    # The unperturbed row is the real env's next step.
    real_obs, *_ = env.step(u[0])
    np.testing.assert_array_equal(nxt[0], sim.encode(env.unwrapped.get_state()))
    np.testing.assert_array_equal(obs[0], real_obs)
    # A new template (a later full state: other warm start, targets) is picked up.
    env.step(u[1])
    z1 = sim.state_from(env.unwrapped.get_state())
    real_obs, *_ = env.step(u[2])
    np.testing.assert_array_equal(
        sim.step(z1[None], u[2][None])[0], sim.encode(env.unwrapped.get_state())
    )


@pytest.mark.parametrize("task", list(TASKS))
def test_observations_by_kinematics_alone_equal_set_state_bit_for_bit(task):
    """The observation derivatives evaluate h(z) at (H+1)(2 dz+1) states through
    ``observe_state`` (forward kinematics only); the whole linearisation must equal the one
    made with full ``set_state`` calls, and the env must refuse to step until it is reset."""
    env = gym.make(task)
    env.reset(seed=2)
    for _ in range(10):
        env.step(env.action_space.sample())
    light, full = SimulatorDynamics(env), SimulatorDynamics(env)
    full._obs_of = full._set  # every h(z) through a full set_state
    z0 = light.state_from(env.unwrapped.get_state())
    full.state_from(env.unwrapped.get_state())
    u = np.random.default_rng(1).uniform(-1, 1, (3, light.du))
    x_hat = full.rollout(z0, u)
    (lin_a, *obs_a), (lin_b, *obs_b) = (
        light.linearize_with_observation(x_hat, u),
        full.linearize_with_observation(x_hat, u),
    )
    for a, b in zip([lin_a.F, lin_a.f, *obs_a], [lin_b.F, lin_b.f, *obs_b], strict=True):
        np.testing.assert_array_equal(a, b)
    assert np.abs(obs_a[1]).max() > 0  # J is not trivially zero
    np.testing.assert_array_equal(light.rollout(z0, u), x_hat)  # stepping is unaffected
    light.env.observe_state(light.decode(z0))
    with pytest.raises(RuntimeError, match="reset"):
        light.env.step(u[0])


def test_forward_and_central_differences_agree():
    """Forward differences (the default) match central ones to O(eps) on a smooth task,
    including an action at its bound, where both difference inside the box."""
    env = gym.make("nafrl/Cartpole-v1")
    env.reset(seed=6)
    fwd = SimulatorDynamics(env)
    cen = SimulatorDynamics(env, differences="central")
    z0 = fwd.state_from(env.unwrapped.get_state())
    cen.state_from(env.unwrapped.get_state())
    u_hat = np.array([[0.3], [1.0], [-1.0], [-0.6]])
    x_hat = fwd.rollout(z0, u_hat)
    lf, of, Jf, Df = fwd.linearize_with_observation(x_hat, u_hat)
    lc, oc, Jc, Dc = cen.linearize_with_observation(x_hat, u_hat)
    assert np.abs(lf.F - lc.F).max() < 1e-4 * max(1.0, np.abs(lc.F).max())
    np.testing.assert_allclose(lf.f, lc.f, atol=1e-4)
    assert np.abs(lc.F[:, :, 4]).min() > 1e-3  # the action moves the cart at the bounds too
    np.testing.assert_array_equal(of, oc)
    np.testing.assert_array_equal(Jf, Jc)
    with pytest.raises(ValueError, match="differences"):
        SimulatorDynamics(env, differences="backward")
    with pytest.raises(ValueError, match="NaN or inf"):  # as env.step would refuse it
        fwd.step(z0[None], np.array([[np.nan]]))


@pytest.mark.parametrize("differences", ["forward", "central"])
def test_finite_difference_linearisation_predicts_small_perturbations(cartpole, differences):
    env, _ = cartpole
    sim = SimulatorDynamics(env, differences=differences)
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
