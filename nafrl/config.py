"""Configuration: one frozen dataclass for every agent option, validated at construction.

Defaults follow the paper (Gu et al. 2016, section 6) where it gives a value; the rest are
documented choices. The command line (``nafrl train --learning-rate 1e-4 ...``) is generated
from this class, so each field's docstring is also its ``--help`` text.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import typing
from dataclasses import dataclass
from typing import Any, Literal

from nafrl.errors import ConfigError

ExplorationKind = Literal["ou", "gaussian", "precision"]
ModelKind = Literal["none", "true", "linear", "neural"]
PlannerKind = Literal["ilqg", "mpc"]
ModelPriorKind = Literal["gmm", "gaussian", "none"]
WarmupKind = Literal["policy", "uniform"]
WARMUP_KINDS: tuple[str, ...] = ("policy", "uniform")
PLANNER_KINDS: tuple[str, ...] = ("ilqg", "mpc")
MODEL_PRIOR_KINDS: tuple[str, ...] = ("gmm", "gaussian", "none")
EXPLORATION_KINDS: tuple[str, ...] = ("ou", "gaussian", "precision")
MODEL_KINDS: tuple[str, ...] = ("none", "true", "linear", "neural")


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
    layer_norm: bool | None = None
    """Layer normalisation of every hidden layer before its ReLU. None: the algorithm's
    default (:data:`ALGO_DEFAULTS`: on for NAF, off for DDPG). Not in the paper (its
    protocols set False): with it NAF's V stays bounded where it diverged on HalfCheetah-v5
    (issue 13, bench/results/reliability/README.md)."""
    obs_norm: bool | None = None
    """Normalise observations by their running mean and standard deviation (as SB3's
    VecNormalize; nafrl.agents.obs_norm). None: the algorithm's default (on for NAF, off for
    DDPG). Not in the paper (its protocols set False): batch norm's input scaling without
    its per-minibatch spread, which broke the pendulums (issue 13)."""
    max_log_diag: float = 5.0
    """NAF: smooth bound on |log diag L| (tanh), so P = L L^T stays finite and positive
    definite and its gradient never stops."""
    min_log_diag: float | None = -1.0
    """NAF: lower bound of log diag L, a negative number (None: -max_log_diag, the paper's
    protocols), so P >= e^(2 min_log_diag): the advantage cannot vanish while mu saturates
    (issue 13)."""

    # --- optimisation (Algorithm 1) ---
    learning_rate: float = 1e-3
    """Adam step size (of the Q network; for DDPG of the critic)."""
    actor_learning_rate: float | None = 1e-4
    """DDPG only: Adam step size of the actor (None: same as learning_rate). 1e-4 as in the
    DDPG paper (Lillicrap et al. 2016): with 1e-3 the actor saturated (|pi| > 0.99 on every
    state) within 50 updates on one of three InvertedPendulum-v5 seeds and never recovered
    (bench/results/reliability/README.md)."""
    mu_learning_rate: float | None = None
    """NAF only: Adam step size of mu's network (of mu's output columns with a shared trunk).
    None: learning_rate, as the paper (one network, one optimiser)."""
    batch_size: int = 64
    """Minibatch size m of each update."""
    updates_per_step: int = 5
    """I, the number of minibatch updates per environment step (section 6: I = 5)."""
    gamma: float = 0.99
    """Discount factor."""
    tau: float = 0.005
    """Soft target update rate: theta' <- tau * theta + (1 - tau) * theta' after each of the
    I updates. The paper does not give it; 0.005 rather than DDPG's 0.001: the targets must
    follow about 1/(1 - gamma) Bellman backups, each lagging about 1/(tau * I) env steps
    (4k env steps in all at 0.005, 20k at 0.001), and with 0.001 NAF failed on 2 of 5 seeds
    of Pendulum-v1 in 12k steps (mu stuck in tanh's tails) where 0.005 learned on 5 of 5
    (bench/results/reliability/)."""
    clip_target: bool = False
    """Clip the TD target to the returns the rewards seen allow, [min(r_min, 0),
    max(r_max, 0)] / (1 - gamma): not in the paper; issue 13 measures it against the
    divergence of V."""
    target_smoothing: float = 0.15
    """NAF only: sigma of target policy smoothing (TD3's, Fujimoto et al. 2018) in closed
    form: y = r + gamma E[Q'(x', mu' + eps)], eps ~ N(0, sigma^2 I), which for NAF's
    quadratic Q' is V'(x') - sigma^2 / 2 tr P'(x'). Not in the paper (0 disables, as the
    paper's protocols do): without it V overshot 12-60x the return scale on the pendulums
    and Hopper-v5, fed by a sharp (large P) peak of Q' (issue 13)."""
    twin_v: bool = False
    """NAF only: two V networks trained on one target y = r + gamma min(V1'(x'), V2'(x')),
    sharing mu and L (TD3's clipped double Q, Fujimoto et al. 2018, for NAF, where max_u Q'
    is V'). Not in the paper; issue 13 measures it against the overshoot of V."""
    grad_clip_norm: float = 0.0
    """Clip gradients to this global norm (0 disables); guards against divergence."""

    # --- replay ---
    buffer_size: int = 1_000_000
    """Capacity of the replay buffer R (a ring: the oldest transitions are overwritten)."""
    learning_starts: int = 1_000
    """Environment steps before the first update."""
    warmup: WarmupKind | None = None
    """Actions of the first ``learning_starts`` env steps: 'policy' (mu(x) + noise, as the
    paper) or 'uniform' (uniform random in the action box, as SB3 and CleanRL's DDPG, TD3
    and SAC fill their buffers). None: the algorithm's default (:data:`ALGO_DEFAULTS`:
    'uniform' for NAF, whose HalfCheetah-v5 policy otherwise flips onto its back, issue 13;
    'policy' for DDPG). Guided (iLQG) episodes always follow their controller."""

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
    """Capacity of the fictional buffer R_f (0: n*T*l, the rollouts of one model fit, for
    fitted models whose older rollouts came from worse models). Algorithm 2 never empties
    R_f; with model='true' nothing goes stale and the table2 protocol sets 10**6."""
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
    mpc_replan_every: int = 1
    """Guided episodes, planner='mpc': plan every k steps and follow the plan's feedback law
    in between (1: every step; the paper does not say; bench/mpc_replan.py measures k)."""
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
        if isinstance(self.hidden_sizes, list):  # JSON and keyword callers give lists
            object.__setattr__(self, "hidden_sizes", tuple(self.hidden_sizes))
        _check_types(self)
        _check(
            bool(self.hidden_sizes) and all(h >= 1 for h in self.hidden_sizes),
            "hidden_sizes",
            self.hidden_sizes,
            "a non-empty tuple of positive integers",
        )
        _positive("learning_rate", self.learning_rate)
        if self.actor_learning_rate is not None:
            _positive("actor_learning_rate", self.actor_learning_rate)
        if self.mu_learning_rate is not None:
            _positive("mu_learning_rate", self.mu_learning_rate)
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
        _check(
            self.min_log_diag is None or self.min_log_diag < 0.0,
            "min_log_diag",
            self.min_log_diag,
            "None (= -max_log_diag) or a negative number",
        )
        _int_at_least("buffer_size", self.buffer_size, 1)
        _int_at_least("learning_starts", self.learning_starts, 0)
        _check(
            self.warmup is None or self.warmup in WARMUP_KINDS,
            "warmup",
            self.warmup,
            f"None or one of {', '.join(WARMUP_KINDS)}",
        )
        _check(
            self.exploration in EXPLORATION_KINDS,
            "exploration",
            self.exploration,
            f"one of {', '.join(EXPLORATION_KINDS)}",
        )
        _check(self.noise_scale >= 0.0, "noise_scale", self.noise_scale, "a number >= 0")
        _check(
            self.target_smoothing >= 0.0, "target_smoothing", self.target_smoothing, "a number >= 0"
        )
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
        _int_at_least("mpc_replan_every", self.mpc_replan_every, 1)
        _check(
            self.mpc_replan_every <= self.mpc_horizon,
            "mpc_replan_every",
            self.mpc_replan_every,
            f"at most mpc_horizon ({self.mpc_horizon})",
        )
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
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them. A field of
        :data:`ADDED_FIELDS` that the record lacks (written before the field existed) takes
        its neutral value, the behaviour the record was made with, not today's default."""
        if not isinstance(d, dict) or not all(isinstance(k, str) for k in d):
            raise ConfigError(f"a config must be a JSON object of fields, got {type(d).__name__}")
        return make_config(**with_added_fields(d))


FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Config))

#: Fields added after run folders were first recorded, with the value that keeps the earlier
#: behaviour (the paper's method; today's default may differ since issue 13). A config.json
#: without one of them reads as that value, and run ids leave them out at that value, so
#: adding an option neither orphans nor refuses existing runs.
ADDED_FIELDS: dict[str, Any] = {
    "layer_norm": False,
    "clip_target": False,
    "target_smoothing": 0.0,
    "min_log_diag": None,
    "twin_v": False,
    "obs_norm": False,
    "mpc_replan_every": 1,
    "warmup": "policy",
    "mu_learning_rate": None,
}


def with_added_fields(record: dict[str, Any]) -> dict[str, Any]:
    """A recorded config dict with the :data:`ADDED_FIELDS` it lacks at their neutral values."""
    return {**{k: v for k, v in ADDED_FIELDS.items() if k not in record}, **record}


def identity_dict(config: Config) -> dict[str, Any]:
    """``config.to_dict()`` without the :data:`ADDED_FIELDS` at their neutral values: what
    identifies a run."""
    return {
        k: v
        for k, v in config.to_dict().items()
        if not (k in ADDED_FIELDS and v == ADDED_FIELDS[k])
    }


def make_config(**overrides: Any) -> Config:
    """Build a :class:`Config`, rejecting unknown names with the list of accepted ones."""
    unknown = sorted(set(overrides) - set(FIELD_NAMES))
    if unknown:
        raise ConfigError(
            f"unknown config field(s) {', '.join(unknown)}; accepted: {', '.join(FIELD_NAMES)}"
        )
    if isinstance(overrides.get("hidden_sizes"), list):
        overrides["hidden_sizes"] = tuple(overrides["hidden_sizes"])
    return Config(**overrides)


def _check(ok: bool, name: str, value: Any, accepted: str) -> None:
    if not ok:
        raise ConfigError(f"invalid {name}={value!r}: expected {accepted}")


def _positive(name: str, value: float) -> None:
    _check(
        _is_real(value) and math.isfinite(value) and value > 0, name, value, "a finite number > 0"
    )


def _int_at_least(name: str, value: int, low: int) -> None:
    _check(
        _is_int(value) and value >= low,
        name,
        value,
        f"an integer >= {low}",
    )


# --------------------------------------------------------------------- type checks
def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _check_value_type(name: str, value: Any, hint: Any) -> None:
    """Raise :class:`ConfigError` unless ``value`` has the annotated type; floats must be
    finite (an infinite step size or noise scale only ever produces NaN)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union or (origin is not None and type(None) in args):
        if value is None and type(None) in args:
            return
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            _check_value_type(name, value, rest[0])
        return
    if origin is Literal:
        _check(
            isinstance(value, str) and value in args,
            name,
            value,
            f"one of {', '.join(map(str, args))}",
        )
    elif hint is bool:
        _check(isinstance(value, bool), name, value, "true or false (a bool)")
    elif hint is int:
        _check(_is_int(value), name, value, "an integer")
    elif hint is float:
        _check(_is_real(value) and math.isfinite(value), name, value, "a finite number")
    elif hint is str:
        _check(isinstance(value, str), name, value, "a string")
    elif origin is tuple and args[-1:] == (Ellipsis,) and args[0] is int:
        _check(
            isinstance(value, tuple) and all(_is_int(h) for h in value),
            name,
            value,
            "a tuple of integers",
        )


def _check_types(config: Config) -> None:
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        _check_value_type(f.name, getattr(config, f.name), hints[f.name])


# --------------------------------------------------------------------- per-algorithm options
#: Options that only one algorithm reads; the other rejects any value but the default.
ALGO_ONLY: dict[str, tuple[str, ...]] = {
    "naf": (
        "shared_trunk",
        "max_log_diag",
        "min_log_diag",
        "target_smoothing",
        "twin_v",
        "precision_start",
        "model",
        "ilqg_fraction",
        "planner",
        "imagination_length",
        "imagination_off_after",
        "refit_every",
        "fictional_buffer_size",
        "model_noise",
        "project_imagined",
        "model_prior",
        "kl_step",
        "adapt_kl_step",
        "mpc_horizon",
        "mpc_iterations",
        "mpc_replan_every",
        "ilqg_iterations",
        "mu_learning_rate",
    ),
    "ddpg": ("actor_learning_rate",),
}
ALGOS: tuple[str, ...] = tuple(ALGO_ONLY)  # equals nafrl.agents.ALGORITHMS (tested)
#: Former defaults of another algorithm's fields, still read as "not set": config.json files
#: written before actor_learning_rate's default became 1e-4 hold None there, and a NAF run
#: saved then must still resume. (NAF's fields of :data:`ADDED_FIELDS` read as "not set" at
#: their neutral values too: DDPG runs recorded before NAF's defaults changed hold them.)
_FORMER_DEFAULTS: dict[str, tuple[Any, ...]] = {"actor_learning_rate": (None,)}


#: What a field left at None means for each algorithm. NAF's are issue 13's measured
#: defaults. DDPG, the paper's baseline, keeps the paper's networks and warm-up: with obs_norm
#: and layer_norm it was measured on InvertedPendulum-v5 only (5 of 5 seeds reach 1000 by
#: 3.4-5.6k steps, 2 of 5 steady at the end; without: 3 of 3 by 2.8-9.8k, none steady), and
#: with the uniform warm-up too (5 of 5 reach 1000, one falls back to 681), not on the
#: suite's other tasks (bench/results/reliability/README.md).
ALGO_DEFAULTS: dict[str, dict[str, Any]] = {
    "naf": {"obs_norm": True, "layer_norm": True, "warmup": "uniform"},
    "ddpg": {"obs_norm": False, "layer_norm": False, "warmup": "policy"},
}


def for_algo(config: Config, algo: str) -> Config:
    """``config`` with its fields left at None replaced by ``algo``'s :data:`ALGO_DEFAULTS`."""
    unset = {k: v for k, v in ALGO_DEFAULTS.get(algo, {}).items() if getattr(config, k) is None}
    return dataclasses.replace(config, **unset) if unset else config


def _unset(config: Config, name: str) -> bool:
    value = getattr(config, name)
    return (
        value == getattr(Config, name)
        or value in _FORMER_DEFAULTS.get(name, ())
        or (name in ADDED_FIELDS and value == ADDED_FIELDS[name])
    )


def validate_for_algo(config: Config, algo: str) -> Config:
    """Check that ``config`` is valid for ``algo`` ('naf' or 'ddpg') and return it in the
    form that algorithm records (fields left at None set to its :data:`ALGO_DEFAULTS`).

    A field another algorithm owns (:data:`ALGO_ONLY`) must be left unset (its default, or
    its neutral value of :data:`ADDED_FIELDS`): DDPG rejects NAF's network and model-based
    options and ``exploration='precision'``; NAF rejects ``actor_learning_rate``. The
    returned config holds those of them that are :data:`ADDED_FIELDS` at their neutral
    values, so a DDPG run's record and id do not change when a NAF-only default does.
    Agents call this when built; a sweep calls it on every point of its grid before
    starting anything.
    """
    if algo not in ALGO_ONLY:
        raise ConfigError(f"unknown algorithm {algo!r}; accepted: {', '.join(ALGOS)}")
    if not isinstance(config, Config):
        raise ConfigError(f"config must be a nafrl.config.Config, got {type(config).__name__}")
    others = [n for other, names in ALGO_ONLY.items() if other != algo for n in names]
    foreign = [n for n in others if not _unset(config, n)]
    if algo != "naf" and config.exploration == "precision":
        foreign.append("exploration='precision'")
    if foreign:
        owner = "NAF" if algo != "naf" else "DDPG"
        raise ConfigError(
            f"{algo.upper()} does not support {', '.join(foreign)}: these are {owner} options; "
            f"leave them at their defaults"
        )
    neutral = {n: ADDED_FIELDS[n] for n in others if n in ADDED_FIELDS}
    config = dataclasses.replace(config, **neutral) if neutral else config
    return for_algo(config, algo)


# --------------------------------------------------------------------- seeds, counts, memory
MAX_SEED = 2**32 - 1


def validate_seed(seed: Any, name: str = "seed") -> int:
    """``seed`` as an int in [0, 2**32 - 1] (what NumPy, JAX and Gymnasium all accept)."""
    _check(
        _is_int(seed) and 0 <= seed <= MAX_SEED,
        name,
        seed,
        f"an integer in [0, {MAX_SEED}]",
    )
    return int(seed)


def validate_count(name: str, value: Any, low: int = 1) -> int:
    """``value`` as an int >= ``low`` (episodes, steps), or one clear error."""
    _int_at_least(name, value, low)
    return int(value)


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux ``MemAvailable``), or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _mlp_params(sizes: list[int]) -> int:
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=False))


def memory_needed(config: Config, obs_dim: int, act_dim: int) -> dict[str, int]:
    """Estimated bytes per field that sets a large allocation: the replay buffer(s), the
    networks (parameters, targets and two Adam moments, float32) and one update's
    activations (forward and backward of every network, I minibatches)."""
    h = list(config.hidden_sizes)
    n_l = act_dim * (act_dim + 1) // 2
    # NAF's V, mu and L networks; DDPG's critic and actor are no larger.
    nets = [[obs_dim + act_dim, *h, 1], [obs_dim, *h, act_dim], [obs_dim, *h, max(n_l, 1)]]
    params = sum(_mlp_params(n) for n in nets)
    per_transition = 4 * (2 * obs_dim + act_dim + 2)
    # The I updates of a step run one after another (lax.scan): one minibatch is alive.
    activations = 4 * config.batch_size * (sum(h) + obs_dim + act_dim) * len(nets) * 3
    return {
        "buffer_size": config.buffer_size * per_transition,
        "fictional_buffer_size": config.fictional_buffer_size * per_transition,
        "hidden_sizes": 16 * params,
        "batch_size": activations,
    }


def check_memory(config: Config, obs_dim: int, act_dim: int) -> None:
    """Raise :class:`ConfigError` before allocating if the buffers and networks cannot fit in
    the available memory, naming the field that needs the most and its bytes."""
    avail = available_memory()
    if avail is None:
        return
    need = memory_needed(config, obs_dim, act_dim)
    total = sum(need.values())
    if total <= avail:
        return
    field = max(need, key=need.__getitem__)
    raise ConfigError(
        f"{field}={getattr(config, field)!r} needs about {_bytes(need[field])} of memory "
        f"({_bytes(total)} in all with obs_dim={obs_dim}, act_dim={act_dim}), but only "
        f"{_bytes(avail)} is available; choose a smaller {field}"
    )


def _bytes(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} PB"
