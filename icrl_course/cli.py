"""The ``icrl-course`` command: train an in-context learner, make offline datasets, evaluate checkpoints.

Why a command line: training runs for minutes to hours, and people run it in a
terminal or on a cluster, not in a notebook cell. The command is a thin layer
over the library (``train.loop.train``, ``data.generate_trials``,
``evaluate.compare_agents``): everything it does, a notebook can do with the
same functions.

Examples::

    icrl-course train --config icrl_course/configs/paper-small.json --set seed=1
    icrl-course dataset --behaviour "oracle:0.1*0.7,random*0.3" --trials 5000 --out data/mixed.safetensors
    icrl-course evaluate --checkpoint paper-small --maps 200 --ablation
    icrl-course report                       # results/ and the README's results table, from shipped checkpoints

Errors: a mistake in the command line, a config or a named file ends the
command with one line on stderr naming what is wrong and how to fix it (exit
code 2), checked before any long work starts; a failure while running (a
damaged file, a full disk) also gets one line (exit code 1). ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import errno
import re
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Sequence

RAW = argparse.RawDescriptionHelpFormatter


class UsageError(ValueError):
    """A command line that cannot work; the message names the option and how to fix it (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line (``icrl-course CMD: error: ...``) instead of the usage block, exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _int_at_least(low: int):
    """An argparse type: an int >= ``low``, refused with a message saying so."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    return parse


COUNT, SEED = _int_at_least(1), _int_at_least(0)


def _train_parser(sub) -> None:
    p = sub.add_parser(
        "train", formatter_class=RAW, help="train a Q-network by sequence DQN (online or offline), either model kind",
        description=(
            "Train an in-context learner as a config file says (the small transformer, or a Hugging Face causal LM:\n"
            "its model section says which), writing config.json, metrics.jsonl, state.safetensors (the full training\n"
            "state) and model.safetensors + model.json (the exported model) into the run folder. Running the same\n"
            "command again on a folder that holds a state resumes it: a run killed at any moment continues from its\n"
            "last checkpoint and ends with the same weights. Several processes: torchrun ... -m icrl_course.train\n"
            "with the same options.\n\n"
            "Every config field is documented in icrl_course/train/config.py (TrainConfig, TransformerModel, HFModel)."),
    )
    p.add_argument("--config", type=Path, help="JSON file of TrainConfig fields; fields it leaves out keep their defaults. "
                   "Without it, all defaults are used.")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config field, e.g. --set lr=3e-4 --set model.n_layer=4; VALUE is read as JSON when "
                        "it can be (numbers, true/false, lists), else as text. Repeatable.")
    p.add_argument("--run-dir", type=Path, help="folder for the run's files (default: runs/<config name>-seed<seed>)")
    p.add_argument("--fresh", action="store_true", help="refuse to resume: fail if the run folder already holds a state")
    p.add_argument("--export", type=Path, metavar="PATH",
                   help="also copy the final model to PATH.safetensors + PATH.json (e.g. icrl_course/pretrained/NAME)")


def _dataset_parser(sub) -> None:
    p = sub.add_parser(
        "dataset", formatter_class=RAW, help="generate an offline dataset of trials with a behaviour policy",
        description=(
            "Play trials with a behaviour policy of chosen quality and store them, with every generation parameter,\n"
            "in one safetensors file (no pickle) that offline training (source=offline) and icrl_course.data.load_dataset\n"
            "read.\n\n"
            "Behaviour spec: comma-separated NAME[:EPSILON][*WEIGHT] entries. NAME is oracle (knows the map),\n"
            "explorer (memorises what it saw), q-learning (tabular, inside the trial) or random; EPSILON is the\n"
            "probability of a random action at every step; WEIGHT is the entry's share of the trials.\n"
            "Example: 'oracle:0.1*0.7,random*0.3' = 70% of trials by an oracle with 10% random actions, 30% random."),
    )
    p.add_argument("--behaviour", required=True, help="behaviour policy spec (see above)")
    p.add_argument("--trials", type=COUNT, required=True, help="number of trials, each on its own distinct map")
    p.add_argument("--out", type=Path, required=True, help="output file (.safetensors)")
    p.add_argument("--maps", default="paper", choices=["paper", "paper_ood", "gymnasium"],
                   help="map distribution preset (default: paper, 3-5 x 3-5)")
    p.add_argument("--split", default="train", choices=["train", "val", "test"],
                   help="which split the maps come from (default: train; test maps are for evaluation)")
    p.add_argument("--episodes", type=COUNT, default=10, help="episodes per trial (default: 10)")
    p.add_argument("--max-episode-steps", type=COUNT, default=25, help="time limit of one episode (default: 25)")
    p.add_argument("--slippery", action="store_true", help="slippery ice (default: not slippery)")
    p.add_argument("--seed", type=SEED, default=0, help="seed of maps and play (default: 0)")


def _evaluate_parser(sub) -> None:
    p = sub.add_parser(
        "evaluate", formatter_class=RAW, help="in-context learning curve of a checkpoint beside the baselines",
        description=(
            "Play greedily on held-out maps (the test split, never trained on) with frozen weights and print success\n"
            "per episode with 95% bootstrap confidence intervals over maps, for the checkpoint and the baselines."),
    )
    p.add_argument("--checkpoint", required=True,
                   help="a shipped checkpoint name (see icrl_course.checkpoints.available()), a run folder, "
                        "or an exported model's .json/.safetensors path")
    p.add_argument("--maps", type=COUNT, default=200, help="number of held-out maps (default: 200)")
    p.add_argument("--preset", default="paper", choices=["paper", "paper_ood", "gymnasium"],
                   help="map distribution the test maps come from (default: paper)")
    p.add_argument("--episodes", type=COUNT, default=10, help="episodes per trial (default: 10)")
    p.add_argument("--max-episode-steps", type=COUNT, default=25, help="time limit of one episode (default: 25)")
    p.add_argument("--baselines", default="random,q-learning,explorer",
                   help="comma-separated baselines to run beside it: random, q-learning, explorer, oracle, or 'none' "
                        "(default: random,q-learning,explorer)")
    p.add_argument("--ablation", action="store_true",
                   help="also run the checkpoint with its context wiped at every episode start (first-episode-only "
                        "ablation): its curve must stay flat if the gain comes from the context")
    p.add_argument("--seed", type=SEED, default=0, help="seed of the maps and of play (default: 0)")
    p.add_argument("--out", type=Path, help="also write the tidy per-map x episode table to this CSV file")


def _report_parser(sub) -> None:
    p = sub.add_parser(
        "report", formatter_class=RAW, help="rerun the five capability experiments into results/ and the README table",
        description=(
            "Run every capability experiment (icrl_course.experiments) on the shipped checkpoints, write tidy CSVs,\n"
            "summaries with 95% bootstrap CIs and a figures page into --out, and rewrite the README's results table\n"
            "(between <!-- results:start --> and <!-- results:end -->) from those CSVs. The same seed gives the same\n"
            "numbers. Full size takes 5-10 CPU-minutes on 2 cores (5.5 measured); --smoke runs tiny sizes in seconds\n"
            "(never commit it)."),
    )
    p.add_argument("--smoke", action="store_true", help="tiny sizes, for checking that everything runs")
    p.add_argument("--out", type=Path, default=Path("results"), help="folder for the CSVs and figures (default: results)")
    p.add_argument("--readme", type=Path, default=Path("README.md"),
                   help="README whose results table is rewritten (default: README.md); 'none' leaves it alone")
    p.add_argument("--seed", type=SEED, default=0, help="seed of the maps and of play (default: 0)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="icrl-course", description="In-context reinforcement learning on Frozen Lake.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _train_parser(sub)
    _dataset_parser(sub)
    _evaluate_parser(sub)
    _report_parser(sub)
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    for command in sub.choices.values():  # also after the command: icrl-course train ... --debug
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                             help="show the full traceback of an error instead of a one-line message")
    return parser


def _train(args) -> int:
    from icrl_course.train.config import TrainConfig
    from icrl_course.train.loop import train

    config = TrainConfig.from_json(args.config) if args.config else TrainConfig()
    config = config.with_overrides(args.overrides)
    name = args.config.stem if args.config else "default"
    run_dir = args.run_dir or Path("runs") / f"{name}-seed{config.seed}"
    result = train(config, run_dir, resume=not args.fresh)
    if not result.main:  # another process of a multi-process run: the first one reports
        return 0
    print(f"trained {result.iterations} iterations in {result.wall_seconds / 60:.1f} min; files in {run_dir}")
    if result.last_eval:
        curve = ", ".join(f"{v:.2f}" for v in result.last_eval["success_by_episode"])
        print(f"greedy success per episode on held-out maps: {curve} (mean {result.last_eval['mean_success']:.3f}, "
              f"{result.last_eval['ratio_to_explorer']:.0%} of the explorer's)")
    if args.export:
        from icrl_course.checkpoints import copy_model

        weights, spec = copy_model(run_dir / "model", args.export)
        print(f"exported {weights} and {spec}")
    return 0


def _dataset(args) -> int:
    from icrl_course.data import generate_trials, parse_behaviours, save_dataset
    from icrl_course.envs import MapDistribution

    trials, generation = generate_trials(parse_behaviours(args.behaviour), args.trials,
                                         getattr(MapDistribution, args.maps)(), args.split, args.episodes,
                                         args.max_episode_steps, args.slippery, args.seed, progress=True)
    generation["preset"] = args.maps
    path = save_dataset(args.out, trials, generation)
    steps = sum(len(t) for t in trials)
    wins = sum(int(t.rewards.sum() > 0) for t in trials)
    print(f"wrote {len(trials)} trials ({steps} steps; {wins} with at least one success) to {path}")
    return 0


def _evaluate(args) -> int:
    from icrl_course.checkpoints import load_agent
    from icrl_course.envs import MapDistribution
    from icrl_course.evaluate import BASELINES, compare_agents, held_out_maps
    from icrl_course.trials import episode_table

    names = _baseline_names(args.baselines)
    maps = held_out_maps(args.maps, getattr(MapDistribution, args.preset)(), seed=args.seed)
    agents = {"transformer": load_agent(args.checkpoint)}
    if args.ablation:
        agents["transformer, context reset every episode"] = load_agent(args.checkpoint, reset_context_every_episode=True)
    agents.update({name: BASELINES[name]() for name in names})
    table = compare_agents(agents, maps, args.episodes, args.max_episode_steps, seed=args.seed, progress=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out, index=False)
    import pandas as pd

    with pd.option_context("display.width", 250, "display.max_columns", 20):
        print(episode_table(table, numbers=None, mean=True).to_string())
    return 0


def _report(args) -> int:
    from icrl_course.report import report

    report(args.out, smoke=args.smoke, readme=None if str(args.readme) == "none" else args.readme, seed=args.seed)
    return 0


# ------------------------------------------------------------------------ validation before any work
def _baseline_names(text: str) -> list[str]:
    return [] if text.strip() == "none" else [b.strip() for b in text.split(",") if b.strip()]


def _check_output_file(path: Path, option: str) -> None:
    """Refuse an output file that could not be written, before the work that produces it."""
    if path.is_dir():
        raise UsageError(f"{option} {path} is a folder: give a file path inside it, e.g. {path / 'out'}")
    if path.exists() and not path.is_file():
        raise UsageError(f"{option} {path} exists and is not a regular file: choose another path")
    _check_writable_folder(path.parent, option)


def _check_writable_folder(folder: Path, option: str) -> None:
    """The folder (or the nearest of its parents that exists, where it would be created) takes new files."""
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{option}: {existing} is a file, so {folder} cannot be a folder: choose another path")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        raise UsageError(f"{option}: cannot write into {existing} ({err.strerror}): choose a folder you can write to") from None


def _check_config_file(path: Path) -> None:
    if not path.exists():
        raise UsageError(f"--config {path} does not exist: give the path of a JSON config file")
    if not path.is_file():
        raise UsageError(f"--config {path} is not a file: give the path of a JSON config file")
    try:
        path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise UsageError(f"--config {path} is not UTF-8 text (byte {err.start} is 0x{err.object[err.start]:02x}): "
                         "save it as a UTF-8 JSON file") from None
    except OSError as err:
        raise UsageError(f"--config {path} cannot be read ({err.strerror})") from None


def _validate(args) -> None:
    """Every check that needs no long work: arguments that fit together, files that exist, outputs that can be written."""
    if args.command == "train":
        if args.config is not None:
            _check_config_file(args.config)
        run_dir = args.run_dir or Path("runs")
        if run_dir.exists() and not run_dir.is_dir():
            raise UsageError(f"--run-dir {run_dir} is a file: give a folder (it is created when missing)")
        _check_writable_folder(run_dir, "--run-dir")
        if args.export is not None:
            _check_output_file(args.export.with_name(args.export.name + ".safetensors"), "--export")
    elif args.command == "dataset":
        from icrl_course.data import parse_behaviours

        try:
            parse_behaviours(args.behaviour)
        except ValueError as err:
            raise UsageError(f"--behaviour: {err}") from None
        _check_output_file(args.out, "--out")
    elif args.command == "evaluate":
        from icrl_course.checkpoints import resolve
        from icrl_course.evaluate import BASELINES

        unknown = [b for b in _baseline_names(args.baselines) if b not in BASELINES]
        if unknown:
            raise UsageError(f"--baselines: unknown {unknown}; choose from {list(BASELINES)} or 'none'")
        try:
            resolve(args.checkpoint)
        except ValueError as err:
            raise UsageError(f"--checkpoint: {err}") from None
        if args.out is not None:
            _check_output_file(args.out, "--out")
    elif args.command == "report":
        from icrl_course.report import END, START

        if args.out.exists() and not args.out.is_dir():
            raise UsageError(f"--out {args.out} is a file: give a folder (it is created when missing)")
        _check_writable_folder(args.out, "--out")
        if str(args.readme) != "none":
            if not args.readme.is_file():
                raise UsageError(f"--readme {args.readme} is not a file: give the README to update, or 'none'")
            text = args.readme.read_text()
            if text.count(START) != 1 or text.count(END) != 1:
                raise UsageError(f"--readme {args.readme} needs one {START} line and one {END} line around the results table")


# ------------------------------------------------------------------------ one error path
def _explain(err: BaseException, args) -> tuple[int, str]:
    """The exit code and the one-line message for an error that ended a command."""
    from safetensors import SafetensorError

    from icrl_course.envs import DistributionError, MapError
    from icrl_course.io import DataFileError
    from icrl_course.runtime import DeviceError
    from icrl_course.tokenize.base import ContextTooLongError
    from icrl_course.train.config import ConfigError
    from icrl_course.train.lock import RunFolderError

    if isinstance(err, KeyboardInterrupt):
        return 130, "interrupted; a training run continues from its last checkpoint when started again"
    if isinstance(err, (UsageError, ConfigError, DistributionError, MapError, DeviceError, ContextTooLongError,
                        FileExistsError)):
        return 2, str(err)
    if isinstance(err, (DataFileError, RunFolderError, FloatingPointError)):
        return 1, str(err)
    code = getattr(err, "errno", None)
    if isinstance(err, SafetensorError):  # the Rust writer reports I/O failures as text
        found = re.search(r"os error (\d+)", str(err))
        code = int(found.group(1)) if found else None
    if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        outputs = [str(p) for p in (getattr(err, "filename", None), getattr(args, "out", None),
                                    getattr(args, "run_dir", None)) if p]
        where = f" while writing {outputs[0]}" if outputs else ""
        return 1, (f"no space left{where} ({errno.errorcode[code]}: disk full, quota or file size limit): "
                   "free some space or write elsewhere")
    if isinstance(err, OSError):
        return 1, f"{err.strerror or err}{f': {err.filename}' if err.filename else ''}"
    if isinstance(err, MemoryError):
        return 1, "out of memory: use a smaller model, batch or dataset"
    return 1, f"unexpected {type(err).__name__}: {err} (a bug: run again with --debug for the traceback and report it)"


def _one_line_warning(command: str):
    """``warnings.showwarning`` for the command: the library's warnings (a repaired run folder, ...) as one line each."""

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"icrl-course {command}: warning: {' '.join(str(message).split())}", file=sys.stderr)

    return show


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``icrl-course``: every error ends with a one-line message (a traceback only under ``--debug``).

    Exit codes: 0 success, 2 a usage error (arguments, config, a named file
    that is missing), 1 a failure while running (a damaged file, a full disk),
    130 interrupted.
    """
    args = build_parser().parse_args(argv)
    handlers = {"train": _train, "dataset": _dataset, "evaluate": _evaluate, "report": _report}
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning(args.command)
            _validate(args)
            return handlers[args.command](args)
    except (Exception, KeyboardInterrupt) as err:
        if args.debug:
            raise
        code, message = _explain(err, args)
        print(f"icrl-course {args.command}: error: {' '.join(message.split())}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
