"""bench/suite.py adopt: a reliability run joins the suite only if it is what the suite runs."""

import csv
import importlib.util
import json
from pathlib import Path

import pytest

from nafrl.config import make_config, validate_for_algo

_spec = importlib.util.spec_from_file_location(
    "suite", Path(__file__).resolve().parent.parent / "bench" / "suite.py"
)
assert _spec is not None and _spec.loader is not None
suite = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(suite)

TASK = "Reacher-v5"


def _reliability_run(root: Path, variant: str, config: dict | None, every: int = 5) -> Path:
    """A finished bench/reliability.py run folder: 4 tests, the last one 2.0."""
    d = root / "naf" / variant / "seed0"
    d.mkdir(parents=True)
    with open(d / "evals.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["episode", "test_return", "test_return_std", "total_steps", "wall_time"])
        for i, ret in enumerate([-10.0, -5.0, 3.0, 2.0], start=1):
            w.writerow([every * i, ret, 0.1, every * i * 50, float(i)])
    with open(d / "episodes.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["episode", "return", *suite.TRAIN_TIME])
        for e in range(1, every * 4 + 1):
            w.writerow([e, -1.0, 0.5 * e, 0.25 * e, 0.0, 0.0])  # cumulative, as ours
    done: dict = {"wall_time": 30.0, "steps": suite.BUDGETS[TASK]}
    if config is not None:
        done["config"] = config
    (d / "done.json").write_text(json.dumps(done))
    return root


def _defaults(**changes) -> dict:
    return validate_for_algo(
        make_config(eval_interval=5, eval_episodes=5, **changes), "naf"
    ).to_dict()


def test_adopted_run_counts_in_the_suite_with_its_last_test_as_final(tmp_path):
    src = _reliability_run(tmp_path / "rel", "default", _defaults())
    work = tmp_path / "work"
    (dst,) = suite.adopt("naf", TASK, src, "default", [0], work)
    assert suite._our_done(work, "naf", TASK, 0)
    runs = suite.collect(work)[("naf", TASK)]
    assert len(runs) == 1 and runs[0]["adopted"]
    assert runs[0]["final"] == 2.0 and runs[0]["returns"].max() == 3.0
    # training time from episodes.csv (0.75 s per episode, 5 episodes per test), not done.json
    assert runs[0]["wall"].tolist() == pytest.approx([3.75, 7.5, 11.25, 15.0])
    assert json.loads((dst / "done.json").read_text())["checked"] == "the run's recorded Config"


def test_adopt_refuses_a_run_that_is_not_the_defaults(tmp_path):
    src = _reliability_run(tmp_path / "rel", "tau=0.001", _defaults(tau=0.001))
    with pytest.raises(SystemExit, match=r"tau=0\.001 \(default 0\.005\)"):
        suite.adopt("naf", TASK, src, "tau=0.001", [0], tmp_path / "work")
    assert not (tmp_path / "work").exists()


def test_adopt_refuses_other_test_cadence_and_unrecorded_configs(tmp_path):
    src = _reliability_run(tmp_path / "a", "default", _defaults(), every=10)
    with pytest.raises(SystemExit, match="not tested every 5 episodes"):
        suite.adopt("naf", TASK, src, "default", [0], tmp_path / "work")
    src = _reliability_run(tmp_path / "b", "default", None)
    with pytest.raises(SystemExit, match="records no Config; pass --legacy"):
        suite.adopt("naf", TASK, src, "default", [0], tmp_path / "work")
    # legacy: only the variant is checked, against today's defaults
    with pytest.raises(SystemExit, match="tau"):
        src = _reliability_run(tmp_path / "c", "tau=0.001", None)
        suite.adopt("naf", TASK, src, "tau=0.001", [0], tmp_path / "work", legacy=True)
    src = _reliability_run(tmp_path / "d", "default", None)
    (dst,) = suite.adopt("naf", TASK, src, "default", [0], tmp_path / "work", legacy=True)
    assert "legacy" in json.loads((dst / "done.json").read_text())["checked"]


def test_a_side_run_reports_beside_its_own_work_folder(tmp_path):
    assert suite.report_dir(suite.WORK, None) == suite.RESULTS
    side = tmp_path / "hopper-300k" / "work"
    assert suite.report_dir(side, None) == tmp_path / "hopper-300k"
    assert suite.report_dir(side, tmp_path / "elsewhere") == tmp_path / "elsewhere"
