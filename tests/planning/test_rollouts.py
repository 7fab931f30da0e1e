"""Closed-loop rollouts of the planner through the two kinds of model (nafrl.planning.lqr)."""

import gymnasium as gym
import numpy as np
import pytest

import nafrl.envs  # noqa: F401  (registers the tasks)
from nafrl.models import DynamicsModel, ObservedDynamics, SimulatorDynamics
from nafrl.planning import LinearGaussianController, ilqg_solve, rollout_controller


def test_simulator_rollouts_replay_in_the_real_environment():
    """Each alpha's rollout through SimulatorDynamics (an ObservedDynamics) is what the real
    env does with the same actions, and its return is the sum of the env's rewards."""
    env = gym.make("nafrl/Cartpole-v1")
    env.reset(seed=2)
    sim = SimulatorDynamics(env)
    assert isinstance(sim, ObservedDynamics)
    start = env.unwrapped.get_state()
    z0 = sim.state_from(start)
    rng = np.random.default_rng(0)
    T = 12
    ctrl = LinearGaussianController(
        0.3 * rng.standard_normal((T, 1, 4)),
        0.5 * rng.standard_normal((T, 1)),
        np.tile(z0, (T + 1, 1)),
        0.5 * rng.standard_normal((T, 1)),
        np.ones((T, 1, 1)),
    )
    alphas = np.array([1.0, 0.25])
    xs, us, rets = rollout_controller(
        sim, env.unwrapped.reward, z0, ctrl, alphas, u_bounds=(-1.0, 1.0)
    )
    assert xs.shape == (2, T + 1, 4) and us.shape == (2, T, 1) and rets.shape == (2,)
    assert np.abs(np.asarray(us[0] - us[1])).max() > 1e-2  # alpha changes the actions
    for a in range(2):
        env.unwrapped.set_state(start)
        total = 0.0
        for t in range(T):
            u = np.asarray(us[a, t], np.float64)
            expected = np.clip(
                ctrl.u_hat[t] + alphas[a] * ctrl.k[t] + ctrl.K[t] @ (xs[a, t] - z0), -1, 1
            )
            np.testing.assert_allclose(u, expected, atol=1e-5)
            _, r, *_ = env.step(u)
            total += r
            np.testing.assert_allclose(
                xs[a, t + 1], sim.encode(env.unwrapped.get_state()), atol=1e-5
            )
        assert float(rets[a]) == pytest.approx(total, rel=1e-4, abs=1e-4)


class _OpaqueModel(DynamicsModel):
    """Neither pure JAX nor an ObservedDynamics: the planner cannot use it."""

    jittable = False

    def __init__(self) -> None:
        self.dx, self.du = 2, 1

    def fit(self, x, u):
        return self


def test_planner_rejects_a_model_it_cannot_roll_out():
    with pytest.raises(TypeError, match="ObservedDynamics"):
        ilqg_solve(_OpaqueModel(), lambda x, u: -x @ x, np.zeros(2), np.zeros((5, 1)))
