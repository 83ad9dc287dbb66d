"""``python -m icrl_course.train --config FILE [--set key=value ...]``: the same command as ``icrl-course train``.

It exists so that ``torchrun ... -m icrl_course.train`` and ``accelerate launch ... -m icrl_course.train`` start
several training processes with the one training command.
"""

import sys

from icrl_course.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
