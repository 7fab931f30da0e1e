"""bench/keep.py: finished runs' small files are committed once, checkpoints never."""

import importlib.util
import json
import subprocess
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "keep", Path(__file__).resolve().parent.parent / "bench" / "keep.py"
)
assert _spec is not None and _spec.loader is not None
keep = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(keep)


def _git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True)
    return out.stdout


def _run(work: Path, name: str, done: bool) -> None:
    d = work / "runs" / name
    d.mkdir(parents=True)
    (d / "evals.csv").write_text("episode,reward\n10,-1.0\n")
    (d / "checkpoint.npz").write_bytes(b"x" * 100)
    if done:
        (d / "done.json").write_text(json.dumps({"steps": 10}))


def test_commit_new_commits_each_finished_run_once_and_no_checkpoint(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "t@example.com")
    _git(repo, "config", "user.name", "t")
    (repo / ".gitignore").write_text("work/\n")  # run folders are ignored, as in the project
    (repo / "other.txt").write_text("mine\n")
    _git(repo, "add", ".gitignore")
    _git(repo, "commit", "-q", "-m", "init")
    _git(repo, "add", "other.txt")  # staged by someone else: must not ride along
    work = repo / "work"
    work.mkdir()
    (work / "sweep.json").write_text("{}")
    _run(work, "a", done=True)
    _run(work, "b", done=False)

    assert keep.commit_new([work], repo) == ["a"]
    files = _git(repo, "show", "--name-only", "--format=", "HEAD").split()
    assert sorted(files) == ["work/runs/a/done.json", "work/runs/a/evals.csv", "work/sweep.json"]
    assert "other.txt" in _git(repo, "diff", "--cached", "--name-only")
    assert keep.commit_new([work], repo) == []  # nothing new: no second commit

    (work / "runs" / "b" / "done.json").write_text("{}")
    assert keep.commit_new([work], repo) == ["b"]
    assert len(_git(repo, "log", "--format=%h").split()) == 3


def test_run_names_say_which_seed_folder_of_which_agent_and_task():
    assert keep.run_name(Path("w/runs/naf-reacher-v1-s0-ab12")) == "naf-reacher-v1-s0-ab12"
    assert keep.run_name(Path("w/sb3/sb3-td3/Reacher-v5/seed0")) == "sb3-td3/Reacher-v5/seed0"
