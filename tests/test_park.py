"""bench/park.py: unfinished runs parked outside the work tree come back and resume exactly."""

import csv
import importlib.util
from pathlib import Path

from nafrl.config import make_config
from nafrl.runs import RunSpec, run

_spec = importlib.util.spec_from_file_location(
    "park", Path(__file__).resolve().parent.parent / "bench" / "park.py"
)
assert _spec is not None and _spec.loader is not None
park = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(park)

CFG = make_config(
    hidden_sizes=(16, 16), learning_starts=100, batch_size=16, updates_per_step=1,
    buffer_size=5000, eval_interval=2, eval_episodes=1, checkpoint_interval=1,
)  # fmt: skip
SPEC = RunSpec("naf", "Pendulum-v1", 3, {"episodes": 4}, CFG, eval_episodes=1)


def _returns(folder: Path) -> list[str]:
    with (folder / "episodes.csv").open() as f:
        return [row["return"] for row in csv.DictReader(f)]


def test_a_parked_run_comes_back_and_resumes_as_if_never_stopped(tmp_path):
    reference = run(SPEC, tmp_path / "ref")

    results, parked = tmp_path / "results", tmp_path / "parked"
    work = results / "table" / "work" / "runs"
    stopped = work / "naf-s3"
    # Stopped after 2 of 4 episodes (checkpointed, not done), as a session's end leaves it.
    run(SPEC, stopped, callback=lambda m: m.num_episodes < 2)
    finished = work / "naf-done"
    run(SPEC, finished)
    (results / "table" / "loose").mkdir(parents=True)  # not under work/: never parked
    (results / "table" / "loose" / "checkpoint.npz").write_bytes(b"x")

    assert park.park(results, parked) == [stopped]
    ck = (stopped / "checkpoint.npz").read_bytes()
    assert (parked / "table" / "work" / "runs" / "naf-s3" / "checkpoint.npz").read_bytes() == ck

    # The next session's checkout: run folders (ignored by git) are gone.
    for folder in (stopped, finished):
        for p in sorted(folder.rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
        folder.rmdir()
    assert park.unpark(results, parked) == [stopped]
    assert (stopped / "checkpoint.npz").read_bytes() == ck
    assert not finished.exists()  # only parked runs come back
    assert park.unpark(results, parked) == []  # a run with a checkpoint is never overwritten

    resumed = run(SPEC, stopped)
    assert resumed.done and not resumed.skipped
    assert _returns(stopped) == _returns(tmp_path / "ref")
    assert resumed.final_eval["test_return"] == reference.final_eval["test_return"]
    assert park.park(results, parked) == []  # finished now: nothing to park
