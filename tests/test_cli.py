"""The icrl-course command: every option explained in --help, user errors as one line, commands that work."""

import pytest

from icrl_course.cli import build_parser, main
from icrl_course.data import read_dataset
from icrl_course.train.config import TrainConfig
from icrl_course.train.loop import train


def sub_help(command: str) -> str:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return action.choices[command].format_help()


@pytest.mark.parametrize("command, options", [
    ("train", ["--config", "--set", "--run-dir", "--fresh", "--export"]),
    ("dataset", ["--behaviour", "--trials", "--out", "--maps", "--split", "--episodes", "--max-episode-steps",
                 "--slippery", "--seed"]),
    ("evaluate", ["--checkpoint", "--maps", "--preset", "--episodes", "--max-episode-steps", "--baselines",
                  "--ablation", "--seed", "--out"]),
])
def test_help_explains_every_option(command, options):
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    documented = {o: a.help for a in action.choices[command]._actions for o in a.option_strings}
    for option in options:
        assert documented.get(option), f"{command} {option} has no help text"
    assert "Behaviour spec" in sub_help("dataset")


def test_invalid_override_ends_with_a_one_line_error_naming_the_field(capsys):
    assert main(["train", "--set", "gamma=2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("icrl-course train: error: gamma=2.0 is invalid") and err.count("\n") == 1


def test_dataset_command_writes_trials_with_their_recipe(tmp_path, capsys):
    out = tmp_path / "d.safetensors"
    assert main(["dataset", "--behaviour", "oracle:0.1*0.5,random*0.5", "--trials", "12", "--out", str(out),
                 "--episodes", "2", "--seed", "3"]) == 0
    trials, header = read_dataset(out)
    assert len(trials) == 12 and header["generation"]["seed"] == 3 and header["generation"]["preset"] == "paper"
    assert "wrote 12 trials" in capsys.readouterr().out


def test_evaluate_command_prints_the_curve_with_the_ablation_and_baselines(tmp_path, capsys):
    config = TrainConfig(iterations=1, trials_per_iteration=4, batch_trials=4, updates_per_iteration=1,
                         warmup_trials=4, episodes_per_trial=2, max_episode_steps=8,
                         model={"n_layer": 1, "n_embd": 16, "n_head": 2}, eval_maps=4, checkpoint_every=1, progress=False,
                         threads=1)
    train(config, tmp_path / "run")
    csv = tmp_path / "table.csv"
    assert main(["evaluate", "--checkpoint", str(tmp_path / "run"), "--maps", "6", "--episodes", "2",
                 "--baselines", "random,explorer", "--ablation", "--out", str(csv)]) == 0
    out = capsys.readouterr().out
    for row in ("transformer", "context reset every episode", "random", "explorer", "ep 2", "mean"):
        assert row in out
    assert len(csv.read_text().splitlines()) == 1 + 4 * 6 * 2


def test_evaluate_refuses_an_unknown_baseline(tmp_path):
    with pytest.raises(SystemExit, match="unknown \\['wizard'\\]"):
        main(["evaluate", "--checkpoint", "x", "--baselines", "wizard"])


def test_missing_checkpoint_is_a_one_line_error(capsys):
    assert main(["evaluate", "--checkpoint", "no-such-model"]) == 2
    assert "no shipped checkpoint of that name" in capsys.readouterr().err
