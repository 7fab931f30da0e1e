"""Model-guided exploration: a fraction of real episodes driven by iLQG or MPC (section 5.1).

The "iLQG-x" and "MPC-x" variants of Figures 2a and 5 (x = ``ilqg_fraction`` = 1 - p):
each real episode is driven, with probability ``ilqg_fraction``, by a model-based
controller instead of the learned policy; all its transitions go to the replay buffer as
usual. The controller is refitted every ``refit_every`` (n) episodes (Algorithm 2, "if B_f
is full").

How a trainer uses it (one object per training run)::

    guide = GuidedExploration(env, GuidedConfig(ilqg_fraction=0.5, model="linear"))
    for episode in ...:
        key, k_ep = jax.random.split(key)
        use_controller = guide.start_episode(k_ep, env)   # after env.reset()
        for t in range(T):
            if use_controller:
                key, k = jax.random.split(key)
                u = guide.act(obs, t, k)                    # in the env's action box
            else:
                u = policy(obs) + noise
            ...step env, store (obs, u, r, obs') in R as usual...
        guide.observe_episode(obs_seq, act_seq)             # every episode, either driver

Interface:

``start_episode(key, env) -> bool``
    Call right after ``env.reset()``. Returns True if the controller drives this episode
    (probability ``ilqg_fraction``, and only once a controller exists). For the true model
    it reads the initial simulator state from ``env.unwrapped.get_state()`` (and, in
    ``mode="ilqg"``, plans the whole episode there).
``act(obs, t, key) -> np.ndarray``
    The controller's action (du,) for observation ``obs`` at step t, float64 in
    [-1, 1]. iLQG mode samples the linear-Gaussian controller of equation (4) (``key``
    drives the sample; ``key=None`` gives the mean); MPC mode replans from the current state
    (for the true model read from the env given to ``start_episode``).
``observe_episode(obs_seq (T+1, dx), act_seq (T, du))``
    Report every finished real episode (policy- or controller-driven). Every
    ``refit_every`` episodes the model is refitted and the controller recomputed. Episodes
    shorter than the task horizon are kept for the neural model but skipped by the
    time-varying linear model (it needs aligned time steps).

Controllers by ``model`` and ``mode``:

* ``linear`` + ``ilqg`` (the paper's section 6.3 setting): every n episodes fit a
  :class:`~nafrl.models.LinearGaussianDynamics` (GMM prior) to the last n episodes and
  take one KL-constrained iLQG step ("iLQG OneStep" of Algorithm 2). The trust region is
  against the previous iLQG controller; before one exists (or when the batch holds no
  controller episode) it is against an open-loop Gaussian fitted to the batch's actions,
  so the new controller stays where the model was fitted.
* ``linear`` + ``mpc``: MPC through the same fitted time-varying model.
* ``true`` + ``mpc`` (section 6.2, appendix 8.6): MPC with the simulator itself.
* ``true`` + ``ilqg``: full-horizon iLQG with the simulator from each episode's initial
  state (works for small sets of initial states; the paper switched to MPC otherwise).
* ``neural`` + ``mpc``/``ilqg``: the same with the global MLP model, refitted on all data.

KL step size (``adapt_kl_step``, as in GPS): after each refit, with J(pi | M) the Gaussian
estimate of the return of controller pi under model M, the predicted improvement of the
last step, J(pi_new | M_old) - J(pi_old | M_old), is compared with the improvement the
refitted model sees, J(pi_new | M_new) - J(pi_old | M_old); the multiplier of ``kl_step``
is scaled by predicted / (2 (predicted - actual)) (clipped to [0.2, 5]), so steps grow
while the model's predictions hold and shrink when they do not.

Departures: the first controller needs n episodes of data; episodes must all have the
task's full horizon for the linear model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import gymnasium as gym
import jax
import numpy as np

from nafrl.models.base import DynamicsModel
from nafrl.models.linear_gaussian import LinearGaussianDynamics
from nafrl.models.neural import NeuralDynamics
from nafrl.models.simulator import SimulatorDynamics
from nafrl.planning.controller import LinearGaussianController
from nafrl.planning.ilqg import ilqg_solve
from nafrl.planning.kl_step import kl_constrained_step
from nafrl.planning.lqr import evaluate_controller
from nafrl.planning.mpc import MPC


@dataclass(frozen=True)
class GuidedConfig:
    """Options of model-guided exploration (section 5.1)."""

    ilqg_fraction: float = 0.5
    """1 - p: probability that an episode is driven by the controller."""
    model: Literal["linear", "true", "neural"] = "linear"
    """Dynamics model: fitted time-varying linear ('linear'), the simulator ('true'), MLP."""
    mode: Literal["ilqg", "mpc"] = "ilqg"
    """'ilqg': a time-varying linear-Gaussian controller per refit; 'mpc': replan each step."""
    refit_every: int = 5
    """n: refit the model and the controller every n episodes."""
    kl_step: float = 0.5
    """Base KL bound per time step of the linear-model iLQG step (bound kl_step * mult * T)."""
    adapt_kl_step: bool = False
    """Adapt the multiplier of kl_step from predicted versus actual improvement (GPS).
    Off by default: the Gaussian return estimates it relies on break down for rewards
    with kinks (the reacher's distance), where it measured worse than a fixed step."""
    kl_step_mult_range: tuple[float, float] = (0.1, 10.0)
    """Bounds of that multiplier."""
    min_action_std: float = 0.1
    """Floor on the action std of the Gaussian fitted to the data for the first KL step."""
    prior: str = "gmm"
    """Prior of the linear model: 'gmm', 'gaussian' or 'none'."""
    mpc_horizon: int = 20
    """H of MPC mode."""
    mpc_iterations: int = 2
    """iLQG iterations per MPC step."""
    ilqg_iterations: int = 20
    """Iterations of full-horizon iLQG (true/neural models in ilqg mode)."""
    action_noise: bool = True
    """Sample actions from the controller's Gaussian (-c Q_uu^-1); False: its mean."""
    c: float = 1.0
    """Temperature of the controller covariance in unconstrained modes (eq. 4)."""
    neural_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Keyword arguments of :class:`~nafrl.models.NeuralDynamics`."""

    def __post_init__(self) -> None:
        checks = [
            (0.0 <= self.ilqg_fraction <= 1.0, "ilqg_fraction", "a number in [0, 1]"),
            (self.model in ("linear", "true", "neural"), "model", "'linear', 'true' or 'neural'"),
            (self.mode in ("ilqg", "mpc"), "mode", "'ilqg' or 'mpc'"),
            (self.refit_every >= 1, "refit_every", "an integer >= 1"),
            (self.kl_step > 0, "kl_step", "a positive number"),
            (
                self.mpc_horizon >= 1 and self.mpc_iterations >= 1,
                "mpc_horizon/mpc_iterations",
                "integers >= 1",
            ),
        ]
        for ok, name, accepted in checks:
            if not ok:
                raise ValueError(
                    f"GuidedConfig.{name}={getattr(self, name.split('/')[0])!r}; "
                    f"expected {accepted}"
                )


class GuidedExploration:
    """iLQG-x / MPC-x episodes for a training loop; see the module docstring.

    Args:
        env: the training environment (a nafrl task with ``reward``, ``horizon`` and, for
            ``model='true'``, ``get_state``/``set_state``).
        config: :class:`GuidedConfig`; keyword ``overrides`` replace its fields.
    """

    def __init__(self, env: gym.Env, config: GuidedConfig | None = None, **overrides: Any) -> None:
        self.config = dataclasses.replace(config or GuidedConfig(), **overrides)
        base = env.unwrapped
        if not getattr(base, "has_reward_fn", hasattr(base, "reward")):
            raise ValueError(
                f"GuidedExploration needs a task with a differentiable reward r(x, u) "
                f"(TaskSpec.has_reward_fn); {type(base).__name__} has none"
            )
        self.reward = base.reward
        self.T = int(getattr(base, "horizon", 0) or env.spec.max_episode_steps)  # type: ignore[union-attr]
        self.du = int(np.prod(env.action_space.shape))
        cfg = self.config
        self.model: DynamicsModel
        if cfg.model == "true":
            self.model = SimulatorDynamics(env)
        elif cfg.model == "neural":
            self.model = NeuralDynamics(**cfg.neural_kwargs)
        else:
            self.model = LinearGaussianDynamics(prior=None if cfg.prior == "none" else cfg.prior)
        self.controller: LinearGaussianController | None = None
        self.mpc: MPC | None = None
        self._env: gym.Env | None = None
        self._batch_x: list[np.ndarray] = []
        self._batch_u: list[np.ndarray] = []
        self._batch_from_controller: list[bool] = []
        self._driving = False
        self.episodes_seen = 0
        self.controller_episodes = 0
        self.refits = 0
        self.last_info: Any = None
        self.kl_step_mult = 1.0
        self._predicted: tuple[float, float] | None = None  # J(old|M_old), J(new|M_old)
        if cfg.model == "true":
            self._make_mpc()

    # -- public interface ---------------------------------------------------------------
    @property
    def ready(self) -> bool:
        """True once the controller can drive: from the start with the true model, after the
        first refit with learned models."""
        if self.config.model == "true":
            return True
        if self.config.model == "linear" and self.config.mode == "ilqg":
            return self.controller is not None
        return self.refits > 0

    def start_episode(self, key: jax.Array, env: gym.Env) -> bool:
        """Decide who drives the episode that ``env.reset()`` just started."""
        self._env = env
        u = float(jax.random.uniform(key))
        self._driving = self.ready and u < self.config.ilqg_fraction
        if not self._driving:
            return False
        self.controller_episodes += 1
        if self.mpc is not None:
            self.mpc.reset()
        if self.config.mode == "ilqg" and self.config.model in ("true", "neural"):
            self._plan_episode(env)
        return True

    def act(self, obs: np.ndarray, t: int, key: jax.Array | None = None) -> np.ndarray:
        """Controller action for ``obs`` at step t (float64, clipped to [-1, 1])."""
        if not self._driving:
            raise RuntimeError(
                "GuidedExploration.act: start_episode did not hand this episode to the controller"
            )
        key = key if self.config.action_noise else None
        if self.config.mode == "mpc":
            assert self.mpc is not None
            x = self._planning_state(obs)
            return self.mpc.act(x, t, key)
        assert self.controller is not None
        x = np.asarray(self._planning_state(obs))
        tc = min(t, self.controller.horizon - 1)
        u = (
            self.controller.sample(x, tc, key)
            if key is not None
            else self.controller.mean_action(x, tc)
        )
        return np.clip(np.asarray(u, np.float64), -1.0, 1.0)

    def observe_episode(
        self, obs_seq: np.ndarray, act_seq: np.ndarray, driven: bool | None = None
    ) -> None:
        """Record a finished real episode; refit every ``refit_every`` episodes.

        ``driven`` says whether the controller drove it (default: what ``start_episode``
        decided); a trainer replaying stored episodes after loading a checkpoint passes it.
        """
        if driven is not None:
            self._driving = driven
        x, u = np.asarray(obs_seq, np.float64), np.asarray(act_seq, np.float64)
        if x.ndim != 2 or u.ndim != 2 or len(x) != len(u) + 1:
            raise ValueError(
                f"observe_episode: expected obs (T+1, dx) and actions (T, du); "
                f"got {x.shape} and {u.shape}"
            )
        self.episodes_seen += 1
        self._batch_x.append(x)
        self._batch_u.append(u)
        self._batch_from_controller.append(self._driving)
        self._driving = False
        if len(self._batch_x) >= self.config.refit_every:
            self._refit()

    # -- internals ----------------------------------------------------------------------
    def _planning_state(self, obs: np.ndarray) -> np.ndarray:
        if self.config.model == "true":
            assert self._env is not None
            return self.model.state_from(self._env.unwrapped.get_state())  # type: ignore[attr-defined]
        return np.asarray(obs, np.float64)

    def _make_mpc(self) -> None:
        cfg = self.config
        if cfg.mode == "mpc":
            self.mpc = MPC(
                self.model,
                self.reward,
                horizon=cfg.mpc_horizon,
                iterations=cfg.mpc_iterations,
                episode_horizon=self.T,
                c=cfg.c,
            )

    def _plan_episode(self, env: gym.Env) -> None:
        """Full-horizon iLQG from this episode's initial state (true / neural models)."""
        cfg = self.config
        x0 = self._planning_state(env.unwrapped.observe())  # type: ignore[attr-defined]
        u_init = (
            np.zeros((self.T, self.du))
            if self.controller is None
            else np.asarray(self.controller.u_hat + self.controller.k)
        )
        self.controller, self.last_info = ilqg_solve(
            self.model,
            self.reward,
            x0,
            u_init,
            iterations=cfg.ilqg_iterations,
            u_bounds=(-1.0, 1.0),
            c=cfg.c,
        )

    def _refit(self) -> None:
        cfg = self.config
        xs, us = self._batch_x, self._batch_u
        from_ctrl = any(self._batch_from_controller)
        self._batch_x, self._batch_u, self._batch_from_controller = [], [], []
        if cfg.model == "true":
            return
        if cfg.model == "neural":  # a global model on all real data so far
            nn_model = self.model
            assert isinstance(nn_model, NeuralDynamics)
            for x, u in zip(xs, us, strict=True):
                nn_model.add(x[None], u[None])
            nn_model.train()
            self.refits += 1
            if self.mpc is None:
                self._make_mpc()
            return
        full = [(x, u) for x, u in zip(xs, us, strict=True) if len(u) == self.T]
        if len(full) < 2:
            return
        X = np.stack([x for x, _ in full])
        U = np.stack([u for _, u in full])
        self.model.fit(X, U)
        self.refits += 1
        if cfg.mode == "mpc":
            if self.mpc is None:
                self._make_mpc()
            return
        lg = self.model
        assert isinstance(lg, LinearGaussianDynamics)
        prev = self.controller if (self.controller is not None and from_ctrl) else None
        if prev is None:
            prev = LinearGaussianController.from_samples(X, U, cfg.min_action_std)
            self._predicted = None
        elif cfg.adapt_kl_step and self._predicted is not None:
            self._adapt_step(lg, prev)
        self.controller, self.last_info = kl_constrained_step(
            lg,
            self.reward,
            lg.x0_mean,
            prev,
            kl_step=cfg.kl_step * self.kl_step_mult,
            x0_cov=lg.x0_cov,
        )
        if cfg.adapt_kl_step:
            old = evaluate_controller(lg, self.reward, prev, lg.x0_mean, lg.x0_cov)
            new = evaluate_controller(lg, self.reward, self.controller, lg.x0_mean, lg.x0_cov)
            self._predicted = (old, new)

    def _adapt_step(self, model: LinearGaussianDynamics, ctrl: LinearGaussianController) -> None:
        """GPS step-size rule from predicted and actual improvement of the last step."""
        assert self._predicted is not None
        old, predicted_new = self._predicted
        actual_new = evaluate_controller(model, self.reward, ctrl, model.x0_mean, model.x0_cov)
        predicted = predicted_new - old
        actual = actual_new - old
        mult = predicted / (2.0 * max(1e-4, predicted - actual))
        mult = float(np.clip(mult, 0.2, 5.0)) if np.isfinite(mult) else 0.5
        lo, hi = self.config.kl_step_mult_range
        self.kl_step_mult = float(np.clip(self.kl_step_mult * mult, lo, hi))
