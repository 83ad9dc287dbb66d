"""Atomic writes and the checks every file gets when it is read back."""

import numpy as np
import pytest

from icrl_course.io import DataFileError, atomic_path, load_arrays, read_json, save_arrays, write_json


def test_a_failed_write_leaves_the_previous_file_and_no_temporary_file(tmp_path):
    path = write_json(tmp_path / "a.json", {"n": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text('{"n": ')
            raise RuntimeError("killed half-way")
    assert read_json(path, "test") == {"n": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_arrays_and_header_round_trip_and_the_file_is_readable_by_others(tmp_path):
    path = save_arrays(tmp_path / "x.safetensors", {"a": np.arange(3.0)}, {"format": "f", "version": "1", "n": [1, 2]})
    arrays, header = load_arrays(path, "test", format="f", version="1")
    np.testing.assert_array_equal(arrays["a"], [0.0, 1.0, 2.0])
    assert header == {"format": "f", "version": "1", "n": [1, 2]}
    assert path.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("check, message", [
    (dict(format="g"), "is a 'f' file, not a 'g' file"),
    (dict(format="f", version="2"), "is version '1' of f; this library reads version '2'"),
])
def test_another_format_or_version_is_refused(tmp_path, check, message):
    path = save_arrays(tmp_path / "x.safetensors", {"a": np.zeros(1)}, {"format": "f", "version": "1"})
    with pytest.raises(DataFileError, match=message):
        load_arrays(path, "test", **check)


def test_arrays_holding_nan_or_infinity_are_refused_by_name(tmp_path):
    path = save_arrays(tmp_path / "x.safetensors", {"good": np.ones(2), "bad": np.array([0.0, np.inf])}, {})
    with pytest.raises(DataFileError, match="array 'bad' holds NaN or infinite values"):
        load_arrays(path, "test")


def test_missing_and_damaged_json_files_say_so(tmp_path):
    with pytest.raises(DataFileError, match="does not exist"):
        read_json(tmp_path / "none.json", "spec")
    (tmp_path / "cut.json").write_text('{"format": ')
    with pytest.raises(DataFileError, match="truncated or corrupted"):
        read_json(tmp_path / "cut.json", "spec")
