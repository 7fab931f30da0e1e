"""The NAF head's identities (section 4) and Algorithm 1's loss against a NumPy reference."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nafrl.agents import naf
from nafrl.agents.common import apply_in_update, initial_reward_range, widen_reward_range
from nafrl.config import Config
from nafrl.networks import (
    NAFNetwork,
    NAFOutputs,
    _layer_norm,
    fill_lower_triangular,
    precision,
    q_value,
)
from nafrl.types import Batch


def _net_and_params(
    du: int, dx: int = 5, shared: bool = False, seed: int = 0, twin_v: bool = False
):
    net = NAFNetwork(action_dim=du, hidden_sizes=(32, 32), shared_trunk=shared, twin_v=twin_v)
    params = net.init(jax.random.PRNGKey(seed), jnp.zeros((1, dx)))
    # Perturb the small output layer so V, mu and L are far from their near-zero init.
    params = jax.tree.map(lambda p: p * 30.0 if p.ndim == 2 and p.shape[0] == 32 else p, params)
    return net, params


@pytest.mark.parametrize("du,shared", [(1, False), (2, False), (3, True), (6, False)])
def test_q_at_mu_equals_v_and_q_below_v(du, shared):
    net, params = _net_and_params(du, shared=shared)
    x = jax.random.normal(jax.random.PRNGKey(1), (64, 5))
    out = net.apply(params, x)
    np.testing.assert_allclose(q_value(out, out.mu), out.V, rtol=0, atol=1e-6)
    u = jax.random.uniform(jax.random.PRNGKey(2), (64, du), minval=-1, maxval=1)
    q = q_value(out, u)
    assert np.all(np.asarray(q) <= np.asarray(out.V) + 1e-6)
    assert np.any(np.asarray(out.V - q) > 1e-3)  # the advantage is not identically zero


@pytest.mark.parametrize("du", [1, 2, 4, 6])
def test_P_symmetric_positive_definite(du):
    net, params = _net_and_params(du)
    out = net.apply(params, jax.random.normal(jax.random.PRNGKey(3), (32, 5)))
    P = np.asarray(precision(out), np.float64)
    np.testing.assert_allclose(P, np.swapaxes(P, -1, -2), atol=1e-6)
    assert np.linalg.eigvalsh(P).min() > 0
    L = np.asarray(out.L)
    assert np.all(np.triu(L, 1) == 0)  # lower-triangular
    assert np.all(np.diagonal(L, axis1=-2, axis2=-1) > 0)


def test_L_diag_is_bounded_exponential():
    entries = jnp.array([[100.0, 2.0, -100.0]])  # du = 2: [L00, L10, L11]
    L = np.asarray(fill_lower_triangular(entries, 2, max_log_diag=5.0))[0]
    b = 5.0 * np.tanh(100.0 / 5.0)  # the smooth bound, within float32 of 5
    np.testing.assert_allclose(L, [[np.exp(b), 0.0], [2.0, np.exp(-b)]], rtol=1e-6)
    assert np.all(np.isfinite(L @ L.T))
    # Near zero the bound is the identity: L_ii = exp(raw).
    small = np.asarray(fill_lower_triangular(jnp.array([[0.1, 0.0, -0.2]]), 2, 5.0))[0]
    np.testing.assert_allclose(np.diag(small), np.exp([0.1, -0.2]), rtol=1e-3)


def test_min_log_diag_bounds_the_lower_side_only():
    """With min_log_diag = -1: log L_ii in (-1, 5), so diag P = L_ii^2 >= e^-2; the upper
    side and the identity near zero (slope 1 from both sides) are unchanged."""
    raw = jnp.array([-100.0, -3.0, -0.01, 0.01, 3.0, 100.0])
    log_l = [
        float(jnp.log(fill_lower_triangular(r[None, None], 1, 5.0, min_log_diag=-1.0)[0, 0, 0]))
        for r in raw
    ]
    np.testing.assert_allclose(
        log_l, [-1.0, np.tanh(-3.0), -0.01, 0.01, 5 * np.tanh(0.6), 5.0], rtol=1e-4, atol=1e-5
    )

    def log_l_of(x: jax.Array) -> jax.Array:
        return jnp.log(fill_lower_triangular(x[None, None], 1, 5.0, min_log_diag=-1.0)[0, 0, 0])

    for r in (-1e-3, 1e-3):
        np.testing.assert_allclose(float(jax.grad(log_l_of)(jnp.float32(r))), 1.0, rtol=1e-4)
    # The network passes Config.min_log_diag through: P never falls below e^-2.
    cfg = Config(hidden_sizes=(16,), min_log_diag=-1.0)
    net = naf.make_network(cfg, 2)
    params = net.init(jax.random.PRNGKey(0), jnp.zeros((1, 3)))
    params = jax.tree.map(lambda p: p * 1e3, params)  # drive the raw diagonal far out
    out = net.apply(params, jax.random.normal(jax.random.PRNGKey(1), (256, 3)))
    diag = np.diagonal(np.asarray(out.L), axis1=-2, axis2=-1)
    assert diag.min() >= np.exp(-1.0) * (1 - 1e-5) and diag.min() < np.exp(-0.9)


@pytest.mark.parametrize("raw", [-8.0, 8.0])
def test_L_diag_gradient_does_not_vanish_beyond_the_bound(raw: float) -> None:
    # A clip to [-5, 5] has zero gradient here and traps P at e^(+-10) for good.
    def log_p(x: jax.Array) -> jax.Array:
        L = fill_lower_triangular(x[None, None], 1, max_log_diag=5.0)[0]
        return jnp.log((L @ L.T)[0, 0])

    g = float(jax.grad(log_p)(jnp.float32(raw)))
    assert g > 0.1  # d log P / d raw = 2 (1 - tanh^2(raw / 5)) = 0.39 at |raw| = 8


def test_argmax_over_dense_grid_is_mu_1d():
    net, params = _net_and_params(1, dx=3)
    x = jax.random.normal(jax.random.PRNGKey(4), (4, 3))
    out = net.apply(params, x)
    grid = jnp.linspace(-1, 1, 4001)
    for i in range(4):
        o = NAFOutputs(
            jnp.repeat(out.V[i : i + 1], grid.size),
            jnp.repeat(out.mu[i : i + 1], grid.size, 0),
            jnp.repeat(out.L[i : i + 1], grid.size, 0),
        )
        best = grid[jnp.argmax(q_value(o, grid[:, None]))]
        assert abs(float(best) - float(out.mu[i, 0])) <= 1e-3


def test_argmax_over_dense_grid_is_mu_2d():
    net, params = _net_and_params(2, dx=3)
    out = net.apply(params, jax.random.normal(jax.random.PRNGKey(5), (3, 3)))
    g = jnp.linspace(-1, 1, 401)
    U = jnp.stack(jnp.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    for i in range(3):
        n = U.shape[0]
        o = NAFOutputs(
            jnp.repeat(out.V[i : i + 1], n),
            jnp.repeat(out.mu[i : i + 1], n, 0),
            jnp.repeat(out.L[i : i + 1], n, 0),
        )
        best = U[jnp.argmax(q_value(o, U))]
        np.testing.assert_allclose(best, out.mu[i], atol=2 * (2 / 400))


def _numpy_loss(out, out_target_V, batch, gamma):
    V, mu, L = (np.asarray(a, np.float64) for a in (out.V, out.mu, out.L))
    u = np.asarray(batch.action, np.float64)
    P = L @ np.swapaxes(L, -1, -2)
    d = u - mu
    Q = V - 0.5 * np.einsum("bi,bij,bj->b", d, P, d)
    y = batch.reward + gamma * (1 - batch.terminated) * np.asarray(out_target_V, np.float64)
    return np.mean((y - Q) ** 2)


def _batch(rng, m, dx, du, terminated):
    return Batch(
        rng.standard_normal((m, dx)).astype(np.float32),
        rng.uniform(-1, 1, (m, du)).astype(np.float32),
        rng.standard_normal(m).astype(np.float32),
        rng.standard_normal((m, dx)).astype(np.float32),
        terminated.astype(np.float32),
    )


def test_loss_matches_numpy_reference():
    cfg = Config(hidden_sizes=(16, 16))
    net = naf.make_network(cfg, 3)
    params = net.init(jax.random.PRNGKey(0), jnp.zeros((1, 4)))
    target = net.init(jax.random.PRNGKey(1), jnp.zeros((1, 4)))
    rng = np.random.default_rng(0)
    batch = _batch(rng, 8, 4, 3, rng.integers(0, 2, 8))
    loss, _ = naf.td_loss(net, params, target, batch, 0.9)
    ref = _numpy_loss(net.apply(params, batch.obs), net.apply(target, batch.next_obs).V, batch, 0.9)
    np.testing.assert_allclose(float(loss), ref, rtol=1e-5)


@pytest.mark.parametrize("batch_norm", [False, True])
def test_twin_v_loss_is_both_heads_against_the_smaller_target_value(batch_norm: bool) -> None:
    """twin_v (clipped double V): y = r + gamma min(V1'(x'), V2'(x')), and the loss is
    mean (y - V1 - A)^2 + mean (y - V2 - A)^2 with one advantage A (NumPy reference)."""
    cfg = Config(hidden_sizes=(16, 16), twin_v=True, batch_norm=batch_norm)
    net = naf.make_network(cfg, 3)
    params = net.init(jax.random.PRNGKey(0), jnp.zeros((2, 4)))
    target = net.init(jax.random.PRNGKey(1), jnp.zeros((2, 4)))
    rng = np.random.default_rng(0)
    batch = _batch(rng, 16, 4, 3, rng.integers(0, 2, 16))
    # Shift V2' so that the minimum picks V1' on some states and V2' on the others.
    nxt = apply_in_update(net, target, batch.next_obs)
    w = target["params"]["StackedMLP_0"]
    w["b_out1"] = w["b_out1"] + jnp.median(nxt.V - nxt.V2)
    loss, _ = naf.td_loss(net, params, target, batch, 0.9)
    # As inside an update: with batch norm every network is normalised by its batch.
    nxt = apply_in_update(net, target, batch.next_obs)
    picks_v1 = np.asarray(nxt.V < nxt.V2)
    assert 0 < picks_v1.sum() < 16
    v_next = np.minimum(np.asarray(nxt.V), np.asarray(nxt.V2))
    out = apply_in_update(net, params, batch.obs)
    ref = _numpy_loss(out, v_next, batch, 0.9) + _numpy_loss(
        out._replace(V=out.V2), v_next, batch, 0.9
    )
    np.testing.assert_allclose(float(loss), ref, rtol=1e-5)


@pytest.mark.parametrize("bias", [1e6, -1e6])
def test_clip_target_bounds_y_by_the_returns_the_rewards_allow(bias: float) -> None:
    """With clip_target, y = r + gamma V' is clipped to [min(r_min, 0), max(r_max, 0)] /
    (1 - gamma); a target network whose V' is absurdly large (or small) gives exactly the
    bound, and a V' inside the interval is left alone (the loss equals the reference)."""
    cfg = Config(hidden_sizes=(16, 16), clip_target=True)
    net = naf.make_network(cfg, 2)
    params = net.init(jax.random.PRNGKey(0), jnp.zeros((1, 4)))
    target = net.init(jax.random.PRNGKey(1), jnp.zeros((1, 4)))
    rng = np.random.default_rng(0)
    batch = _batch(rng, 8, 4, 2, np.zeros(8))
    gamma = 0.9
    rr = widen_reward_range(initial_reward_range(cfg), batch.reward)
    assert rr is not None
    np.testing.assert_allclose(rr, [batch.reward.min(), batch.reward.max()])
    inside, _ = naf.td_loss(net, params, target, batch, gamma, rr)
    ref = _numpy_loss(
        net.apply(params, batch.obs), net.apply(target, batch.next_obs).V, batch, gamma
    )
    np.testing.assert_allclose(float(inside), ref, rtol=1e-5)
    far = jax.tree.map(lambda a: a, target)
    far["params"]["StackedMLP_0"]["b_out0"] = jnp.full((1,), bias)
    _, (_, out, td) = naf.td_loss(net, params, far, batch, gamma, rr)
    bound = (max(float(rr[1]), 0.0) if bias > 0 else min(float(rr[0]), 0.0)) / (1 - gamma)
    q = np.asarray(q_value(out, jnp.asarray(batch.action)))
    np.testing.assert_allclose(np.asarray(td) + q, bound, rtol=1e-5)


@pytest.mark.parametrize("sigma", [0.1, 0.5])
def test_target_smoothing_is_the_expected_target_q_under_gaussian_noise(sigma: float) -> None:
    """With target_smoothing = sigma, y = r + gamma E[Q'(x', mu' + eps)], eps ~ N(0, sigma^2 I):
    the closed form V' - sigma^2/2 tr P' matches a Monte-Carlo mean of Q' over 20,000 noise
    draws per state, and differs from the unsmoothed target (P' is far from zero here)."""
    net, target = _net_and_params(3, dx=4)
    params = net.init(jax.random.PRNGKey(5), jnp.zeros((1, 4)))
    rng = np.random.default_rng(2)
    batch = _batch(rng, 6, 4, 3, rng.integers(0, 2, 6))
    gamma = 0.9
    _, (_, out, td) = naf.td_loss(net, params, target, batch, gamma, target_smoothing=sigma)
    y = np.asarray(td) + np.asarray(q_value(out, jnp.asarray(batch.action)))
    nxt = net.apply(target, batch.next_obs)
    eps = sigma * jax.random.normal(jax.random.PRNGKey(3), (20_000, 6, 3))
    q_noisy = jax.vmap(lambda e: q_value(nxt, nxt.mu + e))(eps)  # (K, B)
    mc = batch.reward + gamma * (1 - batch.terminated) * np.asarray(q_noisy.mean(axis=0))
    spread = np.asarray(q_noisy.std(axis=0)) / np.sqrt(20_000)
    np.testing.assert_array_less(np.abs(y - mc), 5 * spread + 1e-4)
    plain = batch.reward + gamma * (1 - batch.terminated) * np.asarray(nxt.V)
    live = batch.terminated == 0
    assert np.all(np.abs(y - plain)[live] > 10 * spread[live] + 1e-3)
    np.testing.assert_allclose(y[~live], batch.reward[~live], rtol=1e-6)


def test_truncated_and_terminated_targets_differ():
    """A time-limit cut (terminated=0) bootstraps from V'(x'); a true terminal does not."""
    cfg = Config(hidden_sizes=(16, 16))
    net = naf.make_network(cfg, 2)
    params = net.init(jax.random.PRNGKey(0), jnp.zeros((1, 3)))
    rng = np.random.default_rng(1)
    b_trunc = _batch(rng, 1, 3, 2, np.zeros(1))
    b_term = b_trunc._replace(terminated=np.ones(1, np.float32))
    v_next = float(net.apply(params, b_trunc.next_obs).V[0])
    assert abs(v_next) > 1e-4
    out = net.apply(params, b_trunc.obs)
    q = float(q_value(out, jnp.asarray(b_trunc.action))[0])
    l_trunc, _ = naf.td_loss(net, params, params, b_trunc, 0.99)
    l_term, _ = naf.td_loss(net, params, params, b_term, 0.99)
    r = float(b_trunc.reward[0])
    np.testing.assert_allclose(float(l_trunc), (r + 0.99 * v_next - q) ** 2, rtol=1e-5)
    np.testing.assert_allclose(float(l_term), (r - q) ** 2, rtol=1e-5)


def test_update_decreases_loss_on_fixed_batch_and_soft_updates_target():
    cfg = Config(hidden_sizes=(32, 32), tau=0.1, learning_rate=1e-3)
    agent = naf.make(cfg, 4, 2)
    state = agent.init(jax.random.PRNGKey(0))
    rng = np.random.default_rng(0)
    batch = _batch(rng, 64, 4, 2, np.zeros(64))
    batch = batch._replace(terminated=np.ones(64, np.float32))  # a pure regression target
    update = jax.jit(agent.update)
    first = None
    old_target = state.target_params
    for _ in range(200):
        new_state, m = update(state, batch)
        first = float(m["q_loss"]) if first is None else first
        if _ == 0:
            # theta' <- tau theta_new + (1 - tau) theta'
            W_new = new_state.params["params"]["StackedMLP_0"]["W1"]
            W_old_t = old_target["params"]["StackedMLP_0"]["W1"]
            np.testing.assert_allclose(
                new_state.target_params["params"]["StackedMLP_0"]["W1"],
                0.1 * W_new + 0.9 * W_old_t,
                rtol=1e-5,
                atol=1e-7,
            )
        state = new_state
    assert float(m["q_loss"]) < 0.2 * first


@pytest.mark.parametrize("twin_v", [False, True])
@pytest.mark.parametrize("shared", [False, True])
def test_acting_paths_equal_the_full_batched_network(shared, twin_v):
    """Acting evaluates one observation with unstacked products and only the heads it
    needs; V, mu and L must equal those of the batched network to float tolerance. The
    target's ``value_only`` V' is V, or min(V, V2) with two V networks."""
    net, params = _net_and_params(3, shared=shared, twin_v=twin_v)
    x = jax.random.normal(jax.random.PRNGKey(3), (4, 5))
    full = net.apply(params, x)
    assert (full.V2 is not None) == twin_v
    for i in range(4):
        one = net.apply(params, x[i : i + 1])
        for a, b in zip(one, full, strict=True):
            if b is not None:
                np.testing.assert_allclose(a[0], b[i], rtol=1e-5, atol=1e-6)
        pol = net.apply(params, x[i : i + 1], heads="policy")
        np.testing.assert_allclose(pol.mu[0], full.mu[i], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(pol.L[0], full.L[i], rtol=1e-5, atol=1e-6)
        mu = net.apply(params, x[i : i + 1], heads="mu").mu
        np.testing.assert_allclose(mu[0], full.mu[i], rtol=1e-5, atol=1e-6)
    v = net.apply(params, x, value_only=True)
    want = full.V if full.V2 is None else jnp.minimum(full.V, full.V2)
    np.testing.assert_allclose(v, want, rtol=1e-5, atol=1e-6)
    if twin_v:  # the two V networks are different functions (own initial weights)
        assert float(jnp.abs(full.V - full.V2).min()) > 1e-3


def test_layer_norm_hidden_units_have_zero_mean_unit_variance_and_acting_paths_agree():
    """With ``layer_norm`` each hidden layer's pre-activations are normalised per sample
    (at the initial scale 1 and shift 0); the one-observation acting path must give the
    same outputs as the batched network."""
    net = NAFNetwork(action_dim=2, hidden_sizes=(16, 16), layer_norm=True)
    x = 3.0 * jax.random.normal(jax.random.PRNGKey(0), (6, 5)) + 2.0
    params = net.init(jax.random.PRNGKey(1), x)
    plain = NAFNetwork(action_dim=2, hidden_sizes=(16, 16))
    p = params["params"]["StackedMLP_0"]
    h = jnp.einsum("bi,kio->kbo", x, p["W0"]) + p["b0"]
    assert float(jnp.abs(jnp.mean(h, -1)).max()) > 0.05  # not normalised before
    full = net.apply(params, x)
    without = {k: v for k, v in p.items() if "ln" not in k}
    no_ln = plain.apply({"params": {"StackedMLP_0": without}}, x)
    assert float(jnp.abs(full.V - no_ln.V).max()) > 1e-6  # the option changes the network
    z = _layer_norm(h, p["ln_scale0"], p["ln_bias0"])
    np.testing.assert_allclose(jnp.mean(z, -1), 0.0, atol=1e-5)
    np.testing.assert_allclose(jnp.var(z, -1), 1.0, rtol=1e-3)
    for i in range(6):
        one = net.apply(params, x[i : i + 1])
        for a, b in zip(one[:3], full[:3], strict=True):
            np.testing.assert_allclose(a[0], b[i], rtol=1e-5, atol=1e-6)


def _one_update(cfg: Config, dx: int = 4, du: int = 2):
    agent = naf.make(cfg, dx, du)
    state = agent.init(jax.random.PRNGKey(0))
    batch = _batch(np.random.default_rng(1), 64, dx, du, np.zeros(64))
    new_state, _ = jax.jit(agent.update)(state, batch)
    obs = jnp.asarray(np.random.default_rng(2).normal(size=(16, dx)), jnp.float32)
    net = naf.make_network(cfg, du)

    def outputs(s):  # at the initial batch-norm statistics, so only the parameters differ
        return net.apply(
            {**s.params, **{k: v for k, v in state.params.items() if k != "params"}}, obs
        )

    return outputs(state), outputs(new_state), state, new_state


def test_mu_learning_rate_moves_mu_alone() -> None:
    """With separate networks, mu_learning_rate ~ 0 freezes mu(x) while V and P take exactly
    the plain update's step; mu_learning_rate = learning_rate is the plain update."""
    base = Config(hidden_sizes=(32, 32), twin_v=True, layer_norm=True)
    before, plain, _, plain_state = _one_update(base)
    _, frozen, _, _ = _one_update(dataclasses.replace(base, mu_learning_rate=1e-12))
    _, _, _, same_state = _one_update(dataclasses.replace(base, mu_learning_rate=1e-3))
    assert float(jnp.max(jnp.abs(plain.mu - before.mu))) > 1e-4  # the plain step moves mu
    np.testing.assert_allclose(frozen.mu, before.mu, atol=1e-7)
    np.testing.assert_allclose(frozen.V, plain.V, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(frozen.L, plain.L, rtol=1e-6, atol=1e-6)
    leaves = zip(
        jax.tree.leaves(same_state.params), jax.tree.leaves(plain_state.params), strict=True
    )
    for a, b in leaves:
        np.testing.assert_array_equal(a, b)


def test_mu_learning_rate_with_batch_norm_keeps_the_shared_input_norm_at_the_plain_rate() -> None:
    """Batch norm: mu's member of every layer steps 1/4 as far; V's and L's members and the
    input batch norm (shared by all members) step as in the plain update."""
    base = Config(hidden_sizes=(32, 32), batch_norm=True, layer_norm=False)
    _, _, s0, plain = _one_update(base)
    _, _, _, slow = _one_update(dataclasses.replace(base, mu_learning_rate=2.5e-4))
    start, p_plain, p_slow = (s.params["params"]["StackedMLP_0"] for s in (s0, plain, slow))

    def leaf(p, name):
        return (
            p[name]["scale"] if name == "bn1" else p[name]["bias"] if name == "bn_in" else p[name]
        )

    for name in ("W0", "b1", "bn1", "W_out1", "bn_in"):
        step_plain = leaf(p_plain, name) - leaf(start, name)
        step_slow = leaf(p_slow, name) - leaf(start, name)
        expected = step_plain
        if name == "W_out1":  # mu's output head (member 1: V is member 0)
            expected = 0.25 * step_plain
        elif name != "bn_in":
            expected = step_plain.at[1].multiply(0.25)
        assert float(jnp.max(jnp.abs(step_plain))) > 0, name
        np.testing.assert_allclose(step_slow, expected, rtol=1e-5, atol=2e-7, err_msg=name)


@pytest.mark.parametrize("twin_v", [False, True])
def test_mu_learning_rate_scales_mu_columns_of_a_shared_head(twin_v: bool) -> None:
    """With a shared trunk, mu's output columns step r times as far; everything else as plain."""
    base = Config(hidden_sizes=(32, 32), shared_trunk=True, twin_v=twin_v)
    _, _, s0, plain = _one_update(base)
    _, _, _, slow = _one_update(dataclasses.replace(base, mu_learning_rate=2.5e-4))
    nv, du = (2 if twin_v else 1), 2
    for name in ("W_out0", "b_out0", "W0", "W1"):
        start = s0.params["params"]["StackedMLP_0"][name]
        step_plain = plain.params["params"]["StackedMLP_0"][name] - start
        step_slow = slow.params["params"]["StackedMLP_0"][name] - start
        expected = step_plain
        if name.endswith("out0"):
            expected = expected.at[..., nv : nv + du].multiply(0.25)
        np.testing.assert_allclose(step_slow, expected, rtol=1e-5, atol=2e-7)
