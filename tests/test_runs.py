"""The run lifecycle (nafrl.runs.run, ``nafrl train``): faults and bad input of issue 15,
items 5 (signals), 6 (lock), 7 (non-empty folder), 8 (--resume), 13 (--steps 0) and 14
(the diverged message)."""

import csv
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import jax
import numpy as np
import pytest

from nafrl.config import make_config
from nafrl.runs import RunError, RunLockedError, RunSpec, run

TINY = [
    "--env", "Pendulum-v1",
    "--hidden-sizes", "16", "16",
    "--learning-starts", "100",
    "--batch-size", "16",
    "--updates-per-step", "1",
    "--buffer-size", "5000",
    "--eval-interval", "2",
    "--eval-episodes", "1",
    "--no-progress-bar",
]  # fmt: skip
TINY_CFG = make_config(
    hidden_sizes=(16, 16),
    learning_starts=100,
    batch_size=16,
    updates_per_step=1,
    buffer_size=5000,
    eval_interval=2,
    eval_episodes=1,
)


def _nafrl(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nafrl.cli", *args], capture_output=True, text=True, timeout=300,
        **kw,
    )  # fmt: skip


def _popen(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "nafrl.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


class _Result:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def cli(monkeypatch, capsys):
    """``cli(*args)`` runs ``nafrl *args`` in this process (no interpreter start-up, warm
    JIT caches) and returns its exit status, stdout and stderr."""
    from nafrl.cli import main

    def call(*args: str) -> _Result:
        monkeypatch.setattr(sys, "argv", ["nafrl", *args])
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        out, err = capsys.readouterr()
        return _Result(code, out, err)

    return call


def _rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open() as f:
        return list(csv.DictReader(f))


def _wait_for_rows(path: Path, n: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None and len(_rows(path)) < n:
        time.sleep(0.05)
    assert proc.poll() is None, f"training ended before {n} episodes: {proc.communicate()}"


def _one_line_error(r: "subprocess.CompletedProcess | _Result", *needles: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    for needle in needles:
        assert needle in r.stderr, r.stderr


# ---------------------------------------------------------------- item 5: SIGINT / SIGTERM
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_saves_checkpoint_at_episode_end_and_says_how_to_resume(tmp_path, sig):
    run_dir = tmp_path / "run"
    # --checkpoint-interval 0: before the fix all progress was lost.
    p = _popen("train", "--steps", "800", "--run-dir", str(run_dir), "--checkpoint-interval", "0",
               *TINY)  # fmt: skip
    _wait_for_rows(run_dir / "episodes.csv", 1, p)
    p.send_signal(sig)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 128 + sig, (p.returncode, err)
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert f"interrupted by {signal.Signals(sig).name}" in last
    assert f"Resume with: nafrl train --resume {run_dir}" in last
    rows = _rows(run_dir / "episodes.csv")
    assert 1 <= len(rows) < 4
    from nafrl.runs import checkpoint_step

    # Saved at the episode boundary: the checkpoint's step is the last logged episode's.
    assert checkpoint_step(run_dir) == int(rows[-1]["total_steps"]) == 200 * len(rows)
    assert not (run_dir / "done.json").exists()
    if sig == signal.SIGINT:
        r = _nafrl("train", "--resume", str(run_dir), "--no-progress-bar")
        assert r.returncode == 0, r.stderr
        rows = _rows(run_dir / "episodes.csv")
        assert [int(x["episode"]) for x in rows] == [1, 2, 3, 4]
        assert json.loads((run_dir / "done.json").read_text())["num_timesteps"] == 800


# ---------------------------------------------------------------- item 6: the lock
def test_second_trainer_in_the_same_folder_gets_a_clear_error(tmp_path):
    run_dir = tmp_path / "run"
    a = _popen("train", "--steps", "100000", "--run-dir", str(run_dir), *TINY)
    _wait_for_rows(run_dir / "episodes.csv", 1, a)
    b = _nafrl("train", "--resume", str(run_dir), "--no-progress-bar")
    spec = RunSpec.from_dict(json.loads((run_dir / "config.json").read_text()))
    with pytest.raises(RunLockedError, match="in use by another training process"):
        run(spec, run_dir)
    assert a.poll() is None, "the first trainer ended early"
    a.send_signal(signal.SIGINT)
    a.communicate(timeout=120)
    _one_line_error(b, "in use by another training process", f"pid {a.pid}")
    rows = _rows(run_dir / "episodes.csv")
    assert [int(r["episode"]) for r in rows] == list(range(1, len(rows) + 1))  # one writer


def test_lock_is_taken_with_flock_on_the_lock_file(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    fd = os.open(run_dir / ".lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, b"4242")
        spec = RunSpec("naf", "Pendulum-v1", 0, {"steps": 200}, TINY_CFG)
        with pytest.raises(RunLockedError, match="pid 4242"):
            run(spec, run_dir)
        assert [p.name for p in run_dir.iterdir()] == [".lock"]  # nothing written
    finally:
        os.close(fd)


# ---------------------------------------------------------------- item 7: non-empty folder
def test_non_empty_folder_is_refused_unless_resuming(tmp_path, cli):
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "notes.txt").write_text("mine")
    r = cli("train", "--steps", "200", "--run-dir", str(stray), *TINY)
    _one_line_error(r, "is not empty and holds no nafrl run")
    assert sorted(p.name for p in stray.iterdir()) == ["notes.txt"]

    # A killed run with no checkpoint yet: config.json plus a logged episode.
    killed = tmp_path / "killed"
    spec = RunSpec("naf", "Pendulum-v1", 3, {"steps": 400}, TINY_CFG)
    killed.mkdir()
    (killed / "config.json").write_text(json.dumps(spec.to_dict()))
    (killed / "episodes.csv").write_text("episode,total_steps,return\n1,200,-999.0\n")
    before = {p.name: p.read_bytes() for p in killed.iterdir()}
    r = cli("train", "--steps", "400", "--seed", "3", "--run-dir", str(killed), *TINY)
    _one_line_error(r, "already holds a run", f"--resume {killed}")
    assert {p.name: p.read_bytes() for p in killed.iterdir() if p.name != ".lock"} == before

    r = cli("train", "--resume", str(killed), "--no-progress-bar")
    assert r.returncode == 0, r.stderr
    rows = _rows(killed / "episodes.csv")
    assert [int(x["episode"]) for x in rows] == [1, 2]  # started over: no row appended
    assert float(rows[0]["return"]) != -999.0


# ---------------------------------------------------------------- item 8: --resume semantics
def test_resume_extends_steps_refuses_other_flags_and_adds_no_rows(tmp_path, cli):
    run_dir = tmp_path / "run"
    r = cli("train", "--steps", "400", "--run-dir", str(run_dir), *TINY)
    assert r.returncode == 0, r.stderr
    files = ("episodes.csv", "evals.csv", "config.json", "done.json")
    before = {n: (run_dir / n).read_bytes() for n in files}

    r = cli("train", "--resume", str(run_dir), "--steps", "600", "--learning-rate", "0.1")
    _one_line_error(r, "--learning-rate 0.1", "the run has 0.001")
    # A flag given at its default value is still a flag that would change the run.
    r = cli("train", "--resume", str(run_dir), "--hidden-sizes", "200", "200")
    _one_line_error(r, "--hidden-sizes")
    r = cli("train", "--resume", str(run_dir), "--seed", "3")
    _one_line_error(r, "--seed 3")
    r = cli("train", "--resume", str(run_dir), "--steps", "200")
    _one_line_error(r, "a budget can only grow")
    assert {n: (run_dir / n).read_bytes() for n in files} == before

    # Resuming a finished run does nothing: no new final-evaluation row.
    r = cli("train", "--resume", str(run_dir), "--no-progress-bar")
    assert r.returncode == 0 and "already finished" in r.stdout, r.stderr
    assert {n: (run_dir / n).read_bytes() for n in files} == before

    # --steps extends it.
    r = cli("train", "--resume", str(run_dir), "--steps", "600", "--no-progress-bar")
    assert r.returncode == 0, r.stderr
    assert [int(x["total_steps"]) for x in _rows(run_dir / "episodes.csv")] == [200, 400, 600]
    assert json.loads((run_dir / "config.json").read_text())["budget"] == {"steps": 600}
    assert json.loads((run_dir / "done.json").read_text())["num_timesteps"] == 600


# ---------------------------------------------------------------- item 13: --steps 0
@pytest.mark.parametrize("budget", [["--steps", "0"], ["--episodes", "0"], ["--steps", "-5"]])
def test_zero_budget_leaves_no_folder(tmp_path, budget, cli):
    run_dir = tmp_path / "run"
    r = cli("train", *budget, "--run-dir", str(run_dir), *TINY)
    _one_line_error(r, "expected an integer >= 1")
    assert not run_dir.exists()


def test_bad_env_leaves_no_folder(tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(Exception, match="unknown env id"):
        run(RunSpec("naf", "NoSuch-v9", 0, {"steps": 10}, TINY_CFG), run_dir)
    assert not run_dir.exists()


# ---------------------------------------------------------------- item 14: diverged message
class _HugeReward(gym.Wrapper):
    """Pendulum whose rewards become ~1e20 from env step ``after`` on: the squared TD error
    overflows float32 (the Q loss is inf) while Adam keeps the parameters, and so the
    actions, finite."""

    def __init__(self, after: int, render_mode: str | None = None) -> None:
        super().__init__(gym.make("Pendulum-v1", render_mode=render_mode))
        self.after, self.t = after, 0

    def step(self, action):
        obs, r, term, trunc, info = self.env.step(action)
        self.t += 1
        return obs, (1e20 * (r - 1.0) if self.t > self.after else r), term, trunc, info


@pytest.mark.parametrize("after,checkpoint", [(0, False), (400, True)])
def test_diverged_run_says_truthfully_whether_a_checkpoint_exists(tmp_path, after, checkpoint):
    env_id = f"nafrl-test/HugeReward{after}-v0"
    if env_id not in gym.envs.registry:
        gym.register(env_id, entry_point=_HugeReward, kwargs={"after": after},
                     max_episode_steps=200)  # fmt: skip
    cfg = make_config(
        hidden_sizes=(16, 16), learning_starts=50, batch_size=16, updates_per_step=1,
        buffer_size=5000, eval_interval=0, checkpoint_interval=1,
    )  # fmt: skip
    run_dir = tmp_path / "run"
    with pytest.raises(RunError) as e:
        run(RunSpec("naf", env_id, 0, {"steps": 1000}, cfg), run_dir)
    msg = str(e.value)
    assert msg.startswith("training diverged: the Q loss became non-finite")
    assert "\n" not in msg
    if checkpoint:
        assert f"the last checkpoint ({run_dir / 'checkpoint.npz'}, step 400) is kept" in msg
    else:
        assert "no checkpoint was written yet" in msg
        assert not (run_dir / "checkpoint.npz").exists()
    failed = json.loads((run_dir / "failed.json").read_text())
    assert failed["error"] == msg and "TrainingDivergedError" in failed["traceback"]
    assert not (run_dir / "done.json").exists()


# ---------------------------------------------------------------- budgets in episodes
def test_episode_budget_counts_finished_episodes_and_rerun_is_a_no_op(tmp_path):
    spec = RunSpec("ddpg", "Pendulum-v1", 1, {"episodes": 3}, TINY_CFG, eval_episodes=2)
    res = run(spec, tmp_path / "r")
    assert res.done and not res.skipped
    assert (res.num_episodes, res.num_timesteps) == (3, 600)
    evals = _rows(tmp_path / "r" / "evals.csv")
    assert float(evals[-1]["test_return"]) == pytest.approx(res.final_eval["test_return"])
    done = json.loads((tmp_path / "r" / "done.json").read_text())
    assert done["final_eval"] == res.final_eval and done["num_episodes"] == 3
    # What a bit-identical rerun needs besides seed and config: this machine's CPU and cores.
    assert done["machine"]["cores"] == os.cpu_count()
    assert done["machine"]["vector_isa"] in ("avx512f", "avx2", "avx", "sse4_2", "unknown")
    assert done["machine"]["versions"]["jax"] == jax.__version__
    again = run(spec, tmp_path / "r")
    assert again.skipped and again.final_eval == res.final_eval
    assert _rows(tmp_path / "r" / "evals.csv") == evals
    assert np.isfinite(res.final_eval["test_return"])
