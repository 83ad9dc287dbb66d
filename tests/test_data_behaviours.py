"""Behaviour policies of controlled quality and the datasets they make."""

import numpy as np
import pytest

from icrl_course.data import Behaviour, generate_trials, parse_behaviours, read_dataset, save_dataset
from icrl_course.envs import split_of


def success_rate(trials) -> float:
    """Share of episodes that reached a goal."""
    wins = sum(int((t.rewards > 0).sum()) for t in trials)
    return wins / sum(t.num_episodes for t in trials)


def test_spec_strings_parse_into_behaviours_with_defaults():
    assert parse_behaviours("oracle:0.1*0.7, random*0.3, explorer") == [
        Behaviour("oracle", 0.1, 0.7), Behaviour("random", 0.0, 0.3), Behaviour("explorer", 0.0, 1.0)]


@pytest.mark.parametrize("spec, words", [("wizard", "policy='wizard'"), ("oracle:2", "epsilon=2"),
                                         ("oracle*0", "weight=0"), ("oracle,,random", "empty entry")])
def test_bad_spec_strings_say_what_is_wrong(spec, words):
    with pytest.raises(ValueError, match=words):
        parse_behaviours(spec)


def test_noise_lowers_quality_in_order_oracle_noisy_oracle_random():
    rates = [success_rate(generate_trials(Behaviour(p, e), 40, episodes=3, seed=1)[0])
             for p, e in (("oracle", 0.0), ("oracle", 0.5), ("random", 0.0))]
    assert rates[0] == 1.0
    assert rates[0] > rates[1] > rates[2]


def test_trials_are_on_distinct_training_maps_with_the_asked_episodes():
    trials, generation = generate_trials(Behaviour("explorer"), 30, episodes=4, max_episode_steps=25, seed=2)
    assert len({t.lake_map.digest for t in trials}) == 30
    assert all(split_of(t.lake_map) == "train" for t in trials)
    assert all(t.num_episodes == 4 for t in trials)
    assert generation["split"] == "train" and generation["episodes"] == 4


def test_mixture_assigns_each_trial_one_behaviour_by_weight_and_records_it():
    trials, generation = generate_trials(parse_behaviours("oracle*3,random*1"), 400, episodes=1, seed=3)
    which = np.array(generation["behaviour_of_trial"])
    assert 0.68 < (which == 0).mean() < 0.82
    oracle_wins = [t.rewards.sum() > 0 for t, w in zip(trials, which) if w == 0]
    assert all(oracle_wins)


def test_same_seed_same_dataset_and_the_recipe_travels_with_the_file(tmp_path):
    spec = parse_behaviours("oracle:0.2*0.5,explorer:0.1*0.5")
    first, generation = generate_trials(spec, 20, episodes=2, seed=4)
    second, _ = generate_trials(spec, 20, episodes=2, seed=4)
    assert all(np.array_equal(a.actions, b.actions) and a.lake_map == b.lake_map for a, b in zip(first, second))
    _, header = read_dataset(save_dataset(tmp_path / "d.safetensors", first, generation))
    assert header["generation"]["behaviours"][0] == {"policy": "oracle", "epsilon": 0.2, "weight": 0.5}
    assert header["generation"]["distribution"]["rows"] == [3, 5]
