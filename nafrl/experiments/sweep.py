"""Run a sweep: every planned run through :func:`nafrl.runs.run`, locally or on Ray.

    nafrl sweep run SPEC.toml --out DIR [--workers N] [--backend local|ray] [--address ADDR]
    nafrl sweep run --paper table1 --budget laptop --out DIR

* **Local** (default): a process pool (spawn) of ``N`` workers (default: the core count),
  each limited to one thread (XLA's CPU back end, OpenMP, OpenBLAS, MKL) before it imports
  JAX. At most ``N`` runs are in flight, so a stop request never starts another run.
* **Ray** (the ``nafrl[ray]`` extra): the same :func:`execute` as a Ray task with one CPU
  per run, on a local Ray or the cluster at ``--address``.
* **Idempotent**: the spec is validated whole before anything starts; a rerun skips finished
  runs (their ``done.json``), resumes partial ones from their checkpoints and retries failed
  ones. ``kill -9`` of the sweep loses no finished run (workers die with it) and no more than
  one checkpoint interval of a running one.
* **Deadline** (``--deadline 06:40`` or ``--deadline 2h30m``): a run starts only if its
  estimated time (:func:`estimate`) ends before the deadline; the runs that do not fit are
  left for a later call, and the sweep returns when the last started run ends. For machines
  with a wall-time limit (a batch job, a session), whose unfinished run would be lost or
  left half done.

``DIR/sweep.json`` is the manifest {"name", "spec", "runs": [{"id", "algo", "task", "seed",
"point", "budget", "config", ...}]}; ``DIR/runs/<id>/`` are ordinary run folders.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import json
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal

from nafrl.config import with_added_fields
from nafrl.experiments.spec import PlannedRun, SpecError, SweepSpec, expand, run_content
from nafrl.runs import read_json, write_json_atomic

#: Environment of every worker, set before it imports JAX or NumPy: one thread each, so N
#: workers on N cores do not fight over them (issue 11; XLA's Eigen pool, OpenMP, BLAS).
#: Without YNNPACK (``NAFRL_XLA_DEFAULTS=0``): its 5-10% gain was measured with XLA's
#: thread pool; on one thread it was 6% slower (median of 7 alternating pairs of NAF update
#: timings, 2026-12-07). Until that day a bare ``intra_op_parallelism_threads=1`` stood in
#: XLA_FLAGS here, after which XLA ignores every flag, the appended YNN one included; the
#: workers' numerics are the same as then.
THREAD_ENV: dict[str, str] = {
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false",
    "NAFRL_XLA_DEFAULTS": "0",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


def worker_env(out: Path) -> dict[str, str]:
    """:data:`THREAD_ENV` plus JAX's persistent compilation cache in ``out/.jax_cache``:
    every run of a sweep compiles the same programs (the agent's initialisation, its train
    step, its policy), and reading them back cuts the per-run start-up cost 2-3x (measured:
    bench/README.md)."""
    return {
        **THREAD_ENV,
        "JAX_COMPILATION_CACHE_DIR": str((out / ".jax_cache").resolve()),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
    }


#: Env steps per second of one single-threaded worker training NAF with the default Config
#: (2 x 200 units, batch 64, I = 5 updates per step), measured on this project's 2-core
#: machine (issue 11: 351 and 347 steps/s for two concurrent HalfCheetah runs). The estimate
#: weights each run's steps by :func:`step_cost` and prefers the rate of runs already
#: finished in DIR.
REFERENCE_STEPS_PER_SEC = 350.0
#: Seconds each run costs besides training: process start-up, JIT compilation, final
#: evaluation, figure, markers (bench/sweep.py measures it).
REFERENCE_RUN_OVERHEAD = 10.0
#: Algorithm 2's imagination: extra cost per env step per unit of rollout length l (its I*l
#: extra minibatches ride in the same jitted call, so at most 1 + l). Measured at l = 10:
#: 3.2x model-free on section 6.3's reacher (batch norm off, 71 against 22 ms per step) and
#: 7x on Table 2's (batch norm on, 143 against 20 ms beside each other); 1 + 0.5 l between.
IMAGINATION_COST_PER_STEP_OF_L = 0.5
#: A guided step (planner driving the episode) in model-free steps, by (model, planner).
#: True-model MPC: in Table 2's reacher 0.5 MPC run (2026-12-07, one pinned core) the guided
#: episodes ran at a median 11.8 env steps/s against 121 for the same run's other episodes,
#: 10.3x (the earlier guess of 20, from bench/simulator.py's MPC step on a loaded machine
#: against an unloaded model-free step, doubled the estimate). Full-horizon iLQG with the
#: simulator replans once per episode with ~20 iterations: 10, half the old MPC guess, not
#: re-measured. Planning through fitted models is jitted and cheap.
GUIDED_STEP_COST: dict[tuple[str, str], float] = {("true", "mpc"): 10.0, ("true", "ilqg"): 10.0}


def step_cost(cfg: Any, episodes: int | None = None) -> float:
    """Rough cost of one env step of a run with ``cfg`` in model-free NAF steps (I = 5):
    more updates, imagination rollouts and planner-driven (guided) episodes cost more, so
    a sweep that mixes them gets a sensible estimate. ``episodes``: the run's budget, to
    count imagination switched off after ``imagination_off_after`` episodes."""
    cost = cfg.updates_per_step / 5
    if cfg.model != "none" and cfg.imagination_length > 0:
        share = 1.0
        if cfg.imagination_off_after > 0 and episodes:
            share = min(1.0, cfg.imagination_off_after / episodes)
        cost *= 1 + IMAGINATION_COST_PER_STEP_OF_L * cfg.imagination_length * share
    if cfg.model != "none" and cfg.ilqg_fraction > 0:
        guided = GUIDED_STEP_COST.get((cfg.model, cfg.planner), 1.0)
        if cfg.planner == "mpc":  # one plan every mpc_replan_every steps
            guided /= cfg.mpc_replan_every
        cost += cfg.ilqg_fraction * guided
    return cost


Backend = Literal["local", "ray"]


@dataclass
class SweepSummary:
    """Counts after a sweep (or a stop): runs done (this time or before), failed (id ->
    error), interrupted, and the results this invocation produced (id -> execute()'s dict)."""

    out: Path
    total: int
    done: int
    failed: dict[str, str] = field(default_factory=dict)
    interrupted: int = 0
    deferred: int = 0  # runs not started: none of them fitted before the deadline
    left_out: int = 0  # unfinished runs that --only did not select (neither done nor run)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    wall_time: float = 0.0


# ---------------------------------------------------------------------------- worker side
def execute(entry: dict[str, Any], folder: str) -> dict[str, Any]:
    """Train one run of a sweep (a manifest entry) in ``folder``, in this process. Both back
    ends call this; it never raises: it returns {"id", "status": done|stopped|interrupted|
    locked|failed, ...} and leaves ``failed.json`` in the folder when the run failed."""
    import traceback

    from nafrl.config import Config
    from nafrl.runs import RunInterrupted, RunLockedError, RunSpec, run

    t0 = time.perf_counter()
    out: dict[str, Any] = {"id": entry["id"]}
    try:
        spec = RunSpec(
            entry["algo"],
            entry["task"],
            entry["seed"],
            entry["budget"],
            Config.from_dict(entry["config"]),
            entry["eval_episodes"],
        )
        res = run(spec, folder)
        out.update(
            status="done" if res.done else "stopped",
            skipped=res.skipped,
            num_timesteps=res.num_timesteps,
            num_episodes=res.num_episodes,
            started_at_step=res.started_at_step,
            learn_seconds=res.learn_seconds,
            final_eval=res.final_eval,
        )
    except RunInterrupted as e:
        out.update(status="interrupted", error=str(e))
    except RunLockedError as e:
        out.update(status="locked", error=str(e))
    except Exception as e:  # noqa: BLE001  (reported per run; the sweep goes on)
        line = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        failed = Path(folder) / "failed.json"
        # A run that failed before its folder existed (its config rejected, say) still gets
        # one, so that `nafrl sweep status` reports it failed, not pending.
        Path(folder).mkdir(parents=True, exist_ok=True)
        if not failed.exists():
            write_json_atomic(failed, {"error": line, "traceback": traceback.format_exc()})
        out.update(status="failed", error=read_json(failed)["error"] if failed.exists() else line)
    out["seconds"] = time.perf_counter() - t0
    out["runner_seconds"] = out["seconds"] - out.get("learn_seconds", 0.0)
    return out


def _worker_init() -> None:
    """Pool worker set-up: die with the sweep process (so ``kill -9`` of the sweep leaves no
    orphan training into a folder the rerun needs), and ignore Ctrl-C while idle (a run
    catches it itself to checkpoint at the end of its episode)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (Linux)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


# ---------------------------------------------------------------------------- back ends
class _LocalBackend:
    def __init__(self, workers: int) -> None:
        import multiprocessing as mp

        self.slots = workers
        self.pool = mp.get_context("spawn").Pool(workers, initializer=_worker_init)

    def submit(self, entry: dict[str, Any], folder: str) -> Any:
        return self.pool.apply_async(execute, (entry, folder))

    def wait(self, handles: list[Any], timeout: float) -> list[tuple[Any, dict[str, Any]]]:
        deadline = time.monotonic() + timeout
        while True:
            ready = [h for h in handles if h.ready()]
            if ready or time.monotonic() >= deadline:
                return [(h, h.get()) for h in ready]
            time.sleep(0.05)

    def close(self, abort: bool) -> None:
        if abort:
            self.pool.terminate()
        else:
            self.pool.close()
        self.pool.join()


class _RayBackend:
    def __init__(self, workers: int | None, address: str | None, env: dict[str, str]) -> None:
        try:  # an optional extra: imported by name so type checks pass without it installed
            ray = importlib.import_module("ray")
        except ImportError:
            raise SpecError("--backend ray needs Ray: pip install 'nafrl[ray]'") from None
        self.ray = ray
        kw: dict[str, Any] = {
            "runtime_env": {"env_vars": env},
            "include_dashboard": False,
            "log_to_driver": False,
        }
        if address:
            kw["address"] = address
        elif workers:
            kw["num_cpus"] = workers
        if not ray.is_initialized():
            ray.init(**kw)
        self.slots = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.remote = ray.remote(num_cpus=1, max_retries=0)(execute)

    def submit(self, entry: dict[str, Any], folder: str) -> Any:
        return self.remote.remote(entry, folder)

    def wait(self, handles: list[Any], timeout: float) -> list[tuple[Any, dict[str, Any]]]:
        ready, _ = self.ray.wait(handles, num_returns=len(handles), timeout=timeout)
        out = []
        for h in ready:
            try:
                out.append((h, self.ray.get(h)))
            except Exception as e:  # noqa: BLE001  (a worker that died: reported per run)
                out.append((h, {"status": "failed", "error": f"{type(e).__name__}: {e}"}))
        return out

    def close(self, abort: bool) -> None:
        self.ray.shutdown()


# ---------------------------------------------------------------------------- the sweep
def run_sweep(
    specs: SweepSpec | Sequence[SweepSpec] | str | Path,
    out: str | Path,
    *,
    workers: int | None = None,
    backend: Backend = "local",
    address: str | None = None,
    name: str | None = None,
    spec_record: dict[str, Any] | None = None,
    display: bool = True,
    only: Sequence[str] = (),
    deadline: float | None = None,
) -> SweepSummary:
    """Validate, plan and run a sweep into ``out`` (see the module docstring). ``specs`` is a
    TOML path, a :class:`SweepSpec` or a list of them (a paper protocol); ``name`` and
    ``spec_record`` name it and record it in the manifest (default: from the spec).

    ``only``: shell patterns on run ids (``naf-reacher-v1-imr-*``); run just the unfinished
    runs that match one, in the order of the patterns (cheap variants first, say). The
    manifest still lists the whole sweep, so a later call without ``only`` runs the rest.

    ``deadline``: epoch seconds (:func:`parse_deadline`); start only the runs whose estimate
    ends before it, in order, and leave the others (``summary.deferred``) for a later call."""
    if isinstance(specs, str | Path):
        from nafrl.experiments.spec import load_spec

        specs = load_spec(specs)
    specs = [specs] if isinstance(specs, SweepSpec) else list(specs)
    if backend not in ("local", "ray"):
        raise SpecError(f"unknown backend {backend!r}; accepted: local, ray")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise SpecError(f"invalid --workers {workers!r}: expected an integer >= 1")
    if address and backend != "ray":
        raise SpecError("--address is for --backend ray")
    runs = expand(specs)  # the whole grid, validated before anything is written
    _check_patterns(runs, only)  # before anything is written
    out = Path(out)
    name = name or (specs[0].name if len(specs) == 1 else "+".join(s.name for s in specs))
    record = spec_record or (
        specs[0].to_dict() if len(specs) == 1 else {"specs": [s.to_dict() for s in specs]}
    )
    manifest = {"name": name, "spec": record, "runs": [r.manifest_entry() for r in runs]}
    _write_manifest(out, manifest)

    folders = {r.id: out / "runs" / r.id for r in runs}
    todo = [r for r in runs if not (folders[r.id] / "done.json").is_file()]
    finished = len(runs) - len(todo)
    if only:
        todo = _select(todo, only)
    left_out = len(runs) - finished - len(todo)  # unfinished runs --only passed over
    workers = workers or os.cpu_count() or 1
    est = estimate(runs, todo, folders, min(workers, max(1, len(todo))))
    print(
        f"sweep {name}: {len(runs)} runs ({len(runs) - len(todo)} done or left out, "
        f"{len(todo)} to run{f', {left_out} left out by --only' if only else ''}), "
        f"{est['total_steps']:,} env steps ({est['remaining_steps']:,} to go); estimated "
        f"{_hms(est['seconds'])} with {min(workers, max(1, len(todo)))} "
        f"{'Ray' if backend == 'ray' else 'local'} worker(s) at {est['rate']:.0f} model-free "
        f"steps/s each ({est['rate_source']}; imagination and planner-driven episodes weigh "
        "more, sweep.step_cost)",
        flush=True,
    )
    summary = SweepSummary(out, len(runs), finished, left_out=left_out)
    if not todo:
        return summary
    t0 = time.perf_counter()
    env = worker_env(out)
    with _environ(env):
        be: Any = (
            _LocalBackend(min(workers, len(todo)))
            if backend == "local"
            else _RayBackend(workers, address, env)
        )
        monitor = _Monitor(runs, todo, folders, est, be.slots, display)
        aborted = False
        try:
            need = est["run_seconds"]

            def fits(r: PlannedRun) -> bool:
                return deadline is None or time.time() + need[r.id] <= deadline

            _schedule(be, todo, folders, monitor, summary, fits)
        except KeyboardInterrupt:
            aborted = True
            print(
                f"nafrl: sweep stopped ({summary.done} of {summary.total} runs done); rerun the "
                "same command to resume it",
                file=sys.stderr,
            )
            raise
        finally:
            monitor.stop()
            be.close(abort=aborted)
            summary.wall_time = time.perf_counter() - t0
    if summary.deferred:
        print(
            f"nafrl: {summary.deferred} run(s) left for a later call: none fitted before the "
            f"deadline ({time.strftime('%H:%M', time.localtime(deadline))}); rerun to go on",
            flush=True,
        )
    return summary


def parse_deadline(text: str, now: float | None = None) -> float:
    """``--deadline``: a local time of day ``HH:MM`` (its next occurrence) or a duration from
    now (``90m``, ``2h``, ``2h30m``), as epoch seconds."""
    now = time.time() if now is None else now
    text = text.strip()
    if m := re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", text):
        t = time.localtime(now)
        target = time.mktime((t.tm_year, t.tm_mon, t.tm_mday, int(m[1]), int(m[2]), 0, 0, 0, -1))
        return target if target > now else target + 86_400
    if (m := re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?", text)) and text:
        return now + 3600 * int(m[1] or 0) + 60 * int(m[2] or 0)
    raise SpecError(
        f"invalid --deadline {text!r}: expected a time of day HH:MM (24 h, local time) or a "
        "duration such as 90m, 2h or 2h30m"
    )


def estimate(
    runs: Sequence[PlannedRun], todo: Sequence[PlannedRun], folders: dict[str, Path], workers: int
) -> dict[str, Any]:
    """Total and remaining env steps and an estimated wall time for ``workers`` workers."""
    import gymnasium as gym

    import nafrl.envs  # noqa: F401

    finished = [
        (r, read_json(folders[r.id] / "done.json"))
        for r in runs
        if (folders[r.id] / "done.json").is_file()
    ]
    finished = [(r, d) for r, d in finished if d.get("wall_time", 0) > 0]
    # Episodes end early on tasks with terminal states (a fallen walker): an episode budget
    # counts the mean episode length of finished runs of the same task (and algorithm, if
    # any), and the horizon only where none has finished.
    lengths: dict[tuple[str, ...], list[float]] = {}
    for r, d in finished:
        if r.spec.budget_kind == "episodes" and d.get("num_timesteps", 0) > 0:
            mean = d["num_timesteps"] / r.spec.budget_amount
            lengths.setdefault((r.spec.env, r.spec.algo), []).append(mean)
            lengths.setdefault((r.spec.env,), []).append(mean)

    done_steps = {r.id: int(d.get("num_timesteps", 0)) for r, d in finished}

    def steps(r: PlannedRun) -> int:
        if done_steps.get(r.id):
            return done_steps[r.id]
        if r.spec.budget_kind == "steps":
            return r.spec.budget_amount
        seen = lengths.get((r.spec.env, r.spec.algo)) or lengths.get((r.spec.env,))
        if seen:
            return round(r.spec.budget_amount * sum(seen) / len(seen))
        horizon = gym.spec(r.spec.env).max_episode_steps or 1000
        return r.spec.budget_amount * horizon

    def weight(r: PlannedRun) -> float:
        eps = r.spec.budget_amount if r.spec.budget_kind == "episodes" else None
        return step_cost(r.spec.config, eps)

    run_cost = {r.id: weight(r) for r in runs}
    total = sum(steps(r) for r in runs)
    rate, source = REFERENCE_STEPS_PER_SEC, "reference figure measured on a 2-core machine"
    if finished:  # calibrate on this machine, in the same units
        done_work = sum(d["num_timesteps"] * run_cost[r.id] for r, d in finished)
        rate = done_work / sum(d["wall_time"] for _, d in finished)
        source = f"measured on the {len(finished)} finished run(s) here"
    # Seconds per env step of each run, from the closest measurement: the finished seeds of
    # the same run (same algorithm, task, budget and config), else the task's finished runs
    # weighted by step_cost, else every finished run. Tasks differ (Table 2's model-free
    # reacher ran 45-65 env steps/s, with its short episodes and frequent tests, against
    # 109-120 on the cheetah), and a step_cost is a guess that a sibling's wall time is not.
    by_column: dict[str, list[float]] = {}
    by_task: dict[str, list[tuple[float, float]]] = {}
    for r, d in finished:
        if d.get("num_timesteps", 0) > 0:
            by_column.setdefault(_column(r), []).append(d["wall_time"] / d["num_timesteps"])
            by_task.setdefault(r.spec.env, []).append(
                (d["num_timesteps"] * run_cost[r.id], d["wall_time"])
            )

    def step_seconds(r: PlannedRun) -> float:
        if seen := by_column.get(_column(r)):
            return sum(seen) / len(seen)
        if seen_task := by_task.get(r.spec.env):
            return run_cost[r.id] * sum(t for _, t in seen_task) / sum(w for w, _ in seen_task)
        return run_cost[r.id] / rate

    left = {r.id: max(0, steps(r) - _progress(folders[r.id])) for r in todo}
    per_step = {r.id: step_seconds(r) for r in todo}
    work = {r.id: left[r.id] * per_step[r.id] for r in todo}  # one worker's seconds
    run_seconds = {rid: w + REFERENCE_RUN_OVERHEAD for rid, w in work.items()}
    return {
        "run_seconds": run_seconds,
        "total_steps": total,
        "remaining_steps": sum(left.values()),
        "remaining_seconds": sum(work.values()),  # one worker's, without the overheads
        "rate": rate,
        "rate_source": source,
        "seconds": sum(run_seconds.values()) / max(1, workers),
        "step_seconds": per_step,
    }


def _column(r: PlannedRun) -> str:
    """A run without its seed (its content and budget): runs with the same column cost the
    same per env step."""
    content = {k: v for k, v in run_content(r.spec).items() if k != "seed"}
    return json.dumps([content, dict(r.spec.budget)], sort_keys=True, default=str)


def _check_patterns(runs: Sequence[PlannedRun], patterns: Sequence[str]) -> None:
    """One clear error for an ``--only`` pattern that matches no run of the sweep."""
    for pat in patterns:
        if not any(fnmatchcase(r.id, pat) for r in runs):
            examples = ", ".join(r.id.rsplit("-", 1)[0] + "-*" for r in runs[:3])
            raise SpecError(
                f"--only {pat!r} matches no run of this sweep; run ids look like {examples} "
                "(shell patterns: * and ?)"
            )


def _select(todo: Sequence[PlannedRun], patterns: Sequence[str]) -> list[PlannedRun]:
    """The runs of ``todo`` whose id matches one of ``patterns``, ordered by the first
    pattern each matches (then by plan order)."""
    rank: dict[str, int] = {}
    for r in todo:
        hits = [i for i, pat in enumerate(patterns) if fnmatchcase(r.id, pat)]
        if hits:
            rank[r.id] = hits[0]
    return sorted((r for r in todo if r.id in rank), key=lambda r: rank[r.id])


def _schedule(
    be: Any,
    todo: Sequence[PlannedRun],
    folders: dict[str, Path],
    monitor: _Monitor,
    summary: SweepSummary,
    fits: Callable[[PlannedRun], bool] | None = None,
) -> None:
    """At most ``be.slots`` runs in flight; a finished one frees its slot for the next: the
    first in the queue for which ``fits`` holds (all, without a deadline). When none does,
    no run starts any more and the rest count as ``summary.deferred``.

    Ctrl-C (SIGINT reaches the workers too) starts no new run and waits for the running
    ones to checkpoint at the end of their episode, then raises KeyboardInterrupt; a second
    Ctrl-C stops at once."""
    queue = list(todo)
    inflight: dict[Any, PlannedRun] = {}
    stopping = False
    while queue or inflight:
        try:
            while queue and len(inflight) < be.slots and not stopping:
                i = next((i for i, q in enumerate(queue) if fits is None or fits(q)), None)
                if i is None:
                    summary.deferred, queue = len(queue), []
                    break
                r = queue.pop(i)
                folders[r.id].parent.mkdir(parents=True, exist_ok=True)
                inflight[be.submit(_entry(r), str(folders[r.id]))] = r
                monitor.started(r.id)
            for h, res in be.wait(list(inflight), timeout=0.5):
                r = inflight.pop(h)
                res.setdefault("id", r.id)
                summary.results[r.id] = res
                status = res.get("status")
                if status == "done":
                    summary.done += 1
                elif status == "interrupted":
                    summary.interrupted += 1
                else:
                    summary.failed[r.id] = res.get("error", str(status))
                monitor.finished(r.id, res)
            monitor.refresh()
        except KeyboardInterrupt:
            if stopping:
                raise
            stopping, queue = True, []
            print(
                "\nnafrl: stopping the sweep: running runs save a checkpoint at the end of "
                "their episode (Ctrl-C again to stop now)",
                file=sys.stderr,
                flush=True,
            )
    if stopping:
        raise KeyboardInterrupt


def _entry(r: PlannedRun) -> dict[str, Any]:
    return r.manifest_entry()


def _same_runs(old: Any, new: list[dict[str, Any]]) -> bool:
    """Whether a recorded run list is this one. A config recorded before a field of
    :data:`nafrl.config.ADDED_FIELDS` existed lacks it and reads as its neutral value."""
    if not isinstance(old, list) or len(old) != len(new):
        return False

    def norm(e: Any) -> Any:
        if not isinstance(e, dict) or not isinstance(e.get("config"), dict):
            return e
        return {**e, "config": with_added_fields(e["config"])}

    return all(norm(a) == norm(b) for a, b in zip(old, new, strict=True))


def _write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    path = out / "sweep.json"
    if path.is_file():
        old = read_json(path)
        if not isinstance(old, dict) or not _same_runs(old.get("runs"), manifest["runs"]):
            raise SpecError(
                f"{out} holds another sweep ({old.get('name') if isinstance(old, dict) else '?'}"
                f", {len(old.get('runs', [])) if isinstance(old, dict) else '?'} runs) whose "
                "runs differ from this spec's; use another --out"
            )
        if old == manifest:
            return
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, manifest)


def _progress(folder: Path) -> int:
    """Env steps a run folder has logged (last row of episodes.csv), 0 if none."""
    path = folder / "episodes.csv"
    try:
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - 4096))
            lines = f.read().decode(errors="replace").strip().splitlines()
        if len(lines) < 2 or lines[-1].startswith("episode"):
            return 0
        return int(float(lines[-1].split(",")[1]))
    except (OSError, ValueError, IndexError):
        return 0


@contextlib.contextmanager
def _environ(env: dict[str, str]) -> Iterator[None]:
    """Set ``env`` for the processes started inside (spawned pool workers copy the
    environment); restored afterwards so the calling process is left as it was."""
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class _Monitor:
    """One live display (rich) of runs done, running, pending and failed, the current best
    final test return per task, and the ETA; plain lines when not on a terminal."""

    def __init__(
        self,
        runs: Sequence[PlannedRun],
        todo: Sequence[PlannedRun],
        folders: dict[str, Path],
        est: dict[str, Any],
        slots: int,
        display: bool,
    ) -> None:
        from rich.console import Console

        todo_ids = {r.id for r in todo}
        finished = {r.id for r in runs if (folders[r.id] / "done.json").is_file()}
        # The runs in view: those finished and those to run (not those left out by --only).
        self.runs = {r.id: r for r in runs if r.id in finished or r.id in todo_ids}
        self.folders = folders
        # Estimated seconds per env step, so that the ETA weighs runs as estimate() does.
        self.step_seconds = est["step_seconds"]
        self.slots = slots
        self.done = finished - todo_ids
        self.running: dict[str, int] = {}  # id -> steps at start
        self.failed: set[str] = set()
        self.best: dict[str, tuple[float, str]] = {}
        for rid in self.done:
            d = read_json(folders[rid] / "done.json")
            self._note_best(rid, (d.get("final_eval") or {}).get("test_return"))
        self.t0 = time.perf_counter()
        self.work_this_session = 0.0
        self.remaining0 = est["remaining_seconds"]
        self.eta0 = est["seconds"]
        self.console = Console(stderr=False)
        self.live = None
        if display and self.console.is_terminal:
            from rich.live import Live

            self.live = Live(self._table(), console=self.console, refresh_per_second=2)
            self.live.start()
        self.display = display
        self._last = 0.0

    def started(self, rid: str) -> None:
        self.running[rid] = _progress(self.folders[rid])

    def finished(self, rid: str, res: dict[str, Any]) -> None:
        start = self.running.pop(rid, 0)
        steps = max(0, int(res.get("num_timesteps", start)) - start)
        self.work_this_session += steps * self.step_seconds[rid]
        status = res.get("status")
        if status == "done":
            self.done.add(rid)
            self._note_best(rid, (res.get("final_eval") or {}).get("test_return"))
        elif status != "interrupted":
            self.failed.add(rid)
        if self.display and self.live is None:
            r = self.runs[rid]
            ret = (res.get("final_eval") or {}).get("test_return")
            what = f"test return {ret:.4g}" if ret is not None else res.get("error", "")
            print(
                f"[{len(self.done)}/{len(self.runs)}] {status}: {rid} ({r.spec.algo} on "
                f"{r.spec.env}) {what}; {self._counts()}",
                flush=True,
            )

    def refresh(self) -> None:
        if self.live is not None and time.perf_counter() - self._last > 0.5:
            self._last = time.perf_counter()
            self.live.update(self._table())

    def stop(self) -> None:
        if self.live is not None:
            self.live.update(self._table())
            self.live.stop()

    def _note_best(self, rid: str, ret: float | None) -> None:
        if ret is None:
            return
        task = self.runs[rid].spec.env
        if task not in self.best or ret > self.best[task][0]:
            self.best[task] = (float(ret), rid)

    def _eta(self) -> float:
        elapsed = time.perf_counter() - self.t0
        running = sum(
            max(0, _progress(self.folders[r]) - s) * self.step_seconds[r]
            for r, s in self.running.items()
        )
        done = self.work_this_session + running
        left = max(0.0, self.remaining0 - done)
        if done <= 0 or elapsed < 5:
            return max(0.0, self.eta0 - elapsed)
        return left / (done / elapsed)

    def _counts(self) -> str:
        pending = len(self.runs) - len(self.done) - len(self.running) - len(self.failed)
        return (
            f"done {len(self.done)}, running {len(self.running)}, pending {pending}, "
            f"failed {len(self.failed)}, ETA {_hms(self._eta())}"
        )

    def _table(self) -> Any:
        from rich.table import Table

        t = Table(title=f"sweep: {self._counts()}", show_header=True, expand=False)
        t.add_column("task")
        t.add_column("best final test return")
        t.add_column("run")
        for task, (ret, rid) in sorted(self.best.items()):
            t.add_row(task, f"{ret:.4g}", rid)
        return t


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


__all__ = ["THREAD_ENV", "SweepSummary", "estimate", "execute", "run_sweep", "worker_env"]
