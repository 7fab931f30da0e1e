"""DDPG's update (the Table 1 baseline, Lillicrap et al. 2016) against a NumPy reference.

On a hand-made batch, one ``update`` must do, in float64 NumPy terms:
  critic target   y = r + gamma (1 - done) Q'(x', pi'(x'))  (target networks),
  critic step     the gradient of mean (y - Q(x, u))^2, applied by Adam,
  actor step      the deterministic policy gradient of -mean Q(x, pi(x)) through the
                  *updated* critic, applied by Adam,
  target update   theta' <- tau theta + (1 - tau) theta' for the critic and the actor.
The networks are two-layer ReLU MLPs (the actor ends in tanh), re-implemented here with
hand-written backpropagation.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from nafrl.agents import ddpg
from nafrl.config import Config
from nafrl.types import Batch

DX, DU, H = 3, 2, 8
GAMMA, TAU, LR_CRITIC, LR_ACTOR = 0.9, 0.1, 1e-2, 1e-3
ADAM_EPS = 1e-8  # optax.adam's default


def _np(tree):
    return jax.tree.map(lambda a: np.asarray(a, np.float64), tree)


def _mlp(p, z):
    """Forward pass of one StackedMLP member; returns the output and the activations."""
    a1 = z @ p["W0"][0] + p["b0"][0, 0]
    h1 = np.maximum(a1, 0.0)
    a2 = h1 @ p["W1"][0] + p["b1"][0, 0]
    h2 = np.maximum(a2, 0.0)
    return h2 @ p["W_out0"] + p["b_out0"], (z, a1, h1, a2, h2)


def _mlp_backward(p, cache, d_out):
    """Gradients of sum(d_out * output) w.r.t. the parameters (Flax shapes) and the input."""
    z, a1, h1, a2, h2 = cache
    g = {"W_out0": h2.T @ d_out, "b_out0": d_out.sum(0)}
    d_a2 = (d_out @ p["W_out0"].T) * (a2 > 0)
    g["W1"], g["b1"] = (h1.T @ d_a2)[None], d_a2.sum(0)[None, None]
    d_a1 = (d_a2 @ p["W1"][0].T) * (a1 > 0)
    g["W0"], g["b0"] = (z.T @ d_a1)[None], d_a1.sum(0)[None, None]
    return g, d_a1 @ p["W0"][0].T


def _q(p, x, u):
    return _mlp(p, np.concatenate([x, u], 1))[0][:, 0]


def _pi(p, x):
    return np.tanh(_mlp(p, x)[0])


def _adam_first_step(params, grads, lr):
    """Adam's first step from zero moments: m_hat = g, v_hat = g^2."""
    return jax.tree.map(lambda p, g: p - lr * g / (np.abs(g) + ADAM_EPS), params, grads)


def _hand_made_batch() -> Batch:
    obs = np.array(
        [[0.5, -1.0, 0.2], [1.5, 0.3, -0.7], [-0.8, 0.9, 1.1], [0.1, 0.1, -1.2], [-1.3, -0.4, 0.6]]
    )
    action = np.array([[0.3, -0.9], [-0.5, 0.1], [0.8, 0.8], [-0.2, -0.6], [0.0, 0.4]])
    reward = np.array([1.0, -0.5, 2.0, 0.25, -1.5])
    next_obs = np.array(
        [[0.6, -0.8, 0.1], [1.2, 0.5, -0.4], [-1.0, 1.1, 0.9], [0.3, -0.2, -1.0], [-1.1, -0.1, 0.2]]
    )
    done = np.array([0.0, 1.0, 0.0, 0.0, 1.0])  # two true terminal states: no bootstrap
    return Batch(*(a.astype(np.float32) for a in (obs, action, reward, next_obs, done)))


@pytest.fixture(scope="module")
def step():
    """One update from a state whose target networks differ from the online ones."""
    cfg = Config(
        hidden_sizes=(H, H),
        gamma=GAMMA,
        tau=TAU,
        learning_rate=LR_CRITIC,
        actor_learning_rate=LR_ACTOR,
    )
    agent = ddpg.make(cfg, DX, DU)
    online, target = agent.init(jax.random.PRNGKey(0)), agent.init(jax.random.PRNGKey(1))

    def big_output(variables):  # scale the small output layer so Q and pi are O(1)
        p = variables["params"]["StackedMLP_0"]
        return {"params": {"StackedMLP_0": {**p, "W_out0": p["W_out0"] * 300.0}}}

    state = online._replace(
        params=big_output(online.params),
        actor_params=big_output(online.actor_params),
        target_params=big_output(target.params),
        target_actor_params=big_output(target.actor_params),
    )
    batch = _hand_made_batch()
    new_state, metrics = jax.jit(agent.update)(state, batch)
    return state, batch, new_state, metrics


def _members(variables):
    return _np(variables["params"]["StackedMLP_0"])


def test_critic_target_and_loss(step):
    state, batch, _, metrics = step
    b = _np(batch)
    qc, qa = _members(state.target_params), _members(state.target_actor_params)
    y = b.reward + GAMMA * (1.0 - b.terminated) * _q(qc, b.next_obs, _pi(qa, b.next_obs))
    q = _q(_members(state.params), b.obs, b.action)
    # Terminal rows keep y = r exactly; the others bootstrap from non-trivial values.
    np.testing.assert_array_equal(y[[1, 4]], b.reward[[1, 4]])
    assert np.abs(y - b.reward)[[0, 2, 3]].min() > 1e-2
    np.testing.assert_allclose(float(metrics["q_loss"]), np.mean((y - q) ** 2), rtol=1e-5)
    np.testing.assert_allclose(float(metrics["mean_v"]), q.mean(), rtol=1e-5, atol=1e-6)
    # With the online networks as targets the loss would differ clearly.
    p, a = _members(state.params), _members(state.actor_params)
    y_wrong = b.reward + GAMMA * (1.0 - b.terminated) * _q(p, b.next_obs, _pi(a, b.next_obs))
    assert abs(np.mean((y_wrong - q) ** 2) - np.mean((y - q) ** 2)) > 1e-2


def _critic_grad(state, batch):
    b = _np(batch)
    qc, qa = _members(state.target_params), _members(state.target_actor_params)
    y = b.reward + GAMMA * (1.0 - b.terminated) * _q(qc, b.next_obs, _pi(qa, b.next_obs))
    p = _members(state.params)
    out, cache = _mlp(p, np.concatenate([b.obs, b.action], 1))
    d_out = (-2.0 * (y - out[:, 0]) / len(y))[:, None]  # d mean (y - Q)^2 / dQ
    return _mlp_backward(p, cache, d_out)[0]


def test_critic_gradient_step(step):
    state, batch, new_state, _ = step
    g = _critic_grad(state, batch)
    # Adam's first moment after one step is (1 - b1) g: the gradient itself, to float32.
    mu = _np(optax.tree_utils.tree_get(new_state.opt_state, "mu"))["StackedMLP_0"]
    for name in g:
        np.testing.assert_allclose(mu[name] / 0.1, g[name], rtol=1e-4, atol=1e-6, err_msg=name)
    assert max(np.abs(v).max() for v in g.values()) > 1e-2
    expected = _adam_first_step(_members(state.params), g, LR_CRITIC)
    got = _members(new_state.params)
    for name in g:
        np.testing.assert_allclose(got[name], expected[name], atol=1e-6, err_msg=name)


def test_deterministic_policy_gradient_step(step):
    state, batch, new_state, metrics = step
    b = _np(batch)
    # The actor follows the critic *after* its step (the order of Lillicrap et al.).
    critic_new = _adam_first_step(_members(state.params), _critic_grad(state, batch), LR_CRITIC)
    a = _members(state.actor_params)
    pre, cache = _mlp(a, b.obs)
    u = np.tanh(pre)
    q, q_cache = _mlp(critic_new, np.concatenate([b.obs, u], 1))
    np.testing.assert_allclose(float(metrics["pi_loss"]), -q.mean(), rtol=1e-5, atol=1e-6)
    # grad of -mean Q(x, pi(x)) = -mean dQ/du * dpi/dtheta  (the deterministic policy gradient)
    _, d_in = _mlp_backward(critic_new, q_cache, np.full((len(u), 1), -1.0 / len(u)))
    d_u = d_in[:, DX:]
    g, _ = _mlp_backward(a, cache, d_u * (1.0 - u**2))
    assert max(np.abs(v).max() for v in g.values()) > 1e-3
    mu = _np(optax.tree_utils.tree_get(new_state.actor_opt_state, "mu"))["StackedMLP_0"]
    for name in g:
        np.testing.assert_allclose(mu[name] / 0.1, g[name], rtol=1e-4, atol=1e-6, err_msg=name)
    expected = _adam_first_step(a, g, LR_ACTOR)
    got = _members(new_state.actor_params)
    for name in g:
        np.testing.assert_allclose(got[name], expected[name], atol=1e-6, err_msg=name)
    # The actor's own step size, not the critic's, moved it.
    moved = np.abs(got["W_out0"] - a["W_out0"]).max()
    assert LR_ACTOR * 0.9 < moved < LR_ACTOR * 1.1


def test_soft_target_update(step):
    state, _, new_state, _ = step
    for online, old, new in (
        (new_state.params, state.target_params, new_state.target_params),
        (new_state.actor_params, state.target_actor_params, new_state.target_actor_params),
    ):
        o, t, n = _members(online), _members(old), _members(new)
        for name in o:
            np.testing.assert_allclose(
                n[name], TAU * o[name] + (1 - TAU) * t[name], atol=1e-6, err_msg=name
            )
        assert np.abs(n["W_out0"] - t["W_out0"]).max() > 1e-2  # the targets did move
    assert int(new_state.step) == int(state.step) + 1
    assert jnp.shape(new_state.step) == ()
