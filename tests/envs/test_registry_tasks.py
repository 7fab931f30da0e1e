"""Generic checks over every task in the registry (issue #3 acceptance criteria).

Each test is parametrised over ``TASKS``, so tasks added to
``nafrl/envs/registry.py`` are covered automatically.
"""

from __future__ import annotations

import warnings

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from nafrl.envs import TASKS, MujocoTaskEnv, make, register_all

IDS = list(TASKS)
REWARD_IDS = [i for i in IDS if TASKS[i].has_reward_fn]
# Gymnasium warns about every unbounded Box (observations here are unbounded by design)
# and, when checking a wrapped env, that it is not the unwrapped one.
_EXPECTED_WARNINGS = ("infinity", "is different from the unwrapped version")


def _unwrapped(task_id: str, **kwargs) -> MujocoTaskEnv:
    env = gym.make(task_id, **kwargs).unwrapped
    assert isinstance(env, MujocoTaskEnv)
    return env


def _actions(env: gym.Env, n: int, seed: int, scale: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (scale * rng.uniform(-1, 1, (n, *env.action_space.shape))).astype(np.float32)


def _rollout(env: gym.Env, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    obs, rew, flags = [], [], []
    for a in actions:
        o, r, term, trunc, _ = env.step(a)
        obs.append(o)
        rew.append(r)
        flags.append((term, trunc))
    return np.array(obs), np.array(rew), np.array(flags)


@pytest.mark.parametrize("task_id", IDS)
def test_env_checker_passes(task_id: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = gym.make(task_id)
        check_env(env.unwrapped, skip_render_check=True)
        check_env(env, skip_render_check=True)
        env.close()
        env = gym.make(task_id, render_mode="rgb_array", width=48, height=48)
        check_env(env.unwrapped)
        env.close()
    unexpected = [
        str(w.message)
        for w in caught
        if not any(k in str(w.message) for k in _EXPECTED_WARNINGS)
        and issubclass(w.category, UserWarning)
    ]
    assert unexpected == []


@pytest.mark.parametrize("task_id", IDS)
def test_spec_matches_env(task_id: str) -> None:
    spec = TASKS[task_id]
    env = gym.make(task_id)
    e = env.unwrapped
    assert isinstance(e, MujocoTaskEnv)
    assert e.horizon == spec.horizon > 0
    assert env.spec is not None and env.spec.max_episode_steps == spec.horizon
    assert e.has_reward_fn == spec.has_reward_fn
    assert spec.scripted is None or callable(spec.scripted)
    assert isinstance(env.action_space, gym.spaces.Box)
    assert env.action_space.shape == (e.model.nu,)
    assert np.all(env.action_space.low == -1) and np.all(env.action_space.high == 1)
    obs, _ = env.reset(seed=0)
    assert obs.dtype == env.observation_space.dtype == np.float64
    assert obs.shape == env.observation_space.shape == (e.obs_size,)
    assert np.all(np.isfinite(obs))


@pytest.mark.parametrize("task_id", IDS)
def test_same_seed_same_trajectory(task_id: str) -> None:
    a, b = _unwrapped(task_id), _unwrapped(task_id)
    actions = _actions(a, 25, seed=1)
    oa, _ = a.reset(seed=123)
    ob, _ = b.reset(seed=123)
    np.testing.assert_array_equal(oa, ob)
    ra, rb = _rollout(a, actions), _rollout(b, actions)
    for x, y in zip(ra, rb, strict=True):
        np.testing.assert_array_equal(x, y)
    # Reseeding the same instance reproduces the first episode too.
    oc, _ = a.reset(seed=123)
    np.testing.assert_array_equal(oa, oc)
    np.testing.assert_array_equal(_rollout(a, actions)[0], ra[0])


@pytest.mark.parametrize("task_id", IDS)
def test_state_round_trip_is_bit_exact(task_id: str) -> None:
    env = _unwrapped(task_id)
    env.reset(seed=3)
    _rollout(env, _actions(env, 7, seed=2))
    state = env.get_state()
    assert state.ndim == 1 and state.dtype == np.float64 and state.shape == (env.state_size,)
    obs_now = env.observe()
    actions = _actions(env, 15, seed=4)
    first = _rollout(env, actions)
    # Same instance, restored.
    env.set_state(state)
    assert env.step_count == 7
    np.testing.assert_array_equal(env.observe(), obs_now)
    second = _rollout(env, actions)
    # A fresh instance in another episode, restored: the state vector is complete.
    other = _unwrapped(task_id)
    other.reset(seed=99)
    _rollout(other, _actions(other, 3, seed=5))
    other.set_state(state)
    third = _rollout(other, actions)
    for x, y, z in zip(first, second, third, strict=True):
        np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(x, z)
    np.testing.assert_array_equal(env.get_state(), other.get_state())
    with pytest.raises(ValueError, match="state has shape"):
        env.set_state(state[:-1])


@pytest.mark.parametrize("task_id", IDS)
def test_truncates_exactly_at_horizon(task_id: str) -> None:
    env = gym.make(task_id)
    T = TASKS[task_id].horizon
    env.reset(seed=0)
    zero = np.zeros(env.action_space.shape, np.float32)
    for t in range(1, T + 1):
        obs, _, terminated, truncated, _ = env.step(zero)
        assert env.unwrapped.step_count == t
        np.testing.assert_array_equal(env.unwrapped.observe(), obs)
        if terminated:  # a true terminal state (e.g. a fallen walker) ends it earlier
            assert not truncated or t == T
            return
        assert truncated == (t == T), t


@pytest.mark.parametrize("task_id", REWARD_IDS)
def test_jax_reward_equals_env_reward(task_id: str) -> None:
    env = _unwrapped(task_id)
    xs, us, rs = [], [], []
    for seed in (0, 1):
        obs, _ = env.reset(seed=seed)
        for a in _actions(env, 20, seed=seed, scale=1.5):  # includes clipped actions
            nxt, r, terminated, _, _ = env.step(a)
            xs.append(obs)
            us.append(a)
            rs.append(r)
            obs = nxt
            if terminated:
                break
    X, U, R = np.array(xs), np.array(us), np.array(rs)
    batched = jax.jit(jax.vmap(env.reward))(jnp.asarray(X), jnp.asarray(U))
    assert batched.shape == (len(R),)
    np.testing.assert_allclose(np.asarray(batched), R, rtol=0, atol=1e-5)
    single = float(env.reward(X[3], U[3]))
    assert abs(single - R[3]) < 1e-5
    gx, gu = jax.grad(env.reward, argnums=(0, 1))(jnp.asarray(X[0]), jnp.asarray(U[0]) * 0.5)
    assert gx.shape == X[0].shape and gu.shape == U[0].shape
    assert np.all(np.isfinite(gx)) and np.all(np.isfinite(gu))
    assert np.any(gu != 0)  # control cost at least


@pytest.mark.parametrize("task_id", IDS)
def test_render_is_not_blank_and_does_not_perturb(task_id: str) -> None:
    env = _unwrapped(task_id, render_mode="rgb_array", width=64, height=48)
    plain = _unwrapped(task_id)
    actions = _actions(env, 10, seed=7)
    env.reset(seed=5)
    plain.reset(seed=5)
    first = env.render()
    assert first.shape == (48, 64, 3) and first.dtype == np.uint8
    assert first.std() > 5.0  # not a blank frame
    frames, obs = [], []
    for a in actions:
        obs.append(env.step(a)[0])
        frames.append(env.render())
    np.testing.assert_array_equal(np.array(obs), _rollout(plain, actions)[0])
    assert np.abs(frames[-1].astype(int) - first.astype(int)).max() > 0  # the scene moved
    env.close()
    env.close()  # idempotent


@pytest.mark.parametrize("task_id", IDS)
def test_bad_actions_raise_clear_errors(task_id: str) -> None:
    env = _unwrapped(task_id)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(env.action_space.shape))
    env.reset(seed=0)
    n = env.action_space.shape[0]
    with pytest.raises(ValueError, match=rf"shape \({n + 1},\); expected shape \({n},\)"):
        env.step(np.zeros(n + 1))
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros((1, n)))
    bad = np.zeros(n)
    bad[-1] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        env.step(bad)
    bad[-1] = np.inf
    with pytest.raises(ValueError, match="NaN or inf"):
        env.step(bad)
    with pytest.raises(ValueError, match="not numeric"):
        env.step(["a"] * n)
    assert env.step_count == 0  # rejected actions did not advance the episode


@pytest.mark.parametrize("task_id", IDS)
def test_out_of_range_actions_are_clipped(task_id: str) -> None:
    a, b = _unwrapped(task_id), _unwrapped(task_id)
    a.reset(seed=2)
    b.reset(seed=2)
    big = _actions(a, 10, seed=3, scale=5.0)
    ra = _rollout(a, big)
    rb = _rollout(b, np.clip(big, -1, 1))
    for x, y in zip(ra, rb, strict=True):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(a.check_action(big[0]), np.clip(big[0], -1, 1))


def test_unknown_task_id_is_a_clear_error() -> None:
    with pytest.raises(gym.error.Error, match="Nope"):
        gym.make("nafrl/Nope-v1")
    with pytest.raises(ValueError, match="unknown nafrl task 'nafrl/Nope-v1'; known tasks: "):
        make("nafrl/Nope-v1")
    with pytest.raises(KeyError, match="nafrl/Reacher-v1"):
        TASKS["Reacher"]
    # Another version of a known task names the current one.
    with pytest.raises(ValueError, match=r"\(nafrl/Reacher-v1 is the current version; "):
        make("nafrl/Reacher-v99")


def test_register_all_is_idempotent() -> None:
    before = len(gym.registry)
    register_all()
    register_all()
    assert len(gym.registry) == before
    assert all(i in gym.registry for i in IDS)
    assert len(set(IDS)) == len(IDS) >= 5


PROJ_IDS = [i for i in IDS if _unwrapped(i).has_obs_projection]


def test_projection_tasks_are_the_fitted_model_ones() -> None:
    assert {"nafrl/ReacherSingle-v1", "nafrl/GripperSingle-v1"} <= set(PROJ_IDS)


@pytest.mark.parametrize("task_id", PROJ_IDS)
def test_project_obs_fixes_real_observations_and_repairs_perturbed_ones(task_id: str) -> None:
    """project_obs is the identity on observations real states produce, and maps a
    perturbed one to a fixed point (projecting twice changes nothing) whose sin/cos
    pairs have unit norm."""
    env = _unwrapped(task_id)
    env.reset(seed=0)
    obs = np.array([env.step(a)[0] for a in _actions(env, 40, seed=1)])
    np.testing.assert_allclose(np.asarray(env.project_obs(jnp.asarray(obs))), obs, atol=1e-5)
    noisy = jnp.asarray(obs + 0.1 * np.random.default_rng(2).normal(size=obs.shape), jnp.float32)
    once = env.project_obs(noisy)
    np.testing.assert_allclose(np.asarray(env.project_obs(once)), np.asarray(once), atol=1e-5)
    assert float(jnp.max(jnp.abs(once - noisy))) > 0.01  # it did change something
    n = len(env.action_space.low) if "Reacher" in task_id else 3
    s, c = (
        (once[:, n : 2 * n], once[:, :n]) if "Reacher" in task_id else (once[:, :3], once[:, 3:6])
    )
    np.testing.assert_allclose(np.asarray(s**2 + c**2), 1.0, atol=1e-5)
