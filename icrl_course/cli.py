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
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

RAW = argparse.RawDescriptionHelpFormatter


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
    p.add_argument("--trials", type=int, required=True, help="number of trials, each on its own distinct map")
    p.add_argument("--out", type=Path, required=True, help="output file (.safetensors)")
    p.add_argument("--maps", default="paper", choices=["paper", "paper_ood", "gymnasium"],
                   help="map distribution preset (default: paper, 3-5 x 3-5)")
    p.add_argument("--split", default="train", choices=["train", "val", "test"],
                   help="which split the maps come from (default: train; test maps are for evaluation)")
    p.add_argument("--episodes", type=int, default=10, help="episodes per trial (default: 10)")
    p.add_argument("--max-episode-steps", type=int, default=25, help="time limit of one episode (default: 25)")
    p.add_argument("--slippery", action="store_true", help="slippery ice (default: not slippery)")
    p.add_argument("--seed", type=int, default=0, help="seed of maps and play (default: 0)")


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
    p.add_argument("--maps", type=int, default=200, help="number of held-out maps (default: 200)")
    p.add_argument("--preset", default="paper", choices=["paper", "paper_ood", "gymnasium"],
                   help="map distribution the test maps come from (default: paper)")
    p.add_argument("--episodes", type=int, default=10, help="episodes per trial (default: 10)")
    p.add_argument("--max-episode-steps", type=int, default=25, help="time limit of one episode (default: 25)")
    p.add_argument("--baselines", default="random,q-learning,explorer",
                   help="comma-separated baselines to run beside it: random, q-learning, explorer, oracle, or 'none' "
                        "(default: random,q-learning,explorer)")
    p.add_argument("--ablation", action="store_true",
                   help="also run the checkpoint with its context wiped at every episode start (first-episode-only "
                        "ablation): its curve must stay flat if the gain comes from the context")
    p.add_argument("--seed", type=int, default=0, help="seed of the maps and of play (default: 0)")
    p.add_argument("--out", type=Path, help="also write the tidy per-map x episode table to this CSV file")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="icrl-course", description="In-context reinforcement learning on Frozen Lake.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _train_parser(sub)
    _dataset_parser(sub)
    _evaluate_parser(sub)
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
    from icrl_course.evaluate import BASELINES, compare_agents, held_out_maps, icl_summary

    names = [] if args.baselines.strip() == "none" else [b.strip() for b in args.baselines.split(",") if b.strip()]
    unknown = [b for b in names if b not in BASELINES]
    if unknown:
        raise SystemExit(f"--baselines: unknown {unknown}; choose from {list(BASELINES)} or 'none'")
    agents = {"transformer": load_agent(args.checkpoint)}
    if args.ablation:
        agents["transformer, context reset every episode"] = load_agent(args.checkpoint, reset_context_every_episode=True)
    agents.update({name: BASELINES[name]() for name in names})
    maps = held_out_maps(args.maps, getattr(MapDistribution, args.preset)(), seed=args.seed)
    table = compare_agents(agents, maps, args.episodes, args.max_episode_steps, seed=args.seed, progress=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out, index=False)
    import pandas as pd

    with pd.option_context("display.width", 250, "display.max_columns", 20):
        print(icl_summary(table).to_string())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``icrl-course``; errors in the user's input end with a one-line message, not a traceback."""
    from icrl_course.envs import DistributionError
    from icrl_course.io import DataFileError
    from icrl_course.train.config import ConfigError

    args = build_parser().parse_args(argv)
    handlers = {"train": _train, "dataset": _dataset, "evaluate": _evaluate}
    try:
        return handlers[args.command](args)
    except (ConfigError, DataFileError, DistributionError, FileExistsError) as err:
        print(f"icrl-course {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
