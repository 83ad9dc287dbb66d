"""Full fine-tuning, LoRA and IA3 from one trained tiny Llama to new maps, measured: lesson 6's table.

Why: "an adapter trains 1% of the weights" says what it costs, not what it
buys. Every method starts from the same exported base (``--base``, trained
whole on 3-5 x 3-5 maps) and adapts it with the one trainer under one config
(``--config``: 6-7 x 6-7 maps), each at its own learning rate
(``train.adapt.LEARNING_RATES``), for every ``--seeds`` seed. Measured for
the base and after every run, the same way: mean greedy success over the
config's episodes on its val maps and on ``--test-maps`` test-split maps, with
95% bootstrap CIs over maps; the values each method trains and its CPU time.
The tidy table (one row per method x seed x split) goes to ``--out``.

Run (lesson 6 reads the result)::

    python benchmarks/peft_compare.py --seeds 0 1 2 --out results/peft.csv
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from icrl_course.io import write_text
from icrl_course.train.adapt import METHODS, compare_methods, method_table
from icrl_course.train.config import ConfigError, TrainConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="tiny-llama", help="exported hf model trained whole (default: tiny-llama)")
    parser.add_argument("--config", default="tiny-llama-adapt",
                        help="config name in icrl_course/configs or a JSON path (default: tiny-llama-adapt)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="training seeds (default: 0)")
    parser.add_argument("--test-maps", type=int, default=200, help="test-split maps (default: 200)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field, as for icrl-course train")
    parser.add_argument("--run-root", default="runs/peft", help="folder of the runs (default: runs/peft)")
    parser.add_argument("--out", default="results/peft.csv", help="tidy CSV written (default: results/peft.csv)")
    args = parser.parse_args()

    try:
        config = TrainConfig.named(args.config).with_overrides(args.overrides)
    except ConfigError as err:
        parser.error(str(err))
    config = config.replace(model={**config.to_dict()["model"], "init_from": args.base})
    started = time.perf_counter()
    table = compare_methods(args.base, config, args.run_root, args.methods, args.seeds, test_maps=args.test_maps)
    write_text(args.out, table.to_csv(index=False))
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        for split in ("val", "test"):
            print(f"\n{split} maps ({config.map_preset}, {int(table[table.split == split]['maps'].iloc[0])} maps):")
            print(method_table(table, split).round(3).to_string())
    print(f"\nwrote {args.out} ({len(table)} rows) in {(time.perf_counter() - started) / 60:.1f} wall-min")


if __name__ == "__main__":
    main()
