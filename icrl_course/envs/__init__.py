"""Frozen Lake, the environment family every experiment in the course runs on.

``LakeMap`` is one map; ``MapDistribution`` draws maps (the paper's and
gymnasium's styles) with train/val/test splits by digest; ``FrozenLakeEnv`` is a
gymnasium env with FrozenLake-v1's dynamics; ``BatchFrozenLake`` steps many
lakes at once with NumPy.
"""

from icrl_course.envs.batch import BatchFrozenLake
from icrl_course.envs.distribution import (
    PAPER_IN_DISTRIBUTION,
    PAPER_OUT_OF_DISTRIBUTION,
    SPLITS,
    TEST_FRACTION,
    VAL_FRACTION,
    DistributionError,
    MapCount,
    MapDistribution,
    split_of,
)
from icrl_course.envs.frozen_lake import ENV_ID, FrozenLakeEnv, register
from icrl_course.envs.lake_map import ACTION_NAMES, DOWN, LEFT, RIGHT, UP, LakeMap, MapError
from icrl_course.envs.render import map_figure

register()

__all__ = [
    "ACTION_NAMES", "BatchFrozenLake", "DOWN", "DistributionError", "ENV_ID", "FrozenLakeEnv", "LEFT",
    "LakeMap", "MapCount", "MapDistribution", "MapError", "PAPER_IN_DISTRIBUTION", "PAPER_OUT_OF_DISTRIBUTION",
    "RIGHT", "SPLITS", "TEST_FRACTION", "UP", "VAL_FRACTION", "map_figure", "register", "split_of",
]
