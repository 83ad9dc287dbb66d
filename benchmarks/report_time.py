"""How long the full ``icrl-course report`` takes, estimated from a run at a fraction of its size.

Why: the report must fit 30 CPU-minutes on 2 cores, and running it at full
size to find out costs those 30 minutes. This runs every experiment at
``--fraction`` of the full number of maps (episodes as in full size), once
with the baselines alone and once with one ICRL model beside them, with torch
on one thread so wall time is CPU time. The ICRL share is the difference; the
estimate scales both linearly in maps (batching makes larger batches cheaper
per map, so it errs long) and the ICRL share by the number of models. The
data-quality experiment is timed with one stand-in network per dataset.

Run: ``python benchmarks/report_time.py`` (``--fraction 0.25 --models 3``).
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from icrl_course import experiments as ex
from icrl_course.report import FULL


def timed(call) -> float:
    started = time.process_time()
    call()
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fraction", type=float, default=0.25, help="share of the full number of maps (default: 0.25)")
    parser.add_argument("--models", type=int, default=len(ex.SEEDS), help="ICRL models in the full run (default: 3)")
    parser.add_argument("--checkpoint", default="paper-small", help="the model timed (default: paper-small)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    size = {f.name: getattr(FULL, f.name) for f in dataclasses.fields(FULL)}
    small = {k: max(1, round(v * args.fraction)) if k.endswith(("maps", "cases")) else v for k, v in size.items()}
    network = ex.load_networks([args.checkpoint])
    runs = {
        "in_distribution": lambda nets: ex.in_distribution(nets, small["id_maps"], small["episodes"], small["paper_episodes"]),
        "out_of_distribution": lambda nets: ex.out_of_distribution(nets, small["ood_maps"], small["episodes"]),
        "stitching": lambda nets: ex.stitching(nets, small["stitching_cases"]),
        "non_stationary": lambda nets: ex.non_stationary(nets, small["switch_maps"], small["before"], small["after"]),
    }
    total = 0.0
    print(f"fraction {args.fraction} of the full maps ({small}); CPU seconds, torch on 1 thread")
    for name, run in runs.items():
        alone = timed(lambda: run({}))
        with_model = timed(lambda: run(network))
        estimate = (alone + args.models * (with_model - alone)) / args.fraction
        total += estimate
        print(f"  {name}: baselines {alone:.1f} s, one model {with_model - alone:.1f} s -> full size, "
              f"{args.models} models: {estimate / 60:.1f} CPU-min")
    stand_ins = {name: network[args.checkpoint] for name in ex.DATA_QUALITY}
    data = timed(lambda: ex.data_quality(stand_ins, None, small["data_maps"], small["episodes"])) / args.fraction
    total += data
    print(f"  data_quality ({len(stand_ins)} models): {data / 60:.1f} CPU-min")
    print(f"estimated full report: {total / 60:.1f} CPU-min (goal: 30 CPU-min on 2 cores)")


if __name__ == "__main__":
    main()
