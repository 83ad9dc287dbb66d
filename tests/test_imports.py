"""The library's core imports without the packages only figures need."""

import subprocess
import sys


def test_the_core_library_imports_without_plotly():
    code = ("import sys; sys.modules['plotly'] = None\n"  # any `import plotly...` now fails
            "import icrl_course, icrl_course.envs, icrl_course.trials, icrl_course.plots, icrl_course.checkpoints\n"
            "import icrl_course.train.loop, icrl_course.evaluate, icrl_course.data\n"
            "from icrl_course.checkpoints import load_agent\n"
            "load_agent('paper-small')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
