"""The global neural-network model (section 6.3 baseline)."""

import gymnasium as gym
import jax
import numpy as np

import nafrl.envs  # noqa: F401
from nafrl.models.neural import NeuralDynamics


def _random_episodes(env, n, seed, T=50):
    rng = np.random.default_rng(seed)
    X, U = [], []
    for i in range(n):
        o, _ = env.reset(seed=seed + i)
        xs, us = [o], []
        for _ in range(T):
            u = rng.uniform(-1, 1, env.action_space.shape)
            o, *_ = env.step(u)
            xs.append(o)
            us.append(u)
        X.append(xs)
        U.append(us)
    return np.array(X), np.array(U)


def test_one_step_error_falls_with_data():
    env = gym.make("nafrl/ReacherSingle-v1")
    x_test, u_test = _random_episodes(env, 8, seed=1000)
    model = NeuralDynamics(hidden_sizes=(64, 64), train_steps=1500, seed=0)
    errors = []
    for n, seed in [(1, 0), (3, 10), (28, 20)]:  # 1, 4, then 32 episodes of data in total
        model.add_and_fit(*_random_episodes(env, n, seed))
        errors.append(model.one_step_error(x_test, u_test))
    assert model.n_transitions == 32 * 50
    assert errors[0] > errors[1] > errors[2], errors
    assert errors[2] < 0.3 * errors[0], errors
    # Pure-JAX hooks: batched step with noise and autodiff linearisation.
    lin = model.linearize(x_test[0, :11], u_test[0, :10])
    assert lin.F.shape == (10, 13, 16) and np.all(np.isfinite(np.asarray(lin.F)))
    mean = np.asarray(model.step(x_test[0, :4], u_test[0, :4]))
    noisy = np.asarray(model.step(x_test[0, :4], u_test[0, :4], key=jax.random.PRNGKey(0)))
    assert mean.shape == noisy.shape == (4, 13) and not np.allclose(mean, noisy)
