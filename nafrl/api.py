"""The user API: ``NAF`` and ``DDPG`` in the style of Stable-Baselines3, and the training loop.

    model = nafrl.NAF("InvertedPendulum-v5", seed=0, learning_rate=1e-3)
    model.learn(20_000, progress_bar=True)
    action, _ = model.predict(obs, deterministic=True)
    model.save("naf.npz");  model = nafrl.NAF.load("naf.npz")

The loop (:meth:`OffPolicyAgent.learn`) is Algorithm 1, flat: each environment step stores a
transition in R, samples I minibatches, and makes one jitted call that does the I updates and
picks the next action (:func:`nafrl.agents.common.make_train_step`). With a dynamics model it
is Algorithm 2: the loop calls the hooks of
:class:`~nafrl.algorithms.model_based.ModelBasedAcceleration` (who drives the episode,
recording B, imagination into R_f, the I*l : I minibatches, refitting M). The maths lives in
:mod:`nafrl.agents`, test episodes in :mod:`nafrl.rollout`.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

from nafrl.agents import ALGORITHMS, make_agent
from nafrl.agents.common import make_train_step
from nafrl.algorithms.model_based import ModelBasedAcceleration
from nafrl.config import (
    Config,
    check_memory,
    make_config,
    validate_count,
    validate_for_algo,
    validate_seed,
)
from nafrl.env_utils import ActionScaler, check_spaces, env_id, make_env
from nafrl.errors import TrainingDivergedError
from nafrl.logger import RunLogger
from nafrl.persistence import load_agent, save_agent
from nafrl.replay import ReplayBuffer
from nafrl.rollout import evaluate_policy, evaluation_seed
from nafrl.runtime import freeze_gc, unfreeze_gc
from nafrl.types import Batch


class OffPolicyAgent:
    """Shared shell of NAF and DDPG: environment, replay buffer, loop, logging, checkpoints."""

    algo: ClassVar[str] = ""  # a name of nafrl.agents.ALGORITHMS
    _classes: ClassVar[dict[str, type[OffPolicyAgent]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.algo:
            if cls.algo not in ALGORITHMS:
                raise TypeError(
                    f"{cls.__name__}.algo={cls.algo!r} is not in nafrl.agents.ALGORITHMS"
                )
            OffPolicyAgent._classes[cls.algo] = cls

    def __init__(
        self,
        env: str | gym.Env,
        seed: int = 0,
        run_dir: str | os.PathLike | None = None,
        tensorboard: bool = True,
        **config: Any,
    ) -> None:
        cfg = config.pop("config", None)
        cfg = cfg if isinstance(cfg, Config) else make_config(**config)
        self.config: Config = validate_for_algo(cfg, self.algo)
        self.seed = validate_seed(seed)
        self.env = make_env(env, check_finite=True)  # NaN from the env never reaches R
        self.env_id = env_id(self.env)
        self.obs_dim, self.act_dim = check_spaces(self.env, self.algo.upper())
        check_memory(self.config, self.obs_dim, self.act_dim)
        self.scaler = ActionScaler(self.env.action_space)

        self.agent = make_agent(self.algo, self.config, self.obs_dim, self.act_dim)
        self._train_step = make_train_step(self.agent, self.config)
        self._policy = jax.jit(lambda s, o: self.agent.policy(s, o, with_precision=False)[0])
        key = jax.random.PRNGKey(self.seed)
        init_key, self.key = jax.random.split(key)
        self.state = self.agent.init(init_key)
        self.rng = np.random.default_rng(self.seed)  # replay sampling
        self._predict_rng = np.random.default_rng([self.seed, 1])  # never disturbs training
        self.buffer = ReplayBuffer(self.config.buffer_size, self.obs_dim, self.act_dim)
        # Section 5: dynamics model, fictional buffer R_f and episode buffers B, B_old.
        self.model_based: ModelBasedAcceleration | None = None
        if self.config.model != "none":
            self.model_based = ModelBasedAcceleration(self.config, self.env, self.agent)
        self.timers = {"env": 0.0, "update": 0.0}

        self.num_timesteps = 0
        self.num_episodes = 0
        self.wall_time = 0.0  # seconds spent in learn(), summed over calls and resumes
        self.episode_log: list[dict[str, Any]] = []
        self.eval_log: list[dict[str, Any]] = []
        self._obs: np.ndarray | None = None  # None between episodes
        self._guided = False  # is the current episode driven by the iLQG / MPC controller?
        self._noise = jnp.zeros((self.act_dim,), jnp.float32)  # N_t of the current episode
        self._env_seeded = False

        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.logger = RunLogger(self.run_dir, tensorboard) if self.run_dir is not None else None
        self._eval_env: gym.Env | None = None

    # ------------------------------------------------------------------ acting
    def predict(
        self, observation: np.ndarray, deterministic: bool = True
    ) -> tuple[np.ndarray, None]:
        """Action(s) in the environment's bounds for one observation (dx,) or a batch (B, dx).

        Returns ``(action, None)`` as Stable-Baselines3 does. With ``deterministic=False`` the
        action gets Gaussian noise of standard deviation ``noise_scale`` (normalised units).
        """
        obs = np.asarray(observation, np.float32)
        if obs.shape[-1:] != (self.obs_dim,) or obs.ndim not in (1, 2):
            raise ValueError(
                f"observation has shape {obs.shape}, expected ({self.obs_dim},) or "
                f"(batch, {self.obs_dim})"
            )
        if not np.all(np.isfinite(obs)):
            raise ValueError(f"observation contains NaN or inf ({obs}); expected finite values")
        a = np.asarray(self._policy(self.state, obs.reshape(-1, self.obs_dim)), np.float64)
        if not deterministic:
            a = a + self.config.noise_scale * self._predict_rng.standard_normal(a.shape)
        u = self.scaler.to_env(a)
        return (u[0] if obs.ndim == 1 else u), None

    # ------------------------------------------------------------------ learning
    def learn(
        self,
        total_timesteps: int,
        progress_bar: bool = False,
        callback: Callable[[OffPolicyAgent], bool | None] | None = None,
    ) -> OffPolicyAgent:
        """Train for ``total_timesteps`` more environment steps (Algorithm 1); continues the
        previous call's episode, buffer and counters. ``callback(self)`` is called after each
        finished episode (after its logging, evaluation and checkpoint); returning ``False``
        stops training there, at the episode boundary."""
        if not isinstance(total_timesteps, int | np.integer) or total_timesteps < 0:
            raise ValueError(f"total_timesteps must be an integer >= 0, got {total_timesteps!r}")
        target = self.num_timesteps + int(total_timesteps)
        self._run_until(target, progress_bar, callback)
        return self

    def _run_until(
        self,
        target: int,
        progress_bar: bool,
        callback: Callable[[OffPolicyAgent], bool | None] | None = None,
    ) -> None:
        from tqdm.auto import tqdm

        cfg = self.config
        bar = tqdm(
            total=target,
            initial=self.num_timesteps,
            disable=not progress_bar,
            unit="step",
            dynamic_ncols=True,
            desc=f"{self.algo.upper()} {self.env_id or ''}",
        )
        empty = self._empty_batches()
        mb = self.model_based
        pending = None  # next step's minibatches, gathered while the jitted call runs
        t_start = time.perf_counter()
        wall0 = self.wall_time
        frozen = freeze_gc()  # objects alive now leave the GC's scans while training
        try:
            while self.num_timesteps < target:
                obs = self._obs if self._obs is not None else self._begin_episode()
                action = self._action
                if cfg.warmup == "uniform" and self.num_timesteps < cfg.learning_starts:
                    action = self._warmup_action()
                if self._guided:  # Algorithm 2: u_t = mu'(x_t, t) + N_t, mu' = iLQG / MPC
                    if mb is None:
                        raise RuntimeError("a guided episode without model-based acceleration")
                    action = mb.guided_action(obs, self._ep_len, np.asarray(self._noise))
                t0 = time.perf_counter()
                next_obs, reward, terminated, truncated, _ = self.env.step(
                    self.scaler.to_env(action)
                )
                next_obs = np.asarray(next_obs, np.float32)
                self.buffer.add(obs, action, float(reward), next_obs, bool(terminated))
                if mb is not None:
                    mb.record(action, next_obs)
                self.num_timesteps += 1
                self._ep_return += float(reward)
                self._ep_len += 1
                t1 = time.perf_counter()
                self.timers["env"] += t1 - t0

                # Algorithm 2: every m steps, m states of B_old rolled l steps into R_f.
                imagining = False
                if mb is not None:
                    imagining, self.key = mb.maybe_imagine(
                        self.num_timesteps, self.num_episodes, self.state, self.rng, self.key
                    )

                # Algorithm 1 (and 2): I minibatches from R (and I*l from R_f), updated in
                # one jitted call that also picks the next action.
                t2 = time.perf_counter()
                do_update = len(self.buffer) >= max(cfg.batch_size, cfg.learning_starts)
                if not do_update:
                    batches = empty
                elif pending is not None:
                    batches, pending = self.buffer.complete(pending), None
                elif mb is not None:  # I from R and, while imagining, I*l from R_f
                    batches = mb.sample_batches(self.buffer, self.rng, imagining)
                else:
                    batches = self.buffer.sample(self.rng, cfg.batch_size, cfg.updates_per_step)
                out = self._train_step(
                    self.state,
                    self._noise,
                    batches,
                    next_obs,
                    self.key,
                    do_update=do_update,
                    noise_kind=self._noise_kind(),
                )
                self.state, self._noise, self.key = out.state, out.noise, out.key
                # The call runs asynchronously: draw the next step's minibatches meanwhile
                # (the same random numbers and rows as sampling after the next add). Only
                # inside one learn() call and episode, so nothing pending is ever saved.
                if (
                    mb is None
                    and not (terminated or truncated)
                    and self.num_timesteps < target
                    and len(self.buffer) + 1 >= max(cfg.batch_size, cfg.learning_starts)
                ):
                    pending = self.buffer.presample(self.rng, cfg.batch_size, cfg.updates_per_step)
                self._action = np.asarray(out.action)
                self.timers["update"] += time.perf_counter() - t2
                if do_update:
                    self._ep_metrics.append(out.metrics)
                self._obs = next_obs
                bar.update(1)
                if terminated or truncated:
                    self.wall_time = wall0 + time.perf_counter() - t_start
                    self._end_episode(bar)
                    if callback is not None and callback(self) is False:
                        break
        finally:
            unfreeze_gc(frozen)
            self.wall_time = wall0 + time.perf_counter() - t_start
            bar.close()
            if self.logger is not None:
                self.logger.flush()

    def _warmup_action(self) -> np.ndarray:
        """A uniform random action for step ``num_timesteps`` (config.warmup='uniform'). Its
        own generator per step, so it moves no training stream and a resumed run draws the
        same actions."""
        rng = np.random.default_rng([self.seed, 2, self.num_timesteps])
        return rng.uniform(-1.0, 1.0, self.act_dim).astype(np.float32)

    def _noise_kind(self) -> str:
        cfg = self.config
        if cfg.exploration == "precision" and self.num_timesteps < cfg.precision_start:
            return "ou"
        return cfg.exploration

    def _empty_batches(self) -> Batch:
        shape = (self.config.updates_per_step, self.config.batch_size)
        z = np.zeros
        return Batch(
            z((*shape, self.obs_dim), np.float32),
            z((*shape, self.act_dim), np.float32),
            z(shape, np.float32),
            z((*shape, self.obs_dim), np.float32),
            z(shape, np.float32),
        )

    def _begin_episode(self) -> np.ndarray:
        """Reset the env and the episode's state; returns the first observation."""
        if not self._env_seeded:
            obs, _ = self.env.reset(seed=self.seed)
            self._env_seeded = True
        else:
            obs, _ = self.env.reset()
        self._obs = np.asarray(obs, np.float32)
        self._noise = jnp.zeros((self.act_dim,), jnp.float32)  # a new random process N
        out = self._train_step(
            self.state,
            self._noise,
            self._empty_batches(),
            self._obs,
            self.key,
            do_update=False,
            noise_kind=self._noise_kind(),
        )
        self.state, self._noise, self.key = out.state, out.noise, out.key
        self._action = np.asarray(out.action)
        self._ep_return, self._ep_len, self._ep_metrics = 0.0, 0, []
        self._guided = False
        if self.model_based is not None:  # Algorithm 2: mu' from {mu, pi_iLQG}
            self._guided, self.key = self.model_based.begin_episode(self._obs, self.key)
        self._ep_t0, self._ep_steps0 = time.perf_counter(), self.num_timesteps
        return self._obs

    def _end_episode(self, bar: Any) -> None:
        self.num_episodes += 1
        self._obs = None
        if self.model_based is not None:
            self.model_based.end_episode()  # M <- Fit(B) every n episodes
        metrics = {"q_loss": float("nan"), "mean_v": float("nan")}
        if self._ep_metrics:
            # One transfer of the whole list: jnp.stack would compile anew for every new
            # episode length (0.2-0.5 s each, so most episodes of a task that terminates).
            per_step = jax.device_get(self._ep_metrics)
            stacked = {k: np.array([m[k] for m in per_step]) for k in per_step[0]}
            metrics = {k: float(np.mean(v)) for k, v in stacked.items()}
            if not np.all(np.isfinite(stacked["q_loss"])):
                ckpt = self.run_dir / "checkpoint.npz" if self.run_dir else None
                kept = (
                    f"the last good checkpoint is kept in {ckpt}"
                    if ckpt is not None and ckpt.is_file()
                    else "no checkpoint was written"
                )
                raise TrainingDivergedError(
                    f"the Q loss became non-finite in episode {self.num_episodes} (step "
                    f"{self.num_timesteps}); training stopped and {kept}. Try a smaller "
                    "learning_rate, grad_clip_norm > 0 or batch_norm."
                )
        dt = max(time.perf_counter() - self._ep_t0, 1e-9)
        row = {
            "episode": self.num_episodes,
            "total_steps": self.num_timesteps,
            "return": self._ep_return,
            "length": self._ep_len,
            "guided": int(self._guided),
            **metrics,
            "steps_per_sec": (self.num_timesteps - self._ep_steps0) / dt,
            "wall_time": self.wall_time,
            **self.time_split(),
        }
        self.episode_log.append(row)
        if self.logger is not None:
            self.logger.log_episode(row)
        cfg = self.config
        postfix = {"ep": self.num_episodes, "return": f"{self._ep_return:.3g}"}
        if cfg.eval_interval and self.num_episodes % cfg.eval_interval == 0:
            ev = self.evaluate(cfg.eval_episodes)
            postfix["test"] = f"{ev['test_return']:.3g}"
        bar.set_postfix(postfix, refresh=False)
        if (
            self.run_dir is not None
            and cfg.checkpoint_interval
            and self.num_episodes % cfg.checkpoint_interval == 0
        ):
            self.save(self.run_dir / "checkpoint.npz")

    def time_split(self) -> dict[str, float]:
        """Cumulative seconds in env steps, jitted updates, model fits and imagination."""
        mb = self.model_based.timers if self.model_based is not None else {}
        return {
            "time_env": self.timers["env"],
            "time_update": self.timers["update"],
            "time_model_fit": mb.get("model_fit", 0.0),
            "time_imagination": mb.get("imagination", 0.0),
        }

    def restore_time_split(self, split: Mapping[str, float]) -> None:
        """Inverse of :meth:`time_split` (a resumed run goes on counting); missing keys are 0."""
        self.timers["env"] = split.get("time_env", 0.0)
        self.timers["update"] = split.get("time_update", 0.0)
        if self.model_based is not None:
            self.model_based.timers["model_fit"] = split.get("time_model_fit", 0.0)
            self.model_based.timers["imagination"] = split.get("time_imagination", 0.0)

    def evaluate(self, episodes: int = 5) -> dict[str, float]:
        """Run deterministic test episodes (mu(x), no noise) from fixed seeds; log the mean."""
        validate_count("episodes", episodes)
        if self._eval_env is None:
            # A separate instance, so test episodes never disturb the training episode's RNG.
            # gym.make(spec) rebuilds registered envs and recordable wrappers; an env without
            # a spec, or with a wrapper of the user's that gym.make cannot rebuild, is copied.
            spec = getattr(self.env, "spec", None)
            try:
                self._eval_env = gym.make(spec) if spec is not None else copy.deepcopy(self.env)
            except (ValueError, gym.error.Error):
                self._eval_env = copy.deepcopy(self.env)
        returns = evaluate_policy(
            lambda o: self.predict(o, deterministic=True)[0],
            self._eval_env,
            episodes,
            seed=evaluation_seed(self.seed, episodes),  # disjoint from other training seeds' tests
        )
        row = {
            "episode": self.num_episodes,
            "total_steps": self.num_timesteps,
            "test_return": float(np.mean(returns)),
            "test_return_std": float(np.std(returns)),
            "wall_time": self.wall_time,
        }
        self.eval_log.append(row)
        if self.logger is not None:
            self.logger.log_eval(row)
        return row

    # ------------------------------------------------------------------ save / load
    def save(self, path: str | Path) -> Path:
        """Write parameters, optimiser state, targets, replay buffer, RNG keys and counters
        to one safe ``.npz`` file, atomically (:mod:`nafrl.persistence`). Never writes
        non-finite parameters. Saving mid-episode resumes at a new episode."""
        return save_agent(self, path)

    @classmethod
    def load(
        cls,
        path: str | Path,
        env: str | gym.Env | None = None,
        run_dir: str | Path | None = None,
        **kwargs: Any,
    ) -> OffPolicyAgent:
        """Rebuild an agent from :meth:`save`'s file; ``env`` defaults to the saved env id.
        Every field and array is validated (:class:`nafrl.errors.CheckpointError`)."""
        expected = None if cls is OffPolicyAgent else cls
        classes = {name: agent_class(name) for name in ALGORITHMS}
        return load_agent(path, classes, expected, env=env, run_dir=run_dir, **kwargs)

    def close(self) -> None:
        for e in {id(self.env): self.env, id(self._eval_env): self._eval_env}.values():
            if e is not None:
                e.close()
        if self.logger is not None:
            self.logger.close()


class NAF(OffPolicyAgent):
    """Continuous Q-learning with normalized advantage functions (section 4, Algorithm 1).

    ``NAF(env, seed=0, run_dir=None, **config)``: ``env`` is a Gymnasium id or environment,
    config fields are those of :class:`nafrl.config.Config` (``learning_rate``, ``batch_size``,
    ``updates_per_step``, ``exploration``, ...).
    """

    algo = "naf"


class DDPG(OffPolicyAgent):
    """The DDPG baseline (section 6.1) with NAF's network sizes and updates per step."""

    algo = "ddpg"


def agent_class(algo: str) -> type[OffPolicyAgent]:
    """The user-facing class of a registered algorithm (``NAF`` for 'naf', ...); an algorithm
    of :data:`nafrl.agents.ALGORITHMS` without a class of its own gets a plain subclass."""
    if algo not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algo!r}; accepted: {', '.join(ALGORITHMS)}")
    if algo not in OffPolicyAgent._classes:
        type(algo.upper(), (OffPolicyAgent,), {"algo": algo, "__module__": __name__})
    return OffPolicyAgent._classes[algo]


__all__ = [
    "NAF",
    "DDPG",
    "OffPolicyAgent",
    "TrainingDivergedError",
    "agent_class",
    "evaluate_policy",
]
