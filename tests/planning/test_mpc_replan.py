"""MPC that replans every k steps (``replan_every``) and follows its plan's feedback law between.

On an LQ problem the law of a plan made at t = 0 is the finite-horizon Riccati controller,
so at any later step and from any state it must act as a fresh plan would. With the true
simulator and no noise the steps between plans must replay the plan exactly.
"""

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_ilqg_math import _riccati  # tests/planning is on the path (pytest's rootdir mode)

import nafrl.envs  # noqa: F401
from nafrl.models import LinearGaussianDynamics
from nafrl.models.simulator import SimulatorDynamics
from nafrl.planning import MPC


def test_the_feedback_law_between_plans_is_the_riccati_controller():
    with jax.enable_x64(True):
        rng = np.random.default_rng(3)
        T, dx, du = 12, 4, 2
        A = np.eye(dx) + 0.1 * rng.standard_normal((T, dx, dx))
        B = rng.standard_normal((T, dx, du))
        Q, R = np.diag(rng.uniform(0.5, 2.0, dx)), 0.1 * np.eye(du)
        model = LinearGaussianDynamics.from_params(np.concatenate([A, B], 2), np.zeros((T, dx)))
        Qj, Rj = jnp.asarray(Q), jnp.asarray(R)

        def reward(x, u):
            return -0.5 * x @ Qj @ x - 0.5 * u @ Rj @ u

        K = _riccati(A, B, Q, R, np.zeros_like(Q))[0]  # no terminal reward
        kw = dict(horizon=T, episode_horizon=T, u_bounds=None)
        every = MPC(model, reward, replan_every=1, **kw)
        seldom = MPC(model, reward, replan_every=T, **kw)
        x0 = rng.standard_normal(dx)
        for mpc in (every, seldom):
            np.testing.assert_allclose(mpc.act(x0, 0), K[0] @ x0, atol=1e-8)
        for t in range(1, 6):  # states off the plan: the law must still be optimal
            x = rng.standard_normal(dx)
            np.testing.assert_allclose(seldom.act(x, t), K[t] @ x, atol=1e-8)
            # a fresh plan (2 warm-started iterations) stops at the solver's tolerance
            np.testing.assert_allclose(every.act(x, t), K[t] @ x, atol=1e-5)
        assert seldom._t_plan == 0 and every._t_plan == 5  # one plan against six


@pytest.mark.parametrize("k", [1, 4])
def test_steps_between_plans_replay_the_plan_on_the_simulator(k):
    env = gym.make("nafrl/Reacher-v1")  # its planned actions stay inside the box
    env.reset(seed=0)
    task = env.unwrapped
    mpc = MPC(
        SimulatorDynamics(env),
        task.reward,
        horizon=10,
        replan_every=k,
        episode_horizon=task.horizon,
    )
    plans, changes = [], []
    for t in range(9):
        u = mpc.act(task.get_state(), t)
        if mpc._t_plan == t:
            plans.append(t)
            planned = np.asarray(mpc.info.u)
        # the executed action is the plan's, with no feedback correction beyond float32
        # rounding: the simulator's steps are the planner's bit for bit
        i = t - plans[-1]
        np.testing.assert_allclose(u, planned[i], atol=1e-6)  # the plan is held in float32
        if i > 0:  # the plan's actions change from step to step, so an off-by-one would show
            changes.append(np.abs(planned[i] - planned[i - 1]).max())
        env.step(u)
    assert plans == list(range(0, 9, k))
    assert k == 1 or max(changes) > 0.05
    with pytest.raises(ValueError, match="replan_every must be between 1 and the horizon 10"):
        MPC(SimulatorDynamics(env), task.reward, horizon=10, replan_every=11)
