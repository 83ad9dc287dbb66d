"""``icrl-course report``: every capability experiment from the shipped checkpoints into ``results/`` and the README.

Why a command: the README's five-claim table and lesson 7's figures are only
as trustworthy as the way they were made. This module makes them one way,
from the shipped checkpoints, with fixed seeds: rerunning it gives the same
numbers. It writes, atomically (``icrl_course.io``):

* ``results/<experiment>.csv.gz``: the tidy table (one row per condition x
  agent x model x map x episode; gzip keeps the repository small, with a fixed
  timestamp so that a rerun writes the same bytes) and
  ``results/<experiment>_summary.csv``, means and 95% bootstrap CIs over maps
  with paired differences;
* ``results/figures.html``: one page of plotly figures (plotly.js loaded from its CDN);
* the README's results table, between ``<!-- results:start -->`` and
  ``<!-- results:end -->``, computed from the summary CSVs alone
  (``results_table``), so a test can check the committed README against the
  committed CSVs.

Verdicts are computed, not written: each ICRL model is *level* with its
yardstick when the paired 95% CI of the difference contains 0, *better* or
*worse* otherwise; a claim *holds* when every model is level or better,
*fails* when every model is worse, and is *mixed* otherwise.
"""

from __future__ import annotations

import gzip
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import pandas as pd
from tqdm.auto import tqdm

from icrl_course import experiments as ex
from icrl_course.io import atomic_path, write_text

RESULTS_DIR = Path(__file__).resolve().parents[1] / "results"
"""The repository's committed results (where ``icrl-course report`` writes by default, run from the repository root)."""
START, END = "<!-- results:start -->", "<!-- results:end -->"
"""The README markers the results table is written between."""
EXPERIMENTS = ("in_distribution", "out_of_distribution", "data_quality", "stitching", "non_stationary")


@dataclass(frozen=True)
class Sizes:
    """How big each experiment is; ``FULL`` fits 30 CPU-minutes on 2 cores, ``SMOKE`` runs in seconds.

    ``benchmarks/report_time.py`` measures a run at a quarter of these maps and
    estimates the full one: about 5 CPU-minutes with 3 models and 6 offline ones; a real full run with them
    took 8.6 CPU-minutes (8.3 wall-minutes) on a 2-core machine shared with other work.
    """

    id_maps: int = 200
    """Held-out maps for the in-distribution experiment."""
    ood_maps: int = 200
    """Maps per out-of-distribution axis."""
    data_maps: int = 200
    """Maps for each data-quality model and its behaviour."""
    stitching_cases: int = 200
    """Generated stitching cases (plus the paper's map)."""
    switch_maps: int = 200
    """Maps drawn for the non-stationary experiment (those allowing a switch of each kind are kept)."""
    episodes: int = 10
    """Greedy episodes per trial."""
    paper_episodes: int = 30
    """Episodes of the paper's exploration schedule."""
    before: int = 8
    """Episodes before the switch."""
    after: int = 8
    """Episodes after the switch."""


FULL = Sizes()
SMOKE = Sizes(id_maps=6, ood_maps=4, data_maps=4, stitching_cases=6, switch_maps=6, episodes=3, paper_episodes=4,
              before=2, after=2)


def run_experiments(sizes: Sizes, seed: int = 0, models=ex.SEEDS, data_models=tuple(ex.DATA_QUALITY),
                    progress: bool = True) -> dict[str, ex.Experiment]:
    """Run the five experiments on the shipped checkpoints of ``models`` and ``data_models`` that exist."""
    from icrl_course.checkpoints import available

    shipped = set(available())
    networks = ex.load_networks([m for m in models if m in shipped])
    offline = ex.load_networks([m for m in data_models if m in shipped])
    if not networks:
        raise ValueError(f"none of the checkpoints {list(models)} is shipped (shipped: {sorted(shipped)})")
    n, o = len(networks), len(offline)
    runs = 2 * (2 * n + 4) + 5 * (n + 2) + o + sum(len(ex.parse_behaviours(ex.DATA_QUALITY.get(m, "random"))) for m in offline) \
        + 2 * (2 * n + 1) + 3 * (n + 3)
    calls: dict[str, Callable[[object], ex.Experiment]] = {
        "in_distribution": lambda bar: ex.in_distribution(networks, sizes.id_maps, sizes.episodes, sizes.paper_episodes, seed, bar),
        "out_of_distribution": lambda bar: ex.out_of_distribution(networks, sizes.ood_maps, sizes.episodes, seed, progress=bar),
        "data_quality": lambda bar: ex.data_quality(offline, None, sizes.data_maps, sizes.episodes, seed, bar),
        "stitching": lambda bar: ex.stitching(networks, sizes.stitching_cases, seed, progress=bar),
        "non_stationary": lambda bar: ex.non_stationary(networks, sizes.switch_maps, sizes.before, sizes.after, seed,
                                                        progress=bar),
    }
    out = {}
    with tqdm(total=runs, desc="report: agent runs", disable=not progress) as bar:
        for name in EXPERIMENTS:
            bar.set_postfix_str(name)
            out[name] = calls[name](bar)
    return out


def write_results(results: dict[str, ex.Experiment], folder: str | Path) -> list[Path]:
    """The tidy and summary CSVs and the figures page, written atomically into ``folder``."""
    folder = Path(folder)
    written = []
    for name, experiment in results.items():
        text = experiment.table.to_csv(index=False, float_format="%.6g")
        with atomic_path(folder / f"{name}.csv.gz") as tmp, open(tmp, "wb") as raw:
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as packed:  # no name, no time: same bytes
                packed.write(text.encode("utf-8"))
        written.append(folder / f"{name}.csv.gz")
        written.append(write_text(folder / f"{name}_summary.csv",
                                  experiment.summary.to_csv(index=False, float_format="%.6g")))
    written.append(write_text(folder / "figures.html", figures_page(read_summaries(folder))))
    return written


def read_table(folder: str | Path, experiment: str) -> pd.DataFrame:
    """The tidy table of one experiment as ``write_results`` stored it."""
    path = Path(folder) / f"{experiment}.csv.gz"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run `icrl-course report --out {folder}`")
    # model names are text even where a column chunk holds only empty cells (baselines): no mixed-type guess
    return pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={"model": str}).fillna({"model": ""})


def read_summaries(folder: str | Path) -> pd.DataFrame:
    """Every ``*_summary.csv`` in ``folder``, concatenated in ``EXPERIMENTS`` order."""
    folder = Path(folder)
    missing = [n for n in EXPERIMENTS if not (folder / f"{n}_summary.csv").exists()]
    if missing:
        raise FileNotFoundError(f"{folder} lacks {[m + '_summary.csv' for m in missing]}: run `icrl-course report --out {folder}`")
    frames = [pd.read_csv(folder / f"{n}_summary.csv", keep_default_na=False, na_values=[""]) for n in EXPERIMENTS]
    return pd.concat(frames, ignore_index=True).fillna({"model": "", "versus": ""})


# --------------------------------------------------------------------------------- the README table
ROWS = (
    ("unseen in-distribution maps", "in-distribution", "greedy", "success", "explorer"),
    ("unseen in-distribution maps", "in-distribution", "paper schedule", "success, last episode", "explorer"),
    ("out of distribution", "out-of-distribution", None, "success", "explorer"),
    ("robust to poor data", "data quality", None, "success", "behaviour"),
    ("stitching", "stitching", None, "success", "explorer"),
    ("non-stationary", "non-stationary", None, "success after switch", "explorer"),
)
"""(claim, experiment, condition or None for all, metric, yardstick) of each group of README rows."""


def _interval(row) -> str:
    return f"{row['mean']:.2f} [{row['low']:.2f}, {row['high']:.2f}]"


def verdict(models: pd.DataFrame, yardstick: str, metric: str = "success") -> str:
    """The computed verdict for one condition's ICRL rows (see the module docstring).

    Whether a positive difference is *better* depends on the metric: fewer
    episodes to recover, or a shorter path, is better (``experiments.LOWER_IS_BETTER``).
    """
    sign = -1 if metric in ex.LOWER_IS_BETTER else 1
    place = []
    for _, r in models.iterrows():
        low, high = sorted((sign * r["diff_low"], sign * r["diff_high"]))
        place.append("better" if low > 0 else "worse" if high < 0 else "level")
    if not place:
        return "no model"
    word = "holds" if "worse" not in place else "fails" if set(place) == {"worse"} else "mixed"
    counts = ", ".join(f"{p} {place.count(p)}/{len(place)}" for p in ("better", "level", "worse") if p in place)
    return f"{word} ({counts} vs {yardstick})"


def results_table(summary: pd.DataFrame) -> str:
    """The README's markdown results table, from the summary CSVs' rows alone."""
    lines = ["| claim | condition | metric | ICRL, each training seed: mean [95% CI over maps] | yardstick | verdict |",
             "| --- | --- | --- | --- | --- | --- |"]
    for claim, experiment, condition, metric, yardstick in ROWS:
        part = summary[(summary["experiment"] == experiment) & (summary["metric"] == metric)]
        conditions = [condition] if condition else list(dict.fromkeys(part["condition"]))
        for cond in conditions:
            rows = part[part["condition"] == cond]
            models = rows[(rows["agent"] == "icrl") & (rows["model"] != "")]
            reference = rows[rows["agent"] == yardstick]
            if models.empty:
                continue
            icrl = " / ".join(f"{_interval(r)} ({r['model']})" for _, r in models.iterrows())
            ref = _interval(reference.iloc[0]) + f" ({yardstick})" if len(reference) else "n/a"
            lines.append(f"| {claim} | {cond} | {metric} | {icrl} | {ref} | {verdict(models, yardstick, metric)} |")
    return "\n".join(lines)


def replace_between_markers(text: str, table: str) -> str:
    """``text`` with everything between the results markers replaced by ``table``."""
    if text.count(START) != 1 or text.count(END) != 1 or text.index(START) > text.index(END):
        raise ValueError(f"the README needs exactly one {START} line followed by one {END} line")
    head, rest = text.split(START)
    _, tail = rest.split(END)
    return f"{head}{START}\n{table}\n{END}{tail}"


def readme_table(readme: str | Path) -> str:
    """The table currently between the README's markers."""
    text = Path(readme).read_text()
    return text.split(START, 1)[1].split(END, 1)[0].strip("\n")


# --------------------------------------------------------------------------------- figures
def claim_figure(summary: pd.DataFrame, experiment: str, metric: str, condition: str | None = None, title: str | None = None):
    """``metric`` of one experiment by condition, one bar per agent (and model) with its 95% CI over maps."""
    import plotly.graph_objects as go

    part = summary[(summary["experiment"] == experiment) & (summary["metric"] == metric)]
    if condition:
        part = part[part["condition"] == condition]
    figure = go.Figure()
    labels = part["agent"] + part["model"].map(lambda m: f" ({m})" if m else "")
    for label in dict.fromkeys(labels):
        rows = part[labels == label]
        figure.add_bar(name=label, x=rows["condition"], y=rows["mean"],
                       error_y=dict(type="data", symmetric=False, array=rows["high"] - rows["mean"],
                                    arrayminus=rows["mean"] - rows["low"]))
    figure.update_layout(title=title or f"{experiment}: {metric} (95% bootstrap CI over maps)", barmode="group",
                         yaxis_title=metric, template="plotly_white", height=420)
    return figure


def figures_page(summary: pd.DataFrame) -> str:
    """One HTML page (plotly.js from its CDN, so the file stays small): per claim, its headline metric with 95% CIs."""
    html = []
    for index, (claim, experiment, condition, metric, _) in enumerate(ROWS):
        figure = claim_figure(summary, experiment, metric, condition, f"{claim}: {metric} (95% bootstrap CI over maps)")
        html.append(figure.to_html(full_html=False, include_plotlyjs="cdn" if index == 0 else False,
                                   div_id=f"figure-{index}"))  # fixed ids: a rerun writes the same bytes
    return "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>icrl-course results</title></head><body>\n" \
        + "\n".join(html) + "\n</body></html>\n"


# --------------------------------------------------------------------------------- the command
def report(out: str | Path = "results", smoke: bool = False, readme: str | Path | None = "README.md", seed: int = 0,
           progress: bool = True) -> float:
    """Run everything, write ``out`` and the README's table; returns the wall time in seconds."""
    started, cpu = time.perf_counter(), time.process_time()
    results = run_experiments(SMOKE if smoke else FULL, seed=seed, progress=progress)
    write_results(results, out)
    if readme is not None:
        text = Path(readme).read_text()
        write_text(readme, replace_between_markers(text, results_table(read_summaries(out))))
    wall = time.perf_counter() - started
    print(f"wrote {out}/ ({', '.join(EXPERIMENTS)}) in {wall / 60:.1f} wall-min, {(time.process_time() - cpu) / 60:.1f} "
          f"CPU-min of this process on {os.cpu_count()} cores; sizes {asdict(SMOKE if smoke else FULL)}")
    return wall
