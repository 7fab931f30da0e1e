"""The user API: determinism, predict, save/load, divergence handling, and bad input."""

import gymnasium as gym
import jax
import numpy as np
import pytest

import nafrl
from nafrl.agents import ALGORITHMS, algorithm_names, make_agent
from nafrl.api import OffPolicyAgent, TrainingDivergedError, agent_class
from nafrl.checkpoint import CheckpointError
from nafrl.config import Config, ConfigError
from nafrl.env_utils import EnvError
from nafrl.rollout import evaluate_policy, run_episode

SMALL = dict(
    hidden_sizes=(32, 32),
    learning_starts=200,
    batch_size=32,
    eval_interval=0,
    checkpoint_interval=0,
)


def _params_equal(a, b):
    return all(
        np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


@pytest.mark.parametrize("cls", [nafrl.NAF, nafrl.DDPG])
def test_same_seed_same_run(cls):
    runs = []
    for _ in range(2):
        m = cls("Pendulum-v1", seed=3, **SMALL)
        m.learn(800)
        runs.append(m)
    a, b = runs
    assert [r["return"] for r in a.episode_log] == [r["return"] for r in b.episode_log]
    np.testing.assert_array_equal(a.buffer.data["action"], b.buffer.data["action"])
    assert _params_equal(a.state, b.state)
    c = cls("Pendulum-v1", seed=4, **SMALL)
    c.learn(400)
    assert not np.array_equal(c.buffer.data["action"][:400], a.buffer.data["action"][:400])


def test_learn_continues_and_predict_shapes():
    m = nafrl.NAF("Pendulum-v1", seed=0, **SMALL)
    m.learn(300)
    assert m.num_timesteps == 300 and m.num_episodes == 1  # Pendulum episodes last 200 steps
    m.learn(150)
    assert m.num_timesteps == 450 and len(m.buffer) == 450
    obs = np.zeros(3, np.float32)
    a, state = m.predict(obs)
    assert state is None and a.shape == (1,) and -2.0 <= a[0] <= 2.0  # env bounds [-2, 2]
    batch, _ = m.predict(np.zeros((7, 3), np.float32))
    assert batch.shape == (7, 1)
    np.testing.assert_allclose(batch[0], a, rtol=1e-6)
    noisy = np.array([m.predict(obs, deterministic=False)[0][0] for _ in range(50)])
    assert noisy.std() > 0.05
    with pytest.raises(ValueError, match=r"expected \(3,\)"):
        m.predict(np.zeros(4))


@pytest.mark.parametrize(
    "options", [{}, {"layer_norm": True, "clip_target": True}, {"obs_norm": True}]
)
@pytest.mark.parametrize("cls", [nafrl.NAF, nafrl.DDPG])
def test_save_load_identical_actions_and_state(cls, options, tmp_path):
    m = cls("Pendulum-v1", seed=1, **SMALL, **options)
    m.learn(500)
    if options.get("clip_target"):  # the reward range the target clip keeps is saved
        lo, hi = np.asarray(m.state.reward_range)
        rewards = m.buffer.data["reward"][:500]
        assert rewards.min() <= lo <= hi <= rewards.max() and hi - lo > 1.0
    path = m.save(tmp_path / "model.npz")
    loaded = cls.load(path)
    obs = np.random.default_rng(0).standard_normal((20, 3)).astype(np.float32)
    np.testing.assert_array_equal(m.predict(obs)[0], loaded.predict(obs)[0])
    assert _params_equal(m.state, loaded.state)
    assert loaded.num_timesteps == 500 and len(loaded.buffer) == 500
    np.testing.assert_array_equal(loaded.buffer.data["obs"][:500], m.buffer.data["obs"][:500])
    assert loaded.config == m.config
    # The cumulative time split goes on from where it was (it was reset on resume once).
    assert loaded.time_split() == m.time_split() and m.time_split()["time_update"] > 0
    # Loading through the base class dispatches on the stored algorithm.
    assert type(nafrl.api.OffPolicyAgent.load(path)) is cls
    other = nafrl.DDPG if cls is nafrl.NAF else nafrl.NAF
    with pytest.raises(CheckpointError, match="not"):
        other.load(path)


@pytest.mark.parametrize("cls", [nafrl.NAF, nafrl.DDPG])
def test_uniform_warmup_fills_the_box_then_the_policy_acts_and_resumes_exactly(cls, tmp_path):
    options = {**SMALL, "learning_starts": 400, "warmup": "uniform", "noise_scale": 0.0}
    m = cls("Pendulum-v1", seed=2, **options)
    m.learn(300)
    path = m.save(tmp_path / "mid.npz")
    m.learn(300)
    actions = m.buffer.data["action"][:600, 0]
    warm, acting = actions[:400], actions[400:]
    # Uniform on [-1, 1]: mean 0, std 1/sqrt(3), and every fifth of the box visited.
    assert abs(warm.mean()) < 0.1 and abs(warm.std() - 3**-0.5) < 0.05
    assert np.histogram(warm, bins=5, range=(-1, 1))[0].min() > 50
    # Independent draws jump by E|a - a'| = 2/3 per step; after learning_starts the
    # noise-free policy mu(x) acts, and x (so mu) changes little from step to step.
    assert abs(np.abs(np.diff(warm)).mean() - 2 / 3) < 0.08
    assert np.abs(np.diff(acting)).mean() < 0.2
    # A run resumed inside the warm-up draws the same actions as the uninterrupted one.
    resumed = cls.load(path)
    resumed.learn(100)
    np.testing.assert_array_equal(resumed.buffer.data["action"][:400], warm[:, None])


def test_save_is_atomic_and_checkpoint_is_not_pickle(tmp_path):
    m = nafrl.NAF("Pendulum-v1", seed=0, **SMALL)
    m.learn(250)
    path = m.save(tmp_path / "ck.npz")
    assert [p.name for p in tmp_path.iterdir()] == ["ck.npz"]  # no temporary left behind
    with np.load(path, allow_pickle=False) as z:  # loads without pickle
        assert all(z[k].dtype != object for k in z.files)


def test_corrupt_truncated_and_foreign_checkpoints_fail_clearly(tmp_path):
    m = nafrl.NAF("Pendulum-v1", seed=0, **SMALL)
    m.learn(210)
    good = m.save(tmp_path / "good.npz").read_bytes()
    (tmp_path / "trunc.npz").write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        nafrl.NAF.load(tmp_path / "trunc.npz")
    np.savez(tmp_path / "foreign.npz", w=np.zeros(3))
    with pytest.raises(CheckpointError, match="not a nafrl checkpoint"):
        nafrl.NAF.load(tmp_path / "foreign.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(CheckpointError):
        nafrl.NAF.load(tmp_path / "text.npz")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        nafrl.NAF.load(tmp_path / "missing.npz")
    with pytest.raises(CheckpointError, match="observation/action sizes"):
        nafrl.NAF.load(tmp_path / "good.npz", env="InvertedPendulum-v5")


def test_unknown_env_and_discrete_actions_are_clear_errors(tmp_path):
    with pytest.raises(EnvError, match="unknown env id 'NoSuchEnv-v9'"):
        nafrl.NAF("NoSuchEnv-v9", run_dir=tmp_path / "r")
    with pytest.raises(EnvError, match="NAF needs continuous actions"):
        nafrl.NAF("CartPole-v1", run_dir=tmp_path / "r")
    with pytest.raises(EnvError, match="DDPG needs continuous actions"):
        nafrl.DDPG(gym.make("CartPole-v1"))
    assert not (tmp_path / "r").exists()  # nothing written before the error


@pytest.mark.parametrize(
    "field,value",
    [
        ("learning_rate", 0.0),
        ("learning_rate", -1e-3),
        ("batch_size", 0),
        ("tau", 0.0),
        ("tau", 1.5),
        ("gamma", 1.1),
        ("updates_per_step", 0),
        ("buffer_size", 0),
        ("exploration", "pink"),
        ("noise_scale", -0.1),
        ("hidden_sizes", (0,)),
        ("model", "gp"),
        ("ilqg_fraction", 2.0),
        ("planner", "shooting"),
        ("model_prior", "dirichlet"),
        ("kl_step", 0.0),
        ("mpc_horizon", 0),
        ("mpc_iterations", 0),
        ("mpc_replan_every", 0),
        ("mpc_replan_every", 21),
        ("ilqg_iterations", 0),
        ("warmup", "random"),
    ],
)
def test_bad_config_values_name_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        nafrl.NAF("Pendulum-v1", **{field: value})


def test_unknown_config_field_lists_accepted():
    with pytest.raises(ConfigError, match="unknown config field.*lerning_rate.*accepted"):
        nafrl.NAF("Pendulum-v1", lerning_rate=1e-3)
    with pytest.raises(ConfigError, match="DDPG does not support exploration='precision'"):
        nafrl.DDPG("Pendulum-v1", exploration="precision")


class _NaNAfter(gym.Wrapper):
    def __init__(self, env, after):
        super().__init__(env)
        self.after, self.t = after, 0

    def step(self, action):
        obs, r, term, trunc, info = self.env.step(action)
        self.t += 1
        # A finite reward too large for float32 Q values (NaN rewards are refused at the step).
        return obs, (3e38 if self.t > self.after else r), term, trunc, info


def test_nan_loss_stops_training_and_keeps_last_good_checkpoint(tmp_path):
    env = _NaNAfter(gym.make("Pendulum-v1"), after=650)
    m = nafrl.NAF(
        env, seed=0, run_dir=tmp_path, tensorboard=False, **{**SMALL, "checkpoint_interval": 1}
    )
    with pytest.raises(TrainingDivergedError, match="non-finite"):
        m.learn(2000)
    ck = nafrl.NAF.load(tmp_path / "checkpoint.npz", env=gym.make("Pendulum-v1"))
    assert ck.num_episodes == 3 and ck.num_timesteps == 600  # the last good episode boundary
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(ck.state.params))


@pytest.mark.parametrize("cls", [nafrl.NAF, nafrl.DDPG])
def test_batch_norm_trains_its_statistics_and_round_trips(cls, tmp_path):
    m = cls("Pendulum-v1", seed=0, **{**SMALL, "batch_norm": True})
    stats0 = jax.tree.map(np.asarray, m.state.params["batch_stats"])
    m.learn(400)
    stats1 = m.state.params["batch_stats"]
    moved = [
        not np.allclose(a, b)
        for a, b in zip(jax.tree.leaves(stats0), jax.tree.leaves(stats1), strict=True)
    ]
    assert all(moved)  # running means/variances follow the data
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(m.state))
    loaded = cls.load(m.save(tmp_path / "bn.npz"))
    obs = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    np.testing.assert_array_equal(m.predict(obs)[0], loaded.predict(obs)[0])


def test_learn_leaves_the_garbage_collector_as_it_found_it():
    """learn() freezes the objects alive at its start for speed and unfreezes them at the
    end; a program's own gc.freeze() stays in force."""
    import gc

    m = nafrl.NAF("Pendulum-v1", seed=0, **SMALL)
    m.learn(30)
    assert gc.get_freeze_count() == 0
    gc.freeze()
    try:
        assert gc.get_freeze_count() > 0
        m.learn(30)
        assert gc.get_freeze_count() > 0  # (objects freed by refcount leave it, so not ==)
    finally:
        gc.unfreeze()


class _GrowingEpisodes(gym.Wrapper):
    """Pendulum whose k-th episode is truncated after 20 + k steps: every length is new."""

    def __init__(self) -> None:
        super().__init__(gym.make("Pendulum-v1"))
        self.limit, self.t = 19, 0

    def reset(self, **kwargs):
        self.limit, self.t = self.limit + 1, 0
        return self.env.reset(**kwargs)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.t += 1
        return obs, reward, terminated, truncated or self.t >= self.limit, info


def test_training_compiles_nothing_after_the_first_episodes(xla_compilations):
    """The hot loop is compiled once: later episodes of new lengths and test episodes trigger
    no XLA compilation (the episode metrics once compiled a stack for every new length,
    0.2-0.5 s each)."""
    m = nafrl.NAF(
        _GrowingEpisodes(), seed=0, **{**SMALL, "learning_starts": 50, "eval_interval": 3}
    )
    m.learn(150)  # compiles the step with and without updates, acting and evaluation
    n_before = len(m.episode_log)
    with xla_compilations() as compiled:
        m.learn(300)
    lengths = [r["length"] for r in m.episode_log]
    assert len(lengths) - n_before >= 5 and len(set(lengths)) == len(lengths)
    assert all(np.isfinite(r["q_loss"]) for r in m.episode_log[n_before:])
    assert compiled == []


def test_one_algorithm_registry_names_every_class_and_agent():
    assert algorithm_names() == tuple(ALGORITHMS) == ("naf", "ddpg")
    # The config's per-algorithm option table names the same algorithms.
    from nafrl.config import ALGOS

    assert tuple(ALGORITHMS) == ALGOS
    assert agent_class("naf") is nafrl.NAF and agent_class("ddpg") is nafrl.DDPG
    for name in algorithm_names():
        assert agent_class(name).algo == name
    # The registry builds each algorithm's own agent: NAF has no separate actor, DDPG has one.
    assert make_agent("naf", Config(), 3, 1).init(jax.random.PRNGKey(0)).actor_params is None
    assert make_agent("ddpg", Config(), 3, 1).init(jax.random.PRNGKey(0)).actor_params is not None
    with pytest.raises(ValueError, match="unknown algorithm 'sac'; accepted: naf, ddpg"):
        agent_class("sac")
    with pytest.raises(ValueError, match="unknown algorithm 'sac'; accepted: naf, ddpg"):
        make_agent("sac", Config(), 3, 1)
    with pytest.raises(TypeError, match="not in nafrl.agents.ALGORITHMS"):
        type("SAC", (OffPolicyAgent,), {"algo": "sac"})


class _Countdown(gym.Env):
    """Reward t at step t; terminates after ``n`` steps; the observation is (t, seed)."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float64)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self, n):
        self.n = n

    def reset(self, *, seed=None, options=None):
        self.t, self.seed_ = 0, seed
        return np.array([0.0, seed or 0]), {}

    def step(self, action):
        r, self.t = float(self.t), self.t + 1
        return np.array([self.t, self.seed_ or 0]), r, self.t >= self.n, False, {}


def test_run_episode_and_evaluate_policy_count_steps_and_rewards():
    env = _Countdown(5)
    seen, frames = [], []
    result = run_episode(
        env,
        lambda o, t: seen.append((t, o.dtype, o[1])) or np.zeros(1),
        seed=7,
        on_step=lambda o, r: frames.append(r),
    )
    assert result == (0 + 1 + 2 + 3 + 4, 5, True)
    assert seen == [(t, np.float32, 7.0) for t in range(5)]  # t counts from 0, float32 obs
    assert frames == [0.0, 0.0, 1.0, 2.0, 3.0, 4.0]  # after the reset, then every step
    assert evaluate_policy(lambda o: np.zeros(1), _Countdown(3), 4, seed=0) == [3.0] * 4
    with pytest.raises(ValueError, match="episodes must be >= 1"):
        evaluate_policy(lambda o: np.zeros(1), env, 0, seed=0)


def test_test_episodes_of_different_training_seeds_are_disjoint():
    """Issue 11 item 6: each run's test episodes start from seeds no other training seed uses."""
    from nafrl.rollout import TEST_SEEDS_PER_RUN, evaluation_seed

    episodes = 10
    sets = [
        set(range(evaluation_seed(s, episodes), evaluation_seed(s, episodes) + episodes))
        for s in (0, 1, 2, 2**32 - 1)
    ]
    assert all(a.isdisjoint(b) for i, a in enumerate(sets) for b in sets[i + 1 :])
    assert min(sets[0]) > 2**32  # above every training seed
    with pytest.raises(ValueError, match="test episodes must be in"):
        evaluation_seed(0, TEST_SEEDS_PER_RUN + 1)

    # The agent's evaluation resets its (copied) test env with exactly these seeds.
    class Spy(gym.Wrapper):
        seen: list[int] = []  # a class attribute, shared with the agent's copy of the env

        @property
        def spec(self):  # no spec: the agent deep-copies this env for its test episodes
            return None

        def reset(self, *, seed=None, options=None):
            Spy.seen.append(seed)
            return super().reset(seed=seed, options=options)

    m = nafrl.NAF(Spy(gym.make("Pendulum-v1")), seed=3, hidden_sizes=(8,))
    m.evaluate(3)
    base = evaluation_seed(3, 3)
    assert Spy.seen == [base, base + 1, base + 2]


@pytest.mark.parametrize("task", ["nafrl/ReacherSingle-v1", "Pendulum-v1"])
def test_evaluate_scores_the_policy_on_a_fresh_env(task):
    """evaluate() returns what the same deterministic policy scores on a freshly made env
    with the same test seeds (its test env once was a copy that could not move the arm)."""
    from nafrl.env_utils import make_env
    from nafrl.rollout import evaluation_seed

    m = nafrl.NAF(task, seed=2, **SMALL)
    m.learn(300)  # a policy that is not the initial one
    got = m.evaluate(episodes=2)["test_return"]
    expected = evaluate_policy(
        lambda o: m.predict(o, deterministic=True)[0],
        make_env(task),
        2,
        seed=evaluation_seed(2, 2),
    )
    assert got == pytest.approx(float(np.mean(expected)), rel=1e-6, abs=1e-9)
