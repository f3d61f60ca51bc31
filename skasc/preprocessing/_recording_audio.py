"""Reading a recording's pieces once: what is digested is what is decoded.

A recording (a tuple of pieces: whole files, clip rows, waveforms) is read
as :class:`Unit` s: the clip rows of one file that follow each other are
one span, read (and resampled) as one stretch of audio.  Used by
:class:`~skasc.LogMel` and by the teachers that read the audio through
their own front end.
"""

from __future__ import annotations

import numpy as np

from .._audio import decode_audio, finish_span, read_clip, read_file, read_span
from .._hashing import Hasher
from .._rows import fragment_samples, seconds_text, split_fragment

__all__ = ["Unit", "read_units", "raw_content", "load_recording", "content_digest"]


class Unit:
    """What is read at once of a recording's pieces.

    ``kind`` is "file" (a plain path: the whole file), "span" (clip rows of
    one file that follow each other: read as one stretch, so that they are
    resampled together, as one signal) or "array" (a waveform).
    ``source`` is the path, the file or the array; ``bounds`` the (start,
    end) seconds of each clip of a span.
    """

    __slots__ = ("kind", "source", "bounds")

    def __init__(self, kind, source, bounds=None):
        self.kind, self.source, self.bounds = kind, source, bounds


def read_units(pieces):
    """Group a recording's pieces, in order, into :class:`Unit`."""
    units = []
    for p in pieces:
        if not isinstance(p, str):
            units.append(Unit("array", p))
            continue
        file, start, end = split_fragment(p)
        if start is None:
            units.append(Unit("file", p))
            continue
        last = units[-1] if units else None
        if (last is not None and last.kind == "span" and last.source == file
                and abs(last.bounds[-1][1] - start) < 1e-9):
            last.bounds.append((start, end))
        else:
            units.append(Unit("span", file, [(start, end)]))
    return units


def raw_content(unit):
    """What a unit's features are computed from, read once: a file's bytes,
    a span's samples at the file's rate (with the rate), nothing for arrays."""
    if unit.kind == "file":
        return read_file(unit.source)
    if unit.kind == "span":
        x, rate = read_span(unit.source, unit.bounds[0][0], unit.bounds[-1][1])
        _check_span_covers(unit, len(x), rate)
        return x, rate
    return None


def _check_span_covers(unit, n_read, rate):
    """Refuse a span some of whose clips start after the end of the file.

    :func:`~skasc._audio.read_span` refuses a clip read on its own that
    starts past the end (the file was replaced by a shorter one since it
    was listed); read as part of a recording, such a clip would otherwise
    be zero-padded into silent frames.
    """
    first = int(round(unit.bounds[0][0] * rate))
    for start, end in unit.bounds[1:]:
        if int(round(start * rate)) - first >= n_read:
            raise ValueError(
                f"clip {seconds_text(start)}-{seconds_text(end)} s of audio file"
                f" {unit.source!r} starts after the end of the file"
                f" ({(first + n_read) / rate:g} s long); was the file replaced by a shorter one?"
            )


def load_recording(units, sr, resample, raws=None):
    """Samples of a recording at ``sr`` Hz.

    Returns the signal, the length of each piece and, per unit, the rate it
    was resampled from (None where it was not).
    """
    parts, lengths, rates = [], [], []
    for i, u in enumerate(units):
        if raws is not None:
            raw = raws[i]
        else:  # a plain file is read by read_clip below
            raw = raw_content(u) if u.kind == "span" else None
        native = None
        if u.kind == "array":
            x = u.source
            lengths.append(len(x))
        elif u.kind == "file":
            if raw is None:
                x, native = read_clip(u.source, sr=sr, resample=resample, return_sr=True)
            else:
                x, native = decode_audio(raw, u.source, sr=sr, resample=resample)
            lengths.append(len(x))
        else:
            x, native = raw
            sizes = [fragment_samples(a, b, sr) for a, b in u.bounds]
            x = finish_span(x, native, u.source, sr=sr, n_samples=sum(sizes), resample=resample)
            lengths.extend(sizes)
        parts.append(x)
        rates.append(native if native is not None and native != sr else None)
    signal = np.concatenate(parts) if len(parts) > 1 else parts[0]
    return signal, np.asarray(lengths), rates


def content_digest(unit, raw):
    """BLAKE2b of what a unit's features are computed from: a file's bytes,
    a span's samples, rate and clip bounds, or an array's samples."""
    h = Hasher()
    if unit.kind == "file":
        h.update(b"file:", raw)
    elif unit.kind == "span":
        x, rate = raw
        t0 = unit.bounds[0][0]
        bounds = [(round(a - t0, 9), round(b - t0, 9)) for a, b in unit.bounds]
        h.update(f"span:{rate}:{bounds}:", x)
    else:
        h.update(b"array:", unit.source)
    return h.hexdigest()
