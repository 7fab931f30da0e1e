"""Training throughput: our NAF and DDPG against Stable-Baselines3 DDPG, in one process.

Issue #2's benchmark. All three learn HalfCheetah-v5 at identical settings (2 x 200 hidden
units, minibatch 64, 5 updates per environment step, 1,000 steps before learning starts),
on the same machine in the same run. After a warm-up ``learn`` (so JIT compilation and the
no-update phase are excluded) each agent learns ``steps`` more steps, ``reps`` times. The
machine may be shared and noisy, so within a repetition the agents take turns in chunks of
``--chunk`` steps (NAF, DDPG, SB3, NAF, DDPG, SB3, ...) and load from other processes falls
on all of them alike. Each switch costs the JAX agents a warm-up that SB3 does not pay
(measured, NAF after SB3 in one process: 343 env steps/s in chunks of 10, 393 in chunks of
50, 473 in chunks of 250, 490-506 alone; SB3 115-120 throughout), so chunks default to 250
steps (about half a second of NAF, two of SB3). The table reports the median over
repetitions, the ratios NAF/SB3 and DDPG/SB3 (target: NAF >= 4x SB3), and the 90th
percentile of the per-chunk rates, an estimate of each agent's speed on an unloaded machine.

SB3 is timed twice per repetition, with PyTorch's default thread count and with one thread
(``--torch-threads`` changes the list), and NAF is held against the faster: with two
threads on two cores, PyTorch's OpenMP workers slow SB3 down 10-100x as soon as another
process takes a core, which would make the ratio flatter us. Each repetition stops after
``--max-rep-seconds`` and also records how much CPU the rest of the machine used meanwhile.

It also reports the compute efficiency of NAF's update: FLOPs of one jitted update from
XLA's cost analysis, times the updates per second achieved, beside the fp32 matmul peak
(best of several jitted 2048 x 2048 ``jnp.dot`` at the start and the end of the run)
measured in the same process; and the ceiling of a bare loop of the jitted train step (no
environment, no buffer). With ``--profile`` (and always when NAF misses the target) it
splits NAF's time per environment step into env.step, buffer add/sample, the jitted call
(including its wait), and the rest.

    python bench/throughput.py                 # 3-5 minutes on 2 cores
    python bench/throughput.py --quick         # smoke test, about a minute
    python bench/throughput.py --steps 1000 --reps 5 --profile

Results are printed and written to ``bench/results/throughput.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ENV_ID = "HalfCheetah-v5"
HIDDEN = (200, 200)
BATCH = 64
UPDATES_PER_STEP = 5
LEARNING_STARTS = 1000
TARGET_RATIO = 4.0
RESULTS = Path(__file__).resolve().parent / "results" / "throughput.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="environment steps per timed repetition (default 2000; 300 with --quick)",
    )
    p.add_argument(
        "--reps",
        type=int,
        default=None,
        help="timed repetitions per agent, interleaved (default 3; 1 with --quick)",
    )
    p.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="steps with updates in the warm-up, after the 1000 learning-start steps "
        "(default 200; 50 with --quick)",
    )
    p.add_argument(
        "--max-rep-seconds",
        type=float,
        default=None,
        help="stop a repetition early after this many seconds (default 30; 10 with "
        "--quick); its rate is then over the steps done",
    )
    p.add_argument(
        "--chunk",
        type=int,
        default=250,
        help="steps per learn() call within a repetition (default 250)",
    )
    p.add_argument("--quick", action="store_true", help="short smoke run (about a minute)")
    p.add_argument(
        "--profile",
        action="store_true",
        help="time NAF's loop phases per env step (done anyway if NAF < 4x SB3)",
    )
    p.add_argument(
        "--torch-threads",
        type=int,
        nargs="+",
        default=None,
        help="torch thread counts to time SB3 with, each as its own contender "
        "(default: torch's default, then 1); NAF is compared with the fastest",
    )
    p.add_argument("--skip-sb3", action="store_true", help="only our agents (no ratios)")
    p.add_argument("--out", type=Path, default=RESULTS, help="JSON output path")
    args = p.parse_args(argv)
    if args.steps is None:
        args.steps = 300 if args.quick else 2000
    if args.reps is None:
        args.reps = 1 if args.quick else 3
    if args.warmup is None:
        args.warmup = 50 if args.quick else 200
    if args.max_rep_seconds is None:
        args.max_rep_seconds = 10.0 if args.quick else 30.0
    if args.torch_threads is not None and min(args.torch_threads) < 1:
        p.error("--torch-threads must be >= 1")
    if min(args.steps, args.reps, args.warmup, args.chunk) < 1:
        p.error("--steps, --reps, --warmup and --chunk must be >= 1")
    return args


# --------------------------------------------------------------------------- machine
def machine_info() -> dict[str, Any]:
    import jax

    from nafrl.runtime import machine_info as run_machine_info

    dists = (
        "nafrl",
        "jax",
        "jaxlib",
        "flax",
        "optax",
        "numpy",
        "gymnasium",
        "mujoco",
        "torch",
        "stable-baselines3",
    )
    machine = run_machine_info(dists)  # the CPU and versions each run's done.json records
    return {
        "cpu_model": machine["cpu"],
        "cpu_family_model": machine["cpu_family_model"],
        "vector_isa": machine["vector_isa"],
        "nproc": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": machine["versions"],
        "jax_devices": [str(d) for d in jax.devices()],
        "XLA_FLAGS": os.environ.get("XLA_FLAGS"),
        "loadavg_start": list(os.getloadavg()),
    }


def matmul_peak(n: int = 2048, reps: int = 9) -> dict[str, Any]:
    """fp32 matmul GFLOP/s of a jitted n x n ``jnp.dot`` (best of ``reps`` timings)."""
    import jax
    import jax.numpy as jnp

    ka, kb = jax.random.split(jax.random.PRNGKey(0))
    a = jax.random.normal(ka, (n, n), jnp.float32)
    b = jax.random.normal(kb, (n, n), jnp.float32)
    dot = jax.jit(jnp.dot)
    dot(a, b).block_until_ready()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        dot(a, b).block_until_ready()
        times.append(time.perf_counter() - t0)
    # The peak is the best timing: on a shared machine slower ones measure the neighbours.
    return {
        "n": n,
        "reps": reps,
        "best_s": min(times),
        "gflops": 2 * n**3 / min(times) / 1e9,
        "median_gflops": 2 * n**3 / statistics.median(times) / 1e9,
    }


# --------------------------------------------------------------------------- FLOPs
def _cost_flops(compiled: Any) -> float | None:
    cost = compiled.cost_analysis()
    if isinstance(cost, list | tuple):  # older jax returned one dict per device
        cost = cost[0] if cost else None
    return None if not cost or "flops" not in cost else float(cost["flops"])


def update_flops(model: Any) -> float | None:
    """FLOPs of one jitted minibatch update (``agent.update``), from XLA's cost analysis.

    A single update is lowered rather than the fused train step: XLA's HLO cost analysis
    counts a ``while`` (``lax.scan``) body once, not once per iteration.
    """
    import jax

    batch = model.buffer.sample(model.rng, model.config.batch_size, 1)
    one = jax.tree.map(lambda x: x[0], batch)
    return _cost_flops(jax.jit(model.agent.update).lower(model.state, one).compile())


def naf_matmul_flops(obs_dim: int, act_dim: int, hidden: tuple[int, ...], batch: int) -> int:
    """Analytic matmul FLOPs (2mnk) of one NAF update with separate V, mu, L networks:
    online forward of the 3 stacked MLPs, target forward of V' alone, and the backward pass
    (2x forward, minus the unneeded gradient w.r.t. the input). Elementwise work excluded."""
    out = max(act_dim, act_dim * (act_dim + 1) // 2)
    sizes = [obs_dim, *hidden, out]
    layer = [sizes[i] * sizes[i + 1] for i in range(len(sizes) - 1)]
    online = 3 * 2 * batch * sum(layer)
    target = 2 * batch * (sum(layer[:-1]) + hidden[-1] * 1)
    backward = 2 * online - 3 * 2 * batch * layer[0]
    return online + target + backward


def bare_update_rate(model: Any, calls: int) -> dict[str, float]:
    """Updates/s of the jitted train step alone: device-resident minibatches, no env, no
    buffer, blocking on the action each call as the training loop does."""
    import jax
    import jax.numpy as jnp

    cfg = model.config
    state = jax.tree.map(jnp.copy, model.state)  # the step donates its state argument
    batches = jax.device_put(model.buffer.sample(model.rng, cfg.batch_size, cfg.updates_per_step))
    obs = jax.device_put(np.zeros(model.obs_dim, np.float32))
    noise = jnp.zeros((model.act_dim,), jnp.float32)
    key = jax.random.PRNGKey(1)
    kind = model._noise_kind()

    def run(n: int) -> float:
        nonlocal state, noise
        t0 = time.perf_counter()
        for _ in range(n):
            out = model._train_step(
                state, noise, batches, obs, key, do_update=True, noise_kind=kind
            )
            state, noise = out.state, out.noise
            np.asarray(out.action)
        return time.perf_counter() - t0

    run(5)
    chunk = max(calls // 5, 1)
    rates = [chunk * cfg.updates_per_step / run(chunk) for _ in range(5)]
    return {
        "calls": 5 * chunk,
        "updates_per_s": statistics.median(rates),
        "env_steps_per_s_ceiling": statistics.median(rates) / cfg.updates_per_step,
    }


# --------------------------------------------------------------------------- contenders
def busy_cpu_seconds() -> float | None:
    """CPU seconds all processes on the machine (this VM) have used, from /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class Contender:
    """One agent's ``learn``, run in chunks of steps. A repetition interleaves all agents
    chunk by chunk (round robin), so load from other processes falls on all of them alike;
    an agent's repetition ends after ``steps`` steps or ``max_seconds`` (a loaded machine can
    slow an agent a hundredfold), its rate being the steps done over the seconds spent.

    ``learn(n, deadline)`` runs up to ``n`` steps, may stop at ``time.perf_counter()``
    ``deadline``, and returns the number of steps done."""

    def __init__(
        self, name: str, learn: Callable[[int, float], int], before: Callable[[], Any] | None = None
    ) -> None:
        self.name, self._learn, self._before = name, learn, before
        self.reps: list[dict[str, float]] = []
        self.chunks: list[tuple[int, float, float]] = []  # (steps, seconds, others' CPU s)
        self._rep: list[tuple[int, float, float, float]] = []

    @property
    def rates(self) -> list[float]:
        return [r["env_steps_per_s"] for r in self.reps]

    @property
    def rep_steps(self) -> int:
        return sum(c[0] for c in self._rep)

    @property
    def rep_seconds(self) -> float:
        return sum(c[1] for c in self._rep)

    def run_chunk(self, steps: int, deadline: float) -> None:
        if self._before is not None:
            self._before()
        b0, c0, t0 = busy_cpu_seconds(), time.process_time(), time.perf_counter()
        steps = self._learn(steps, deadline)
        wall, own = time.perf_counter() - t0, time.process_time() - c0
        b1 = busy_cpu_seconds()
        others = float("nan") if b0 is None or b1 is None else max(b1 - b0 - own, 0.0)
        self._rep.append((steps, wall, own, others))
        self.chunks.append((steps, wall, others))

    def end_rep(self) -> dict[str, float]:
        steps, wall = self.rep_steps, self.rep_seconds
        ncpu = os.cpu_count() or 1
        rep = {
            "steps": steps,
            "seconds": wall,
            "env_steps_per_s": steps / wall,
            "own_cpu_per_wall": sum(c[2] for c in self._rep) / wall,
            # CPU used by everything else on the machine, as a fraction of all its cores
            "others_cpu_fraction": sum(c[3] for c in self._rep) / (wall * ncpu),
        }
        self.reps.append(rep)
        self._rep = []
        return rep

    def chunk_rate_p90(self) -> float:
        """90th percentile of the per-chunk rates: an estimate of the unloaded speed."""
        return float(np.percentile([n / t for n, t, _ in self.chunks], 90))


def run_rep(contenders: list[Contender], steps: int, chunk: int, max_seconds: float) -> None:
    active = list(contenders)
    while active:
        for c in list(active):
            c.run_chunk(
                min(chunk, steps - c.rep_steps), time.perf_counter() + max_seconds - c.rep_seconds
            )
            if c.rep_steps >= steps or c.rep_seconds >= max_seconds:
                active.remove(c)
    for c in contenders:
        c.end_rep()


def make_ours(algo: str, warmup: int) -> tuple[Any, float]:
    import nafrl

    cls = {"naf": nafrl.NAF, "ddpg": nafrl.DDPG}[algo]
    model = cls(
        ENV_ID,
        seed=0,
        run_dir=None,
        hidden_sizes=HIDDEN,
        batch_size=BATCH,
        updates_per_step=UPDATES_PER_STEP,
        learning_starts=LEARNING_STARTS,
        eval_interval=0,
        checkpoint_interval=0,
    )
    t0 = time.perf_counter()
    model.learn(LEARNING_STARTS + warmup)  # compiles both train-step variants
    return model, time.perf_counter() - t0


def make_sb3(warmup: int) -> tuple[Any, float]:
    from stable_baselines3 import DDPG

    model = DDPG(
        "MlpPolicy",
        ENV_ID,
        policy_kwargs={"net_arch": list(HIDDEN)},
        batch_size=BATCH,
        train_freq=1,
        gradient_steps=UPDATES_PER_STEP,
        learning_starts=LEARNING_STARTS,
        buffer_size=1_000_000,
        device="cpu",
        seed=0,
        verbose=0,
    )
    t0 = time.perf_counter()
    model.learn(LEARNING_STARTS + warmup)
    return model, time.perf_counter() - t0


def sb3_learner(model: Any) -> Callable[[int, float], int]:
    """SB3's ``learn`` for :class:`Contender`, stopped by a callback at the deadline (its
    worst chunks on a loaded machine take minutes)."""
    from stable_baselines3.common.callbacks import BaseCallback

    class Deadline(BaseCallback):
        def __init__(self, deadline: float) -> None:
            super().__init__()
            self.deadline = deadline

        def _on_step(self) -> bool:
            return time.perf_counter() < self.deadline

    def learn(n: int, deadline: float) -> int:
        before = model.num_timesteps
        model.learn(n, reset_num_timesteps=False, callback=Deadline(deadline))
        return model.num_timesteps - before

    return learn


def ours_learner(model: Any) -> Callable[[int, float], int]:
    def learn(n: int, deadline: float) -> int:  # fast enough to finish its chunk
        model.learn(n)
        return n

    return learn


# --------------------------------------------------------------------------- profile
def profile_loop(model: Any, steps: int) -> dict[str, Any]:
    """Time the phases of ``model.learn(steps)`` per environment step by wrapping the
    loop's collaborators (instance attributes only; all restored afterwards).

    The jitted call is made to block until its outputs are ready, so its row holds dispatch,
    host-to-device transfer of the minibatches *and* the computation; in the unwrapped loop
    that wait happens in ``np.asarray(out.action)`` instead, a few lines later.
    """
    import jax

    spent: dict[str, float] = defaultdict(float)  # exclusive of nested timed calls
    calls: dict[str, int] = defaultdict(int)
    nested: list[float] = []  # time of timed children, per open timed call

    def timed(name: str, fn: Callable[..., Any], block: bool = False) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            nested.append(0.0)
            t0 = time.perf_counter()
            out = fn(*args, **kwargs)
            if block:
                jax.block_until_ready(out)
            dt = time.perf_counter() - t0
            spent[name] += dt - nested.pop()
            calls[name] += 1
            if nested:
                nested[-1] += dt
            return out

        return wrapper

    patches = [
        (model.env, "step", "env.step"),
        (model.scaler, "to_env", "action scaling (to_env)"),
        (model.buffer, "add", "buffer.add"),
        (model.buffer, "sample", "buffer.sample"),
        (model, "_train_step", "jitted train step (blocking)"),
        (model, "_end_episode", "episode end (metrics stack)"),
        (model, "_begin_episode", "episode begin (reset; net)"),
    ]
    split = jax.random.split
    saved = [(obj, attr, vars(obj).get(attr)) for obj, attr, _ in patches]
    for obj, attr, name in patches:
        setattr(obj, attr, timed(name, getattr(obj, attr), block=attr == "_train_step"))
    jax.random.split = timed("jax.random.split", split, block=True)
    try:
        t0 = time.perf_counter()
        model.learn(steps)
        total = time.perf_counter() - t0
    finally:
        jax.random.split = split
        for obj, attr, old in saved:
            if old is None:
                delattr(obj, attr)  # the class's method shows through again
            else:
                setattr(obj, attr, old)
    rows = dict(spent)
    rows["other (loop body, np.asarray, tqdm, ...)"] = total - sum(spent.values())
    per_step = {k: 1e3 * v / steps for k, v in rows.items()}
    return {
        "steps": steps,
        "total_s": total,
        "env_steps_per_s": steps / total,
        "ms_per_step": per_step,
        "calls": dict(calls),
    }


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t_run = time.perf_counter()
    import jax

    import nafrl  # noqa: F401  (fail early, before any timing)

    info = machine_info()
    threads: list[int] = []
    if not args.skip_sb3:
        import torch

        default_threads = torch.get_num_threads()
        threads = list(dict.fromkeys(args.torch_threads or [default_threads, 1]))
        info["torch_default_threads"] = default_threads
        info["torch_interop_threads"] = torch.get_num_interop_threads()
        print(
            f"# {info['cpu_model']}, {info['nproc']} cores, jax {jax.__version__}, torch "
            f"{info['versions']['torch']} (default {default_threads} threads), "
            f"sb3 {info['versions']['stable-baselines3']}",
            flush=True,
        )
    else:
        print(f"# {info['cpu_model']}, {info['nproc']} cores, jax {jax.__version__}", flush=True)
    print(
        f"# {ENV_ID}, hidden {HIDDEN}, batch {BATCH}, {UPDATES_PER_STEP} updates/step, "
        f"learning_starts {LEARNING_STARTS}; {args.reps} x {args.steps} steps each "
        f"(capped at {args.max_rep_seconds:.0f} s), interleaved in chunks of {args.chunk}",
        flush=True,
    )

    peak = matmul_peak(reps=5 if args.quick else 9)
    print(
        f"# fp32 matmul peak (2048^2 jnp.dot): {peak['gflops']:.1f} GFLOP/s (measured again at "
        "the end)",
        flush=True,
    )

    contenders: list[Contender] = []
    warm: dict[str, float] = {}
    naf, warm["NAF"] = make_ours("naf", args.warmup)
    contenders.append(Contender("NAF (nafrl)", ours_learner(naf)))
    ddpg, warm["DDPG"] = make_ours("ddpg", args.warmup)
    contenders.append(Contender("DDPG (nafrl)", ours_learner(ddpg)))
    if threads:
        torch.set_num_threads(min(threads))  # a loaded machine slows the warm-up least so
        sb3, warm["SB3"] = make_sb3(args.warmup)
        for n in threads:  # one model, timed at each thread count in turn
            contenders.append(
                Contender(
                    f"SB3 DDPG {n}thr",
                    sb3_learner(sb3),
                    before=lambda n=n: torch.set_num_threads(n),
                )
            )
    print("# warm-up (s): " + ", ".join(f"{k} {v:.1f}" for k, v in warm.items()), flush=True)

    for rep in range(args.reps):
        run_rep(contenders, args.steps, args.chunk, args.max_rep_seconds)
        line = []
        for c in contenders:
            r = c.reps[-1]
            cut = "" if r["steps"] == args.steps else f" [{r['steps']} steps: time cap]"
            line.append(
                f"{c.name} {r['env_steps_per_s']:.1f}{cut} "
                f"(others {100 * r['others_cpu_fraction']:.0f}% CPU)"
            )
        print(f"# rep {rep + 1}/{args.reps} env steps/s: " + "; ".join(line), flush=True)

    med = {c.name: statistics.median(c.rates) for c in contenders}
    ours, peers = contenders[:2], contenders[2:]
    best_peer = max(peers, key=lambda c: med[c.name]) if peers else None
    ratios: dict[str, dict[str, Any]] = {}
    for o in ours:
        for peer in peers:
            per_rep = [a / b for a, b in zip(o.rates, peer.rates, strict=True)]
            ratios[f"{o.name.split()[0]}/{peer.name}"] = {
                "of_medians": med[o.name] / med[peer.name],
                "per_rep": per_rep,
                "per_rep_min": min(per_rep),
                "per_rep_max": max(per_rep),
                "of_p90_chunks": o.chunk_rate_p90() / peer.chunk_rate_p90(),
                "fastest_sb3": peer is best_peer,
            }
    naf_ratio = med[ours[0].name] / med[best_peer.name] if best_peer else None
    p90 = {c.name: c.chunk_rate_p90() for c in contenders}
    best_p90 = max(peers, key=lambda c: p90[c.name]) if peers else None
    naf_ratio_p90 = p90[ours[0].name] / p90[best_p90.name] if best_p90 else None

    # Compute efficiency of NAF's update.
    flops_xla = update_flops(naf)
    flops_ddpg = update_flops(ddpg)
    flops_analytic = naf_matmul_flops(naf.obs_dim, naf.act_dim, HIDDEN, BATCH)
    flops = flops_xla if flops_xla is not None else float(flops_analytic)
    bare = bare_update_rate(naf, 100 if args.quick else 500)
    loop_updates = med[ours[0].name] * UPDATES_PER_STEP
    gflops_loop = flops * loop_updates / 1e9
    gflops_bare = flops * bare["updates_per_s"] / 1e9

    # Measured again at the end (the better of the two is kept): load comes and goes.
    peak_end = matmul_peak(reps=5 if args.quick else 9)
    peak = {
        **max(peak, peak_end, key=lambda p: p["gflops"]),
        "start_gflops": peak["gflops"],
        "end_gflops": peak_end["gflops"],
    }

    profile = None
    if args.profile or (naf_ratio is not None and naf_ratio < TARGET_RATIO):
        profile = profile_loop(naf, args.steps)

    # ------------------------------------------------------------------ report
    print()
    print(f"{'agent':<14} {'env steps/s (median)':>21} {'min':>8} {'max':>8} {'p90 chunk':>10}")
    for c in contenders:
        print(
            f"{c.name:<14} {med[c.name]:>21.1f} {min(c.rates):>8.1f} {max(c.rates):>8.1f} "
            f"{p90[c.name]:>10.1f}"
        )
    for k, r in ratios.items():
        mark = ""
        if r["fastest_sb3"] and k.startswith("NAF/"):
            mark = (
                "  PASS (>= 4x fastest SB3)"
                if r["of_medians"] >= TARGET_RATIO
                else "  BELOW the 4x target"
            )
        print(
            f"{k:<23} {r['of_medians']:>7.2f}x  (per rep {r['per_rep_min']:.2f}-"
            f"{r['per_rep_max']:.2f}){mark}"
        )
    if naf_ratio_p90 is not None:
        print(f"NAF / fastest SB3 by p90 chunk rates (unloaded estimate): {naf_ratio_p90:.2f}x")
    print()
    src = "XLA cost analysis" if flops_xla is not None else "analytic"
    print(
        f"NAF update: {flops / 1e6:.1f} MFLOP ({src}; analytic matmul-only "
        f"{flops_analytic / 1e6:.1f}); DDPG update {(flops_ddpg or 0) / 1e6:.1f} MFLOP"
    )
    print(
        f"  in learn():       {loop_updates:7.0f} updates/s -> {gflops_loop:6.1f} GFLOP/s "
        f"= {100 * gflops_loop / peak['gflops']:.1f}% of peak"
    )
    print(
        f"  bare jitted step: {bare['updates_per_s']:7.0f} updates/s -> {gflops_bare:6.1f} "
        f"GFLOP/s = {100 * gflops_bare / peak['gflops']:.1f}% of peak "
        f"(ceiling {bare['env_steps_per_s_ceiling']:.0f} env steps/s)"
    )
    print(
        f"  fp32 matmul peak: {peak['gflops']:.1f} GFLOP/s (2048x2048 jnp.dot, best of "
        f"{peak['reps']}, at the start {peak['start_gflops']:.1f} and the end "
        f"{peak['end_gflops']:.1f} of the run)"
    )
    if profile is not None:
        print()
        print(
            f"NAF time per env step over {profile['steps']} steps "
            f"({profile['env_steps_per_s']:.1f} env steps/s while instrumented):"
        )
        total_ms = 1e3 * profile["total_s"] / profile["steps"]
        for k, v in sorted(profile["ms_per_step"].items(), key=lambda kv: -kv[1]):
            print(f"  {k:<40} {v:7.3f} ms  {100 * v / total_ms:5.1f}%")
        print(f"  {'total':<40} {total_ms:7.3f} ms")
        print(
            f"  (bare jitted step: {1e3 * UPDATES_PER_STEP / bare['updates_per_s']:.3f} "
            "ms per env step)"
        )

    info["loadavg_end"] = list(os.getloadavg())
    result = {
        "benchmark": "throughput",
        "settings": {
            "env": ENV_ID,
            "hidden_sizes": list(HIDDEN),
            "batch_size": BATCH,
            "updates_per_step": UPDATES_PER_STEP,
            "learning_starts": LEARNING_STARTS,
            "steps_per_rep": args.steps,
            "reps": args.reps,
            "warmup": args.warmup,
            "quick": args.quick,
            "chunk": args.chunk,
            "max_rep_seconds": args.max_rep_seconds,
            "sb3_torch_threads": threads,
            "order": [c.name for c in contenders],
        },
        "machine": info,
        "warmup_s": warm,
        "env_steps_per_s": {
            c.name: {"median": med[c.name], "p90_chunk": p90[c.name], "reps": c.reps}
            for c in contenders
        },
        "ratios": ratios,
        "naf_over_fastest_sb3": naf_ratio,
        "naf_over_fastest_sb3_p90_chunks": naf_ratio_p90,
        "target_naf_over_sb3": TARGET_RATIO,
        "pass": None if naf_ratio is None else naf_ratio >= TARGET_RATIO,
        "flops": {
            "naf_update": flops,
            "naf_update_source": src,
            "naf_update_analytic_matmul": flops_analytic,
            "ddpg_update": flops_ddpg,
        },
        "gflops": {
            "naf_in_learn": gflops_loop,
            "naf_bare_step": gflops_bare,
            "matmul_peak": peak["gflops"],
            "fraction_of_peak_in_learn": gflops_loop / peak["gflops"],
            "fraction_of_peak_bare": gflops_bare / peak["gflops"],
        },
        "matmul_peak": peak,
        "bare_step": bare,
        "profile": profile,
        "runtime_s": time.perf_counter() - t_run,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.out} ({result['runtime_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
