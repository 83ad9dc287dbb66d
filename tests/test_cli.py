"""The icrl-course command: every option explained in --help, user errors as one line, commands that work."""

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

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
    ("report", ["--smoke", "--out", "--readme", "--seed"]),
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


def tiny_run(folder: Path) -> Path:
    """A one-iteration run of a tiny transformer: its run folder holds a state and an exported model."""
    config = TrainConfig(iterations=1, trials_per_iteration=4, batch_trials=4, updates_per_iteration=1,
                         warmup_trials=4, episodes_per_trial=2, max_episode_steps=8,
                         model={"n_layer": 1, "n_embd": 16, "n_head": 2}, eval_maps=4, checkpoint_every=1, progress=False,
                         threads=1)
    train(config, folder)
    return folder


def test_evaluate_command_prints_the_curve_with_the_ablation_and_baselines(tmp_path, capsys):
    tiny_run(tmp_path / "run")
    csv = tmp_path / "table.csv"
    assert main(["evaluate", "--checkpoint", str(tmp_path / "run"), "--maps", "6", "--episodes", "2",
                 "--baselines", "random,explorer", "--ablation", "--out", str(csv)]) == 0
    out = capsys.readouterr().out
    for row in ("transformer", "context reset every episode", "random", "explorer", "ep 2", "mean"):
        assert row in out
    assert len(csv.read_text().splitlines()) == 1 + 4 * 6 * 2




def test_missing_checkpoint_is_a_one_line_error(capsys):
    assert main(["evaluate", "--checkpoint", "no-such-model"]) == 2
    assert "no shipped checkpoint of that name" in capsys.readouterr().err


# ------------------------------------------------------------------ root cause 2: one line, not a traceback
def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    """Exit code and stderr of ``icrl-course ARGV`` run in this process (argparse's own errors exit)."""
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    return code, capsys.readouterr().err


def setup_files(tmp: Path) -> dict[str, str]:
    """Hostile files a careless or unlucky user passes, by name."""
    (tmp / "latin1.json").write_bytes('{"seed": 1, "map_preset": "caf\xe9"}'.encode("latin-1"))
    (tmp / "folder").mkdir()
    (tmp / "folder.json").mkdir()
    (tmp / "a-file").write_text("not a folder")
    (tmp / "broken.json").write_text('{"seed": 1,')
    (tmp / "list.json").write_text("[1, 2]")
    files = {"latin1": "latin1.json", "folder": "folder", "folder_json": "folder.json", "a_file": "a-file",
             "broken": "broken.json", "list": "list.json"}
    return {key: str(tmp / name) for key, name in files.items()}


ALWAYS_UNWRITABLE = "/proc/icrl-course/out"  # not even root can create files in /proc
CLI_ERRORS = [
    # arguments out of range or malformed
    (["evaluate", "--checkpoint", "paper-small", "--maps", "0"], 2, "argument --maps: must be at least 1, got 0"),
    (["evaluate", "--checkpoint", "paper-small", "--episodes", "0"], 2, "argument --episodes: must be at least 1"),
    (["evaluate", "--checkpoint", "paper-small", "--seed", "-1"], 2, "argument --seed: must be at least 0, got -1"),
    (["evaluate", "--checkpoint", "paper-small", "--max-episode-steps", "0"], 2, "argument --max-episode-steps"),
    (["evaluate", "--checkpoint", "paper-small", "--maps", "ten"], 2, "argument --maps: 'ten' is not a whole number"),
    (["dataset", "--behaviour", "oracle", "--trials", "0", "--out", "{tmp}/d.safetensors"], 2, "argument --trials"),
    (["dataset", "--behaviour", "oracle", "--trials", "5", "--seed", "-1", "--out", "{tmp}/d.safetensors"], 2, "argument --seed"),
    (["evaluate", "--checkpoint", "paper-small", "--baselines", "wizard"], 2, "--baselines: unknown ['wizard']"),
    (["evaluate", "--checkpoint", "no-such-model"], 2, "--checkpoint: no exported model at 'no-such-model'"),
    (["teach"], 2, "invalid choice: 'teach'"),
    # malformed behaviour specs
    (["dataset", "--behaviour", "oracle*inf", "--trials", "5", "--out", "{tmp}/d.safetensors"], 2, "must be a positive finite number"),
    (["dataset", "--behaviour", "oracle:nan", "--trials", "5", "--out", "{tmp}/d.safetensors"], 2, "epsilon=nan"),
    (["dataset", "--behaviour", "oracle:0.1:0.2", "--trials", "5", "--out", "{tmp}/d.safetensors"], 2, "could not convert"),
    (["dataset", "--behaviour", "wizard*2", "--trials", "5", "--out", "{tmp}/d.safetensors"], 2, "policy='wizard'"),
    (["dataset", "--behaviour", "oracle,,random", "--trials", "5", "--out", "{tmp}/d.safetensors"], 2, "empty entry"),
    (["dataset", "--behaviour", "oracle*1e308,random*1e308", "--trials", "5", "--out", "{tmp}/d.safetensors"], 2, "add up to infinity"),
    # config files
    (["train", "--config", "{latin1}"], 2, "is not UTF-8 text (byte 30 is 0xe9)"),
    (["train", "--config", "{folder_json}"], 2, "is not a file"),
    (["train", "--config", "{tmp}/missing.json"], 2, "does not exist"),
    (["train", "--config", "{broken}"], 2, "is not valid JSON"),
    (["train", "--config", "{list}"], 2, "must hold a JSON object"),
    # run folders and outputs, refused before any work
    (["train", "--run-dir", "{a_file}"], 2, "is a file: give a folder"),
    (["train", "--run-dir", "{a_file}/run"], 2, "is a file, so"),
    (["train", "--run-dir", ALWAYS_UNWRITABLE], 2, "--run-dir: cannot write into /proc"),
    (["train", "--export", "{folder}/model", "--run-dir", "{a_file}/run"], 2, "is a file, so"),
    (["evaluate", "--checkpoint", "paper-small", "--out", "{folder}"], 2, "--out {folder} is a folder"),
    (["evaluate", "--checkpoint", "paper-small", "--out", ALWAYS_UNWRITABLE], 2, "--out: cannot write into /proc"),
    (["evaluate", "--checkpoint", "paper-small", "--out", "/dev/null"], 2, "exists and is not a regular file"),
    (["dataset", "--behaviour", "oracle", "--trials", "5", "--out", "{folder}"], 2, "is a folder"),
    (["dataset", "--behaviour", "oracle", "--trials", "5", "--out", "{a_file}/d.safetensors"], 2, "is a file, so"),
    # more distinct maps than the distribution holds (root cause 1 through the command line)
    (["evaluate", "--checkpoint", "paper-small", "--maps", "5000", "--preset", "gymnasium"], 2, "holds exactly 771"),
    (["dataset", "--behaviour", "oracle", "--trials", "1000", "--split", "test", "--maps", "gymnasium",
      "--out", "{tmp}/d.safetensors"], 2, "asked for 1000 distinct test-split maps"),
]


@pytest.mark.parametrize(("argv", "code", "message"), CLI_ERRORS, ids=[" ".join(c[0])[:60] for c in CLI_ERRORS])
def test_every_user_error_is_one_line_naming_the_problem_before_any_work(tmp_path, capsys, argv, code, message):
    if ALWAYS_UNWRITABLE in argv and not Path("/proc").is_dir():
        pytest.skip("needs /proc")
    names = {"tmp": str(tmp_path), **setup_files(tmp_path)}
    started = time.perf_counter()
    got, err = run_cli([a.format(**names) for a in argv], capsys)
    assert (got, err.count("\n")) == (code, 1), err
    assert message.format(**names) in err and "Traceback" not in err
    assert err.startswith("icrl-course")
    assert time.perf_counter() - started < 20  # refused up front, not after the work
    assert not (tmp_path / "d.safetensors").exists()


def test_a_damaged_checkpoint_is_a_one_line_runtime_error(tmp_path, capsys):
    run = tiny_run(tmp_path / "run")
    weights = run / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-9])
    code, err = run_cli(["evaluate", "--checkpoint", str(run), "--maps", "2", "--episodes", "1"], capsys)
    assert code == 1 and err.count("\n") == 1 and "truncated or corrupted" in err


@pytest.mark.parametrize(("error", "code", "message"), [
    (RuntimeError("boom"), 1, "unexpected RuntimeError: boom (a bug: run again with --debug"),
    (KeyboardInterrupt(), 130, "interrupted"),
    (OSError(28, "No space left on device", "x.csv"), 1, "no space left while writing x.csv (ENOSPC"),
    (PermissionError(13, "Permission denied", "/data/x"), 1, "Permission denied: /data/x"),
    (MemoryError(), 1, "out of memory"),
])
def test_failures_while_running_are_one_line_and_the_traceback_is_kept_for_debug(capsys, monkeypatch, error, code, message):
    import icrl_course.cli as cli

    def fail(args):
        raise error

    monkeypatch.setattr(cli, "_evaluate", fail)
    got, err = run_cli(["evaluate", "--checkpoint", "paper-small"], capsys)
    assert got == code and err.count("\n") == 1 and message in err
    with pytest.raises(type(error)):
        main(["evaluate", "--checkpoint", "paper-small", "--debug"])
    with pytest.raises(type(error)):
        main(["--debug", "evaluate", "--checkpoint", "paper-small"])


def _small_file_limit():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, as on a full disk
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))


def test_a_full_disk_is_a_one_line_error_from_a_real_process(tmp_path):
    out = tmp_path / "d.safetensors"
    done = subprocess.run([sys.executable, "-m", "icrl_course.cli", "dataset", "--behaviour", "random", "--trials", "300",
                           "--out", str(out)], capture_output=True, text=True, preexec_fn=_small_file_limit,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    last = done.stderr.strip().splitlines()[-1]  # the progress bar writes to stderr before it
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert last == (f"icrl-course dataset: error: no space left while writing {out} (EFBIG: disk full, quota or file "
                    "size limit): free some space or write elsewhere")
    assert not out.exists() and list(tmp_path.iterdir()) == []  # the temporary file is gone too
