"""The sweep runner's cost (issue 11): parallel speed-up, per-run overhead, Ray beside local,
and what ``--paper table1 --budget laptop`` costs on this machine.

    python bench/sweep.py runner [--steps 3000] [--skip-ray]
    python bench/sweep.py laptop [--domain cheetah] [--episodes 20]

``runner``: four equal runs (NAF, default Config, HalfCheetah-v5, seeds 0-3, ``--steps``
each) three ways: one after another in one process through :func:`nafrl.runs.run` (XLA's
default threads), as a sweep with ``--workers 2`` (spawn pool, one thread per worker), and
as a sweep on a local Ray with 2 CPUs. Reports wall times, the ratio parallel/sequential
(target <= 0.65) and the per-run overhead of the runner (target < 5 s): the seconds a run
spends outside ``learn()`` (agent construction and compilation, checkpoint load, final
evaluation, figure, markers), plus the pool's start-up shared over the runs.

``laptop``: the laptop budget of Table 1 on one domain, briefly: NAF and DDPG, seed 0, at
the laptop settings, for ``--episodes`` episodes each with 2 workers; the env steps per
second per worker after learning starts (evaluations included) give the extrapolation to
the whole ``--paper table1 --budget laptop`` sweep.

The machine is shared: each phase also records the CPU the rest of the machine used
(/proc/stat minus this process tree) and the load average. Results: bench/results/sweep.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "sweep.json"


def busy_cpu_seconds() -> float:
    """CPU seconds every process on the machine has used (/proc/stat, user+nice+system)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    return sum(int(x) for x in fields[:3]) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU seconds of this process and its finished children."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


class Phase:
    """Wall time of a block, and how many cores the rest of the machine kept busy meanwhile."""

    def __enter__(self) -> Phase:
        self.t0, self.busy0, self.own0 = time.perf_counter(), busy_cpu_seconds(), own_cpu_seconds()
        self.load0 = os.getloadavg()[0]
        return self

    def __exit__(self, *exc: Any) -> None:
        self.wall = time.perf_counter() - self.t0
        others = (busy_cpu_seconds() - self.busy0) - (own_cpu_seconds() - self.own0)
        self.others_cores = max(0.0, others / self.wall)
        self.load = (self.load0 + os.getloadavg()[0]) / 2

    def info(self) -> dict[str, float]:
        return {
            "wall_s": round(self.wall, 2),
            "other_processes_cores": round(self.others_cores, 2),
            "load_avg": round(self.load, 2),
        }


def _spec(steps: int, seeds: list[int]) -> Any:
    from nafrl.experiments.spec import SweepSpec

    return SweepSpec(
        name="bench-four",
        algos=["naf"],
        tasks=["HalfCheetah-v5"],
        seeds=seeds,
        budget={"steps": steps},
        config={"eval_interval": 0, "checkpoint_interval": 0},
        eval_episodes=2,
    )


def runner(steps: int, skip_ray: bool) -> dict[str, Any]:
    from nafrl.experiments.spec import expand
    from nafrl.experiments.sweep import run_sweep
    from nafrl.runs import run

    spec = _spec(steps, [0, 1, 2, 3])
    runs = expand(spec)
    tmp = Path(tempfile.mkdtemp(prefix="nafrl-bench-sweep-"))
    out: dict[str, Any] = {"steps_per_run": steps, "runs": len(runs)}
    try:
        # One after another in one process (what a user would do without the runner).
        seq_overheads = []
        with Phase() as seq:
            for r in runs:
                t = time.perf_counter()
                res = run(r.spec, tmp / "seq" / r.id)
                seq_overheads.append(time.perf_counter() - t - res.learn_seconds)
        out["sequential"] = {**seq.info(), "outside_learn_s": [round(x, 2) for x in seq_overheads]}
        print(f"sequential, one process: {seq.wall:.1f} s", flush=True)

        for backend in ("local",) if skip_ray else ("local", "ray"):
            with Phase() as par:
                summary = run_sweep(spec, tmp / backend, workers=2, backend=backend)
            assert summary.done == len(runs), summary.failed
            per_run = [res["runner_seconds"] for res in summary.results.values()]
            learn = [res["learn_seconds"] for res in summary.results.values()]
            # The start-up of the pool (or Ray) and worker imports, shared over the runs:
            # wall time not covered by the runs themselves (2 at a time).
            busy = sum(res["seconds"] for res in summary.results.values()) / 2
            startup = max(0.0, par.wall - busy)
            out[backend] = {
                **par.info(),
                "ratio_to_sequential": round(par.wall / seq.wall, 3),
                "outside_learn_per_run_s": [round(x, 2) for x in per_run],
                "learn_per_run_s": [round(x, 2) for x in learn],
                "startup_shared_s": round(startup, 2),
                "overhead_per_run_s": round(statistics.median(per_run) + startup / len(runs), 2),
            }
            print(
                f"{backend} --workers 2: {par.wall:.1f} s = {par.wall / seq.wall:.2f} x "
                f"sequential; per-run overhead {out[backend]['overhead_per_run_s']} s",
                flush=True,
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def laptop(domain: str, episodes: int) -> dict[str, Any]:
    """Table 1's laptop budget measured on one domain and extrapolated to all of it."""
    import csv

    import gymnasium as gym

    import nafrl.envs  # noqa: F401
    from nafrl.experiments.protocols import protocol
    from nafrl.experiments.spec import SweepSpec, expand
    from nafrl.experiments.sweep import REFERENCE_RUN_OVERHEAD, run_sweep

    specs, _ = protocol("table1", "laptop")
    one = next(s for s in specs if s.name == f"table1-{domain}")
    brief = SweepSpec(**{**one.__dict__, "seeds": [0], "budget": {"episodes": episodes}})
    tmp = Path(tempfile.mkdtemp(prefix="nafrl-bench-laptop-"))
    try:
        with Phase() as ph:
            summary = run_sweep(brief, tmp, workers=2)
        assert summary.done == 2, summary.failed
        rates = {}
        for rid in summary.results:
            with (tmp / "runs" / rid / "episodes.csv").open() as f:
                rows = [r for r in csv.DictReader(f)]
            ls = one.config.get("learning_starts", 1000)
            start = next(r for r in rows if int(r["total_steps"]) >= ls)
            end = rows[-1]
            rates[rid] = (int(end["total_steps"]) - int(start["total_steps"])) / (
                float(end["wall_time"]) - float(start["wall_time"])
            )
        overhead = statistics.median(r["runner_seconds"] for r in summary.results.values())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rate = statistics.median(rates.values())
    all_runs = expand(specs)
    steps = sum(r.spec.budget_amount * gym.spec(r.spec.env).max_episode_steps for r in all_runs)
    dom_runs = [r for r in all_runs if r.spec.env == one.tasks[0]]
    dom_steps = sum(r.spec.budget_amount * gym.spec(r.spec.env).max_episode_steps
                    for r in dom_runs)  # fmt: skip
    hours = (steps / rate + len(all_runs) * max(overhead, REFERENCE_RUN_OVERHEAD)) / 2 / 3600
    result = {
        "domain": domain,
        "episodes_measured": episodes,
        **ph.info(),
        "steps_per_sec_per_worker": {k: round(v, 1) for k, v in rates.items()},
        "runner_seconds_per_run": round(overhead, 2),
        "table1_laptop_runs": len(all_runs),
        "table1_laptop_env_steps": steps,
        "domain_env_steps": dom_steps,
        "domain_hours_2_workers": round(dom_steps / rate / 2 / 3600, 2),
        "extrapolated_hours_2_workers": round(hours, 2),
    }
    print(json.dumps(result, indent=2))
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("runner")
    a.add_argument("--steps", type=int, default=3000)
    a.add_argument("--skip-ray", action="store_true")
    b = sub.add_parser("laptop")
    b.add_argument("--domain", default="cheetah")
    b.add_argument("--episodes", type=int, default=20)
    args = p.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if args.cmd == "runner":
        results["runner"] = runner(args.steps, args.skip_ray)
    else:
        results["laptop"] = laptop(args.domain, args.episodes)
    results[f"{args.cmd}_measured_at"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results[f"{args.cmd}_cpus"] = os.cpu_count()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
