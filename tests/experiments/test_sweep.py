"""Sweeps end to end with real components: 2 workers, kill -9 and rerun, Ray against local,
and every bad spec rejected before anything starts."""

import contextlib
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nafrl.experiments.spec import SpecError, SweepSpec, expand, load_spec
from nafrl.experiments.sweep import run_sweep

TINY_TOML = """
name = "tiny"
algos = ["naf", "ddpg"]
tasks = ["Pendulum-v1"]
seeds = [0, 1]
budget = { steps = 600 }
eval_episodes = 2
[config]
hidden_sizes = [16, 16]
learning_starts = 100
batch_size = 16
updates_per_step = 1
buffer_size = 5000
eval_interval = 1
eval_episodes = 1
checkpoint_interval = 1
"""


def _rows(path: Path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))


def _test_returns(run_dir: Path) -> list[float]:
    return [float(r["test_return"]) for r in _rows(run_dir / "evals.csv")]


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("spec") / "tiny.toml"
    path.write_text(TINY_TOML)
    return path


@pytest.fixture(scope="module")
def full_sweep(spec_file, tmp_path_factory) -> Path:
    """The tiny sweep, uninterrupted, with 2 local workers."""
    out = tmp_path_factory.mktemp("full") / "sweep"
    summary = run_sweep(spec_file, out, workers=2)
    assert summary.done == summary.total == 4 and not summary.failed, summary
    return out


def test_tiny_sweep_end_to_end(full_sweep, spec_file):
    manifest = json.loads((full_sweep / "sweep.json").read_text())
    assert manifest["name"] == "tiny"
    assert manifest["spec"]["seeds"] == [0, 1] and manifest["spec"]["budget"] == {"steps": 600}
    runs = manifest["runs"]
    assert sorted((r["algo"], r["seed"]) for r in runs) == [
        ("ddpg", 0), ("ddpg", 1), ("naf", 0), ("naf", 1),
    ]  # fmt: skip
    assert [r["id"] for r in runs] == [r.id for r in expand(load_spec(spec_file))]  # stable
    for r in runs:
        assert r["task"] == "Pendulum-v1" and r["point"] == {} and r["budget"] == {"steps": 600}
        assert r["config"]["hidden_sizes"] == [16, 16] and "learning_rate" in r["config"]
        d = full_sweep / "runs" / r["id"]
        cfg = json.loads((d / "config.json").read_text())
        assert cfg == {
            "algo": r["algo"], "env": "Pendulum-v1", "seed": r["seed"],
            "budget": {"steps": 600}, "config": r["config"], "eval_episodes": 2,
        }  # fmt: skip
        done = json.loads((d / "done.json").read_text())
        assert (done["num_timesteps"], done["num_episodes"]) == (600, 3)
        # Three periodic evaluations, then the final one (whose mean is done.json's).
        returns = _test_returns(d)
        assert len(returns) == 4 and returns[-1] == pytest.approx(done["final_eval"]["test_return"])
        assert len(_rows(d / "episodes.csv")) == 3 and (d / "checkpoint.npz").exists()
    # Different seeds train differently.
    by = {(r["algo"], r["seed"]): _test_returns(full_sweep / "runs" / r["id"]) for r in runs}
    assert by[("naf", 0)] != by[("naf", 1)]
    # Rerunning the finished sweep starts nothing.
    again = run_sweep(spec_file, full_sweep, workers=2)
    assert again.done == 4 and again.results == {}


def test_sweep_killed_with_sigkill_then_rerun_matches_uninterrupted(full_sweep, spec_file,
                                                                    tmp_path):  # fmt: skip
    out = tmp_path / "sweep"
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "osmesa")}
    p = subprocess.Popen(
        [sys.executable, "-m", "nafrl.cli", "sweep", "run", str(spec_file), "--out", str(out),
         "--workers", "2"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip

    def states() -> tuple[list[Path], list[Path]]:
        runs = list((out / "runs").glob("*")) if (out / "runs").exists() else []
        done = [d for d in runs if (d / "done.json").exists()]
        return done, [d for d in runs if (d / "checkpoint.npz").exists() and d not in done]

    # Kill the sweep process (not its workers: they must die with it) once one run is
    # finished and another is part-way (checkpointed, not done). The group is stopped
    # first and the states read again, so a part-way run cannot finish between the look
    # and the kill (it did on a loaded machine); the workers die stopped (PDEATHSIG is
    # SIGKILL).
    deadline = time.time() + 240
    done, partial = [], []
    try:
        while time.time() < deadline and p.poll() is None:
            if all(states()):
                os.killpg(p.pid, signal.SIGSTOP)
                done, partial = states()
                if done and partial:
                    break
                os.killpg(p.pid, signal.SIGCONT)
            time.sleep(0.05)
        assert p.poll() is None, "the sweep finished before it could be killed"
        p.send_signal(signal.SIGKILL)
        p.wait()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
    marks = {d.name: (d / "done.json").stat().st_mtime_ns for d in done}
    assert 1 <= len(marks) < 4

    summary = run_sweep(spec_file, out, workers=2)
    assert summary.done == 4 and not summary.failed, summary.failed
    assert not set(marks) & set(summary.results)  # finished runs were not started again
    for name, mtime in marks.items():
        assert (out / "runs" / name / "done.json").stat().st_mtime_ns == mtime
    resumed = [r for r in summary.results.values() if r["started_at_step"] > 0]
    assert resumed, "no run resumed from its checkpoint"
    for d in (full_sweep / "runs").iterdir():
        assert _test_returns(out / "runs" / d.name) == _test_returns(d), d.name


def test_ray_backend_gives_the_same_results_as_local(full_sweep, tmp_path):
    import ray  # noqa: F401  (the nafrl[ray] extra, installed by .ci/run: no skip)

    spec = load_spec_text(TINY_TOML.replace('algos = ["naf", "ddpg"]', 'algos = ["naf"]'), tmp_path)
    out = tmp_path / "ray"
    summary = run_sweep(spec, out, workers=2, backend="ray")
    assert summary.done == 2 and not summary.failed, summary.failed
    for rid in summary.results:
        local = full_sweep / "runs" / rid  # same run content, same id
        assert _test_returns(out / "runs" / rid) == _test_returns(local)
        a = json.loads((out / "runs" / rid / "done.json").read_text())["final_eval"]
        b = json.loads((local / "done.json").read_text())["final_eval"]
        assert a["test_return"] == b["test_return"]


def load_spec_text(text: str, tmp_path: Path) -> SweepSpec:
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return load_spec(path)


# ---------------------------------------------------------------- bad specs
BAD = [
    ('nme = "x"', "unknown key(s) nme"),
    ('algos = ["naf", "sac"]', "unknown algo 'sac'"),
    ('tasks = ["NoSuch-v3"]', "unknown task 'NoSuch-v3'"),
    ('tasks = ["CartPole-v1"]', "has action space Discrete(2)"),
    ("seeds = [0, 0]", "seeds lists a value twice"),
    ("seeds = [-1]", "seed -1 out of range"),
    ("budget = { steps = 0 }", "invalid budget"),
    ("budget = { minutes = 5 }", "invalid budget"),
    ("eval_episodes = 0", "invalid eval_episodes=0"),
    ("[grid]\nlerning_rate = [0.1]", "unknown field(s) lerning_rate in [grid]"),
    ("[grid]\nlearning_rate = 0.1", "[grid] learning_rate must be a non-empty list"),
    ("[grid]\nlearning_rate = [1e-3, -1.0]", "grid point {'learning_rate': -1.0}: invalid"),
    ("[grid]\nbatch_size = [64, 0]", "grid point {'batch_size': 0}"),
    ("[grid]\nhidden_sizes = [[32, 32], []]", "grid point {'hidden_sizes': []}"),
    ('[grid]\nexploration = ["ou", "precision"]', "ddpg on Pendulum-v1, grid point "
     "{'exploration': 'precision'}: DDPG does not support exploration='precision'"),
    ("[grid]\nshared_trunk = [true]", "DDPG does not support shared_trunk"),
    ("[grid]\nactor_learning_rate = [1e-5]", "NAF does not support actor_learning_rate"),
    ("[grid]\ngamma = [1.5]", "invalid gamma=1.5"),
    ("[grid]\nimagination_length = [5]", "needs a dynamics model"),
    ('[variants.x]\nmodel = "tru"', "invalid model='tru'"),
    ("[grid]\nbatch_norm = [true, true]", "lists a value twice"),
]  # fmt: skip


@pytest.mark.parametrize("line,message", BAD, ids=[b[1][:30] for b in BAD])
def test_bad_spec_is_one_clear_error_before_anything_starts(tmp_path, line, message):
    base = {
        "name": '"bad"', "algos": '["naf", "ddpg"]', "tasks": '["Pendulum-v1"]',
        "seeds": "[0]", "budget": "{ steps = 200 }",
    }  # fmt: skip
    key = line.split("=")[0].strip()
    if key in base:
        base[key] = line.split("=", 1)[1].strip()
        text = "\n".join(f"{k} = {v}" for k, v in base.items())
    else:
        text = "\n".join(f"{k} = {v}" for k, v in base.items())
        text = f"{line}\n{text}" if not line.startswith("[") else f"{text}\n{line}"
    path = tmp_path / "bad.toml"
    path.write_text(text)
    out = tmp_path / "out"
    with pytest.raises(SpecError) as e:
        run_sweep(path, out)
    assert message in str(e.value)
    assert "\n" not in str(e.value)
    assert not out.exists()


def test_bad_spec_on_the_command_line(tmp_path):
    (tmp_path / "bad.toml").write_text(
        'name = "x"\nalgos = ["naf"]\ntasks = ["Pendulum-v1"]\n'
        "seeds = [0]\nbudget = { steps = 10 }\n[grid]\ntau = [2.0]"
    )
    r = subprocess.run(
        [sys.executable, "-m", "nafrl.cli", "sweep", "run", str(tmp_path / "bad.toml"), "--out",
         str(tmp_path / "out")], capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip() == (
        "nafrl: error: sweep 'x', naf on Pendulum-v1, grid point {'tau': 2.0}: invalid "
        "tau=2.0: expected a number in (0, 1]"
    )
    assert not (tmp_path / "out").exists()
    r = subprocess.run(
        [sys.executable, "-m", "nafrl.cli", "sweep", "run", str(tmp_path / "nope.toml"), "--out",
         str(tmp_path / "out")], capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 2 and "no sweep spec at" in r.stderr


def test_invalid_toml_and_changed_spec_in_the_same_folder(tmp_path, spec_file, full_sweep):
    (tmp_path / "broken.toml").write_text("name = \n")
    with pytest.raises(SpecError, match="is not valid TOML"):
        load_spec(tmp_path / "broken.toml")
    other = load_spec_text(TINY_TOML.replace("seeds = [0, 1]", "seeds = [0, 1, 2]"), tmp_path)
    with pytest.raises(SpecError, match="holds another sweep"):
        run_sweep(other, full_sweep)


def test_run_ids_are_stable_readable_and_ignore_the_budget():
    a = SweepSpec("a", ["naf"], ["Pendulum-v1"], [3], {"steps": 100},
                  grid={"learning_rate": [1e-3, 1e-2], "batch_norm": [True]})  # fmt: skip
    b = SweepSpec("b", ["naf"], ["Pendulum-v1"], [3], {"steps": 900},
                  grid={"learning_rate": [1e-3], "batch_norm": [True]})  # fmt: skip
    ids_a = [r.id for r in expand(a)]
    assert ids_a == [r.id for r in expand(a)]
    assert ids_a[0].startswith("naf-pendulum-v1-lr0.001-bn1-s3-")
    assert ids_a[1].startswith("naf-pendulum-v1-lr0.01-bn1-s3-")
    assert [r.id for r in expand(b)] == ids_a[:1]  # a larger budget is the same run, extended


def test_a_run_rejected_before_its_folder_exists_is_reported_failed_then_retried(
    tmp_path: Path,
) -> None:
    """A worker that rejects a run's config (here: one written by a parent whose code had
    other defaults) leaves failed.json, so status says failed, not pending; a corrected
    retry in the same folder is not refused as foreign."""
    from nafrl.experiments.report import sweep_status
    from nafrl.experiments.sweep import execute

    spec = load_spec_text(TINY_TOML.replace('algos = ["naf", "ddpg"]', 'algos = ["naf"]'), tmp_path)
    out = tmp_path / "sweep"
    run_sweep(spec, out, workers=1, display=False)
    entry = json.loads((out / "sweep.json").read_text())["runs"][0]
    folder = out / "runs" / entry["id"]
    shutil.rmtree(folder)
    bad = {**entry, "config": {**entry["config"], "actor_learning_rate": 0.5}}
    res = execute(bad, str(folder))
    assert res["status"] == "failed" and "actor_learning_rate" in res["error"]
    state = {r.id: r.state for r in sweep_status(out).runs}
    assert state[entry["id"]] == "failed"
    assert "actor_learning_rate" in json.loads((folder / "failed.json").read_text())["error"]
    res = execute(entry, str(folder))
    assert res["status"] == "done", res
    assert not (folder / "failed.json").exists()


def test_an_added_option_at_its_neutral_value_keeps_run_ids_and_resumes_old_folders(
    tmp_path: Path,
) -> None:
    """Adding an opt-in Config field must not orphan existing run folders: at its neutral
    value it is left out of the run id, and a config.json written before it existed (the
    key absent) still resumes; set to another value it is a different run."""
    from nafrl.config import ADDED_FIELDS, identity_dict, make_config
    from nafrl.runs import RunError, RunSpec, _check_same_run

    assert ADDED_FIELDS, "nothing to test"
    base = make_config(**ADDED_FIELDS)  # the behaviour of folders made before the fields
    spec = RunSpec("naf", "Pendulum-v1", 0, {"steps": 100}, base)
    record = spec.to_dict()
    for name, neutral in ADDED_FIELDS.items():
        assert getattr(base, name) == neutral
        assert name not in identity_dict(base)
        del record["config"][name]  # a folder from before the field existed
    _check_same_run(record, spec, tmp_path)  # accepted
    changed = make_config(**{**ADDED_FIELDS, "layer_norm": True})
    other = RunSpec("naf", "Pendulum-v1", 0, {"steps": 100}, changed)
    assert identity_dict(other.config)["layer_norm"] is True
    with pytest.raises(RunError, match="layer_norm"):
        _check_same_run(record, other, tmp_path)


def test_a_record_without_an_added_field_reads_as_its_neutral_value() -> None:
    """A config.json written before a field existed ran without it: it must read as the
    field's neutral value, not today's default (target_smoothing: 0 against 0.15 since
    issue 13)."""
    from nafrl.config import ADDED_FIELDS, Config

    assert Config().target_smoothing != ADDED_FIELDS["target_smoothing"] == 0.0
    record = Config().to_dict()
    del record["target_smoothing"]
    assert Config.from_dict(record).target_smoothing == 0.0
    assert Config.from_dict({**record, "target_smoothing": 0.3}).target_smoothing == 0.3


def test_a_sweep_recorded_before_an_added_field_existed_still_resumes(
    full_sweep: Path, tmp_path: Path, spec_file: Path
) -> None:
    """sweep.json written before an ADDED_FIELDS option existed lacks it in every run's
    config; rerunning the same spec must accept it (and skip the finished runs), while a
    record with the option at another value is another sweep."""
    import json
    import shutil

    from nafrl.config import ADDED_FIELDS
    from nafrl.experiments.spec import SpecError as _SpecError

    out = tmp_path / "sweep"
    shutil.copytree(full_sweep, out)
    manifest = json.loads((out / "sweep.json").read_text())
    removed = 0
    for entry in manifest["runs"]:  # an old record lacks the fields it ran at neutral
        for name, neutral in ADDED_FIELDS.items():
            if entry["config"][name] == neutral:
                del entry["config"][name]
                removed += 1
    assert removed
    (out / "sweep.json").write_text(json.dumps(manifest))
    summary = run_sweep(spec_file, out, workers=1)
    assert summary.done == summary.total == 4 and not summary.failed
    manifest["runs"][0]["config"]["twin_v"] = True
    (out / "sweep.json").write_text(json.dumps(manifest))
    with pytest.raises(_SpecError, match="runs differ"):
        run_sweep(spec_file, out, workers=1)


def test_the_estimate_weighs_imagination_and_planner_driven_steps(tmp_path):
    """A model-free run calibrates the rate; the ETA of an imagination + MPC run is its steps
    times its step_cost over that rate, not its bare step count."""
    from nafrl.config import Config
    from nafrl.experiments.sweep import (
        GUIDED_STEP_COST,
        IMAGINATION_COST_PER_STEP_OF_L,
        estimate,
        step_cost,
    )

    mb_variant = {"model": "true", "imagination_length": 10, "planner": "mpc", "ilqg_fraction": 0.5}
    spec = SweepSpec(
        "t2", ["naf"], ["nafrl/Reacher-v1"], [0], {"episodes": 40},
        config={"updates_per_step": 5}, variants={"none": {}, "imr+mpc": mb_variant},
    )  # fmt: skip
    free, mb = expand(spec)
    assert step_cost(free.spec.config) == 1.0
    want = 1 + IMAGINATION_COST_PER_STEP_OF_L * 10 + 0.5 * GUIDED_STEP_COST[("true", "mpc")]
    assert step_cost(mb.spec.config, 40) == pytest.approx(want)
    # Imagination switched off after 10 of 40 episodes counts a quarter of its cost.
    off = Config(model="linear", imagination_length=10, imagination_off_after=10)
    assert step_cost(off, 40) == pytest.approx(1 + IMAGINATION_COST_PER_STEP_OF_L * 10 * 0.25)
    # MPC that replans every 5 steps plans a fifth as often.
    seldom = Config(model="true", planner="mpc", ilqg_fraction=1.0, mpc_replan_every=5)
    assert step_cost(seldom) == pytest.approx(1 + GUIDED_STEP_COST[("true", "mpc")] / 5)

    folders = {r.id: tmp_path / r.id for r in (free, mb)}
    for f in folders.values():
        f.mkdir()
    steps = 40 * 100  # the reacher's T = 100
    (folders[free.id] / "done.json").write_text(
        json.dumps({"num_timesteps": steps, "wall_time": 20.0})  # 200 steps/s here
    )
    est = estimate([free, mb], [mb], folders, workers=1)
    assert estimate([free, mb], [], folders, workers=1)["seconds"] == 0  # nothing selected
    assert est["rate"] == pytest.approx(200.0)
    assert est["remaining_steps"] == steps
    assert est["seconds"] == pytest.approx(steps * want / 200.0 + 10.0)
    assert est["run_seconds"] == {mb.id: pytest.approx(steps * want / 200.0 + 10.0)}


def test_the_estimate_times_a_run_by_its_finished_seeds_then_its_task_then_all_runs(tmp_path):
    """Each run's seconds per env step come from the closest measurement: the same run's
    finished seeds, else the task's finished runs (weighted by step_cost), else every
    finished run, so a slow task does not borrow a fast task's rate."""
    from nafrl.experiments.sweep import REFERENCE_RUN_OVERHEAD, estimate, step_cost

    tasks = ["nafrl/Reacher-v1", "nafrl/Cheetah-v1", "nafrl/Canada2d-v1"]
    imr = {"model": "true", "imagination_length": 10}
    spec = SweepSpec(
        "t", ["naf"], tasks, [0, 1], {"steps": 1000}, variants={"none": {}, "imr": imr}
    )
    runs = {
        (r.spec.env.split("/")[1][:3], r.point["variant"], r.spec.seed): r for r in expand(spec)
    }
    folders = {r.id: tmp_path / r.id for r in runs.values()}
    for f in folders.values():
        f.mkdir()
    # The reacher's model-free seed 0 ran at 50 env steps/s, the cheetah's at 200.
    for key, wall in {("Rea", "none", 0): 20.0, ("Che", "none", 0): 5.0}.items():
        (folders[runs[key].id] / "done.json").write_text(
            json.dumps({"num_timesteps": 1000, "wall_time": wall})
        )
    todo = [runs[k] for k in [("Rea", "none", 1), ("Rea", "imr", 0), ("Che", "imr", 0),
                              ("Can", "none", 0)]]  # fmt: skip
    est = estimate(list(runs.values()), todo, folders, workers=2)
    cost = step_cost(runs[("Rea", "imr", 0)].spec.config)
    assert cost > 1
    want = {
        ("Rea", "none", 1): 1 / 50,  # its seed 0
        ("Rea", "imr", 0): cost / 50,  # the reacher's rate, times the imagination's cost
        ("Che", "imr", 0): cost / 200,  # the cheetah's
        ("Can", "none", 0): 25 / 2000,  # nothing on canada2d: all runs, 2000 steps in 25 s
    }
    for key, sec in want.items():
        rid = runs[key].id
        assert est["step_seconds"][rid] == pytest.approx(sec)
        assert est["run_seconds"][rid] == pytest.approx(1000 * sec + REFERENCE_RUN_OVERHEAD)
    assert est["seconds"] == pytest.approx(sum(est["run_seconds"].values()) / 2)
    assert est["remaining_seconds"] == pytest.approx(1000 * sum(want.values()))


def test_the_estimate_counts_the_episode_length_finished_runs_of_the_task_had(tmp_path):
    """An episode budget on a task with terminal states: the remaining runs count the mean
    episode length of the finished runs of that task and algorithm (then of the task), not
    the horizon, which only a task nothing has finished on falls back to."""
    from nafrl.experiments.sweep import estimate

    spec = SweepSpec(
        "w", ["naf", "ddpg"], ["nafrl/Walker2d-v1", "nafrl/Reacher-v1"], [0, 1], {"episodes": 10}
    )
    runs = {(r.spec.algo, r.spec.env.split("/")[1], r.spec.seed): r for r in expand(spec)}
    folders = {r.id: tmp_path / r.id for r in runs.values()}
    for f in folders.values():
        f.mkdir()
    done = {("naf", "Walker2d-v1", 0): 600, ("naf", "Walker2d-v1", 1): 400}  # 60, 40 a step
    for key, n in done.items():
        (folders[runs[key].id] / "done.json").write_text(
            json.dumps({"num_timesteps": n, "wall_time": n / 100})
        )
    todo = [runs[("ddpg", "Walker2d-v1", 0)], runs[("naf", "Reacher-v1", 0)]]
    est = estimate(list(runs.values()), todo, folders, workers=1)
    # DDPG has no finished walker run: the task's mean, 50 steps an episode; the reacher's
    # horizon T = 100 where nothing has finished.
    assert est["remaining_steps"] == 10 * 50 + 10 * 100
    assert est["rate"] == pytest.approx(100.0)
    assert est["total_steps"] == 600 + 400 + 2 * 10 * 50 + 4 * 10 * 100


def test_only_runs_the_matching_runs_in_the_patterns_order(tmp_path):
    from nafrl.experiments.sweep import _select

    spec = SweepSpec("o", ["naf", "ddpg"], ["Pendulum-v1"], [0, 1], {"steps": 100})
    runs = expand(spec)
    ids = [r.id for r in _select(runs, ["ddpg-*-s1-*", "naf-*"])]
    assert [i.rsplit("-", 1)[0] for i in ids] == [
        "ddpg-pendulum-v1-s1", "naf-pendulum-v1-s0", "naf-pendulum-v1-s1"
    ]  # fmt: skip
    # Finished runs stay out; a pattern matching no run at all is one clear error, raised
    # before the sweep's folder is created.
    assert [r.id for r in _select(runs[1:2], ["naf-*"])] == [runs[1].id]
    with pytest.raises(SpecError, match=r"--only 'sac-\*' matches no run.*naf-pendulum-v1-s0-\*"):
        run_sweep(spec, tmp_path / "sweep", only=["sac-*"])
    assert not (tmp_path / "sweep").exists()


def test_a_sweep_with_only_runs_just_those_and_a_later_call_runs_the_rest(spec_file, tmp_path):
    out = tmp_path / "sweep"
    summary = run_sweep(spec_file, out, workers=1, only=["naf-*-s1-*"], display=False)
    done = sorted(p.parent.name.rsplit("-", 1)[0] for p in out.glob("runs/*/done.json"))
    assert done == ["naf-pendulum-v1-s1"] and not summary.failed
    # The runs --only passed over are neither done nor failed: they are counted apart.
    assert (summary.done, summary.left_out) == (1, summary.total - 1)
    summary = run_sweep(spec_file, out, workers=1, only=["ddpg-*-s0-*"], display=False)
    assert len(list(out.glob("runs/*/done.json"))) == 2 and not summary.failed
    assert (summary.done, summary.left_out) == (2, summary.total - 2)


def test_parse_deadline_takes_a_time_of_day_or_a_duration():
    from nafrl.experiments.sweep import parse_deadline

    now = time.mktime((2026, 12, 4, 5, 0, 0, 0, 0, -1))  # 05:00 local time
    assert parse_deadline("06:40", now) - now == 100 * 60
    assert parse_deadline("04:30", now) - now == (24 * 60 - 30) * 60  # passed today: tomorrow
    assert parse_deadline("2h30m", now) - now == 9000
    assert parse_deadline("90m", now) - now == 5400
    assert parse_deadline(" 2h ", now) - now == 7200
    for bad in ("", "6.40", "24:00", "2h30", "soon", "-1h"):
        with pytest.raises(SpecError, match=r"invalid --deadline .*HH:MM .*2h30m"):
            parse_deadline(bad, now)


def test_a_deadline_starts_the_runs_that_fit_in_order_and_defers_the_rest(tmp_path):
    """The scheduler skips a run that does not fit for a later one that does; once none fits,
    nothing starts any more (time only runs out) and the rest count as deferred."""
    from nafrl.experiments.sweep import SweepSummary, _schedule

    spec = SweepSpec("d", ["naf", "ddpg"], ["Pendulum-v1"], [0, 1, 2], {"steps": 100})
    runs = expand(spec)
    folders = {r.id: tmp_path / r.id for r in runs}
    fitting = {runs[1].id, runs[3].id}

    class Backend:
        slots = 1
        started: list[str] = []

        def submit(self, entry, folder):
            self.started.append(entry["id"])
            return entry["id"]

        def wait(self, handles, timeout):
            return [(h, {"status": "done"}) for h in handles]

    class Monitor:
        def started(self, rid): ...
        def finished(self, rid, res): ...
        def refresh(self): ...

    asked: list[str] = []

    def fits(r):
        asked.append(r.id)
        return r.id in fitting

    summary = SweepSummary(tmp_path, len(runs), 0)
    be = Backend()
    _schedule(be, runs, folders, Monitor(), summary, fits)
    assert be.started == [runs[1].id, runs[3].id]
    assert summary.done == 2 and summary.deferred == len(runs) - 2
    assert asked[-1] == runs[-1].id and runs[1].id not in asked[2:]  # each start asks anew


def test_a_sweep_run_past_its_deadline_starts_nothing_and_a_later_call_runs_all(
    spec_file, tmp_path
):
    out = tmp_path / "sweep"
    summary = run_sweep(spec_file, out, workers=1, display=False, deadline=time.time() - 1)
    assert (summary.done, summary.deferred) == (0, 4) and not list(out.glob("runs/*"))
    summary = run_sweep(spec_file, out, workers=2, display=False, deadline=time.time() + 86_400)
    assert (summary.done, summary.deferred) == (4, 0) and not summary.failed
