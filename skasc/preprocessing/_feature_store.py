"""LogMel's features written to disk: a resumable, content-keyed feature store.

``LogMel(feature_store=folder)`` writes the features of its recordings into
``folder/<layout key>/``:

* ``features.float32`` (or ``.float16``): the frames, appended chunk by
  chunk (each recording's frames, then those of its impulse-response
  variants), read back through a :class:`~skasc._disk_store.DiskStore`;
* ``chunks/<k>.json``: for each chunk written, its recordings, the content
  digest of each (:func:`~skasc.preprocessing._recording_audio.content_digest`:
  every byte of every file), where their frames are and how long their
  pieces are.  A chunk's record is written (atomically) only after its
  frames are on disk (``fsync``): an interrupted run leaves complete chunks
  and at most a tail of frames that no record covers;
* ``index.json``: written last, when every chunk is on disk.

The layout key stands for what decides the layout (the rows' pieces --
paths and clip rows by name, waveforms by content --, the feature
parameters, the resampler, the impulse responses and the on-disk type).
Run again with the same key, the store is resumed: the records of the
chunks already written are checked against the audio as it is now (read
and digested again, not decoded), the first chunk whose audio changed and
every chunk after it are computed again (the frames are appended, so the
file is cut there), and only missing chunks are computed otherwise.  A
finished store is checked the same way and then reused as it is.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no advisory locks (do not share a store between processes there)
    fcntl = None

import numpy as np

from .._disk_store import DiskStore
from .._files import write_atomically
from .._hashing import Hasher, digest

__all__ = ["FORMAT", "layout_key", "write_feature_store"]

#: Version of the on-disk layout (part of the layout key).
FORMAT = 1


def layout_key(audio, used, params, read, irs, dtype):
    """Digest of what decides a store's layout (see the module's docstring)."""
    h = Hasher().update(f"skasc feature store {FORMAT}:{json.dumps(params, sort_keys=True)}:"
                        f"{json.dumps(read, sort_keys=True)}:{dtype}:")
    for r in used:
        for piece in audio.recordings[r]:
            if isinstance(piece, str):
                h.update("p:", piece, "\0")
            else:
                h.update(f"a:{len(piece)}:", np.ascontiguousarray(piece, dtype=np.float32))
        h.update("|")
    if irs is not None:
        h.update("irs:", irs.digest)
    return h.hexdigest()


@contextmanager
def _locked(root):
    """Hold the store's lock: two fits that compute the same store at once
    (e.g. a grid search's candidates on one fold) take turns, the second
    then finds the first's chunks and reuses them."""
    with open(root / ".lock", "a") as f:
        if fcntl is not None:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _chunk_record(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # unreadable: computed again


def write_feature_store(folder, dtype, chunks, key, run, n_bands, check_finite):
    """Write (or resume, or reuse) the store of the chunks' recordings.

    Parameters
    ----------
    folder : path-like
        ``LogMel(feature_store=...)``.
    dtype : {"float32", "float16"}
    chunks : list of ndarray
        The recordings to write, chunk by chunk, in order.
    key : str
        :func:`layout_key` of the store.
    run : callable
        ``run(mode, chunks)`` yields, for each chunk in order, one result
        per recording: in mode ``"digest"`` its content digests; in mode
        ``"compute"`` ``(digests, features, lengths, resampled, variants)``.
    n_bands : int
    check_finite : callable
        Called with ``{recording: (features, lengths, resampled, variants)}``
        of a chunk before it is written (refuses non-finite features).

    Returns
    -------
    store : DiskStore
    placement : dict
        ``{recording: (first frame, frames, piece lengths, variant first frames)}``.
    resampled : dict
        ``{file: rate}`` of the files that were resampled.
    """
    root = Path(folder) / key
    (root / "chunks").mkdir(parents=True, exist_ok=True)
    with _locked(root):
        return _write(root, dtype, chunks, key, run, n_bands, check_finite)


def _write(root, dtype, chunks, key, run, n_bands, check_finite):
    data = root / f"features.{dtype}"
    itemsize = np.dtype(dtype).itemsize
    records = []
    for k, chunk in enumerate(chunks):
        rec = _chunk_record(root / "chunks" / f"{k:06d}.json")
        if rec is None or rec["recordings"] != chunk.tolist():
            break
        records.append(rec)
    size = data.stat().st_size if data.exists() else 0
    while records and records[-1]["end"] * n_bands * itemsize > size:
        records.pop()  # the file was cut short since: its frames are gone
    if records:  # the audio as it is now, against what the records were computed from
        for k, found in enumerate(run("digest", chunks[:len(records)])):
            if [list(d) for d in found] != records[k]["digests"]:
                records = records[:k]
                break
    end = records[-1]["end"] if records else 0
    if len(records) < len(chunks):
        (root / "index.json").unlink(missing_ok=True)  # not finished until written again
    for stale in (root / "chunks").glob("*.json"):
        if int(stale.stem) >= len(records):
            stale.unlink()
    if size != end * n_bands * itemsize or not data.exists():
        with open(data, "r+b" if data.exists() else "wb") as f:
            f.truncate(end * n_bands * itemsize)  # frames no record covers are dropped
    if len(records) < len(chunks):
        with open(data, "ab") as f:
            todo = chunks[len(records):]
            for k, (chunk, results) in enumerate(zip(todo, run("compute", todo)), start=len(records)):
                check_finite({int(r): res[1:] for r, res in zip(chunk, results)})
                entries, digests = [], []
                for r, (dig, feats, lengths, resampled, variants) in zip(chunk, results):
                    start = end
                    f.write(np.ascontiguousarray(feats, dtype=dtype).tobytes())
                    end += len(feats)
                    variant_starts = []
                    for v in variants:
                        variant_starts.append(end)
                        f.write(np.ascontiguousarray(v, dtype=dtype).tobytes())
                        end += len(v)
                    entries.append([start, len(feats), np.asarray(lengths).tolist(), variant_starts,
                                    resampled])
                    digests.append(list(dig))
                f.flush()
                os.fsync(f.fileno())  # the frames are on disk before the record says so
                record = {"recordings": chunk.tolist(), "digests": digests, "entries": entries, "end": end}
                write_atomically(root / "chunks" / f"{k:06d}.json",
                                 lambda tmp, record=record: tmp.write_text(json.dumps(record)))
                records.append(record)
    placement, resampled = {}, {}
    for rec in records:
        for r, (start, frames, lengths, variant_starts, rates) in zip(rec["recordings"], rec["entries"]):
            placement[r] = (start, frames, np.asarray(lengths, dtype=np.int64), variant_starts)
            resampled.update(rates)
    content = digest(key, json.dumps([rec["digests"] for rec in records]))
    write_atomically(root / "index.json", lambda tmp: tmp.write_text(json.dumps(
        {"format": FORMAT, "frames": end, "bands": n_bands, "dtype": dtype, "content": content})))
    return DiskStore(data, end, n_bands, dtype, key=content), placement, resampled
