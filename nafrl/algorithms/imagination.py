"""Imagination rollouts (section 5.2, Algorithm 2): the parts the training loop calls.

- :class:`EpisodeBuffers` holds B (the episodes since the last refit) and B_old (the batch
  the current model was fitted on); rollouts start from B_old's states.
- :func:`make_imagine` builds one jitted call that rolls m start states l steps through a
  pure-JAX model (time-varying linear-Gaussian or neural) under the current policy with
  exploration noise, and returns the l*m fictional transitions with a validity mask.
- :class:`TrueModelImagination` does the same with the task's own simulator (section 6.2's
  best case): B_old keeps the full simulator state beside each observation, and a private
  copy of the environment restarts from it.

Rewards of imagined transitions come from the task's JAX reward r(x_t, u_t), so a learned
model only has to predict the next observation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

from nafrl.agents.common import Agent
from nafrl.env_utils import EnvError
from nafrl.exploration import sample_noise


class Episode(NamedTuple):
    obs: np.ndarray  # (T+1, dx)
    actions: np.ndarray  # (T, du), normalised to [-1, 1]
    states: np.ndarray | None  # (T+1, ds) full simulator states, for the true model


class EpisodeBuffers:
    """B and B_old of Algorithm 2, each of n episodes (nT transitions)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.current: list[Episode] = []
        self.old: list[Episode] = []

    def add(self, episode: Episode) -> bool:
        """Store an episode in B; True when B holds n episodes (time to refit)."""
        self.current.append(episode)
        return len(self.current) >= self.n

    def rotate(self) -> None:
        """B_old <- B, B <- empty (after the model was refitted on B)."""
        self.old, self.current = self.current, []

    @staticmethod
    def stack(episodes: list[Episode]) -> tuple[np.ndarray, np.ndarray]:
        """(E, T+1, dx), (E, T, du) of the episodes that share the most common length."""
        lengths = [len(e.actions) for e in episodes]
        T = max(set(lengths), key=lengths.count)
        keep = [e for e in episodes if len(e.actions) == T]
        return np.stack([e.obs for e in keep]), np.stack([e.actions for e in keep])

    def sample_starts(self, rng: np.random.Generator, m: int) -> tuple[np.ndarray, ...]:
        """m (episode, t) pairs from B_old: observations (m, dx), times (m,), states or None."""
        ep = rng.integers(0, len(self.old), size=m)
        obs, times, states = [], [], []
        for e in ep:
            episode = self.old[e]
            t = int(rng.integers(0, len(episode.actions)))
            obs.append(episode.obs[t])
            times.append(t)
            if episode.states is not None:
                states.append(episode.states[t])
        return (
            np.asarray(obs, np.float32),
            np.asarray(times, np.int32),
            np.asarray(states) if states else None,
        )


class Imagined(NamedTuple):
    """Fictional transitions, leading axes (l, m), and ``valid`` (l, m) marking those inside
    the horizon (rollouts stop at t = T)."""

    obs: Any
    action: Any
    reward: Any
    next_obs: Any
    valid: Any


def make_imagine(
    agent: Agent,
    step_fn: Callable[..., jax.Array],
    reward_fn: Callable[[jax.Array, jax.Array], jax.Array],
    length: int,
    horizon: int,
    noise_kind: str,
    noise_scale: float,
    ou_theta: float,
    model_noise: bool = True,
    project_fn: Callable[[jax.Array], jax.Array] | None = None,
) -> Callable[..., Imagined]:
    """Jitted ``imagine(train_state, model_params, x0 (m, dx), t0 (m,), key, lo, hi)``.

    Each of the m rollouts follows u_k = clip(mu(x_k) + N_k, -1, 1) with its own noise
    process, x_{k+1} = model(x_k, u_k, t0 + k) (with the model's noise), r_k = r(x_k, u_k).
    A rollout stops at the horizon T and as soon as a predicted state leaves the box
    [lo, hi] (the range of the data the model was fitted on, widened by a margin): a local
    model extrapolated far from its data makes up states whose values Q-learning would
    bootstrap from, which we found makes the Q function diverge.
    """

    def imagine(
        state: Any,
        params: Any,
        x0: jax.Array,
        t0: jax.Array,
        key: jax.Array,
        lo: jax.Array,
        hi: jax.Array,
    ) -> Imagined:
        precision = noise_kind == "precision"
        m, du = x0.shape[0], agent.policy(state, x0[:1], with_precision=False)[0].shape[-1]

        def body(carry: tuple, k: jax.Array) -> tuple[tuple, Imagined]:
            x, noise, key, alive = carry
            key, k_noise, k_model = jax.random.split(key, 3)
            mu, L = agent.policy(state, x, with_precision=precision)
            noise_keys = jax.random.split(k_noise, m)
            if L is None or not precision:
                noise = jax.vmap(
                    lambda n, kk: sample_noise(
                        "gaussian" if noise_kind == "precision" else noise_kind,
                        n,
                        kk,
                        noise_scale,
                        ou_theta,
                    )
                )(noise, noise_keys)
            else:
                noise = jax.vmap(
                    lambda n, kk, l_: sample_noise("precision", n, kk, noise_scale, ou_theta, l_)
                )(noise, noise_keys, L)
            u = jnp.clip(mu + noise, -1.0, 1.0)
            t = t0 + k
            t_model = jnp.minimum(t, horizon - 1)
            if model_noise:
                model_keys = jax.random.split(k_model, m)
                x_next = jax.vmap(lambda xi, ui, ti, ki: step_fn(params, xi, ui, ti, ki))(
                    x, u, t_model, model_keys
                )
            else:  # the model's mean prediction
                x_next = jax.vmap(lambda xi, ui, ti: step_fn(params, xi, ui, ti, None))(
                    x, u, t_model
                )
            x_next = x_next.astype(x.dtype)
            if project_fn is not None:  # back onto valid observations (env.project_obs)
                x_next = project_fn(x_next)
            r = jax.vmap(reward_fn)(x, u)
            inside = jnp.all((x_next >= lo) & (x_next <= hi), axis=-1)
            valid = alive & (t < horizon) & inside
            return (x_next, noise, key, valid), Imagined(x, u, r.astype(x.dtype), x_next, valid)

        init = (x0, jnp.zeros((m, du), x0.dtype), key, jnp.ones((m,), bool))
        _, out = jax.lax.scan(body, init, jnp.arange(length))
        return out

    return jax.jit(imagine)


class TrueModelImagination:
    """Imagination rollouts through the task's own simulator (a private copy)."""

    def __init__(
        self,
        env: gym.Env,
        policy: Callable[[np.ndarray], np.ndarray],
        length: int,
        noise_scale: float,
        scaler: Any,
    ) -> None:
        from nafrl.models.simulator import private_copy

        self.env = private_copy(env)
        self.policy, self.length, self.noise_scale, self.scaler = (
            policy,
            length,
            noise_scale,
            scaler,
        )

    def imagine(self, states: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Roll each full simulator state ``length`` steps; a batched policy call per step."""
        env = self.env
        m = len(states)
        alive = np.ones(m, bool)
        x = np.empty((m, env.observation_space.shape[0]), np.float32)
        for i, s in enumerate(states):
            env.set_state(s)
            x[i] = env.observe()
        cur = np.array(states, copy=True)
        out: dict[str, list] = {
            k: [] for k in ("obs", "action", "reward", "next_obs", "terminated")
        }
        for _ in range(self.length):
            u = np.clip(
                self.policy(x)
                + self.noise_scale * rng.standard_normal((m, self.scaler.low.shape[0])),
                -1.0,
                1.0,
            ).astype(np.float32)
            for i in np.flatnonzero(alive):
                env.set_state(cur[i])
                obs, r, term, trunc, _ = env.step(self.scaler.to_env(u[i]))
                out["obs"].append(x[i].copy())
                out["action"].append(u[i])
                out["reward"].append(r)
                out["next_obs"].append(np.asarray(obs, np.float32))
                out["terminated"].append(float(term))
                cur[i] = env.get_state()
                x[i] = obs
                alive[i] = not (term or trunc)
            if not alive.any():
                break
        return {k: np.asarray(v, np.float32) for k, v in out.items()}


class ModelBasedAcceleration:
    """The model-based side of Algorithm 2, driven by the training loop.

    Per real step the loop calls :meth:`record`; per episode :meth:`begin_episode` and
    :meth:`end_episode` (which refits the model every n episodes: M <- Fit(B), B_old <- B);
    every m steps :meth:`imagine` fills the fictional buffer R_f, from which the loop samples
    I*l minibatches per step. ``timers`` accumulates seconds spent fitting and imagining.
    With ``ilqg_fraction > 0`` it also owns the :class:`~nafrl.planning.GuidedExploration`
    that drives that fraction of real episodes (it fits its own model for its controller).
    """

    def __init__(
        self, config: Any, agent: Agent, env: gym.Env, scaler: Any, obs_dim: int, act_dim: int
    ) -> None:
        from nafrl.replay import ReplayBuffer

        base = env.unwrapped
        kind = config.model
        if not (hasattr(base, "get_state") and hasattr(base, "set_state")):
            raise EnvError(
                f"model={kind!r} needs a nafrl task with get_state/set_state (nafrl/...-v1 ids); "
                f"{type(base).__name__} has none"
            )
        if kind in ("linear", "neural") and not getattr(base, "has_reward_fn", False):
            raise EnvError(
                f"model={kind!r} needs the task's reward r(x, u) as a JAX function; "
                f"{type(base).__name__} has none (has_reward_fn is False); use model='true'"
            )
        self.config, self.kind, self.agent, self.scaler = config, kind, agent, scaler
        self.horizon = int(getattr(base, "horizon", 10**9))
        self.episodes = EpisodeBuffers(config.refit_every)
        # R_f holds the rollouts of the current model only (by default): older imagined data
        # came from older, worse models and policies.
        capacity = config.fictional_buffer_size or (
            config.refit_every * self.horizon * max(config.imagination_length, 1)
        )
        self.fictional = ReplayBuffer(min(capacity, config.buffer_size), obs_dim, act_dim)
        self.timers = {"model_fit": 0.0, "imagination": 0.0}
        self.model: Any = None
        self._env = env
        self._obs: list[np.ndarray] = []
        self._actions: list[np.ndarray] = []
        self._states: list[np.ndarray] = []
        self._imagine_fn: Callable[..., Imagined] | None = None
        self._true: TrueModelImagination | None = None
        imagining = config.imagination_length > 0
        if kind == "linear" and imagining:
            from nafrl.models import LinearGaussianDynamics

            self.model = LinearGaussianDynamics()
        elif kind == "neural" and imagining:
            from nafrl.models.neural import NeuralDynamics

            self.model = NeuralDynamics()
        self.history: list[tuple[Episode, bool]] = []  # every real episode, and if guided
        self.box_margin = 0.1  # imagined states may leave B_old's range by 10% of it
        self.box: tuple[np.ndarray, np.ndarray] | None = None
        # Section 5.1: a fraction of real episodes driven by iLQG / MPC (iLQG-x, MPC-x).
        self.guide: Any = None
        if config.ilqg_fraction > 0:
            from nafrl.planning.guided import GuidedConfig, GuidedExploration

            self.guide = GuidedExploration(
                env,
                GuidedConfig(
                    ilqg_fraction=config.ilqg_fraction,
                    model=kind,
                    mode=config.planner,
                    refit_every=config.refit_every,
                ),
            )

    # -- recording real episodes (B) -------------------------------------------------------
    def begin_episode(self, obs: np.ndarray) -> None:
        self._obs, self._actions = [np.asarray(obs, np.float32)], []
        self._states = [self._env.unwrapped.get_state()] if self.kind == "true" else []

    def record(self, action: np.ndarray, next_obs: np.ndarray) -> None:
        self._actions.append(np.asarray(action, np.float32))
        self._obs.append(np.asarray(next_obs, np.float32))
        if self.kind == "true":
            self._states.append(self._env.unwrapped.get_state())

    def end_episode(self, guided: bool = False) -> bool:
        """Store the episode in B; refit every n episodes. True if the model was refitted."""
        ep = Episode(
            np.stack(self._obs),
            np.stack(self._actions),
            np.stack(self._states) if self._states else None,
        )
        return self._store(ep, guided)

    def _store(self, ep: Episode, guided: bool) -> bool:
        import time

        self.history.append((ep, guided))
        if self.guide is not None:
            # Refits its controller every n episodes; replays (load) say who drove each one.
            self.guide.observe_episode(ep.obs, ep.actions, driven=guided)
        if not self.episodes.add(ep):
            return False
        t0 = time.perf_counter()
        if self.model is not None:
            x, u = EpisodeBuffers.stack(self.episodes.current)
            if self.kind == "neural":  # a global model: all real data so far
                x, u = EpisodeBuffers.stack([e for e, _ in self.history])
            self.model.fit(x, u)
        self.episodes.rotate()
        obs = np.concatenate([e.obs for e in self.episodes.old])
        lo, hi = obs.min(0), obs.max(0)
        # Widen by 10% of the range, and a little more for (near-)constant dimensions such
        # as a fixed target's position, which a model reproduces only up to its noise.
        margin = self.box_margin * (hi - lo) + 1e-2 * np.maximum(np.abs(lo), np.abs(hi)) + 1e-3
        self.box = (lo - margin, hi + margin)
        self.timers["model_fit"] += time.perf_counter() - t0
        return True

    # -- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Every real episode so far (with who drove it) and R_f, as plain arrays.

        The models and controllers are not stored: :meth:`load_state_dict` replays the
        episodes through the same deterministic fits, which rebuilds them (priors included).
        """
        eps = [e for e, _ in self.history]
        out = {f"fictional/{k}": v for k, v in self.fictional.state_dict().items()}
        if eps:
            out["ep_len"] = np.array([len(e.actions) for e in eps])
            out["ep_obs"] = np.concatenate([e.obs for e in eps])
            out["ep_actions"] = np.concatenate([e.actions for e in eps])
            out["ep_guided"] = np.array([g for _, g in self.history])
            if eps[0].states is not None:
                out["ep_states"] = np.concatenate([e.states for e in eps])
        return out

    def load_state_dict(self, arrays: dict[str, np.ndarray]) -> None:
        if "ep_len" in arrays:
            o = a = 0
            for i, T in enumerate(arrays["ep_len"]):
                T = int(T)
                states = arrays["ep_states"][o : o + T + 1] if "ep_states" in arrays else None
                ep = Episode(
                    arrays["ep_obs"][o : o + T + 1], arrays["ep_actions"][a : a + T], states
                )
                self._store(ep, bool(arrays["ep_guided"][i]))
                o, a = o + T + 1, a + T
        self.fictional.load_state_dict(
            {k[len("fictional/") :]: v for k, v in arrays.items() if k.startswith("fictional/")}
        )

    @property
    def ready(self) -> bool:
        """A model exists (B_old is non-empty and, for learned models, fitted)."""
        return bool(self.episodes.old)

    # -- imagination (R_f) ------------------------------------------------------------------
    def imagine(
        self,
        state: Any,
        rng: np.random.Generator,
        key: jax.Array,
        policy: Callable[[np.ndarray], np.ndarray],
    ) -> int:
        """m rollouts of l steps from B_old into R_f; returns the number of transitions added."""
        import time

        cfg = self.config
        t0 = time.perf_counter()
        x0, t_start, states = self.episodes.sample_starts(rng, cfg.batch_size)
        if self.kind == "true":
            if self._true is None:
                self._true = TrueModelImagination(
                    self._env, policy, cfg.imagination_length, cfg.noise_scale, self.scaler
                )
            out = self._true.imagine(states, rng)
            self.fictional.add_batch(**out)
            n = len(out["obs"])
        else:
            if self._imagine_fn is None:
                base = self._env.unwrapped
                self._imagine_fn = make_imagine(
                    self.agent,
                    type(self.model).step_fn,
                    base.reward,
                    cfg.imagination_length,
                    self.horizon,
                    cfg.exploration,
                    cfg.noise_scale,
                    cfg.ou_theta,
                    model_noise=cfg.model_noise,
                    project_fn=base.project_obs
                    if cfg.project_imagined and getattr(base, "has_obs_projection", False)
                    else None,
                )
            lo, hi = (jnp.asarray(b, x0.dtype) for b in self.box)
            im = self._imagine_fn(
                state, self.model.params, jnp.asarray(x0), jnp.asarray(t_start), key, lo, hi
            )
            valid = np.asarray(im.valid)
            n = int(valid.sum())
            self.fictional.add_batch(
                obs=np.asarray(im.obs)[valid],
                action=np.asarray(im.action)[valid],
                reward=np.asarray(im.reward)[valid],
                next_obs=np.asarray(im.next_obs)[valid],
                terminated=np.zeros(n, np.float32),
            )
        self.timers["imagination"] += time.perf_counter() - t0
        return n
