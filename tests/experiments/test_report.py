"""Sweep status and report on hand-made sweep folders: numbers equal hand computations and
scipy.stats with the same fixed seed; unfinished runs are listed, never dropped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats as sps

from nafrl.experiments import stats
from nafrl.experiments.paper import TABLE1, TABLE2
from nafrl.experiments.report import (
    SweepFolderError,
    format_status,
    sweep_status,
    table2_column,
    variant_of,
    write_report,
)

EVAL_EPISODES = [10, 20, 30, 40]
REACHER = "nafrl/Reacher-v1"
CARTPOLE = "nafrl/Cartpole-v1"


def _run_id(algo: str, task: str, point: dict[str, Any], seed: int) -> str:
    p = "-".join(f"{k}{v}" for k, v in sorted(point.items()))
    return f"{algo}-{task.split('/')[-1]}-{p}-s{seed}"


def make_sweep(
    root: Path,
    runs: list[dict[str, Any]],
    name: str = "hand",
    protocol: str | None = None,
) -> Path:
    """Write sweep.json and run folders. Each run dict: algo, task, seed, point, state
    ('done', 'partial', 'failed', 'pending'), optional returns (test returns at
    EVAL_EPISODES or at `episodes`), config, error, budget (default 40 episodes)."""
    manifest_runs = []
    for r in runs:
        rid = r.get("id") or _run_id(r["algo"], r["task"], r["point"], r["seed"])
        cfg = {**r["point"], **r.get("config", {})}
        manifest_runs.append(
            {"id": rid, "algo": r["algo"], "task": r["task"], "seed": r["seed"],
             "point": r["point"], "budget": r.get("budget", {"episodes": 40}), "config": cfg}
        )  # fmt: skip
        folder = root / "runs" / rid
        if r["state"] == "pending":
            continue
        folder.mkdir(parents=True)
        (folder / "config.json").write_text(json.dumps({"algo": r["algo"], "config": cfg}))
        returns = r.get("returns", [])
        episodes = r.get("episodes", EVAL_EPISODES[: len(returns)])
        lines = ["episode,total_steps,test_return,test_return_std,wall_time"]
        lines += [f"{e},{e * 50},{v},0.1,1.0" for e, v in zip(episodes, returns, strict=True)]
        (folder / "evals.csv").write_text("\n".join(lines) + "\n")
        n_train = int(episodes[-1]) if len(episodes) else 0
        ep_lines = ["episode,total_steps,return,length"]
        ep_lines += [f"{i},{i * 50},-1.0,50" for i in range(1, n_train + 1)]
        (folder / "episodes.csv").write_text("\n".join(ep_lines) + "\n")
        if r["state"] == "done":
            (folder / "done.json").write_text(json.dumps({"num_episodes": n_train}))
        elif r["state"] == "failed":
            err = r.get("error", "FloatingPointError: NaN in q_loss\nsecond line")
            (folder / "failed.json").write_text(json.dumps({"error": err, "traceback": "tb"}))
    manifest: dict[str, Any] = {"name": name, "spec": {}, "runs": manifest_runs}
    if protocol:
        manifest["spec"]["paper"] = protocol
    root.mkdir(parents=True, exist_ok=True)
    (root / "sweep.json").write_text(json.dumps(manifest))
    return root


A = {"learning_rate": 0.001}
B = {"learning_rate": 0.01}
# Reacher: NAF's point B is best (bests -0.2, -0.3, -0.4; episodes to 5%: 30, 30, 20);
# point A has one failed seed. DDPG's point A is best over its two finished seeds (-0.4, -0.3),
# its third seed never started.
HAND_RUNS: list[dict[str, Any]] = [
    {"algo": "naf", "task": REACHER, "point": A, "seed": 0, "state": "done",
     "returns": [-2.0, -1.0, -0.6, -0.5]},
    {"algo": "naf", "task": REACHER, "point": A, "seed": 1, "state": "done",
     "returns": [-2.0, -1.5, -1.0, -0.9]},
    {"algo": "naf", "task": REACHER, "point": A, "seed": 2, "state": "failed",
     "returns": [-2.0]},
    {"algo": "naf", "task": REACHER, "point": B, "seed": 0, "state": "done",
     "returns": [-1.5, -0.30, -0.20, -0.25]},
    {"algo": "naf", "task": REACHER, "point": B, "seed": 1, "state": "done",
     "returns": [-1.0, -0.33, -0.31, -0.30]},
    {"algo": "naf", "task": REACHER, "point": B, "seed": 2, "state": "done",
     "returns": [-0.8, -0.4, -0.5, -0.6]},
    {"algo": "ddpg", "task": REACHER, "point": A, "seed": 0, "state": "done",
     "returns": [-1.0, -0.5, -0.4, -0.45]},
    {"algo": "ddpg", "task": REACHER, "point": A, "seed": 1, "state": "done",
     "returns": [-1.0, -0.3, -0.35, -0.6]},
    {"algo": "ddpg", "task": REACHER, "point": A, "seed": 2, "state": "pending"},
    {"algo": "ddpg", "task": REACHER, "point": B, "seed": 0, "state": "done",
     "returns": [-3.0, -2.0, -1.5, -1.2]},
    {"algo": "ddpg", "task": REACHER, "point": B, "seed": 1, "state": "done",
     "returns": [-3.0, -2.0, -1.5, -1.0]},
    {"algo": "ddpg", "task": REACHER, "point": B, "seed": 2, "state": "done",
     "returns": [-3.0, -2.0, -1.5, -1.1]},
    # Cartpole: one point each; NAF's seed 1 ran 4 evaluations, seed 0 only 3 (a different
    # number of evaluations); DDPG has a partial run.
    {"algo": "naf", "task": CARTPOLE, "point": A, "seed": 0, "state": "done",
     "returns": [-1.5, -0.9, -0.7]},
    {"algo": "naf", "task": CARTPOLE, "point": A, "seed": 1, "state": "done",
     "returns": [-1.6, -1.2, -0.8, -0.6]},
    {"algo": "ddpg", "task": CARTPOLE, "point": A, "seed": 0, "state": "done",
     "returns": [-2.0, -1.8, -1.7, -1.1]},
    {"algo": "ddpg", "task": CARTPOLE, "point": A, "seed": 1, "state": "done",
     "returns": [-2.0, -1.9, -1.0, -1.3]},
    {"algo": "ddpg", "task": CARTPOLE, "point": A, "seed": 2, "state": "partial",
     "returns": [-2.0, -1.9]},
]  # fmt: skip


def scipy_ci(*samples: np.ndarray, statistic: Any = np.mean) -> tuple[float, float]:
    res = sps.bootstrap(
        samples,
        statistic,
        n_resamples=2000,
        method="percentile",
        paired=False,
        rng=np.random.default_rng(0),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


@pytest.fixture(scope="module")
def hand_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], str]:
    root = make_sweep(tmp_path_factory.mktemp("sweep") / "s", HAND_RUNS)
    md = write_report(root)
    return root, json.loads((root / "report.json").read_text()), md.read_text()


def _cell(rep: dict[str, Any], task: str, label: str) -> dict[str, Any]:
    (row,) = [c for c in rep["cells"] if c["task"] == task and c["label"] == label]
    return row


def test_status_classifies_done_partial_failed_pending(tmp_path: Path) -> None:
    root = make_sweep(tmp_path / "s", HAND_RUNS)
    (root / "runs" / "stray").mkdir()
    st = sweep_status(root)
    assert st.counts() == {"done": 14, "partial": 1, "failed": 1, "pending": 1}
    by_id = {r.id: r for r in st.runs}
    failed = by_id[_run_id("naf", REACHER, A, 2)]
    assert failed.state == "failed" and failed.detail == "FloatingPointError: NaN in q_loss"
    partial = by_id[_run_id("ddpg", CARTPOLE, A, 2)]
    # Two evaluations at episodes 10 and 20 -> 20 training episodes of the 40 budgeted.
    assert partial.state == "partial" and partial.detail.startswith("20/40 episodes")
    assert by_id[_run_id("ddpg", REACHER, A, 2)].state == "pending"
    assert st.unlisted == ("stray",)
    text = format_status(st)
    assert "17 runs: 14 done, 1 partial, 1 failed, 1 pending" in text
    assert f"{failed.id} (naf, {REACHER}, seed 2, learning_rate=0.001): FloatingPointError" in text
    assert "stray" in text

    # A checkpoint alone makes a run partial; an empty folder is pending; done wins over failed.
    empty = by_id[_run_id("ddpg", REACHER, A, 2)].folder
    empty.mkdir(parents=True)
    assert sweep_status(root).counts()["pending"] == 1
    (empty / "checkpoint.npz").write_bytes(b"")
    assert sweep_status(root).counts()["partial"] == 2
    (failed.folder / "done.json").write_text("{}")
    assert sweep_status(root).counts()["failed"] == 0


def test_not_a_sweep_folder_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SweepFolderError, match="no sweep.json"):
        sweep_status(tmp_path)
    (tmp_path / "sweep.json").write_text(json.dumps({"runs": [{"id": "x", "algo": "naf"}]}))
    with pytest.raises(SweepFolderError, match="run #0 lacks task, seed"):
        sweep_status(tmp_path)


def test_best_point_metrics_and_cis_equal_hand_and_scipy(hand_report: Any) -> None:
    _, rep, _ = hand_report
    naf = _cell(rep, REACHER, "naf")
    assert naf["best_point"] == B and naf["seeds"] == 3 and naf["runs_at_point"] == 3
    bests = np.array([-0.20, -0.30, -0.40])
    assert naf["best_reward"]["mean"] == pytest.approx(-0.30)
    assert naf["best_reward"]["ci"] == pytest.approx(scipy_ci(bests))
    assert naf["episodes_to_5pct"]["median"] == 30
    assert naf["episodes_to_5pct"]["ci"] == pytest.approx(
        scipy_ci(np.array([30.0, 30.0, 20.0]), statistic=np.median)
    )
    grid = {json.dumps(g["point"]): g for g in naf["grid"]}
    assert grid[json.dumps(A)]["mean_best"] == pytest.approx(-0.7)  # failed seed not averaged
    assert grid[json.dumps(A)]["finished"] == 2
    assert naf["paper"] == {"source": "Table 1", "domain": "reacher",
                            "best": TABLE1["reacher"].naf_best,
                            "episodes": TABLE1["reacher"].naf_episodes}  # fmt: skip

    ddpg = _cell(rep, REACHER, "ddpg")
    assert ddpg["best_point"] == A and ddpg["seeds"] == 2 and ddpg["runs_at_point"] == 3
    assert ddpg["best_reward"]["mean"] == pytest.approx(-0.35)
    # Episodes to 5%: seed 0 best -0.4 (level -0.42) reached at 30; seed 1 best -0.3 at 20.
    assert [s["episodes_to_5pct"] for s in ddpg["per_seed"]] == [30, 20]
    assert ddpg["paper"]["best"] == TABLE1["reacher"].ddpg_best
    assert ddpg["not_in_numbers"][0]["state"] == "pending"


def test_probability_of_improvement_with_ties(hand_report: Any) -> None:
    _, rep, _ = hand_report
    per_task = {p["task"]: p for p in rep["probability_of_improvement"]["per_task"]}
    # NAF (-0.2, -0.3, -0.4) vs DDPG (-0.4, -0.3): wins 2 + 1, ties 2 x 1/2 -> 4 of 6 pairs.
    assert per_task[REACHER]["p"] == pytest.approx(4 / 6)
    x, y = np.array([-0.2, -0.3, -0.4]), np.array([-0.4, -0.3])
    assert per_task[REACHER]["ci"] == pytest.approx(
        scipy_ci(x, y, statistic=stats.probability_of_improvement)
    )
    # Cartpole: NAF (-0.7, -0.6) beats DDPG (-1.1, -1.0) in every pair.
    assert per_task[CARTPOLE]["p"] == 1.0
    (avg,) = rep["probability_of_improvement"]["average_over_tasks"]
    assert avg["p"] == pytest.approx((4 / 6 + 1.0) / 2)
    assert avg["tasks"] == [REACHER, CARTPOLE]


def test_iqm_of_normalised_scores(hand_report: Any) -> None:
    _, rep, _ = hand_report
    norm = rep["normalisation"]
    assert norm[REACHER]["random"] == TABLE1["reacher"].random and norm[REACHER]["best"] == -0.2
    assert norm[CARTPOLE]["random"] == TABLE1["cartpole"].random
    assert norm[CARTPOLE]["best"] == -0.6
    r_rnd, c_rnd = TABLE1["reacher"].random, TABLE1["cartpole"].random
    naf_r = (np.array([-0.2, -0.3, -0.4]) - r_rnd) / (-0.2 - r_rnd)
    naf_c = (np.array([-0.7, -0.6]) - c_rnd) / (-0.6 - c_rnd)
    pooled = np.sort(np.concatenate([naf_r, naf_c]))
    iqm = {r["label"]: r for r in rep["iqm"]}
    # 5 scores: trim_mean(0.25) cuts int(1.25) = 1 from each end -> mean of the middle three.
    assert iqm["naf"]["iqm"] == pytest.approx(pooled[1:4].mean())
    assert iqm["naf"]["runs"] == 5

    def pooled_iqm(a: np.ndarray, b: np.ndarray, axis: int) -> np.ndarray:
        return sps.trim_mean(np.concatenate([a, b], -1), 0.25, axis=-1)

    expected_ci = scipy_ci(naf_r, naf_c, statistic=pooled_iqm)
    assert iqm["naf"]["ci"] == pytest.approx(expected_ci)
    # Performance profile at tau = 0 is 1 (every run beats random) and never increases.
    frac = np.array(rep["performance_profile"]["labels"]["naf"]["fraction"])
    assert frac[0] == 1.0 and np.all(np.diff(frac) <= 0)


def test_missing_and_failed_runs_are_reported_and_figures_written(hand_report: Any) -> None:
    root, rep, md = hand_report
    missing = {e["id"]: e for e in rep["not_in_numbers"]}
    assert {e["state"] for e in missing.values()} == {"failed", "pending", "partial"}
    failed_id = _run_id("naf", REACHER, A, 2)
    pending_id = _run_id("ddpg", REACHER, A, 2)
    assert missing[failed_id]["detail"] == "FloatingPointError: NaN in q_loss"
    assert f"| {failed_id} | naf |" in md and "FloatingPointError: NaN in q_loss" in md
    assert f"| {pending_id} | ddpg |" in md
    assert "| nafrl/Reacher-v1 | ddpg | learning_rate=0.001 | 2/3 |" in md
    # Cartpole NAF: seed 0 evaluated up to episode 30, seed 1 up to 40 -> curve cut at 30.
    curve = rep["curves"][CARTPOLE]["naf"]
    assert curve["episodes"] == [10, 20, 30] and curve["cut_at_episode"] == 30
    np.testing.assert_allclose(curve["mean"], [-1.55, -1.05, -0.75])
    assert "cut at episode 30, longest run 40" in md
    for f in rep["figures"]:
        assert (root / f).stat().st_size > 1000 and f in md
    assert len(rep["figures"]) == 3  # two tasks' curves and one performance profile
    # The hand-made runs leave eval_episodes at Config's default, 5: below the sweep minimum.
    assert rep["evaluation"]["episodes_per_evaluation"] == {"5": 17}
    assert len(rep["evaluation"]["below_minimum"]) == 17
    assert "**Warning:** 17 runs use fewer than 10 test episodes" in md


def test_variants_are_separate_lines_with_table2_values(tmp_path: Path) -> None:
    fixed = {"batch_norm": True}
    variants = [
        {"model": "none"},
        {"model": "true", "ilqg_fraction": 0.5, "planner": "mpc"},
        {"model": "true", "imagination_length": 10},
        {"model": "true", "imagination_length": 10, "ilqg_fraction": 1.0},
    ]
    runs = [
        {"algo": "naf", "task": REACHER, "point": fixed, "seed": s, "state": "done",
         "config": {**v, "eval_episodes": 10}, "returns": [-1.0, -0.5 - 0.1 * i + 0.01 * s],
         "id": f"naf-v{i}-s{s}"}
        for i, v in enumerate(variants)
        for s in (0, 1)
    ]  # fmt: skip
    root = make_sweep(tmp_path / "t2", runs, name="t2-laptop", protocol="table2")
    write_report(root)
    rep = json.loads((root / "report.json").read_text())
    labels = [c["label"] for c in rep["cells"]]
    assert labels == [
        "naf",
        "naf (model=true, mpc=0.5)",
        "naf (model=true, l=10)",
        "naf (model=true, l=10, ilqg=1)",
    ]
    cols = [c["paper"]["source"] for c in rep["cells"]]
    assert cols == ["Table 2 (none)", "Table 2 (mpc0.5)", "Table 2 (imr)", "Table 2 (imr+mpc1)"]
    assert rep["cells"][2]["paper"]["best"] == TABLE2["reacher"]["imr"][0]
    assert rep["cells"][1]["best_reward"]["mean"] == pytest.approx(-0.595)
    assert rep["evaluation"]["below_minimum"] == []
    assert "Warning" not in (root / "report.md").read_text()
    # Each column against "no model" (plain NAF): every variant's seeds are below the plain
    # runs' (-0.5 - 0.1 i + 0.01 s against -0.5 + 0.01 s), so P = 0; no pair the other way.
    poi = rep["probability_of_improvement"]["per_task"]
    assert [(q["x"], q["y"], q["p"]) for q in poi] == [(lab, "naf", 0.0) for lab in labels[1:]]
    assert variant_of({"exploration": "precision"}) == "explore=precision"
    assert table2_column({"model": "true", "imagination_length": 5, "ilqg_fraction": 0.5}) == (
        "imr+mpc0.5"
    )


def test_stats_on_small_arrays() -> None:
    # Ties count one half: x=(1,2,3,4), y=(0.5,2,2,5,6): 8 wins + 2 ties/2 = 9 of 20 pairs.
    assert stats.probability_of_improvement([1, 2, 3, 4], [0.5, 2, 2, 5, 6]) == pytest.approx(0.45)
    assert stats.probability_of_improvement([1, 1], [1, 1, 1]) == pytest.approx(0.5)
    # IQM of 8 values: drop the two lowest and two highest.
    v = [10.0, -5.0, 1.0, 2.0, 3.0, 4.0, 100.0, 0.0]
    assert float(stats.iqm(v)) == pytest.approx((1 + 2 + 3 + 4) / 4)
    x = np.array([0.1, 0.4, 0.35, 0.9, 0.2])
    assert stats.bootstrap_ci(x) == pytest.approx(scipy_ci(x))
    assert np.isnan(stats.bootstrap_ci([3.0])).all()  # no interval from one value
    assert stats.bootstrap_ci([2.0, 2.0]) == (2.0, 2.0)
    # A single-run stratum is held fixed: the interval equals scipy's on the other stratum.
    lo, hi = stats.stratified_bootstrap_ci(
        [x, [0.5]], lambda a, b, axis: np.mean(a, axis) - b[..., 0]
    )
    ref = scipy_ci(x)
    assert (float(lo), float(hi)) == pytest.approx((ref[0] - 0.5, ref[1] - 0.5))
    frac, _, _ = stats.performance_profile([[0.1, 0.5, 0.9], [0.2, 0.4]], [0.0, 0.3, 0.6])
    np.testing.assert_allclose(frac, [1.0, (2 / 3 + 1 / 2) / 2, (1 / 3 + 0) / 2])
    grid, vals = stats.curves_on_common_grid([([10, 20, 30], [1, 2, 3]), ([10, 25, 40], [0, 1, 2])])
    np.testing.assert_allclose(grid, [10, 20, 25, 30])
    np.testing.assert_allclose(vals[1], [0, 2 / 3, 1, 4 / 3])
    with pytest.raises(ValueError, match="best=1"):
        stats.normalise([0.5], 1.0, 1.0)


def test_include_partial_counts_partial_runs(tmp_path: Path) -> None:
    root = make_sweep(tmp_path / "s", [r for r in HAND_RUNS if r["task"] == CARTPOLE])
    write_report(root, include_partial=True)
    rep = json.loads((root / "report.json").read_text())
    ddpg = _cell(rep, CARTPOLE, "ddpg")
    # The partial run's best so far (-1.9 at episode 20) joins the two finished runs.
    assert ddpg["seeds"] == 3 and [s["state"] for s in ddpg["per_seed"]][-1] == "partial"
    assert ddpg["best_reward"]["mean"] == pytest.approx((-1.1 - 1.0 - 1.9) / 3)
    assert rep["not_in_numbers"] == []
    single = make_sweep(
        tmp_path / "single",
        [{"algo": "naf", "task": "nafrl/ReacherSingle-v1", "point": {}, "seed": 0,
          "state": "done", "returns": [-1.0, -0.5]}],
    )  # fmt: skip
    stale = single / "figures" / "curves_gone.png"
    stale.parent.mkdir()
    stale.write_bytes(b"old")
    write_report(single)
    assert not stale.exists()
    rep = json.loads((single / "report.json").read_text())
    assert rep["cells"][0]["paper"] is None  # no Table 1 number for single-target tasks
    assert rep["cells"][0]["best_point"] == {}
    assert rep["normalisation"]["nafrl/ReacherSingle-v1"]["used"] is False  # no random agent
    assert rep["iqm"] == []
    assert "(fixed config)" in (single / "report.md").read_text()
    (single / "random.json").write_text(json.dumps({"nafrl/ReacherSingle-v1": -3.0}))
    write_report(single)
    rep = json.loads((single / "report.json").read_text())
    assert rep["normalisation"]["nafrl/ReacherSingle-v1"]["random_source"] == "measured"
    assert rep["iqm"][0]["iqm"] == pytest.approx(1.0)  # the only run is the best one


def test_named_variants_and_protocol_from_the_sweep_name(tmp_path: Path) -> None:
    runs = [
        {"algo": "naf", "task": "nafrl/Cheetah-v1", "seed": s, "state": "done",
         "point": {"variant": name, "learning_rate": 0.001}, "config": cfg,
         "returns": [1.0, 2.0 + s]}
        for name, cfg in (("imr", {"model": "true", "imagination_length": 5}),
                          ("none", {}))
        for s in (0, 1)
    ]  # fmt: skip
    root = make_sweep(tmp_path / "n", runs, name="table2-laptop")
    write_report(root)
    rep = json.loads((root / "report.json").read_text())
    assert rep["protocol"] == "table2"
    assert [c["label"] for c in rep["cells"]] == ["naf (imr)", "naf (none)"]
    assert [c["paper"]["best"] for c in rep["cells"]] == [
        TABLE2["cheetah"]["imr"][0],
        TABLE2["cheetah"]["none"][0],
    ]
    md = (root / "report.md").read_text()
    assert "| nafrl/Cheetah-v1 | naf (imr) | learning_rate=0.001 | 2/2 | 2.5 [2, 3] |" in md
    # Table 2's claim "imagination always helps" is ImR against the "none" column (the
    # protocol's name for no model): the seeds' bests tie pairwise (2, 3 against 2, 3).
    poi = rep["probability_of_improvement"]["per_task"]
    assert [(q["x"], q["y"], q["p"]) for q in poi] == [("naf (imr)", "naf (none)", 0.5)]


def test_performance_profile_band_equals_scipy_per_threshold() -> None:
    a, b = np.array([0.1, 0.5, 0.9, 0.7]), np.array([0.2, 0.4, 0.8])
    taus = [0.3, 0.6]
    frac, lo, hi = stats.performance_profile([a, b], taus)
    for i, tau in enumerate(taus):

        def above(x: np.ndarray, y: np.ndarray, axis: int, tau: float = tau) -> np.ndarray:
            return (np.mean(x > tau, axis=-1) + np.mean(y > tau, axis=-1)) / 2

        assert frac[i] == pytest.approx(above(a, b, -1))
        assert (lo[i], hi[i]) == pytest.approx(scipy_ci(a, b, statistic=above))
    assert frac[0] == pytest.approx((3 / 4 + 2 / 3) / 2)


SINGLE = "nafrl/ReacherSingle-v1"
MF_EPISODES = [40, 80, 120, 160, 200, 240, 280, 320, 360]
MB_EPISODES = [20, 40, 60, 80, 100, 120]


def _s63_runs(variant: str, budget: int, per_seed: list[tuple[list[int], list[float]]]) -> list:
    return [
        {"algo": "naf", "task": SINGLE, "point": {"variant": variant}, "seed": s,
         "state": "done", "budget": {"episodes": budget}, "episodes": ep, "returns": ret,
         "config": {"eval_episodes": 10}}
        for s, (ep, ret) in enumerate(per_seed)
    ]  # fmt: skip


# Model-free: first evaluation -10, best -1 on every seed -> level -10 + 0.9 * 9 = -1.9, first
# reached at episode 120 on every seed (budget 360, 3x the others).
MF_RETURNS = [-10.0, -5.0, -1.5, -1.0, -1.1, -1.0, -1.2, -1.0, -1.0]
S63_RUNS = (
    _s63_runs("model-free", 360, [(MF_EPISODES, MF_RETURNS)] * 3)
    # linear: reaches the level at 40 on every seed, plateaus lower (best -1.2) -> speed-up 3.
    + _s63_runs("linear", 120, [(MB_EPISODES, [-10.0, -1.8, -1.5, -1.3, -1.2, -1.2])] * 3)
    # neural: seeds 0 and 1 reach at 100; seed 2 never, and its evaluations stop at 100 while
    # its budget is 120 -> censored at 120; 2 of 3 reached, so the median (100) is exact.
    + _s63_runs("neural", 120, [
        (MB_EPISODES, [-10.0, -6.0, -4.0, -3.0, -1.5, -1.4]),
        (MB_EPISODES, [-10.0, -7.0, -5.0, -2.5, -1.8, -1.6]),
        (MB_EPISODES[:5], [-10.0, -8.0, -6.0, -4.0, -3.0]),
    ])
    # linear-noproj: only seed 0 reaches (at 60): the median is the budget, a lower bound, so
    # the speed-up 120/120 = 1 is an upper bound.
    + _s63_runs("linear-noproj", 120, [
        (MB_EPISODES, [-10.0, -5.0, -1.7, -2.0, -2.5, -3.0]),
        (MB_EPISODES, [-10.0, -5.0, -4.0, -4.0, -4.0, -4.0]),
        (MB_EPISODES, [-10.0, -9.0, -8.0, -7.0, -6.0, -5.0]),
    ])
)  # fmt: skip


@pytest.fixture(scope="module")
def s63_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], str]:
    root = make_sweep(tmp_path_factory.mktemp("s63") / "s", S63_RUNS, protocol="section63")
    md = write_report(root)
    return root, json.loads((root / "report.json").read_text()), md.read_text()


def test_speedup_over_model_free_is_known_on_a_synthetic_section63_sweep(s63_report: Any) -> None:
    root, rep, md = s63_report
    (table,) = rep["speedup"]
    assert table["task"] == SINGLE and table["baseline"] == "naf (model-free)"
    assert table["first_evaluation"] == -10.0 and table["baseline_best"] == -1.0
    assert table["level"] == pytest.approx(-1.9)
    lines = {v["variant"]: v for v in table["variants"]}
    assert [v["variant"] for v in table["variants"]] == [
        "model-free", "linear", "neural", "linear-noproj"
    ]  # fmt: skip
    mf = lines["model-free"]
    assert mf["speedup"] is None and mf["reached"] == 3
    assert mf["episodes_to_level"] == {"median": 120.0, "ci": [120.0, 120.0], "exact": True}
    lin = lines["linear"]
    assert lin["episodes_to_level"]["median"] == 40.0
    assert lin["speedup"] == {"value": 3.0, "ci": [3.0, 3.0], "bound": "exact"}
    # The best test reward sits beside it: linear plateaus lower than model-free.
    assert lin["best_reward"]["mean"] == pytest.approx(-1.2)
    assert "| naf (linear) | 3 of 3 | 40 [40, 40] | 3 [3, 3] | -1.2 [-1.2, -1.2] |" in md

    nn = lines["neural"]
    assert nn["seeds"] == 3 and nn["reached"] == 2
    assert [(p["seed"], p["episodes"], p["reached"]) for p in nn["per_seed"]] == [
        (0, 100.0, True), (1, 100.0, True), (2, 120.0, False)
    ]  # fmt: skip
    assert nn["episodes_to_level"]["exact"] is True
    assert nn["speedup"]["value"] == pytest.approx(1.2) and nn["speedup"]["bound"] == "exact"
    # Model-free's seeds are all equal (held fixed), so the interval is scipy's on neural's.
    eps = np.array([100.0, 100.0, 120.0])
    expected = scipy_ci(eps, statistic=lambda x, axis: 120.0 / np.median(x, axis=axis))
    assert nn["speedup"]["ci"] == pytest.approx(expected)
    assert "naf (neural): seed 2 (at 120)" in md

    noproj = lines["linear-noproj"]
    assert noproj["reached"] == 1 and noproj["episodes_to_level"]["median"] == 120.0
    assert noproj["episodes_to_level"]["exact"] is False
    assert noproj["speedup"]["value"] == 1.0 and noproj["speedup"]["bound"] == "upper bound"
    assert "| naf (linear-noproj) | 1 of 3 | ≥ 120" in md and "| ≤ 1 [" in md
    assert "Level -1.9 (90% of the way from -10 to -1)." in md
    assert "2-5 factors of improvement" in md
    assert "figures/speedup.png" in rep["figures"]
    assert (root / "figures" / "speedup.png").stat().st_size > 1000


def test_no_speedup_table_without_a_model_free_variant(hand_report: Any, tmp_path: Path) -> None:
    _, rep, md = hand_report
    assert rep["speedup"] == [] and "Speed-up" not in md
    # A section63 sweep whose model-free runs have not finished says so instead of a table.
    runs = [
        {**r, "state": "pending"} if r["point"]["variant"] == "model-free" else r for r in S63_RUNS
    ]
    root = make_sweep(tmp_path / "s", runs, protocol="section63")
    write_report(root)
    rep = json.loads((root / "report.json").read_text())
    assert rep["speedup"] == []
    assert "No finished 'model-free' runs yet" in (root / "report.md").read_text()
    assert not (root / "figures" / "speedup.png").exists()


def test_ratio_of_medians_ci_resamples_both_groups() -> None:
    x, y = np.array([120.0, 130.0, 110.0, 150.0]), np.array([40.0, 50.0, 45.0])
    assert float(stats.ratio_of_medians(x, y)) == pytest.approx(125.0 / 45.0)
    assert stats.ratio_of_medians_ci(x, y) == pytest.approx(
        scipy_ci(x, y, statistic=stats.ratio_of_medians)
    )
