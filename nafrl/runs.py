"""One training run from start to finish: the single run-lifecycle function.

:func:`run` takes a :class:`RunSpec` (algorithm, task, seed, budget, :class:`Config`, number of
final test episodes) and a run folder. It creates the folder or resumes the run in it, trains
to the budget, evaluates, writes everything and marks the run finished. ``nafrl train``, the
benches and the sweep runner all call it, so every run folder has one layout:

    config.json         {"algo", "env", "seed", "budget": {"steps": N} | {"episodes": N},
                         "config": Config.to_dict(), "eval_episodes"}
    episodes.csv        one row per training episode
    evals.csv           one row per evaluation (the paper's "test reward")
    checkpoint.npz      parameters, optimiser, replay buffer, RNG state, counters
    tb/                 TensorBoard events
    learning_curve.png
    final_eval.json     the final evaluation (so a rerun never evaluates twice)
    done.json           written atomically LAST: {"num_timesteps", "num_episodes",
                         "wall_time", "final_eval", "machine"} (runtime.machine_info)
    failed.json         {"error", "traceback"} when the run raised
    .lock               held (fcntl.flock) while a process trains in the folder

Guarantees: one trainer per folder (a second gets :class:`RunLockedError`); a folder that
holds something else, or a run with another configuration, is refused; re-running a finished
run does nothing and adds no rows; SIGINT/SIGTERM stop at the next episode boundary with a
checkpoint (:class:`RunInterrupted`); a budget of 0 or a bad spec creates nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nafrl.config import ALGOS, Config, ConfigError, validate_for_algo, with_added_fields
from nafrl.errors import NafrlError
from nafrl.logger import atomic_write_text
from nafrl.runtime import machine_info

if TYPE_CHECKING:
    from nafrl.api import OffPolicyAgent

BUDGET_KINDS: tuple[str, ...] = ("steps", "episodes")
LOCK_NAME = ".lock"
CHECKPOINT = "checkpoint.npz"


class RunError(NafrlError, ValueError):
    """A user error about a run or its folder; the message names what is wrong and what to do."""


class RunLockedError(RunError):
    """Another process is training in this run folder."""


class RunInterrupted(Exception):  # noqa: N818  (a stop the user asked for, not an error)
    """SIGINT or SIGTERM stopped the run at an episode boundary; a checkpoint was saved."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum


@dataclass(frozen=True)
class RunSpec:
    """What to train: ``algo`` ('naf' or 'ddpg') on Gymnasium id ``env`` with ``seed``, for a
    ``budget`` of ``{"steps": N}`` or ``{"episodes": N}`` (the paper counts episodes), with
    ``config``, then ``eval_episodes`` final test episodes (None: ``config.eval_episodes``)."""

    algo: str
    env: str
    seed: int = 0
    budget: Mapping[str, int] = field(default_factory=lambda: {"steps": 20_000})
    config: Config = field(default_factory=Config)
    eval_episodes: int | None = None

    def __post_init__(self) -> None:
        if self.algo not in ALGOS:
            raise RunError(f"unknown algo {self.algo!r}; accepted: {', '.join(ALGOS)}")
        if not isinstance(self.env, str) or not self.env:
            raise RunError(f"env must be a non-empty Gymnasium id, got {self.env!r}")
        if not _is_int(self.seed) or not 0 <= self.seed < 2**32:
            raise RunError(f"invalid seed={self.seed!r}: expected an integer in [0, 2**32)")
        if not isinstance(self.config, Config):
            raise RunError(f"config must be a nafrl.config.Config, got {type(self.config)}")
        b = dict(self.budget) if isinstance(self.budget, Mapping) else None
        if b is None or len(b) != 1 or next(iter(b)) not in BUDGET_KINDS:
            raise RunError(
                f"invalid budget {self.budget!r}: expected {{'steps': N}} or {{'episodes': N}}"
            )
        ((kind, n),) = b.items()
        if not _is_int(n) or n < 1:
            raise RunError(f"invalid budget {kind}={n!r}: expected an integer >= 1")
        object.__setattr__(self, "budget", {kind: int(n)})
        if self.eval_episodes is not None and (
            not _is_int(self.eval_episodes) or self.eval_episodes < 1
        ):
            raise RunError(
                f"invalid eval_episodes={self.eval_episodes!r}: expected an integer >= 1"
            )
        try:  # the form the algorithm records (DDPG: NAF's added options at neutral values)
            object.__setattr__(self, "config", validate_for_algo(self.config, self.algo))
        except ConfigError as e:
            raise RunError(str(e)) from None

    @property
    def budget_kind(self) -> str:
        return next(iter(self.budget))

    @property
    def budget_amount(self) -> int:
        return next(iter(self.budget.values()))

    @property
    def final_eval_episodes(self) -> int:
        return self.eval_episodes if self.eval_episodes is not None else self.config.eval_episodes

    def to_dict(self) -> dict[str, Any]:
        """The ``config.json`` layout."""
        return {
            "algo": self.algo,
            "env": self.env,
            "seed": self.seed,
            "budget": dict(self.budget),
            "config": self.config.to_dict(),
            "eval_episodes": self.final_eval_episodes,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunSpec:
        """Inverse of :meth:`to_dict`; missing or unknown keys raise :class:`RunError`."""
        keys = {"algo", "env", "seed", "budget", "config", "eval_episodes"}
        if not isinstance(d, Mapping) or set(d) != keys:
            got = sorted(d) if isinstance(d, Mapping) else type(d).__name__
            raise RunError(f"a run record needs exactly the keys {sorted(keys)}, got {got}")
        return cls(
            algo=d["algo"],
            env=d["env"],
            seed=d["seed"],
            budget=d["budget"],
            config=Config.from_dict(d["config"]),
            eval_episodes=d["eval_episodes"],
        )


@dataclass(frozen=True)
class RunResult:
    """What :func:`run` did: ``done`` (budget reached and evaluated), ``skipped`` (it was
    already done), the counters, and the final evaluation (None unless done)."""

    folder: Path
    done: bool
    skipped: bool
    num_timesteps: int
    num_episodes: int
    wall_time: float
    final_eval: dict[str, float] | None
    started_at_step: int = 0
    learn_seconds: float = 0.0
    """Seconds this call spent inside ``learn()`` (the rest is the runner's own overhead)."""


def run(
    spec: RunSpec,
    folder: str | os.PathLike,
    *,
    progress_bar: bool = False,
    callback: Callable[[OffPolicyAgent], bool | None] | None = None,
    exist_ok: bool = True,
) -> RunResult:
    """Create or resume the run in ``folder``, train to ``spec.budget``, evaluate, write
    everything and mark it done (``done.json``, atomically, last).

    A folder holding the same run (same config.json apart from a larger budget, which
    extends it) is resumed from its checkpoint; a finished one is returned untouched.
    ``exist_ok=False`` refuses a folder that already holds a run (``nafrl train`` without
    ``--resume``). ``callback(model)`` is called after every episode; returning False stops
    the run early (checkpointed, not done). Raises :class:`RunError` for user errors,
    :class:`RunLockedError` if another process trains there, :class:`RunInterrupted` after a
    SIGINT/SIGTERM (checkpoint saved); any other exception leaves ``failed.json``.
    """
    folder = Path(folder)
    if str(folder) in ("", "."):
        raise RunError("the run folder must be a named folder, not the current directory")
    if folder.exists() and not folder.is_dir():
        raise RunError(f"{folder} exists and is not a folder")
    created = not folder.exists()
    if not created and not (folder / "config.json").exists() and not _is_empty(folder):
        _refuse_foreign(folder)  # checked before the lock file is made: leave it untouched
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with _locked(folder):
            return _run_locked(spec, folder, progress_bar, callback, exist_ok)
    except BaseException:
        if created and _is_empty(folder):
            shutil.rmtree(folder, ignore_errors=True)
        raise


def read_json(path: Path) -> Any:
    """A JSON file, or a :class:`RunError` naming it when it is corrupt."""
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RunError(f"{path} is unreadable or corrupt ({e}); remove the folder or fix it") from e


RECORD_KEYS: tuple[str, ...] = ("algo", "env", "seed", "budget", "config", "eval_episodes")


def read_run_record(path: Path) -> RunSpec:
    """A run folder's ``config.json`` as the :class:`RunSpec` it records; a missing, corrupt,
    incomplete or invalid file is one error naming the file."""
    from nafrl.logger import read_json_object

    record = read_json_object(path, required=RECORD_KEYS)
    try:
        return RunSpec.from_dict(record)
    except (RunError, ConfigError) as e:
        raise RunError(f"{path}: {e}") from e


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON atomically (:func:`nafrl.logger.atomic_write_text`): a reader
    (or a crash) sees the old file or the new one, never half of one."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True))


def is_done(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds a finished run (its ``done.json`` marker exists)."""
    return (Path(folder) / "done.json").is_file()


# ---------------------------------------------------------------------------- internals
def _run_locked(
    spec: RunSpec,
    folder: Path,
    progress_bar: bool,
    callback: Callable[[OffPolicyAgent], bool | None] | None,
    exist_ok: bool,
) -> RunResult:
    cfg_path = folder / "config.json"
    if cfg_path.exists():
        if not exist_ok:
            raise RunError(
                f"{folder} already holds a run; resume it with --resume {folder}, or choose "
                "another --run-dir"
            )
        recorded = read_json(cfg_path)
        _check_same_run(recorded, spec, folder)
        if recorded["budget"] != spec.budget:  # a larger budget extends the run (checked above)
            write_json_atomic(cfg_path, {**recorded, "budget": dict(spec.budget)})
            for name in ("done.json", "final_eval.json"):
                (folder / name).unlink(missing_ok=True)
        if is_done(folder):
            d = read_json(folder / "done.json")
            return RunResult(
                folder,
                True,
                True,
                int(d["num_timesteps"]),
                int(d["num_episodes"]),
                float(d["wall_time"]),
                d["final_eval"],
                int(d["num_timesteps"]),
            )
    elif not _is_empty(folder, clean=True):
        _refuse_foreign(folder)
    fresh = not cfg_path.exists()
    if fresh:
        _check_env(spec)  # before anything is written: a bad env id leaves no folder
        write_json_atomic(cfg_path, spec.to_dict())
    try:
        model = _build(spec, folder)
    except BaseException:
        if fresh:  # the folder was empty: leave it so, not half made
            for p in folder.iterdir():
                if p.name != LOCK_NAME:
                    shutil.rmtree(p) if p.is_dir() else p.unlink()
        raise
    try:
        start, wall0 = model.num_timesteps, model.wall_time
        (folder / "failed.json").unlink(missing_ok=True)
        stop = _train(model, spec, folder, progress_bar, callback)
        if stop is not None:
            signum, _ = stop
            model.save(folder / CHECKPOINT)
            if signum:
                raise RunInterrupted(
                    f"interrupted by {signal.Signals(signum).name} at step "
                    f"{model.num_timesteps}, episode {model.num_episodes}; checkpoint saved. "
                    f"Resume with: nafrl train --resume {folder}",
                    signum,
                )
            return RunResult(
                folder, False, False, model.num_timesteps, model.num_episodes,
                model.wall_time, None, start, model.wall_time - wall0,
            )  # fmt: skip
        final = _finish(model, spec, folder)
        return RunResult(
            folder, True, False, model.num_timesteps, model.num_episodes, model.wall_time,
            final, start, model.wall_time - wall0,
        )  # fmt: skip
    except (RunInterrupted, RunError, ConfigError, KeyboardInterrupt, SystemExit):
        raise  # user errors and stops; a second Ctrl-C keeps the last checkpoint
    except BaseException as e:
        from nafrl.api import TrainingDivergedError

        error = _diverged_message(e, folder) if isinstance(e, TrainingDivergedError) else None
        first = str(e).splitlines()[0] if str(e) else ""
        write_json_atomic(
            folder / "failed.json",
            {"error": error or f"{type(e).__name__}: {first}", "traceback": traceback.format_exc()},
        )
        if error is not None:
            raise RunError(error) from e
        raise
    finally:
        model.close()


def _build(spec: RunSpec, folder: Path) -> OffPolicyAgent:
    """The agent: loaded from the folder's checkpoint, or new with the spec's settings. Log
    rows written after the checkpoint (by a process that was killed) are dropped."""
    from nafrl.api import DDPG, NAF, OffPolicyAgent

    ck = folder / CHECKPOINT
    if ck.exists():
        model = OffPolicyAgent.load(ck, run_dir=folder)
    else:
        klass = NAF if spec.algo == "naf" else DDPG
        model = klass(spec.env, seed=spec.seed, run_dir=folder, config=spec.config)
    assert model.logger is not None
    model.logger.truncate_after(model.num_episodes)
    return model


def _train(
    model: OffPolicyAgent,
    spec: RunSpec,
    folder: Path,
    progress_bar: bool,
    callback: Callable[[OffPolicyAgent], bool | None] | None,
) -> tuple[int, str] | None:
    """Train until the budget; returns (signal number or 0, reason) if stopped early."""
    stop: list[tuple[int, str]] = []
    kind, amount = spec.budget_kind, spec.budget_amount

    def on_episode(m: OffPolicyAgent) -> bool:
        if callback is not None and callback(m) is False:
            stop.append((0, "callback"))
        if kind == "episodes" and m.num_episodes >= amount:
            return False
        return not stop

    if kind == "steps":
        total = amount - model.num_timesteps
    else:
        remaining = amount - model.num_episodes
        horizon = getattr(getattr(model.env, "spec", None), "max_episode_steps", None)
        # An upper bound on the steps of the remaining episodes; on_episode stops at the count.
        total = remaining * horizon if horizon else 2**62
        if remaining <= 0:
            total = 0
    if total > 0:
        with _stop_on_signals(stop):
            model.learn(total, progress_bar=progress_bar, callback=on_episode)
    done = model.num_timesteps if kind == "steps" else model.num_episodes
    if stop and done < amount:  # a stop that came with the budget's last episode is no stop
        return stop[0]
    if kind == "episodes" and model.num_episodes < amount:  # a task that never ends episodes
        raise RunError(
            f"{spec.env} finished only {model.num_episodes} of {amount} episodes; use a steps "
            "budget for tasks without a time limit"
        )
    model.save(folder / CHECKPOINT)
    return None


def _finish(model: OffPolicyAgent, spec: RunSpec, folder: Path) -> dict[str, float]:
    """Final evaluation (once: a rerun reuses final_eval.json), figure, then done.json."""
    from nafrl.experiments.plots import plot_runs

    fe_path = folder / "final_eval.json"
    final = None
    if fe_path.exists():
        fe = read_json(fe_path)
        if fe.get("num_timesteps") == model.num_timesteps:
            final = fe["final_eval"]
    if final is None:
        final = model.evaluate(spec.final_eval_episodes)
        write_json_atomic(fe_path, {"num_timesteps": model.num_timesteps, "final_eval": final})
    plot_runs(
        [folder],
        folder / "learning_curve.png",
        title=f"{model.algo.upper()} on {model.env_id} (seed {model.seed})",
    )
    write_json_atomic(
        folder / "done.json",
        {
            "num_timesteps": model.num_timesteps,
            "num_episodes": model.num_episodes,
            "wall_time": model.wall_time,
            "final_eval": final,
            "machine": machine_info(),  # bit-identical reruns need the same CPU and threads
        },
    )
    return final


def _check_env(spec: RunSpec) -> None:
    from nafrl.env_utils import check_spaces, make_env

    env = make_env(spec.env)
    try:
        check_spaces(env, spec.algo.upper())
    finally:
        env.close()


def _check_same_run(recorded: Any, spec: RunSpec, folder: Path) -> None:
    """Refuse a folder whose config.json describes another run; a larger budget of the same
    kind is accepted (it extends the run), a smaller or other kind is not."""
    want = spec.to_dict()
    if not isinstance(recorded, dict) or set(recorded) != set(want):
        raise RunError(
            f"{folder}/config.json is not a run record of this nafrl (keys "
            f"{sorted(recorded) if isinstance(recorded, dict) else type(recorded).__name__}, "
            f"expected {sorted(want)}); choose another folder"
        )
    diffs = [
        f"{k}: {recorded[k]!r} in the folder, {want[k]!r} here"
        for k in ("algo", "env", "seed", "eval_episodes")
        if recorded[k] != want[k]
    ]
    rc = with_added_fields(recorded["config"] if isinstance(recorded["config"], dict) else {})
    diffs += [
        f"{k}: {rc.get(k)!r} in the folder, {v!r} here"
        for k, v in want["config"].items()
        if rc.get(k) != v
    ]
    diffs += [f"{k}: in the folder, not here" for k in rc if k not in want["config"]]
    old = recorded["budget"]
    if not isinstance(old, dict) or len(old) != 1:
        diffs.append(f"budget: {old!r} in the folder is malformed")
    elif set(old) != set(spec.budget):
        diffs.append(f"budget: {old} in the folder, {dict(spec.budget)} here (another kind)")
    elif spec.budget_amount < next(iter(old.values())):
        diffs.append(
            f"budget: {old} in the folder, {dict(spec.budget)} here (a budget can only grow)"
        )
    if diffs:
        raise RunError(
            f"{folder} holds a different run ({'; '.join(diffs)}); a resumed run keeps its "
            "configuration, only its budget may grow. Use another folder to change it"
        )


def _diverged_message(e: BaseException, folder: Path) -> str:
    first = str(e).split(";")[0]
    ck = folder / CHECKPOINT
    if ck.exists():
        step = checkpoint_step(ck)
        where = f"the last checkpoint ({ck}, step {step}) is kept"
    else:
        where = "no checkpoint was written yet, so there is nothing to resume"
    return (
        f"training diverged: {first}; {where}. Try a smaller learning_rate, grad_clip_norm > 0 "
        "or batch_norm"
    )


def checkpoint_step(path: str | os.PathLike) -> int | str:
    """The step a checkpoint (or a run folder's) was written at, read from its header only,
    not its arrays; ``"unknown"`` if it cannot be read."""
    import numpy as np

    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT

    try:
        with np.load(path, allow_pickle=False) as z:
            return int(json.loads(z["__meta__"].tobytes().decode())["num_timesteps"])
    except Exception:  # noqa: BLE001  (only for the message)
        return "unknown"


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``folder/.lock``; the kernel drops it when the process
    dies, so a killed trainer never leaves a stale lock."""
    path = folder / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise RunLockedError(
                f"{folder} is in use by another training process (pid {holder}); wait for it "
                "to finish or choose another folder"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def _stop_on_signals(stop: list[tuple[int, str]]) -> Iterator[None]:
    """SIGINT/SIGTERM ask training to stop at the next episode boundary (a safe point to
    checkpoint); a second signal acts as usual (immediate stop, last checkpoint kept)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be installed from the main thread
        return
    sigs = (signal.SIGINT, signal.SIGTERM)
    old = {s: signal.getsignal(s) for s in sigs}

    def handler(signum: int, frame: Any) -> None:
        stop.append((signum, signal.Signals(signum).name))
        for s in sigs:
            signal.signal(s, old[s] if old[s] is not None else signal.SIG_DFL)
        os.write(
            2,
            f"nafrl: {signal.Signals(signum).name}: stopping at the end of this episode to "
            "save a checkpoint (send it again to stop now)\n".encode(),
        )

    for s in sigs:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s in sigs:
            signal.signal(s, old[s] if old[s] is not None else signal.SIG_DFL)


def _refuse_foreign(folder: Path) -> None:
    raise RunError(
        f"{folder} is not empty and holds no nafrl run (no config.json); choose an empty "
        "or new folder"
    )


def _is_empty(folder: Path, clean: bool = False) -> bool:
    """Nothing but the lock file, temporary files of an atomic write that was killed
    (``.config.json.*.tmp``: a trainer killed while creating the run) and the
    ``failed.json`` of a run that failed before it started; ``clean`` (only under the lock)
    removes the temporary files (a retry that starts removes failed.json)."""
    empty = True
    for p in folder.iterdir():
        if p.name.startswith(".") and p.name.endswith(".tmp") and p.is_file():
            if clean:
                p.unlink(missing_ok=True)
        elif p.name not in (LOCK_NAME, "failed.json"):
            empty = False
    return empty


def _is_int(x: Any) -> bool:
    import numbers

    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


__all__ = [
    "RunError",
    "RunInterrupted",
    "RunLockedError",
    "RunResult",
    "RunSpec",
    "checkpoint_step",
    "is_done",
    "read_json",
    "run",
    "write_json_atomic",
]
