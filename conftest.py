"""Test-session set-up shared by the unit tests and the executed notebooks.

The course's one switch for CI, ``ICRL_COURSE_SMOKE`` (see
``icrl_course.runtime``), is turned on here unless the caller set it, so the
README's plain ``pytest`` runs every notebook in its shortened form. The
notebook kernels nbval starts inherit this environment.

It also narrows what nbval compares in ``# NBVAL_CHECK_OUTPUT`` cells to what
is deterministic: nbval (0.11) compares stderr, HTML and the text of progress
bars too, even with ``--nbval-lax``, and those carry timings, warnings and
random widget ids. A checked cell is judged on its stdout and plain-text results.
"""

import os

os.environ.setdefault("ICRL_COURSE_SMOKE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# torch's OpenMP threads otherwise spin-wait between ops; where other processes share the two cores
# that makes small ops 10-100x slower. Must be set before torch is imported (kernels inherit it).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
NOT_COMPARED_MIMES = ("text/html", "application/javascript", "application/vnd.plotly.v1+json", WIDGET_VIEW)
"""Rich outputs left out of nbval's comparison; their ``text/plain`` sibling, if any, is still compared."""


def comparable_outputs(outputs):
    """The outputs of a cell that nbval should compare: no stderr, no widget views (tqdm progress bars)."""
    return [
        out for out in outputs
        if not (out.get("output_type") == "stream" and out.get("name") == "stderr")
        and WIDGET_VIEW not in out.get("data", {})
    ]


def pytest_collection_modifyitems(items):
    try:
        from nbval.plugin import IPyNbCell
    except ImportError:  # nbval is a test extra; without it there are no notebook items
        return
    for item in items:
        if not isinstance(item, IPyNbCell):
            continue
        item.parent.skip_compare = tuple(set(item.parent.skip_compare) | set(NOT_COMPARED_MIMES))
        compare = item.compare_outputs
        item.compare_outputs = lambda test, ref, skip_compare=None, compare=compare: compare(
            comparable_outputs(test), comparable_outputs(ref), skip_compare
        )
