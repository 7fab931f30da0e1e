"""The command line with tiny budgets, and kill-and-resume equivalence."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

import nafrl

TINY = [
    "--hidden-sizes",
    "32",
    "32",
    "--learning-starts",
    "200",
    "--batch-size",
    "32",
    "--checkpoint-interval",
    "1",
    "--eval-interval",
    "2",
    "--eval-episodes",
    "1",
]


def _nafrl(*args: str, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "osmesa")}
    return subprocess.run(
        [sys.executable, "-m", "nafrl.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        **kw,
    )


def _rows(path: Path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_train_eval_plot(tmp_path):
    run = tmp_path / "run"
    r = _nafrl(
        "train",
        "--env",
        "Pendulum-v1",
        "--steps",
        "800",
        "--seed",
        "2",
        "--run-dir",
        str(run),
        "--no-progress-bar",
        *TINY,
    )
    assert r.returncode == 0, r.stderr
    for name in (
        "config.json",
        "episodes.csv",
        "evals.csv",
        "checkpoint.npz",
        "learning_curve.png",
    ):
        assert (run / name).exists(), name
    assert list((run / "tb").glob("events.out.tfevents.*"))
    rows = _rows(run / "episodes.csv")
    assert [int(r["episode"]) for r in rows] == [1, 2, 3, 4]
    assert int(rows[-1]["total_steps"]) == 800
    assert len(_rows(run / "evals.csv")) >= 2
    r = _nafrl("eval", str(run), "--episodes", "2")
    assert r.returncode == 0 and "test return" in r.stdout, r.stderr
    r = _nafrl("plot", str(run), str(run), "--out", str(tmp_path / "both.png"))
    assert r.returncode == 0 and (tmp_path / "both.png").stat().st_size > 10_000, r.stderr
    # A second train into the same folder refuses instead of overwriting.
    r = _nafrl("train", "--env", "Pendulum-v1", "--run-dir", str(run), *TINY)
    assert r.returncode == 2 and "already holds a run" in r.stderr


@pytest.mark.parametrize(
    "args,message",
    [
        (["--env", "NoSuch-v0"], "unknown env id"),
        (["--env", "CartPole-v1"], "NAF needs continuous actions"),
        (["--learning-rate", "0"], "learning_rate"),
        (["--tau", "2"], "tau"),
        (["--batch-size", "0"], "batch_size"),
    ],
)
def test_train_bad_input_one_clear_error(tmp_path, args, message):
    r = _nafrl("train", "--run-dir", str(tmp_path / "r"), *args)
    assert r.returncode != 0
    assert message in r.stderr + r.stdout
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "r").exists()


def test_eval_of_corrupt_checkpoint_is_clear(tmp_path):
    (tmp_path / "checkpoint.npz").write_bytes(b"PK\x03\x04 not really a zip")
    r = _nafrl("eval", str(tmp_path))
    assert r.returncode == 2 and "not a readable nafrl checkpoint" in r.stderr


def test_killed_and_resumed_run_equals_uninterrupted(tmp_path):
    common = ["--env", "Pendulum-v1", "--steps", "2400", "--seed", "5", "--no-progress-bar", *TINY]
    full, cut = tmp_path / "full", tmp_path / "cut"
    r = _nafrl("train", "--run-dir", str(full), *common)
    assert r.returncode == 0, r.stderr

    env = {**os.environ, "MUJOCO_GL": "osmesa"}
    p = subprocess.Popen(
        [sys.executable, "-m", "nafrl.cli", "train", "--run-dir", str(cut), *common],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 240
    while time.time() < deadline and p.poll() is None:
        rows = _rows(cut / "episodes.csv") if (cut / "episodes.csv").exists() else []
        if len(rows) >= 5:
            break
        time.sleep(0.05)
    assert p.poll() is None, "run finished before it could be killed"
    p.send_signal(signal.SIGKILL)
    p.wait()
    killed_at = len(_rows(cut / "episodes.csv"))
    assert killed_at < 12

    r = _nafrl("train", "--resume", str(cut), "--no-progress-bar")
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stdout

    a = nafrl.NAF.load(full / "checkpoint.npz")
    b = nafrl.NAF.load(cut / "checkpoint.npz")
    assert a.num_timesteps == b.num_timesteps == 2400
    for x, y in zip(jax.tree.leaves(a.state), jax.tree.leaves(b.state), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6)
    ra = [float(r["return"]) for r in _rows(full / "episodes.csv")]
    rb = [float(r["return"]) for r in _rows(cut / "episodes.csv")]
    np.testing.assert_allclose(rb, ra, rtol=1e-5)  # the resumed run's log reads as one run


def test_render_and_record_commands(tmp_path):
    r = _nafrl("render", "nafrl/Reacher-v1", "--out", str(tmp_path / "r.png"))
    assert r.returncode == 0 and (tmp_path / "r.png").stat().st_size > 1000, r.stderr
    run = tmp_path / "run"
    r = _nafrl(
        "train",
        "--env",
        "nafrl/Cartpole-v1",
        "--steps",
        "200",
        "--run-dir",
        str(run),
        "--no-progress-bar",
        *TINY,
    )
    assert r.returncode == 0, r.stderr
    r = _nafrl("record", str(run), "--out", str(tmp_path / "p.mp4"))
    assert r.returncode == 0 and (tmp_path / "p.mp4").stat().st_size > 1000, r.stderr


def test_a_repeated_only_keeps_every_pattern(tmp_path, monkeypatch):
    # tyro keeps only the last of a repeated list flag; `--only A --only B` once ran B alone.
    from nafrl import cli
    from nafrl.experiments import sweep as sweep_mod

    seen = {}

    def fake_run_sweep(target, out, **kw):
        seen["only"] = kw["only"]
        raise SystemExit(0)

    monkeypatch.setattr(sweep_mod, "run_sweep", fake_run_sweep)
    spec = tmp_path / "s.toml"
    spec.write_text("")
    with pytest.raises(SystemExit):
        cli.main(["sweep", "run", str(spec), "--only", "a*", "b*", "--out", str(tmp_path),
                  "--only=c*", "--only", "d*"])  # fmt: skip
    assert seen["only"] == ("a*", "b*", "c*", "d*")
    assert cli._merge_repeated(["sweep", "status", "x"], "--only") == ["sweep", "status", "x"]
