"""icrl-course report: results/ written the same way twice, and the README table computed from the CSVs alone."""

from pathlib import Path

import pandas as pd
import pytest

from icrl_course.cli import main
from icrl_course.report import (
    END,
    EXPERIMENTS,
    START,
    Sizes,
    readme_table,
    read_summaries,
    replace_between_markers,
    results_table,
    run_experiments,
    verdict,
    write_results,
)

ROOT = Path(__file__).resolve().parents[1]
TINY = Sizes(id_maps=3, ood_maps=2, data_maps=2, stitching_cases=2, switch_maps=3, episodes=2, paper_episodes=2,
             before=1, after=1)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Two reports with the same seed, in two folders."""
    folders = []
    for name in ("one", "two"):
        folder = tmp_path_factory.mktemp(name)
        write_results(run_experiments(TINY, seed=0, models=("paper-small",), data_models=(), progress=False), folder)
        folders.append(folder)
    return folders


def test_same_seed_writes_the_same_bytes(written):
    one, two = written
    names = sorted(p.name for p in one.iterdir())
    assert names == sorted(p.name for p in two.iterdir())
    assert {f"{n}_summary.csv" for n in EXPERIMENTS} | {f"{n}.csv.gz" for n in EXPERIMENTS} <= set(names)
    for name in names:
        assert (one / name).read_bytes() == (two / name).read_bytes(), name


def test_readme_table_is_rewritten_from_the_csvs_alone(written, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\n{START}\nold table\n{END}\n\nmore text\n")
    readme.write_text(replace_between_markers(readme.read_text(), results_table(read_summaries(written[0]))))
    assert readme_table(readme) == results_table(read_summaries(written[1]))
    assert readme.read_text().startswith("# title\n") and readme.read_text().endswith(f"{END}\n\nmore text\n")
    table = readme_table(readme)
    assert "| unseen in-distribution maps | greedy | success |" in table and "(paper-small)" in table


def test_committed_readme_table_equals_what_the_committed_csvs_give():
    assert readme_table(ROOT / "README.md") == results_table(read_summaries(ROOT / "results"))


@pytest.mark.parametrize("lows_highs, expected", [
    ([(-0.1, 0.1), (-0.2, 0.05)], "holds (level 2/2 vs explorer)"),
    ([(0.1, 0.3), (-0.2, 0.05)], "holds (better 1/2, level 1/2 vs explorer)"),
    ([(-0.3, -0.1), (-0.2, 0.05)], "mixed (level 1/2, worse 1/2 vs explorer)"),
    ([(-0.3, -0.1), (-0.2, -0.05)], "fails (worse 2/2 vs explorer)"),
])
def test_verdict_reads_the_paired_intervals(lows_highs, expected):
    models = pd.DataFrame({"diff_low": [lo for lo, _ in lows_highs], "diff_high": [hi for _, hi in lows_highs]})
    assert verdict(models, "explorer") == expected


def test_fewer_episodes_to_recover_than_the_yardstick_is_better():
    models = pd.DataFrame({"diff_low": [-2.0], "diff_high": [-0.5]})
    assert verdict(models, "explorer", "episodes to recover") == "holds (better 1/1 vs explorer)"


def test_markers_must_appear_once_in_order():
    with pytest.raises(ValueError, match="exactly one"):
        replace_between_markers(f"{END}\n{START}\n", "table")


def test_report_command_refuses_a_readme_without_markers(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    assert main(["report", "--smoke", "--out", str(tmp_path / "results"), "--readme", str(readme)]) == 2
    assert "needs one <!-- results:start -->" in capsys.readouterr().err
