"""Test-session set-up shared by the unit tests and the executed notebooks.

The course's one switch for CI, ``ICRL_COURSE_SMOKE`` (see
``icrl_course.runtime``), is turned on here unless the caller set it, so the
README's plain ``pytest`` runs every notebook in its shortened form. The
notebook kernels nbval starts inherit this environment.
"""

import os

os.environ.setdefault("ICRL_COURSE_SMOKE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
