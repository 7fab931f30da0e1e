"""Does the HalfCheetah-v5 policy run on its back? (issue 13, NAF's plateau on HalfCheetah-v5)

HalfCheetah has a well-known local optimum: the cheetah flips onto its back and pushes
itself along, which earns about 1000-1500 per episode; running upright earns several times
more. The torso's pitch is observation 1 (``rooty``, radians; qpos[2], with qpos[0] left
out): near 0 upright, near +-pi on the back.

Trains one agent with the defaults plus ``--variant`` overrides (as bench/reliability.py)
and every ``--every`` training episodes runs one deterministic test episode from a fixed
start (its own env, no training randomness: training is not disturbed), logging its return,
the mean pitch and the fraction of steps with |pitch| > pi/2 (on the back).

    python bench/flip.py --algo naf --steps 20000 --seeds 0 1 3 \
        --out bench/results/reliability/flip/HalfCheetah-v5
    python bench/flip.py --algo naf --steps 25000 --seeds 0 1 3 \
        --variant warmup=uniform,learning_starts=10000 --out ...

Writes ``<out>/<algo>/<variant>/seed<k>.csv`` and prints one line per test. With
``--warmup-data`` it only describes the first ``learning_starts`` transitions (on the back?
how much of the action box?) and writes nothing:

    python bench/flip.py --warmup-data --seeds 0 1 3 [--variant warmup=uniform]

With ``--runs`` it trains nothing and runs the same test on the final policy of each saved
run folder (its ``checkpoint.npz``, on the run's own task; any MuJoCo cheetah whose qpos[2]
is the torso's pitch, as nafrl/Cheetah-v1's is):

    python bench/flip.py --runs bench/results/paper/table2/work/runs/naf-cheetah-v1-*
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from reliability import parse_variant  # bench/ is on the path when run as a script

from nafrl.api import OffPolicyAgent, agent_class
from nafrl.logger import write_rows_atomic

PITCH = 1  # index of rooty in HalfCheetah-v5's observation


def on_back(pitch: np.ndarray) -> float:
    """Fraction of pitches (rad) more than pi/2 from upright; rooty winds past +-pi, so the
    angle is wrapped first."""
    return float(np.mean(np.abs(np.angle(np.exp(1j * np.asarray(pitch)))) > np.pi / 2))


def pose_test(model: Any, env: gym.Env, seed: int = 123) -> dict[str, float]:
    """One deterministic episode: its return, mean pitch and fraction of steps on the back."""
    obs, _ = env.reset(seed=seed)
    ret, pitch, done = 0.0, [], False
    while not done:
        obs, r, term, trunc, _ = env.step(model.predict(obs, deterministic=True)[0])
        ret += float(r)
        pitch.append(float(env.unwrapped.data.qpos[2]))  # rooty, from the simulator itself
        done = term or trunc
    return {
        "test_return": ret,
        "pitch_mean": float(np.angle(np.exp(1j * np.asarray(pitch)).mean())),  # on the circle
        "on_back": on_back(np.asarray(pitch)),
    }


def make_model(algo: str, seed: int, variant: str) -> tuple[str, Any]:
    """(variant name, a fresh agent on HalfCheetah-v5 with the defaults plus ``variant``)."""
    name, overrides = parse_variant(variant)
    model = agent_class(algo)("HalfCheetah-v5", seed=seed, checkpoint_interval=0, **overrides)
    return name, model


def run(algo: str, seed: int, steps: int, every: int, variant: str, out: Path) -> None:
    name, model = make_model(algo, seed, variant)
    env = gym.make("HalfCheetah-v5")
    rows: list[dict[str, Any]] = []

    def callback(m: Any) -> None:
        if m.num_episodes % every:
            return
        row = {"algo": algo, "variant": name, "seed": seed, "total_steps": m.num_timesteps}
        row |= pose_test(m, env)
        rows.append(row)
        print(
            f"{algo} {name} seed {seed} {m.num_timesteps:6d} return {row['test_return']:7.0f}"
            f" pitch {row['pitch_mean']:+.2f} on back {row['on_back']:.2f}",
            flush=True,
        )

    model.learn(steps, callback=callback)
    (out / algo / name).mkdir(parents=True, exist_ok=True)
    write_rows_atomic(out / algo / name / f"seed{seed}.csv", rows)


def warmup_data(algo: str, seed: int, variant: str) -> dict[str, float]:
    """The first ``learning_starts`` transitions (no update yet): the fraction of steps on the
    back and how much of the action box they cover (mean |a| in normalised units; 0.5 for
    uniform actions)."""
    _, model = make_model(algo, seed, variant)
    n = model.config.learning_starts
    model.learn(n)
    data = model.buffer.gather(np.arange(n), ("obs", "action"))
    return {
        "on_back": on_back(data["obs"][:, PITCH]),
        "mean_abs_action": float(np.mean(np.abs(data["action"]))),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--algo", default="naf", choices=["naf", "ddpg"])
    ap.add_argument("--steps", type=int, default=20_000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--every", type=int, default=5, help="training episodes between tests")
    ap.add_argument("--variant", default="default", help="field=value[,field=value...]")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument(
        "--warmup-data", action="store_true", help="only describe the warm-up transitions"
    )
    ap.add_argument(
        "--runs", type=Path, nargs="+", default=None, help="test saved run folders' policies"
    )
    a = ap.parse_args(argv)
    if a.runs:
        for d in a.runs:
            if not (d / "checkpoint.npz").is_file():
                print(f"{d}: no checkpoint.npz, skipped")
                continue
            model = OffPolicyAgent.load(d / "checkpoint.npz", tensorboard=False)
            row = pose_test(model, model.env)
            print(
                f"{d.name}: return {row['test_return']:.2f} pitch {row['pitch_mean']:+.2f}"
                f" on back {row['on_back']:.2f}",
                flush=True,
            )
        return
    if a.warmup_data:
        for s in a.seeds:
            stats = warmup_data(a.algo, s, a.variant)
            print(
                f"{a.algo} {a.variant} seed {s} warm-up data: "
                + ", ".join(f"{k} {v:.2f}" for k, v in stats.items())
            )
        return
    if a.out is None:
        ap.error("--out is required unless --warmup-data")
    for s in a.seeds:
        run(a.algo, s, a.steps, a.every, a.variant, a.out)


if __name__ == "__main__":
    main()
