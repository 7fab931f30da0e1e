"""The paper's protocols as data: every run validates, and each protocol keeps what issue 14
asks of it (seeds, the section 6.3 baseline's length, its test episodes and variants)."""

from __future__ import annotations

import pytest

from nafrl.experiments.paper import TABLE1, TABLE2
from nafrl.experiments.protocols import (
    BUDGETS,
    PINNED,
    PROTOCOLS,
    SECTION63_MODEL_FREE_FACTOR,
    TABLE2_FICTIONAL_BUFFER,
    episodes_budget,
    protocol,
)
from nafrl.experiments.spec import SpecError, expand


@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("name", PROTOCOLS)
def test_every_run_of_every_protocol_validates_with_three_seeds_or_more(
    name: str, budget: str
) -> None:
    specs, record = protocol(name, budget)
    runs = expand(specs)  # raises on any invalid grid point
    assert record["paper"] == name and record["budget"] == budget
    seeds_per_point: dict[tuple, set[int]] = {}
    for r in runs:
        key = (r.spec.algo, r.spec.env, tuple(sorted((k, str(v)) for k, v in r.point.items())))
        seeds_per_point.setdefault(key, set()).add(r.spec.seed)
    assert min(len(s) for s in seeds_per_point.values()) >= 3


def test_table1_laptop_covers_ten_domains_with_both_algorithms() -> None:
    runs = expand(protocol("table1", "laptop")[0])
    assert len({r.spec.env for r in runs}) == len(TABLE1) == 10
    assert {r.spec.algo for r in runs} == {"naf", "ddpg"}
    row = TABLE1["cheetah"]
    cheetah = [r for r in runs if "Cheetah" in r.spec.env]
    assert {r.spec.budget["episodes"] for r in cheetah} == {
        episodes_budget(max(row.naf_episodes, row.ddpg_episodes), laptop=True)
    }


def test_table2_runs_the_five_columns_on_three_domains() -> None:
    runs = expand(protocol("table2", "laptop")[0])
    assert len({r.spec.env for r in runs}) == len(TABLE2) == 3
    assert {r.point["variant"] for r in runs} == {"none", "mpc0.5", "imr", "imr+mpc0.5", "imr+mpc1"}
    # Imagination keeps every imagined transition (Algorithm 2 never empties R_f); the other
    # columns keep the default, so the ids of runs already made do not change.
    for r in runs:
        imagines = r.spec.config.imagination_length > 0
        assert imagines == r.point["variant"].startswith("imr")
        want = TABLE2_FICTIONAL_BUFFER if imagines else 0
        assert r.spec.config.fictional_buffer_size == want
    assert r.spec.config.buffer_size <= TABLE2_FICTIONAL_BUFFER
    assert "naf-reacher-v1-none-s0-820643cb65" in {r.id for r in runs}


def test_section63_model_free_runs_three_times_longer_with_ten_test_episodes() -> None:
    runs = expand(protocol("section63", "laptop")[0])
    for task in {r.spec.env for r in runs}:
        mine = [r for r in runs if r.spec.env == task]
        free = {r.spec.budget["episodes"] for r in mine if r.point["variant"] == "model-free"}
        based = {r.spec.budget["episodes"] for r in mine if r.point["variant"] != "model-free"}
        assert len(free) == len(based) == 1
        assert free.pop() == SECTION63_MODEL_FREE_FACTOR * based.pop()
        assert {r.spec.seed for r in mine} == {0, 1, 2, 3, 4}
        assert all(r.spec.config.eval_episodes >= 10 for r in mine)
    noproj = [r for r in runs if r.point["variant"] == "linear-noproj"]
    assert noproj and all(not r.spec.config.project_imagined for r in noproj)
    assert all(r.spec.config.model == "linear" for r in noproj)
    linear = [r for r in runs if r.point["variant"] == "linear"]
    assert all(r.spec.config.project_imagined for r in linear)


def test_unknown_protocol_or_budget_names_what_is_accepted() -> None:
    with pytest.raises(SpecError, match="accepted: table1, table2, section63, fig3"):
        protocol("table3", "laptop")
    with pytest.raises(SpecError, match="accepted: paper, laptop"):
        protocol("table1", "cluster")


@pytest.mark.parametrize("name", PROTOCOLS)
def test_protocols_pin_the_learning_settings(name: str) -> None:
    # A later change of a library default must not change a reproduction run.
    specs, _ = protocol(name, "laptop")
    for spec in specs:
        for key in PINNED:
            assert key in spec.config, (spec.name, key)
