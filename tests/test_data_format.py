"""The on-disk trial format: lossless, pickle-free, atomic, and loud about broken files."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.numpy import load_file

from icrl_course.data import (
    FORMAT_NAME,
    FORMAT_VERSION,
    DataFileError,
    load_dataset,
    read_dataset,
    save_dataset,
    trials_from_arrays,
    trials_to_arrays,
)
from icrl_course.io import save_arrays
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

    path = save_arrays(tmp_path / "x.safetensors", {"a": np.zeros(2)}, {"format": "something-else"})
    with pytest.raises(DataFileError, match="not a trial dataset"):
        load_dataset(path)


def test_saving_leaves_no_temporary_files(tmp_path):
    save_dataset(tmp_path / "d.safetensors", two_trials())
    assert [p.name for p in tmp_path.iterdir()] == ["d.safetensors"]


def test_saved_files_are_readable_by_others(tmp_path):
    path = save_dataset(tmp_path / "d.safetensors", two_trials())
    assert path.stat().st_mode & 0o777 == 0o644


# ------------------------------------------------------------------ root cause 9: tampered datasets are refused
def forge(path, arrays, **header_changes):
    """Write a dataset as a deliberate forger would: edited arrays or header, saved with a fresh content digest.

    The digest cannot catch these; the structural checks must.
    """
    header = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "num_trials": len(arrays["map_shape"]),
              "generation": {}, **header_changes}
    return save_arrays(path, arrays, header)


def edited(change) -> dict:
    arrays = trials_to_arrays(two_trials())
    change(arrays)
    return arrays


def _set(arrays, name, value):
    arrays[name] = value


FORGERIES = [
    pytest.param(lambda a: _set(a, "trial_offsets", np.zeros(3, np.int64)), "must run from 0 to the number of steps", id="offsets-zeroed"),
    pytest.param(lambda a: _set(a, "trial_offsets", np.array([0, 0, 9])), "trial 0 has no steps", id="empty-first-trial"),
    pytest.param(lambda a: _set(a, "trial_offsets", np.array([0, 7, 3, 9])), "trial 1 has no steps", id="offsets-backwards"),
    pytest.param(lambda a: _set(a, "obs", a["obs"].astype(np.int64)), "'obs' has dtype int64, not int32", id="obs-int64"),
    pytest.param(lambda a: _set(a, "rewards", a["rewards"].astype(np.float32)), "'rewards' has dtype float32", id="rewards-float32"),
    pytest.param(lambda a: a.pop("episode"), "are not the trial format's", id="array-missing"),
    pytest.param(lambda a: _set(a, "extra", np.zeros(1)), "are not the trial format's", id="array-added"),
    pytest.param(lambda a: _set(a, "actions", a["actions"][:-1]), "'actions' has shape", id="actions-short"),
    pytest.param(lambda a: _set(a, "obs", a["obs"] + 50), "'obs' holds a state outside its trial's map", id="obs-off-map"),
    pytest.param(lambda a: _set(a, "actions", a["actions"] + 4), "'actions' holds a value above 3", id="action-4"),
    pytest.param(lambda a: _set(a, "rewards", a["rewards"] * np.nan), "NaN or infinite", id="rewards-nan"),
    pytest.param(lambda a: _set(a, "episode", a["episode"] * 0), "does not number the episodes", id="episodes-flat"),
    pytest.param(lambda a: _set(a, "map_tiles", np.where(a["map_tiles"] == ord("H"), ord("X"), a["map_tiles"]).astype(np.uint8)),
                 "bytes other than the letters", id="tile-X"),
    pytest.param(lambda a: _set(a, "map_shape", a["map_shape"] * 3), "beyond the 9 tiles", id="map-too-big"),
    pytest.param(lambda a: _set(a, "map_shape", a["map_shape"] * 0), "below 1x1", id="map-0x0"),
    pytest.param(lambda a: _set(a, "map_tiles", np.where(a["map_tiles"] == ord("S"), ord("F"), a["map_tiles"]).astype(np.uint8)),
                 "map of trial 0 is not a Frozen Lake map .*no start tile", id="map-without-start"),
]


@pytest.mark.parametrize(("change", "message"), FORGERIES)
def test_tampered_dataset_with_a_recomputed_digest_is_refused_naming_what_is_wrong(tmp_path, change, message):
    path = forge(tmp_path / "d.safetensors", edited(change))
    with pytest.raises(DataFileError, match=message) as refused:
        read_dataset(path)
    assert "\n" not in str(refused.value)


def with_header_tail(raw: bytes, tail: bytes) -> bytes:
    """The file with ``tail`` appended to its JSON header (the header's length prefix updated to match)."""
    size = int.from_bytes(raw[:8], "little")
    return (size + len(tail)).to_bytes(8, "little") + raw[8:8 + size] + tail + raw[8 + size:]


@pytest.mark.parametrize(("edit", "message"), [
    pytest.param(lambda raw: raw.replace(b'"num_trials":"2"', b'"num_trials":"0"'), "does not match the digest", id="num_trials-edited"),
    pytest.param(lambda raw: raw.replace(b"oracle", b"random"), "does not match the digest", id="generation-edited"),
    pytest.param(lambda raw: raw[:-1] + bytes([raw[-1] ^ 1]), "does not match the digest", id="last-data-bit"),
    pytest.param(lambda raw: raw[:-7], "truncated or corrupted", id="truncated"),
    pytest.param(lambda raw: raw + b"\0" * 8, "truncated or corrupted", id="appended"),
    pytest.param(lambda raw: with_header_tail(raw, b"\t" + b" " * 7), "damaged header", id="whitespace-after-header"),
    pytest.param(lambda raw: with_header_tail(raw, b"x" + b" " * 7), "truncated or corrupted", id="text-after-header"),
    pytest.param(lambda raw: b"", "truncated or corrupted", id="empty-file"),
])
def test_a_dataset_edited_after_it_was_written_is_refused(tmp_path, edit, message):
    path = save_dataset(tmp_path / "d.safetensors", two_trials(), {"policy": "oracle"})
    raw = path.read_bytes()
    path.write_bytes(edit(raw))
    assert path.read_bytes() != raw, "the edit changed nothing"
    with pytest.raises(DataFileError, match=message):
        read_dataset(path)


def test_a_forged_header_version_and_format_are_refused(tmp_path):
    arrays = trials_to_arrays(two_trials())
    with pytest.raises(DataFileError, match="version '1' of icrl-course/trials; this library reads version '2'"):
        read_dataset(forge(tmp_path / "v1.safetensors", arrays, version="1"))
    with pytest.raises(DataFileError, match="not a trial dataset"):
        read_dataset(forge(tmp_path / "f.safetensors", arrays, format="icrl-course/model"))
    with pytest.raises(DataFileError, match="holds 2 trials but its header says 5"):
        read_dataset(forge(tmp_path / "n.safetensors", arrays, num_trials=5))


def test_generated_datasets_of_every_behaviour_pass_the_checks(tmp_path):
    from icrl_course.data import generate_trials, parse_behaviours

    trials, generation = generate_trials(parse_behaviours("oracle:0.1,explorer,q-learning:0.3,random"), 24, episodes=4,
                                         max_episode_steps=12, is_slippery=True, seed=2)
    loaded, header = read_dataset(save_dataset(tmp_path / "d.safetensors", trials, generation))
    assert_same_trials(loaded, trials)
    assert header["generation"]["behaviour_of_trial"] == generation["behaviour_of_trial"]


@pytest.fixture(scope="module")
def dataset_bytes(tmp_path_factory) -> bytes:
    return save_dataset(tmp_path_factory.mktemp("data") / "d.safetensors", two_trials(), {"policy": "oracle"}).read_bytes()


CORRUPTIONS = st.one_of(
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=8).map(lambda e: ("set", e)),
    st.integers(0, 10**6).map(lambda n: ("cut", n)),
    st.binary(min_size=1, max_size=64).map(lambda b: ("append", b)),
)


def corrupt(raw: bytes, corruption) -> bytes:
    kind, what = corruption
    if kind == "cut":
        return raw[: what % len(raw)]
    if kind == "append":
        return raw + what
    data = bytearray(raw)
    for position, value in what:
        data[position % len(data)] = value
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(corruption=CORRUPTIONS)
def test_any_byte_corruption_of_a_dataset_is_refused_cleanly(tmp_path, dataset_bytes, corruption):
    damaged = corrupt(dataset_bytes, corruption)
    if damaged == dataset_bytes:
        return  # the corruption wrote the bytes that were there
    path = tmp_path / "damaged.safetensors"
    path.write_bytes(damaged)
    with pytest.raises(DataFileError) as refused:
        read_dataset(path)
    assert "\n" not in str(refused.value)
