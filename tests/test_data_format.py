"""The on-disk trial format: lossless, pickle-free, atomic, and loud about broken files."""

import numpy as np
import pytest
from safetensors.numpy import load_file

from icrl_course.data import DataFileError, load_dataset, read_dataset, save_dataset, trials_from_arrays, trials_to_arrays
from icrl_course.envs import LakeMap
from icrl_course.trials import Trial


def two_trials() -> list[Trial]:
    small = LakeMap.from_rows(["SF", "HG"])
    wide = LakeMap.from_rows(["SFF", "FHF", "FFG"])
    first = Trial.from_steps(small, [(0, 2, 0.0, 1, False, False), (1, 1, 1.0, 3, True, False),
                                     (0, 1, 0.0, 2, True, False)])
    second = Trial.from_steps(wide, [(0, 2, 0.0, 1, False, False), (1, 0, 0.0, 0, False, True),
                                     (0, 1, 0.0, 3, False, False), (3, 1, 0.0, 6, False, False),
                                     (6, 2, 0.0, 7, False, False), (7, 2, 1.0, 8, True, True)])
    return [first, second]


def assert_same_trials(got: list[Trial], want: list[Trial]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.lake_map == w.lake_map
        for name in ("obs", "actions", "rewards", "next_obs", "terminated", "truncated", "episode"):
            np.testing.assert_array_equal(getattr(g, name), getattr(w, name))
            assert getattr(g, name).dtype == getattr(w, name).dtype


def test_arrays_round_trip_trials_of_different_map_sizes_exactly():
    trials = two_trials()
    assert_same_trials(trials_from_arrays(trials_to_arrays(trials)), trials)


def test_saved_dataset_loads_back_the_same_trials_and_its_generation_parameters(tmp_path):
    trials = two_trials()
    path = save_dataset(tmp_path / "d.safetensors", trials, {"policy": "oracle", "epsilon": 0.1})
    loaded, header = read_dataset(path)
    assert_same_trials(loaded, trials)
    assert header["generation"] == {"policy": "oracle", "epsilon": 0.1}
    assert header["num_trials"] == 2
    assert_same_trials(load_dataset(path), trials)


def test_dataset_file_is_plain_safetensors_readable_without_the_library(tmp_path):
    path = save_dataset(tmp_path / "d.safetensors", two_trials())
    arrays = load_file(path)
    np.testing.assert_array_equal(arrays["trial_offsets"], [0, 3, 9])
    assert bytes(arrays["map_tiles"][0, :4]).decode() == "SFHG"


def test_empty_dataset_round_trips(tmp_path):
    assert load_dataset(save_dataset(tmp_path / "e.safetensors", [])) == []


def test_truncated_dataset_gives_a_clear_error(tmp_path):
    path = save_dataset(tmp_path / "d.safetensors", two_trials())
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(DataFileError, match="truncated or corrupted"):
        load_dataset(path)


def test_missing_dataset_says_it_does_not_exist(tmp_path):
    with pytest.raises(DataFileError, match="does not exist"):
        load_dataset(tmp_path / "nope.safetensors")


def test_a_file_of_another_kind_is_refused_by_name(tmp_path):
    from icrl_course.io import save_arrays

    path = save_arrays(tmp_path / "x.safetensors", {"a": np.zeros(2)}, {"format": "something-else"})
    with pytest.raises(DataFileError, match="not a trial dataset"):
        load_dataset(path)


def test_saving_leaves_no_temporary_files(tmp_path):
    save_dataset(tmp_path / "d.safetensors", two_trials())
    assert [p.name for p in tmp_path.iterdir()] == ["d.safetensors"]


def test_saved_files_are_readable_by_others(tmp_path):
    path = save_dataset(tmp_path / "d.safetensors", two_trials())
    assert path.stat().st_mode & 0o777 == 0o644
