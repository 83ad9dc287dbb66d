"""Files the library writes and reads: atomic writes, and the checks every file gets when it is read back.

Why one module: datasets, training states, exported models and run folders
are all written by long computations and read by later ones. A write must
never leave a torn file behind (a run killed mid-write keeps its previous
complete file), and a read must refuse a file that is missing, truncated, of
another kind or version, of the wrong shape or type, or holding NaN, with a
message that says which and what to do, before anything is computed from it.

Two file kinds: safetensors files of named arrays with a JSON header
(``save_arrays`` / ``load_arrays``) and JSON documents (``write_json`` /
``read_json``). Both carry ``format`` and ``version`` fields that the reader
can require. Every safetensors file also carries a SHA-256 ``digest`` of its
header and arrays, recomputed on reading: any change made after the file was
written, a flipped bit as well as an edited value, is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import load_file, save_file


class DataFileError(ValueError):
    """A file that is missing, truncated, corrupted or not of the expected kind; the message says which and why."""


# ------------------------------------------------------------------ writing
@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path next to ``path`` to write to; when the block succeeds it is synced and renamed over ``path``.

    A reader (or a run killed half-way) then sees either the old complete file
    or the new complete one, never a torn one. On failure the temporary file is
    removed. Files end up readable by everyone (0644): shipped checkpoints and
    shared datasets must be.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)  # mkstemp (and some writers) make files private
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: str | Path, text: str) -> Path:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(path: str | Path, data: Any) -> Path:
    """Write a JSON document atomically (indented, so people can read and diff it)."""
    return write_text(path, json.dumps(data, indent=2) + "\n")


def save_arrays(path: str | Path, arrays: Mapping[str, np.ndarray], header: Mapping[str, Any]) -> Path:
    """Write named arrays and a JSON-able header to a safetensors file, atomically, with their content ``digest``."""
    arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    header = json.loads(json.dumps(dict(header)))  # exactly what a reader will parse (tuples become lists, ...)
    metadata = {key: json.dumps(value) for key, value in {**header, DIGEST: content_digest(arrays, header)}.items()}
    with atomic_path(path) as tmp:
        save_file(arrays, tmp, metadata=metadata)
    return Path(path)


DIGEST = "digest"
"""Header field of a safetensors file holding ``content_digest`` of the rest."""


def content_digest(arrays: Mapping[str, np.ndarray], header: Mapping[str, Any]) -> str:
    """SHA-256 of a header (without its ``digest`` field) and of every array's name, dtype, shape and bytes.

    Stored in the header when the file is written and recomputed when it is
    read, it catches any change made in between.
    """
    digest = hashlib.sha256(json.dumps({k: v for k, v in header.items() if k != DIGEST}, sort_keys=True).encode())
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(json.dumps([name, array.dtype.str, list(array.shape)]).encode())
        digest.update(array.view(np.uint8).reshape(-1) if array.size else b"")
    return digest.hexdigest()


def json_digest(document: Mapping[str, Any]) -> str:
    """SHA-256 of a JSON document without its ``digest`` field (keys sorted), for documents that carry their own."""
    return hashlib.sha256(json.dumps({k: v for k, v in document.items() if k != DIGEST}, sort_keys=True).encode()).hexdigest()


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ------------------------------------------------------------------ reading, with checks
def load_arrays(path: str | Path, kind: str, format: str | None = None, version: str | None = None,
                finite: bool = True) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a file written by ``save_arrays``; ``kind`` names what it should be, for error messages.

    Refuses, with a ``DataFileError`` that says so: a missing, truncated or
    corrupted file; a header whose ``format`` or ``version`` differ from the
    ones given; content that no longer matches its ``digest`` (the file was
    changed after it was written); and (with ``finite``) any floating-point
    array holding NaN or infinity, which would otherwise surface much later as
    a NaN loss. The header is returned without its digest.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{kind} file {path} does not exist")
    try:
        arrays = load_file(path)
        with safe_open(path, "np") as handle:
            raw = handle.metadata() or {}
        header = {key: json.loads(value) for key, value in raw.items()}
    except (SafetensorError, json.JSONDecodeError, UnicodeDecodeError, OSError) as err:
        raise DataFileError(f"{kind} file {path} is truncated or corrupted ({err}); it cannot be read. "
                            "Re-create it, or use an earlier copy") from err
    _check_header_bytes(path, kind)
    check_header(path, header, format, version)
    written = header.pop(DIGEST, None)
    if written is None:
        raise DataFileError(f"{kind} file {path} has no content digest: it was written by an older version of this "
                            "library or by another program; re-create it")
    if written != content_digest(arrays, header):
        raise DataFileError(f"{kind} file {path} does not match the digest written with it: the file was changed or "
                            "damaged after it was written; re-create it, or use an earlier copy")
    if finite:
        for name, value in arrays.items():
            if np.issubdtype(value.dtype, np.floating) and not np.isfinite(value).all():
                raise DataFileError(f"{kind} file {path}: array {name!r} holds NaN or infinite values; "
                                    "the run that wrote it diverged or the file is damaged")
    return arrays, header


def _check_header_bytes(path: Path, kind: str) -> None:
    """Refuse a safetensors file whose JSON header is followed by anything but the spaces that pad it.

    The digest covers what the header says, not how it is spelt; this closes
    the one gap left, a padding byte turned into other whitespace.
    """
    with open(path, "rb") as handle:
        size = int.from_bytes(handle.read(8), "little")
        head = handle.read(size)  # the safetensors reader has checked that the size fits the file
    try:
        text = head.decode("utf-8")
        end = json.JSONDecoder().raw_decode(text)[1]
    except (UnicodeDecodeError, json.JSONDecodeError):
        text, end = "", -1
    if end < 0 or text[end:].strip(" "):
        raise DataFileError(f"{kind} file {path} has a damaged header: re-create it, or use an earlier copy")


def read_json(path: str | Path, kind: str, format: str | None = None, version: str | None = None) -> dict[str, Any]:
    """Read a JSON document, refusing a missing or damaged file and (when given) another format or version."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{kind} file {path} does not exist")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataFileError(f"{kind} file {path} is truncated or corrupted: {err}") from err
    if not isinstance(data, dict):
        raise DataFileError(f"{kind} file {path} must hold a JSON object")
    check_header(path, data, format, version)
    return data


def check_header(path: str | Path, header: Mapping[str, Any], format: str | None, version: str | None) -> None:
    """Refuse a file whose ``format`` or ``version`` field is not the expected one (None: not checked)."""
    if format is not None and header.get("format") != format:
        raise DataFileError(f"{path} is a {header.get('format')!r} file, not a {format!r} file")
    if version is not None and header.get("version") != version:
        raise DataFileError(f"{path} is version {header.get('version')!r} of {format or 'its format'}; "
                            f"this library reads version {version!r}")


def check_array(name: str, value: np.ndarray, shape: tuple[int, ...], dtype: np.dtype | None, where: str) -> None:
    """Refuse an array whose shape or (when given) dtype differs from what it is loaded into."""
    if tuple(value.shape) != tuple(shape):
        raise DataFileError(f"{where}: {name!r} has shape {tuple(value.shape)} but the model expects {tuple(shape)}; "
                            "was it written for another model config?")
    if dtype is not None and value.dtype != dtype:
        raise DataFileError(f"{where}: {name!r} is {value.dtype} but {np.dtype(dtype)} is expected")
