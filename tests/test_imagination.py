"""Algorithm 2: imagination rollouts, the fictional buffer and the I*l : I sampling ratio."""

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nafrl
from nafrl.agents import naf
from nafrl.algorithms.imagination import TrueModelImagination, make_imagine
from nafrl.config import Config
from nafrl.env_utils import ActionScaler

SMALL = dict(
    hidden_sizes=(32, 32),
    batch_size=16,
    learning_starts=100,
    eval_interval=0,
    checkpoint_interval=0,
)


def _toy_step(params, x, u, t, key):
    A, B = params
    x_next = A @ x + B @ u + 0.01 * t
    return x_next if key is None else x_next + 0.0 * jax.random.normal(key, x.shape)


def test_imagined_rollouts_shapes_start_states_policy_and_reward():
    dx, du, m, length, T = 4, 2, 5, 6, 10
    cfg = Config(hidden_sizes=(16, 16))
    agent = naf.make(cfg, dx, du)
    state = agent.init(jax.random.PRNGKey(0))
    params = (0.9 * jnp.eye(dx), jnp.ones((dx, du)) * 0.1)

    def reward_fn(x, u):
        return -jnp.sum(x**2) - 0.1 * jnp.sum(u**2)

    x0 = jax.random.normal(jax.random.PRNGKey(1), (m, dx))
    t0 = jnp.array([0, 3, 5, 8, 9], jnp.int32)
    imagine = make_imagine(agent, _toy_step, reward_fn, length, T, "gaussian", 0.0, 0.15)
    big = (jnp.full(dx, -1e9), jnp.full(dx, 1e9))
    out = imagine(state, params, x0, t0, jax.random.PRNGKey(2), *big)
    assert out.obs.shape == (length, m, dx) and out.action.shape == (length, m, du)
    assert out.reward.shape == (length, m) and out.valid.shape == (length, m)
    np.testing.assert_array_equal(out.obs[0], x0)  # rollouts start at the given states
    np.testing.assert_allclose(out.next_obs[:-1], out.obs[1:])  # chained through the model
    mu = jax.vmap(lambda x: agent.policy(state, x)[0])(out.obs)
    np.testing.assert_allclose(out.action, mu, atol=1e-6)  # noise 0: exactly the current mu
    for k in range(length):
        np.testing.assert_allclose(
            out.next_obs[k],
            jax.vmap(lambda x, u, t: _toy_step(params, x, u, t, None))(
                out.obs[k], out.action[k], jnp.minimum(t0 + k, T - 1)
            ),
            rtol=1e-5,
            atol=1e-5,
        )
    np.testing.assert_allclose(
        out.reward, jax.vmap(jax.vmap(reward_fn))(out.obs, out.action), rtol=1e-5
    )
    # Rollouts stop at the horizon: step k from t0 is valid iff t0 + k < T.
    np.testing.assert_array_equal(out.valid, (t0[None] + jnp.arange(length)[:, None]) < T)
    # A rollout stops for good once a predicted state leaves the data box [lo, hi].
    boxed = imagine(state, params, x0, t0, jax.random.PRNGKey(2), big[0], jnp.full(dx, 1.5))
    outside = np.any(np.asarray(out.next_obs) > 1.5, axis=-1)
    expected = np.asarray(out.valid) & (np.cumsum(outside, axis=0) == 0)
    np.testing.assert_array_equal(boxed.valid, expected)
    assert outside.any() and expected.any()
    # With noise the actions differ from mu, around it.
    noisy = make_imagine(agent, _toy_step, reward_fn, length, T, "gaussian", 0.3, 0.15)(
        state, params, x0, t0, jax.random.PRNGKey(2), *big
    )
    d = np.asarray(noisy.action[0] - jax.vmap(lambda x: agent.policy(state, x)[0])(noisy.obs)[0])
    assert 0.05 < np.abs(d).mean() < 0.6


def test_true_model_imagination_equals_real_transitions():
    env = gym.make("nafrl/ReacherSingle-v1")
    base = env.unwrapped
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    starts = []
    for _ in range(7):
        env.step(rng.uniform(-1, 1, base.action_space.shape))
        starts.append(base.get_state())
    actions_seen = []

    def policy(x):
        a = np.tanh(x[:, : base.action_space.shape[0]])  # any fixed deterministic policy
        actions_seen.append(a)
        return a

    scaler = ActionScaler(base.action_space)
    im = TrueModelImagination(env, policy, length=4, noise_scale=0.0, scaler=scaler)
    out = im.imagine(np.stack(starts[:3]), np.random.default_rng(1))
    assert out["obs"].shape == (12, base.observation_space.shape[0])
    real = gym.make("nafrl/ReacherSingle-v1").unwrapped
    real.reset(seed=5)
    for i in range(3):  # rollout i occupies rows i, i+3, i+6, i+9 (one batched step at a time)
        real.set_state(starts[i])
        for k in range(4):
            row = 3 * k + i
            np.testing.assert_allclose(out["obs"][row], real.observe(), rtol=1e-6)
            obs, r, *_ = real.step(out["action"][row])
            np.testing.assert_allclose(out["next_obs"][row], obs, rtol=1e-6)
            np.testing.assert_allclose(out["reward"][row], r, rtol=1e-6)


def test_naf_with_linear_model_fills_only_the_fictional_buffer_and_switches_off():
    m = nafrl.NAF(
        "nafrl/ReacherSingle-v1",
        seed=0,
        model="linear",
        imagination_length=3,
        refit_every=2,
        imagination_off_after=4,
        fictional_buffer_size=10_000,
        **SMALL,
    )
    T = m.env.unwrapped.horizon
    mb = m.model_based
    m.learn(2 * T)  # two episodes: B full, first fit, B_old = those episodes
    assert len(m.buffer) == 2 * T and len(mb.fictional) == 0 and mb.ready
    assert mb.model.fitted and mb.model.F.shape[0] == T
    old_obs = np.concatenate([e.obs[:-1] for e in mb.episodes.old])  # B_old for episodes 3-4
    m.learn(2 * T)  # episodes 3-4 imagine every m steps from B_old
    assert len(m.buffer) == 4 * T  # R holds only real transitions
    n_imagined = len(mb.fictional)
    rollouts = sum(1 for s in range(2 * T + 1, 4 * T + 1) if s % m.config.batch_size == 0)
    assert 0 < n_imagined <= rollouts * m.config.batch_size * 3
    # Every fictional start state is a state of B_old.
    starts = mb.fictional.data["obs"][: m.config.batch_size]
    assert all(np.any(np.all(np.isclose(old_obs, s, atol=1e-6), axis=1)) for s in starts)
    m.learn(2 * T)  # episodes 5-6: imagination switched off after episode 4
    assert len(mb.fictional) == n_imagined
    assert len(m.buffer) == 6 * T


def test_sampling_ratio_is_I_times_l_fictional_to_I_real():
    m = nafrl.NAF(
        "nafrl/ReacherSingle-v1",
        seed=0,
        model="linear",
        imagination_length=4,
        updates_per_step=3,
        **SMALL,
    )
    dx, du = m.obs_dim, m.act_dim
    for _ in range(50):
        m.buffer.add(np.zeros(dx), np.zeros(du), 1.0, np.zeros(dx), False)
        m.model_based.fictional.add(np.zeros(dx), np.zeros(du), -1.0, np.zeros(dx), False)
    b = m._sample_batches(imagining=True)
    assert b.reward.shape == (3 * (1 + 4), 16)
    source = b.reward[:, 0]
    np.testing.assert_array_equal(source, np.tile([1, -1, -1, -1, -1], 3))
    assert m._sample_batches(imagining=False).reward.shape == (3, 16)


def test_learned_models_need_a_task_with_reward_function():
    with pytest.raises(ValueError, match="get_state"):
        nafrl.NAF("Pendulum-v1", model="linear", imagination_length=5)
    with pytest.raises(ValueError, match="needs a dynamics model"):
        nafrl.NAF("nafrl/ReacherSingle-v1", imagination_length=5)


def test_model_based_run_saved_and_resumed_equals_uninterrupted(tmp_path):
    kw = dict(model="linear", imagination_length=3, refit_every=2, **SMALL)
    full = nafrl.NAF("nafrl/ReacherSingle-v1", seed=2, **kw)
    T = full.env.unwrapped.horizon
    full.learn(7 * T)
    part = nafrl.NAF("nafrl/ReacherSingle-v1", seed=2, **kw)
    part.learn(4 * T)  # an episode boundary, with a fitted model and a filled R_f
    path = part.save(tmp_path / "ck.npz")
    resumed = nafrl.NAF.load(path)
    assert len(resumed.model_based.fictional) == len(part.model_based.fictional) > 0
    np.testing.assert_allclose(resumed.model_based.model.F, part.model_based.model.F)
    resumed.learn(3 * T)
    for x, y in zip(jax.tree.leaves(full.state), jax.tree.leaves(resumed.state), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        [r["return"] for r in resumed.episode_log],
        [r["return"] for r in full.episode_log[4:]],
        rtol=1e-5,
    )


def test_imagined_observations_are_projected_onto_valid_ones():
    """With a task projection every imagined next observation is the projection of the
    model's prediction (so a fixed point of project_obs), and the chain continues from it."""
    env = gym.make("nafrl/ReacherSingle-v1").unwrapped
    dx, du, m, length = 13, 3, 4, 5
    agent = naf.make(Config(hidden_sizes=(16, 16)), dx, du)
    state = agent.init(jax.random.PRNGKey(0))
    A = jnp.eye(dx) + 0.05 * jax.random.normal(jax.random.PRNGKey(1), (dx, dx))
    params = (A, 0.1 * jnp.ones((dx, du)))
    x0 = jnp.asarray(np.stack([env.reset(seed=s)[0] for s in range(m)]), jnp.float32)
    t0 = jnp.zeros(m, jnp.int32)
    big = (jnp.full(dx, -1e9), jnp.full(dx, 1e9))
    args = (state, params, x0, t0, jax.random.PRNGKey(2), *big)
    raw = make_imagine(agent, _toy_step, env.reward, length, 100, "gaussian", 0.0, 0.15)(*args)
    proj = make_imagine(
        agent, _toy_step, env.reward, length, 100, "gaussian", 0.0, 0.15, project_fn=env.project_obs
    )(*args)
    assert float(jnp.max(jnp.abs(env.project_obs(raw.next_obs) - raw.next_obs))) > 0.01
    np.testing.assert_allclose(env.project_obs(proj.next_obs), proj.next_obs, atol=1e-5)
    first = jax.vmap(lambda x, u: _toy_step(params, x, u, 0, None))(x0, proj.action[0])
    np.testing.assert_allclose(proj.next_obs[0], env.project_obs(first), atol=1e-5)
    np.testing.assert_allclose(proj.obs[1:], proj.next_obs[:-1])


@pytest.mark.parametrize("model", ["linear", "neural"])
def test_model_refits_and_imagination_compile_nothing_after_warm_up(model, xla_compilations):
    """Refitting on a growing data set and imagining from it reuse compiled code (the neural
    model's fit once compiled a prediction for every data size)."""
    m = nafrl.NAF(
        "nafrl/ReacherSingle-v1", seed=0, model=model, imagination_length=3, refit_every=1, **SMALL
    )
    T = m.env.unwrapped.horizon
    m.learn(4 * T)  # fits, imagination and the train step with real + fictional batches
    with xla_compilations() as compiled:
        m.learn(4 * T)  # four more refits, each on more data
    assert len(m.model_based.fictional) > 0
    assert compiled == []
