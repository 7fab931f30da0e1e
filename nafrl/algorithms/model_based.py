"""Algorithm 2 of Gu et al. (2016): imagination rollouts with fitted dynamics and optional
iLQG exploration (sections 5.1-5.3), as one object the training loop calls.

Algorithm 2, as the paper gives it (line numbers used in the comments below)::

     1  Randomly initialize normalized Q network Q(x, u | theta^Q).
     2  Initialize target network Q' with weight theta^Q' <- theta^Q.
     3  Initialize replay buffer R <- {} and fictional buffer R_f <- {}.
     4  Initialize additional buffers B <- {}, B_old <- {} with size nT.
     5  Initialize fitted dynamics model M <- {}.
     6  for episode = 1, M do
     7    Initialize a random process N for action exploration
     8    Receive initial observation state x_1
     9    Select mu'(x, t) from {mu(x | theta^mu), pi_iLQG_t(u_t | x_t)} with probabilities {p, 1-p}
    10    for t = 1, T do
    11      Select action u_t = mu'(x_t, t) + N_t
    12      Execute u_t and observe r_t and x_{t+1}
    13      Store transition (x_t, u_t, r_t, x_{t+1}, t) in R and B
    14      if mod(episode * T + t, m) = 0 and M != {} then
    15        Sample m (x_i, u_i, r_i, x_{i+1}, i) from B_old
    16        Use M to simulate l steps from each sample
    17        Store all fictional transitions in R_f
    18      end if
    19      Sample a random minibatch of m transitions I*l times from R_f and I times from R,
            and update theta^Q, theta^Q' as in Algorithm 1 per minibatch.
    20    end for
    21    if B_f is full then
    22      M <- FitLocalLinearDynamics(B_f)   (section 5.3)
    23      pi_iLQG <- iLQG_OneStep(B_f, M)     (appendix)
    24      B_old <- B_f, B_f <- {}
    25    end if
    26  end for

Lines 1-2, 7 (the process N), 12 and the updates of line 19 are Algorithm 1's and live in the
training loop (:meth:`nafrl.api.OffPolicyAgent.learn`) and :mod:`nafrl.agents`. Everything
else is :class:`ModelBasedAcceleration`, which the loop calls through these hooks, in order::

    guided, key = mb.begin_episode(obs, key)              # line 9
    u = mb.guided_action(obs, t, noise)                    # line 11 for a guided episode
    mb.record(u, next_obs)                                 # line 13 (B)
    imagining, key = mb.maybe_imagine(step, episode, state, rng, key)   # lines 14-18
    batches = mb.sample_batches(R, rng, imagining)        # line 19 (I*l : I)
    mb.end_episode()                                       # lines 21-25

Model kinds (``Config.model``): ``linear`` is line 22's time-varying linear-Gaussian fit with
a GMM prior (section 5.3); ``neural`` a global MLP refitted on all real data; ``true`` the
task's simulator (section 6.2's best case: nothing is fitted, M is the simulator). There is
one M: imagination (line 16) and the iLQG / MPC controller of guided episodes (line 23) use
the same object.

Documented choices:

- Line 11 for guided episodes: u_t = clip(mu'(x_t, t) + N_t, -1, 1) with mu' the controller's
  *mean* action and N_t the configured exploration process (``Config.exploration``), the same
  N_t the policy would have used at that step. The linear-Gaussian controller's own
  covariance is not sampled as well: that would add a second exploration noise.
- Line 16 stops a rollout at the horizon T and when a predicted state leaves the box of
  B_old's states (widened by a margin): a local model extrapolated far from its data makes up
  states that Q-learning bootstraps from, which we found makes Q diverge.
- Imagined rewards come from the task's JAX reward r(x, u), so a learned model predicts only
  the next observation.
- Line 23 needs every episode of B to have the task's full horizon T (the time-varying model
  is indexed by t) and at least two of them; otherwise the previous controller is kept.
  ``planner='mpc'`` replans with M at every step instead (appendix 8.6).
- R_f holds the rollouts of the current model only by default (``fictional_buffer_size``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol, runtime_checkable

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

from nafrl.agents.common import Agent
from nafrl.config import Config
from nafrl.env_utils import ActionScaler, EnvError, check_spaces
from nafrl.exploration import sample_noise
from nafrl.models.base import DynamicsModel
from nafrl.models.linear_gaussian import LinearGaussianDynamics
from nafrl.models.neural import NeuralDynamics
from nafrl.models.simulator import SimulatorDynamics, private_copy
from nafrl.planning.controller import LinearGaussianController
from nafrl.planning.ilqg import ilqg_solve
from nafrl.planning.kl_step import kl_constrained_step
from nafrl.planning.lqr import RewardFn, evaluate_controller
from nafrl.planning.mpc import MPC
from nafrl.replay import ReplayBuffer
from nafrl.types import Batch

# Fixed settings of the iLQG step (line 23); not worth a Config field each.
CONTROLLER_TEMPERATURE = 1.0  # c of the controller covariance -c Q_uu^-1 (eq. 4)
FIRST_STEP_MIN_STD = 0.1  # action-std floor of the Gaussian fitted to B for the first KL step
KL_STEP_MULT_RANGE = (0.1, 10.0)  # bounds of the adaptive multiplier of kl_step


@runtime_checkable
class StatefulTask(Protocol):
    """What Algorithm 2 needs of ``env.unwrapped``: exact state get/set (nafrl tasks)."""

    def get_state(self) -> np.ndarray: ...

    def set_state(self, state: np.ndarray) -> None: ...


@runtime_checkable
class ProjectingTask(Protocol):
    """A task that maps predicted observations back onto valid ones (``has_obs_projection``)."""

    def project_obs(self, obs: jax.Array) -> jax.Array: ...


# --------------------------------------------------------------------------- B and B_old
class Episode(NamedTuple):
    obs: np.ndarray  # (T+1, dx)
    actions: np.ndarray  # (T, du), normalised to [-1, 1]
    states: np.ndarray | None  # (T+1, ds) full simulator states, for the true model


class EpisodeBuffers:
    """B and B_old of Algorithm 2 (line 4), each of n episodes (nT transitions)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.current: list[Episode] = []
        self.old: list[Episode] = []

    def add(self, episode: Episode) -> bool:
        """Store an episode in B; True when B holds n episodes (line 21: time to refit)."""
        self.current.append(episode)
        return len(self.current) >= self.n

    def rotate(self) -> None:
        """Line 24: B_old <- B, B <- empty (after M was refitted on B)."""
        self.old, self.current = self.current, []

    @staticmethod
    def stack(episodes: list[Episode]) -> tuple[np.ndarray, np.ndarray]:
        """(E, T+1, dx), (E, T, du) of the episodes that share the most common length."""
        lengths = [len(e.actions) for e in episodes]
        T = max(set(lengths), key=lengths.count)
        keep = [e for e in episodes if len(e.actions) == T]
        return np.stack([e.obs for e in keep]), np.stack([e.actions for e in keep])

    def sample_starts(
        self, rng: np.random.Generator, m: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Line 15: m (episode, t) pairs from B_old: observations (m, dx), times (m,), and
        simulator states (m, ds) or None."""
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


# --------------------------------------------------------------------------- line 16
def make_explore(
    agent: Agent, noise_kind: str, noise_scale: float, ou_theta: float
) -> Callable[..., tuple[jax.Array, jax.Array]]:
    """``explore(train_state, x (m, dx), noise (m, du), key) -> (u, noise)``: line 11's
    u = clip(mu(x) + N, -1, 1) for m independent copies of the configured process N.

    Both imagination back ends draw their actions with it, so imagined and real episodes
    explore the same way. NAF-P ('precision') shapes the noise by P(x) of each state.
    """
    precision = noise_kind == "precision"

    def explore(
        state: Any, x: jax.Array, noise: jax.Array, key: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        mu, L = agent.policy(state, x, with_precision=precision)
        keys = jax.random.split(key, x.shape[0])
        if L is None or not precision:
            kind = "gaussian" if precision else noise_kind  # DDPG has no P(x)
            noise = jax.vmap(lambda n, k: sample_noise(kind, n, k, noise_scale, ou_theta))(
                noise, keys
            )
        else:
            noise = jax.vmap(
                lambda n, k, l_: sample_noise("precision", n, k, noise_scale, ou_theta, l_)
            )(noise, keys, L)
        return jnp.clip(mu + noise, -1.0, 1.0), noise

    return explore


class Imagined(NamedTuple):
    """Fictional transitions, leading axes (l, m), and ``valid`` (l, m) marking those inside
    the horizon (rollouts stop at t = T) and inside the data box."""

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
    """Line 16 with a pure-JAX model, jitted:
    ``imagine(train_state, model_params, x0 (m, dx), t0 (m,), key, lo, hi)``.

    Each of the m rollouts follows u_k = clip(mu(x_k) + N_k, -1, 1) (:func:`make_explore`),
    x_{k+1} = M(x_k, u_k, t0 + k) (with the model's noise if ``model_noise``),
    r_k = r(x_k, u_k). A rollout stops at the horizon T and for good as soon as a predicted
    state leaves the box [lo, hi].
    """
    explore = make_explore(agent, noise_kind, noise_scale, ou_theta)

    def imagine(
        state: Any,
        params: Any,
        x0: jax.Array,
        t0: jax.Array,
        key: jax.Array,
        lo: jax.Array,
        hi: jax.Array,
    ) -> Imagined:
        m, du = x0.shape[0], agent.policy(state, x0[:1], with_precision=False)[0].shape[-1]

        def body(carry: tuple, k: jax.Array) -> tuple[tuple, Imagined]:
            x, noise, key, alive = carry
            key, k_noise, k_model = jax.random.split(key, 3)
            u, noise = explore(state, x, noise, k_noise)
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
    """Line 16 with the task's own simulator (a private copy of the environment)."""

    def __init__(self, env: gym.Env, length: int, scaler: ActionScaler) -> None:
        self.env = private_copy(env)
        self.length, self.scaler = length, scaler

    def imagine(
        self, states: np.ndarray, act: Callable[[np.ndarray], np.ndarray]
    ) -> dict[str, np.ndarray]:
        """Roll each full simulator state ``length`` steps. ``act(x (m, dx)) -> u (m, du)``
        gives the normalised actions of all m rollouts at one step (with their noise)."""
        env = self.env
        m = len(states)
        alive = np.ones(m, bool)
        x = np.empty((m, env.obs_size), np.float32)
        for i, s in enumerate(states):
            env.set_state(s)
            x[i] = env.observe()
        cur = np.array(states, copy=True)
        out: dict[str, list] = {
            k: [] for k in ("obs", "action", "reward", "next_obs", "terminated")
        }
        for _ in range(self.length):
            u = np.asarray(act(x), np.float32)
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


# --------------------------------------------------------------------------- Algorithm 2
class ModelBasedAcceleration:
    """Algorithm 2's model-based side: M, B, B_old, R_f and the guided-episode controller.

    Args:
        config: the run's :class:`~nafrl.config.Config` (``model``, ``imagination_length``,
            ``refit_every``, ``ilqg_fraction``, ``planner``, ...).
        env: the training environment, a nafrl task (``get_state``/``set_state``, ``horizon``
            and, for fitted models, the JAX reward ``reward(x, u)``).
        agent: the agent whose policy drives imagination rollouts; None when
            ``imagination_length`` is 0 (guided exploration only).

    ``timers`` accumulates seconds spent fitting M and imagining; ``refits`` counts line 22.
    """

    def __init__(self, config: Config, env: gym.Env, agent: Agent | None = None) -> None:
        base = env.unwrapped
        kind = config.model
        if kind == "none":
            raise ValueError("ModelBasedAcceleration needs config.model in true, linear, neural")
        if not isinstance(base, StatefulTask):  # has get_state and set_state
            raise EnvError(
                f"model={kind!r} needs a nafrl task with get_state/set_state (nafrl/... ids); "
                f"{type(base).__name__} has none"
            )
        if kind in ("linear", "neural") and not getattr(base, "has_reward_fn", False):
            raise EnvError(
                f"model={kind!r} needs the task's reward r(x, u) as a JAX function; "
                f"{type(base).__name__} has none (has_reward_fn is False); use model='true'"
            )
        if config.imagination_length > 0 and agent is None:
            raise ValueError("imagination rollouts need the agent whose policy they follow")
        self.config, self.kind, self.agent = config, kind, agent
        obs_dim, act_dim = check_spaces(env, "Model-based acceleration")
        self.scaler = ActionScaler(env.action_space)
        self.horizon = int(getattr(base, "horizon", 10**9))
        self._env = env
        self._task: StatefulTask = base
        self.timers = {"model_fit": 0.0, "imagination": 0.0}
        self.refits = 0  # line 22 so far

        # Line 3: R_f (R is the training loop's). By default it holds the rollouts of the
        # current model only: older imagined data came from older, worse models and policies.
        capacity = config.fictional_buffer_size or (
            config.refit_every * self.horizon * max(config.imagination_length, 1)
        )
        self.fictional = ReplayBuffer(min(capacity, config.buffer_size), obs_dim, act_dim)
        # Line 4: B and B_old; ``history`` keeps every real episode (and whether the
        # controller drove it) for the neural model's global fit and for checkpoints.
        self.episodes = EpisodeBuffers(config.refit_every)
        self.history: list[tuple[Episode, bool]] = []
        self._obs: list[np.ndarray] = []
        self._actions: list[np.ndarray] = []
        self._states: list[np.ndarray] = []
        self.guided = False  # is the current episode driven by the controller (line 9)?
        self.box_margin = 0.1  # imagined states may leave B_old's range by 10% of it
        self.box: tuple[np.ndarray, np.ndarray] | None = None

        # Line 5: the one model M. The true model is the simulator itself: nothing to fit.
        uses_model = config.imagination_length > 0 or config.ilqg_fraction > 0
        self.model: LinearGaussianDynamics | NeuralDynamics | None = None
        if kind == "linear" and uses_model:
            prior = None if config.model_prior == "none" else config.model_prior
            self.model = LinearGaussianDynamics(prior=prior)
        elif kind == "neural" and uses_model:
            self.model = NeuralDynamics()
        self._imagine_fn: Callable[..., Imagined] | None = None
        self._explore_fn: Callable[..., tuple[jax.Array, jax.Array]] | None = None
        self._true: TrueModelImagination | None = None

        # Line 23's controller pi_iLQG (section 5.1), planning with M (or the simulator).
        self.controller: LinearGaussianController | None = None
        self.mpc: MPC | None = None
        self.controller_info: Any = None  # ILQGInfo of the last iLQG solve
        self.kl_step_mult = 1.0
        self._predicted: tuple[float, float] | None = None  # J(old|M_old), J(new|M_old)
        self._simulator: SimulatorDynamics | None = None
        self.reward: RewardFn | None = getattr(base, "reward", None)
        self.act_dim = act_dim
        if config.ilqg_fraction > 0:
            if self.reward is None:
                raise EnvError(
                    f"ilqg_fraction > 0 needs the task's reward r(x, u) as a JAX function; "
                    f"{type(base).__name__} has none"
                )
            if kind == "true":
                self._simulator = SimulatorDynamics(env)
                self._make_mpc()

    # -- line 9: who drives this episode ---------------------------------------------------
    @property
    def controller_ready(self) -> bool:
        """Can the controller drive an episode? From the start with the simulator; after
        the first refit (and, for the linear iLQG step, a controller) with fitted models."""
        if self.config.ilqg_fraction <= 0:
            return False
        if self.kind == "true":
            return True
        if self.kind == "linear" and self.config.planner == "ilqg":
            return self.controller is not None
        return self.refits > 0

    def begin_episode(self, obs: np.ndarray, key: jax.Array) -> tuple[bool, jax.Array]:
        """Call right after ``env.reset()``. Line 9: the controller drives this episode with
        probability 1 - p = ``ilqg_fraction`` (once it exists). Returns (guided, next key);
        the key is consumed only with guided exploration on."""
        self._obs, self._actions = [np.asarray(obs, np.float32)], []
        self._states = [self._task.get_state()] if self.kind == "true" else []
        self.guided = False
        if self.config.ilqg_fraction > 0:
            key, sub = jax.random.split(key)
            self.guided = self.controller_ready and (
                float(jax.random.uniform(sub)) < self.config.ilqg_fraction
            )
            if self.guided:
                if self.mpc is not None:
                    self.mpc.reset()
                if self.config.planner == "ilqg" and self.kind in ("true", "neural"):
                    self._plan_episode(obs)
        return self.guided, key

    # -- line 11: the controller's action in a guided episode --------------------------------
    def guided_action(self, obs: np.ndarray, t: int, noise: np.ndarray) -> np.ndarray:
        """u_t = clip(mu'(x_t, t) + N_t, -1, 1), normalised, with mu' the controller's mean
        action at step t and ``noise`` this step's N_t of the exploration process."""
        if not self.guided:
            raise RuntimeError("guided_action: begin_episode did not hand this episode over")
        x = self._planning_state(obs)
        if self.config.planner == "mpc":
            assert self.mpc is not None
            u = self.mpc.act(x, t)  # replans from x every mpc_replan_every steps (app. 8.6)
        else:
            assert self.controller is not None
            u = self.controller.mean_action(x, min(t, self.controller.horizon - 1))
        u = np.asarray(u, np.float64) + np.asarray(noise, np.float64)
        return np.clip(u, -1.0, 1.0).astype(np.float32)

    # -- line 13: B ------------------------------------------------------------------------
    def record(self, action: np.ndarray, next_obs: np.ndarray) -> None:
        """Store the step's normalised action and next observation in B."""
        self._actions.append(np.asarray(action, np.float32))
        self._obs.append(np.asarray(next_obs, np.float32))
        if self.kind == "true":
            self._states.append(self._task.get_state())

    # -- lines 14-18: imagination into R_f ---------------------------------------------------
    def imagination_on(self, num_episodes: int) -> bool:
        """Imagination configured, not yet switched off, and M exists (line 14's M != {})."""
        cfg = self.config
        return (
            cfg.imagination_length > 0
            and (cfg.imagination_off_after == 0 or num_episodes < cfg.imagination_off_after)
            and self.ready
        )

    def maybe_imagine(
        self,
        total_steps: int,
        num_episodes: int,
        state: Any,
        rng: np.random.Generator,
        key: jax.Array,
    ) -> tuple[bool, jax.Array]:
        """Line 14: every m steps (m = ``batch_size``) while imagination is on, roll m states
        of B_old l steps into R_f. Returns (imagination on, next key); ``key`` is consumed
        only when rollouts were made."""
        on = self.imagination_on(num_episodes)
        if on and total_steps % self.config.batch_size == 0:
            key, sub = jax.random.split(key)
            self.imagine(state, rng, sub)
        return on, key

    @property
    def ready(self) -> bool:
        """M exists: B_old is non-empty (for learned models: fitted on it)."""
        return bool(self.episodes.old)

    def imagine(self, state: Any, rng: np.random.Generator, key: jax.Array) -> int:
        """Lines 15-17: m rollouts of l steps from B_old into R_f; returns how many
        transitions were added."""
        assert self.agent is not None
        cfg = self.config
        t0 = time.perf_counter()
        x0, t_start, states = self.episodes.sample_starts(rng, cfg.batch_size)  # line 15
        if self.kind == "true":
            n = self._imagine_true(state, states, key)
        else:
            n = self._imagine_learned(state, x0, t_start, key)
        self.timers["imagination"] += time.perf_counter() - t0
        return n

    def _imagine_learned(
        self, state: Any, x0: np.ndarray, t_start: np.ndarray, key: jax.Array
    ) -> int:
        cfg = self.config
        assert self.model is not None and self.box is not None and self.agent is not None
        if self._imagine_fn is None:
            base = self._task
            project_fn = None
            if cfg.project_imagined and getattr(base, "has_obs_projection", False):
                if not isinstance(base, ProjectingTask):
                    raise EnvError(
                        f"{type(base).__name__} sets has_obs_projection but has no project_obs(obs)"
                    )
                project_fn = base.project_obs
            self._imagine_fn = make_imagine(
                self.agent,
                type(self.model).step_fn,
                self._reward_fn(),
                cfg.imagination_length,
                self.horizon,
                cfg.exploration,
                cfg.noise_scale,
                cfg.ou_theta,
                model_noise=cfg.model_noise,
                project_fn=project_fn,
            )
        lo, hi = (jnp.asarray(b, x0.dtype) for b in self.box)
        im = self._imagine_fn(
            state, self.model.params, jnp.asarray(x0), jnp.asarray(t_start), key, lo, hi
        )
        valid = np.asarray(im.valid)
        n = int(valid.sum())
        self.fictional.add_batch(  # line 17
            obs=np.asarray(im.obs)[valid],
            action=np.asarray(im.action)[valid],
            reward=np.asarray(im.reward)[valid],
            next_obs=np.asarray(im.next_obs)[valid],
            terminated=np.zeros(n, np.float32),
        )
        return n

    def _imagine_true(self, state: Any, states: np.ndarray | None, key: jax.Array) -> int:
        cfg = self.config
        assert states is not None and self.agent is not None
        if self._true is None:
            self._true = TrueModelImagination(self._env, cfg.imagination_length, self.scaler)
            self._explore_fn = jax.jit(
                make_explore(self.agent, cfg.exploration, cfg.noise_scale, cfg.ou_theta)
            )
        explore = self._explore_fn
        assert explore is not None
        carry = {"noise": jnp.zeros((len(states), self.scaler.low.shape[0]), jnp.float32)}
        carry["key"] = key

        def act(x: np.ndarray) -> np.ndarray:  # one step of the m noise processes
            carry["key"], sub = jax.random.split(carry["key"])
            u, carry["noise"] = explore(state, jnp.asarray(x), carry["noise"], sub)
            return np.asarray(u)

        out = self._true.imagine(states, act)
        self.fictional.add_batch(**out)  # line 17
        return len(out["obs"])

    # -- line 19: the I*l : I minibatches ----------------------------------------------------
    def sample_batches(
        self, buffer: ReplayBuffer, rng: np.random.Generator, imagining: bool
    ) -> Batch:
        """I minibatches from R and, while imagining (and R_f holds a minibatch), I*l from
        R_f, interleaved so each real minibatch is followed by its l fictional ones.
        Leading axis I or I*(l+1), the order in which the jitted step applies them."""
        cfg = self.config
        real = buffer.sample(rng, cfg.batch_size, cfg.updates_per_step)
        if not imagining or len(self.fictional) < cfg.batch_size:
            return real
        l, I = cfg.imagination_length, cfg.updates_per_step
        fict = self.fictional.sample(rng, cfg.batch_size, I * l)
        return Batch(
            *(
                np.concatenate([r[:, None], f.reshape(I, l, *f.shape[1:])], axis=1).reshape(
                    I * (l + 1), *r.shape[1:]
                )
                for r, f in zip(real, fict, strict=True)
            )
        )

    # -- lines 21-25: refit M and the controller every n episodes ----------------------------
    def end_episode(self) -> bool:
        """Store the finished episode in B; every n episodes refit M (line 22), take the iLQG
        step (line 23) and rotate B_old <- B (line 24). True if M was refitted."""
        ep = Episode(
            np.stack(self._obs),
            np.stack(self._actions),
            np.stack(self._states) if self._states else None,
        )
        guided, self.guided = self.guided, False
        return self._store(ep, guided)

    def _store(self, ep: Episode, guided: bool) -> bool:
        self.history.append((ep, guided))
        if not self.episodes.add(ep):  # line 21: B full?
            return False
        t0 = time.perf_counter()
        batch = self.episodes.current
        if self.model is not None:  # line 22
            x, u = EpisodeBuffers.stack(batch)
            if self.kind == "neural":  # a global model: all real data so far
                x, u = EpisodeBuffers.stack([e for e, _ in self.history])
            self.model.fit(x, u)
            self.refits += 1
            if self.config.ilqg_fraction > 0:  # line 23
                from_controller = any(g for _, g in self.history[-len(batch) :])
                self._update_controller(batch, from_controller)
        self.episodes.rotate()  # line 24
        obs = np.concatenate([e.obs for e in self.episodes.old])
        lo, hi = obs.min(0), obs.max(0)
        # Widen by 10% of the range, and a little more for (near-)constant dimensions such
        # as a fixed target's position, which a model reproduces only up to its noise.
        margin = self.box_margin * (hi - lo) + 1e-2 * np.maximum(np.abs(lo), np.abs(hi)) + 1e-3
        self.box = (lo - margin, hi + margin)
        self.timers["model_fit"] += time.perf_counter() - t0
        return True

    def _update_controller(self, batch: list[Episode], from_controller: bool) -> None:
        """Line 23 after M was refitted on ``batch``: MPC just plans with the new M; the
        linear model takes one KL-constrained iLQG step (section 5.3, appendix 8.1)."""
        if self.config.planner == "mpc" or self.kind == "neural":
            if self.mpc is None:
                self._make_mpc()
            return
        lg = self.model
        assert isinstance(lg, LinearGaussianDynamics)
        full = [e for e in batch if len(e.actions) == self.horizon]
        if len(full) < 2 or lg.horizon != self.horizon:  # M indexed by t = 0..T-1 of B
            return
        X = np.stack([e.obs for e in full]).astype(np.float64)
        U = np.stack([e.actions for e in full]).astype(np.float64)
        cfg = self.config
        # The trust region is against the previous controller if it drove part of B, else
        # against a Gaussian fitted to B's actions, so the new controller stays near the data.
        prev = self.controller if (self.controller is not None and from_controller) else None
        if prev is None:
            prev = LinearGaussianController.from_samples(X, U, FIRST_STEP_MIN_STD)
            self._predicted = None
        elif cfg.adapt_kl_step and self._predicted is not None:
            self._adapt_kl_step(lg, prev)
        reward = self._reward_fn()
        self.controller, self.controller_info = kl_constrained_step(
            lg,
            reward,
            lg.x0_mean,
            prev,
            kl_step=cfg.kl_step * self.kl_step_mult,
            x0_cov=lg.x0_cov,
        )
        if cfg.adapt_kl_step:
            old = evaluate_controller(lg, reward, prev, lg.x0_mean, lg.x0_cov)
            new = evaluate_controller(lg, reward, self.controller, lg.x0_mean, lg.x0_cov)
            self._predicted = (old, new)

    def _adapt_kl_step(self, model: LinearGaussianDynamics, ctrl: LinearGaussianController) -> None:
        """GPS step-size rule (``Config.adapt_kl_step``): with J(pi | M) the Gaussian estimate
        of a controller's return, compare the last step's predicted improvement
        J(new | M_old) - J(old | M_old) with the refitted model's J(new | M_new) - J(old | M_old)
        and scale the multiplier of kl_step by predicted / (2 (predicted - actual))."""
        assert self._predicted is not None
        old, predicted_new = self._predicted
        reward = self._reward_fn()
        actual_new = evaluate_controller(model, reward, ctrl, model.x0_mean, model.x0_cov)
        predicted = predicted_new - old
        actual = actual_new - old
        mult = predicted / (2.0 * max(1e-4, predicted - actual))
        mult = float(np.clip(mult, 0.2, 5.0)) if np.isfinite(mult) else 0.5
        self.kl_step_mult = float(np.clip(self.kl_step_mult * mult, *KL_STEP_MULT_RANGE))

    def _reward_fn(self) -> RewardFn:
        """The task's JAX reward r(x, u): fitted models and the controller need it."""
        if self.reward is None:
            raise EnvError(
                f"model={self.kind!r} with these settings needs the task's reward r(x, u) as a "
                f"JAX function; {type(self._task).__name__} has none"
            )
        return self.reward

    def _planning_model(self) -> DynamicsModel:
        model = self._simulator if self.kind == "true" else self.model
        assert model is not None
        return model

    def _planning_state(self, obs: np.ndarray) -> np.ndarray:
        if self.kind == "true":  # the simulator plans from the full state, not the obs
            assert self._simulator is not None
            return np.asarray(self._simulator.state_from(self._task.get_state()))
        return np.asarray(obs, np.float64)

    def _make_mpc(self) -> None:
        cfg = self.config
        if cfg.planner == "mpc":
            self.mpc = MPC(
                self._planning_model(),
                self._reward_fn(),
                horizon=cfg.mpc_horizon,
                iterations=cfg.mpc_iterations,
                episode_horizon=self.horizon,
                replan_every=cfg.mpc_replan_every,
                c=CONTROLLER_TEMPERATURE,
            )

    def _plan_episode(self, obs: np.ndarray) -> None:
        """Full-horizon iLQG from this episode's initial state (true / neural models)."""
        x0 = self._planning_state(obs)
        u_init = (
            np.zeros((self.horizon, self.act_dim))
            if self.controller is None
            else np.asarray(self.controller.u_hat + self.controller.k)
        )
        self.controller, self.controller_info = ilqg_solve(
            self._planning_model(),
            self._reward_fn(),
            x0,
            u_init,
            iterations=self.config.ilqg_iterations,
            u_bounds=(-1.0, 1.0),
            c=CONTROLLER_TEMPERATURE,
        )

    # -- checkpoints -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Every real episode so far (with who drove it) and R_f, as plain arrays.

        M and the controller are not stored: :meth:`load_state_dict` replays the episodes
        through the same deterministic refits, which rebuilds them (priors included).
        """
        eps = [e for e, _ in self.history]
        out = {f"fictional/{k}": v for k, v in self.fictional.state_dict().items()}
        if eps:
            out["ep_len"] = np.array([len(e.actions) for e in eps])
            out["ep_obs"] = np.concatenate([e.obs for e in eps])
            out["ep_actions"] = np.concatenate([e.actions for e in eps])
            out["ep_guided"] = np.array([g for _, g in self.history])
            states = [e.states for e in eps if e.states is not None]
            if states:  # the true model records every episode's simulator states
                if len(states) != len(eps):
                    raise RuntimeError("only some recorded episodes hold simulator states")
                out["ep_states"] = np.concatenate(states)
        return out

    def load_state_dict(self, arrays: dict[str, np.ndarray]) -> None:
        """Inverse of :meth:`state_dict` on a fresh object."""
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
