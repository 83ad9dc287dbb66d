"""The capability experiments: tidy tables with one row per model x agent x map x episode, metrics checked by hand."""

import numpy as np
import pandas as pd
import pytest

from icrl_course import experiments as ex
from icrl_course.models.agent import TransformerQNetwork
from icrl_course.models.transformer import QTransformer, TransformerConfig
from icrl_course.stats import mean_ci, paired_difference
from icrl_course.tokenize.compact import CompactTokenizer


@pytest.fixture(scope="module")
def networks():
    """Two tiny untrained networks standing in for two training seeds."""
    config = TransformerConfig(n_layer=1, n_head=2, n_embd=16, max_context=1024)
    return {f"tiny-{s}": TransformerQNetwork(QTransformer(config, seed=s).eval(), CompactTokenizer()) for s in (0, 1)}


def assert_tidy(table, episodes_of_condition):
    assert list(table.columns) == list(ex.TIDY_COLUMNS)
    assert not table.duplicated(["condition", "agent", "model", "lake", "episode"]).any()
    for (condition, agent, model), rows in table.groupby(["condition", "agent", "model"]):
        counts = rows.groupby("lake")["episode"].nunique()
        assert (counts == episodes_of_condition[condition]).all(), (condition, agent, model)


def test_in_distribution_runs_every_model_its_ablation_and_the_yardsticks(networks):
    result = ex.in_distribution(networks, maps=3, episodes=2, paper_episodes=3, seed=0)
    assert_tidy(result.table, {"greedy": 2, "paper schedule": 3})
    agents = set(zip(result.table["agent"], result.table["model"]))
    assert agents == {("icrl", "tiny-0"), ("icrl", "tiny-1"), ("icrl, context reset", "tiny-0"),
                      ("icrl, context reset", "tiny-1"), ("random", ""), ("q-learning", ""), ("explorer", ""), ("oracle", "")}
    oracle = result.table[(result.table["agent"] == "oracle") & (result.table["condition"] == "greedy")]
    assert (oracle["success"] == 1).all() and (oracle["length"] == oracle["shortest"]).all()
    icrl = result.summary[(result.summary["model"] != "") & (result.summary["condition"] == "greedy")]
    assert (icrl["versus"] == "explorer").all()


def test_same_seed_same_tables(networks):
    one = ex.non_stationary(networks, maps=4, before=2, after=2, seed=3)
    two = ex.non_stationary(networks, maps=4, before=2, after=2, seed=3)
    pd.testing.assert_frame_equal(one.table, two.table)
    pd.testing.assert_frame_equal(one.summary, two.summary)


def test_other_experiments_give_tidy_tables(networks):
    assert_tidy(ex.out_of_distribution(networks, maps=2, episodes=2, axes=["slippery", "6-7 x 6-7"]).table,
                {"slippery": 2, "6-7 x 6-7": 2})
    stitched = ex.stitching(networks, cases=3)
    assert_tidy(stitched.table, {"paper map (6 x 4)": 1, "generated 3-5 x 3-5": 1})
    explorer = stitched.table[stitched.table["agent"] == "explorer"]
    assert (explorer["success"] == 1).all() and (explorer["length"] == explorer["shortest"]).all()
    switched = ex.non_stationary(networks, maps=4, before=2, after=2).table
    assert_tidy(switched, {kind: 4 for kind in ex.SWITCH_KINDS})
    assert (switched["switched"] == (switched["episode"] >= 2)).all()


def test_data_quality_puts_each_model_beside_its_behaviour(networks):
    result = ex.data_quality({"tiny-0": networks["tiny-0"]}, {"tiny-0": "oracle*0.5,random*0.5"}, maps=4, episodes=2)
    behaviour = result.table[result.table["agent"] == "behaviour"]
    oracle_only = ex.data_quality({"tiny-0": networks["tiny-0"]}, {"tiny-0": "oracle"}, maps=4, episodes=2).table
    random_only = ex.data_quality({"tiny-0": networks["tiny-0"]}, {"tiny-0": "random"}, maps=4, episodes=2).table
    # the blend's success on each map is the mean of its two parts' (the mixture's expectation)
    expected = 0.5 * oracle_only.loc[oracle_only.agent == "behaviour", "success"].to_numpy() \
        + 0.5 * random_only.loc[random_only.agent == "behaviour", "success"].to_numpy()
    np.testing.assert_allclose(behaviour["success"].to_numpy(), expected)
    assert set(result.summary.loc[result.summary["model"] != "", "versus"]) == {"behaviour"}
    with pytest.raises(ValueError, match="no behaviour is known"):
        ex.data_quality({"unknown": networks["tiny-0"]}, {}, maps=2, episodes=1)


def hand_table():
    """Two maps, four episodes; agent a and the explorer; lengths and shortest paths chosen by hand."""
    rows = []
    for agent, successes in (("a", [[0, 1, 1, 1], [0, 0, 0, 1]]), ("explorer", [[1, 1, 1, 1], [0, 1, 1, 1]])):
        for lake, wins in enumerate(successes):
            for episode, win in enumerate(wins):
                rows.append({"experiment": "e", "condition": "c", "agent": agent, "model": "m" if agent == "a" else "",
                             "lake": lake, "digest": str(lake), "switched": episode >= 2, "episode": episode,
                             "success": float(win), "length": 4 if episode == 2 else 2, "shortest": 2,
                             "fell_in_hole": False, "timed_out": not win, "play_seed": 0})
    return pd.DataFrame(rows, columns=list(ex.TIDY_COLUMNS))


def test_metrics_on_a_hand_table():
    a = hand_table()[lambda t: t.agent == "a"]
    assert ex.METRICS["success"](a).tolist() == [0.75, 0.25]
    assert ex.METRICS["episodes to first success"](a).tolist() == [2.0, 4.0]
    # map 0 succeeded in episodes 2 (length 4) and 3 (length 2) after its first success: (2 + 1) / 2; map 1 none
    assert ex.METRICS["length / shortest after first success"](a).to_dict() == {0: 1.5}
    assert ex.METRICS["success after switch"](a).tolist() == [1.0, 0.5]


def test_episodes_to_recover_counts_from_the_switch_and_censors_maps_that_never_recover():
    a = hand_table()[lambda t: t.agent == "a"]
    # map 0 succeeded just before the switch (episode 1) and again at once: 1; map 1 had not succeeded, so it is left out
    assert ex.episodes_to_recover(a).to_dict() == {0: 1.0}
    never = a.assign(success=np.where(a["switched"], 0.0, 1.0))
    assert ex.episodes_to_recover(never).to_dict() == {0: 3.0, 1: 3.0}  # 2 episodes after the switch, censored at 3


def test_summary_is_the_bootstrap_of_the_per_map_values_with_a_paired_difference():
    table = hand_table()
    summary = ex.summarise(table, ["success"], seed=0).set_index("agent")
    ci = mean_ci([0.75, 0.25], seed=0)
    assert tuple(summary.loc["a", ["mean", "low", "high"]]) == pytest.approx(tuple(ci))
    diff = paired_difference([0.75, 0.25], [1.0, 0.75], seed=0)
    assert tuple(summary.loc["a", ["diff", "diff_low", "diff_high"]]) == pytest.approx(tuple(diff))
    assert np.isnan(summary.loc["explorer", "diff"])
