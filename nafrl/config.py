"""Configuration: one frozen dataclass for every agent option, validated at construction.

Defaults follow the paper (Gu et al. 2016, section 6) where it gives a value; the rest are
documented choices. The command line (``nafrl train --learning-rate 1e-4 ...``) is generated
from this class, so each field's docstring is also its ``--help`` text.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

ExplorationKind = Literal["ou", "gaussian", "precision"]
ModelKind = Literal["none", "true", "linear", "neural"]
PlannerKind = Literal["ilqg", "mpc"]
ModelPriorKind = Literal["gmm", "gaussian", "none"]
PLANNER_KINDS: tuple[str, ...] = ("ilqg", "mpc")
MODEL_PRIOR_KINDS: tuple[str, ...] = ("gmm", "gaussian", "none")
EXPLORATION_KINDS: tuple[str, ...] = ("ou", "gaussian", "precision")
MODEL_KINDS: tuple[str, ...] = ("none", "true", "linear", "neural")


class ConfigError(ValueError):
    """An invalid configuration value; the message names the field and what is accepted."""


@dataclass(frozen=True)
class Config:
    """Options of NAF and DDPG (the fields shared by both, plus model-based options for NAF)."""

    # --- networks (section 6) ---
    hidden_sizes: tuple[int, ...] = (200, 200)
    """Hidden layer widths of every network (V, mu, L for NAF; Q and pi for DDPG)."""
    shared_trunk: bool = False
    """NAF only: one MLP trunk with three linear heads instead of separate MLPs for V, mu, L."""
    batch_norm: bool = False
    """Batch normalisation on the inputs and hidden layers (one of the paper's swept options)."""
    max_log_diag: float = 5.0
    """NAF: bound |log diag L| so P = L L^T stays finite and positive definite."""

    # --- optimisation (Algorithm 1) ---
    learning_rate: float = 1e-3
    """Adam step size (of the Q network; for DDPG of the critic)."""
    actor_learning_rate: float | None = None
    """DDPG only: Adam step size of the actor (None: same as learning_rate)."""
    batch_size: int = 64
    """Minibatch size m of each update."""
    updates_per_step: int = 5
    """I, the number of minibatch updates per environment step (section 6: I = 5)."""
    gamma: float = 0.99
    """Discount factor."""
    tau: float = 0.001
    """Soft target update rate: theta' <- tau * theta + (1 - tau) * theta'."""
    grad_clip_norm: float = 0.0
    """Clip gradients to this global norm (0 disables); guards against divergence."""

    # --- replay ---
    buffer_size: int = 1_000_000
    """Capacity of the replay buffer R (a ring: the oldest transitions are overwritten)."""
    learning_starts: int = 1_000
    """Environment steps before the first update (actions are always mu(x) + noise)."""

    # --- exploration (section 6, appendix 8.2) ---
    exploration: ExplorationKind = "ou"
    """Noise process: 'ou' (Ornstein-Uhlenbeck), 'gaussian', or 'precision' (NAF-P)."""
    noise_scale: float = 0.3
    """Stationary standard deviation of the exploration noise (actions live in [-1, 1])."""
    ou_theta: float = 0.15
    """Mean-reversion rate of the OU process per step (correlation time about 1/theta steps)."""
    precision_start: int = 0
    """With exploration='precision': env steps of plain OU noise before NAF-P starts (Fig. 3)."""

    # --- model-based acceleration (section 5; NAF only) ---
    model: ModelKind = "none"
    """Dynamics model for imagination rollouts and iLQG: none, true, linear or neural."""
    ilqg_fraction: float = 0.0
    """Fraction 1 - p of real episodes driven by the iLQG controller instead of the policy."""
    planner: PlannerKind = "ilqg"
    """Controller of those episodes: 'ilqg' (one KL-constrained step per refit) or 'mpc'."""
    imagination_length: int = 0
    """l, steps of each imagination rollout (0 disables Algorithm 2)."""
    imagination_off_after: int = 0
    """Switch imagination rollouts off after this many episodes (0: never)."""
    refit_every: int = 5
    """n, refit the dynamics model (and the iLQG controller) every n episodes."""
    fictional_buffer_size: int = 0
    """Capacity of the fictional buffer R_f (0: n*T*l, the rollouts of one model fit)."""
    model_noise: bool = False
    """Sample the learned model's noise N_t in imagination rollouts (default: its mean, which
    measured more stable on the single-target reacher; see bench/README.md)."""
    project_imagined: bool = True
    """Map each imagined observation back onto the valid ones with the task's
    ``project_obs`` (consistent sin/cos, forward kinematics) when the task has one."""
    model_prior: ModelPriorKind = "gmm"
    """Prior of the time-varying linear model (section 5.3): 'gmm' (Levine & Abbeel 2014),
    'gaussian' or 'none' (plain least squares per time step)."""
    kl_step: float = 0.5
    """Guided episodes, planner='ilqg' with the linear model: KL bound per time step of each
    iLQG step (the whole-trajectory bound is kl_step * T)."""
    adapt_kl_step: bool = False
    """Adapt kl_step from the predicted versus the actual improvement after each refit (as in
    guided policy search). Off by default: the Gaussian return estimates it relies on break
    down for rewards with kinks (the reacher's distance), where it measured worse."""
    mpc_horizon: int = 20
    """Guided episodes, planner='mpc': planning horizon H (appendix 8.6)."""
    mpc_iterations: int = 2
    """Guided episodes, planner='mpc': iLQG iterations per control step."""
    ilqg_iterations: int = 20
    """Guided episodes, planner='ilqg' with the true or neural model: iterations of the
    full-horizon iLQG solve at the start of each guided episode."""

    # --- evaluation, logging, checkpoints ---
    eval_interval: int = 10
    """Run deterministic test episodes every this many training episodes (0 disables)."""
    eval_episodes: int = 5
    """Number of test episodes at each evaluation (their mean is the 'test reward')."""
    checkpoint_interval: int = 10
    """Write a checkpoint every this many episodes (0: only at the end of learn())."""

    def __post_init__(self) -> None:
        _check(
            bool(self.hidden_sizes) and all(h >= 1 for h in self.hidden_sizes),
            "hidden_sizes",
            self.hidden_sizes,
            "a non-empty tuple of positive integers",
        )
        _positive("learning_rate", self.learning_rate)
        if self.actor_learning_rate is not None:
            _positive("actor_learning_rate", self.actor_learning_rate)
        _int_at_least("batch_size", self.batch_size, 1)
        _int_at_least("updates_per_step", self.updates_per_step, 1)
        _check(0.0 <= self.gamma <= 1.0, "gamma", self.gamma, "a number in [0, 1]")
        _check(0.0 < self.tau <= 1.0, "tau", self.tau, "a number in (0, 1]")
        _check(
            self.grad_clip_norm >= 0.0,
            "grad_clip_norm",
            self.grad_clip_norm,
            "0 (off) or a positive number",
        )
        _check(self.max_log_diag > 0.0, "max_log_diag", self.max_log_diag, "a positive number")
        _int_at_least("buffer_size", self.buffer_size, 1)
        _int_at_least("learning_starts", self.learning_starts, 0)
        _check(
            self.exploration in EXPLORATION_KINDS,
            "exploration",
            self.exploration,
            f"one of {', '.join(EXPLORATION_KINDS)}",
        )
        _check(self.noise_scale >= 0.0, "noise_scale", self.noise_scale, "a number >= 0")
        _check(0.0 < self.ou_theta <= 1.0, "ou_theta", self.ou_theta, "a number in (0, 1]")
        _int_at_least("precision_start", self.precision_start, 0)
        _check(self.model in MODEL_KINDS, "model", self.model, f"one of {', '.join(MODEL_KINDS)}")
        _check(
            0.0 <= self.ilqg_fraction <= 1.0,
            "ilqg_fraction",
            self.ilqg_fraction,
            "a number in [0, 1]",
        )
        _check(
            self.planner in PLANNER_KINDS,
            "planner",
            self.planner,
            f"one of {', '.join(PLANNER_KINDS)}",
        )
        _check(
            self.model_prior in MODEL_PRIOR_KINDS,
            "model_prior",
            self.model_prior,
            f"one of {', '.join(MODEL_PRIOR_KINDS)}",
        )
        _positive("kl_step", self.kl_step)
        _int_at_least("mpc_horizon", self.mpc_horizon, 1)
        _int_at_least("mpc_iterations", self.mpc_iterations, 1)
        _int_at_least("ilqg_iterations", self.ilqg_iterations, 1)
        _int_at_least("imagination_length", self.imagination_length, 0)
        _int_at_least("imagination_off_after", self.imagination_off_after, 0)
        _int_at_least("refit_every", self.refit_every, 1)
        _int_at_least("fictional_buffer_size", self.fictional_buffer_size, 0)
        _int_at_least("eval_interval", self.eval_interval, 0)
        _int_at_least("eval_episodes", self.eval_episodes, 1)
        _int_at_least("checkpoint_interval", self.checkpoint_interval, 0)
        if (self.imagination_length > 0 or self.ilqg_fraction > 0) and self.model == "none":
            raise ConfigError(
                "imagination_length > 0 or ilqg_fraction > 0 needs a dynamics model: "
                "set model to one of true, linear, neural"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field."""
        d = dataclasses.asdict(self)
        d["hidden_sizes"] = list(self.hidden_sizes)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them."""
        return make_config(**d)


FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Config))


def make_config(**overrides: Any) -> Config:
    """Build a :class:`Config`, rejecting unknown names with the list of accepted ones."""
    unknown = sorted(set(overrides) - set(FIELD_NAMES))
    if unknown:
        raise ConfigError(
            f"unknown config field(s) {', '.join(unknown)}; accepted: {', '.join(FIELD_NAMES)}"
        )
    if "hidden_sizes" in overrides:
        overrides["hidden_sizes"] = tuple(int(h) for h in overrides["hidden_sizes"])
    return Config(**overrides)


def _check(ok: bool, name: str, value: Any, accepted: str) -> None:
    if not ok:
        raise ConfigError(f"invalid {name}={value!r}: expected {accepted}")


def _positive(name: str, value: float) -> None:
    _check(isinstance(value, int | float) and value > 0, name, value, "a number > 0")


def _int_at_least(name: str, value: int, low: int) -> None:
    _check(
        isinstance(value, int) and not isinstance(value, bool) and value >= low,
        name,
        value,
        f"an integer >= {low}",
    )
