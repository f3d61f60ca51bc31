"""The row grammar: what an input row is, and its recording, position and device.

A path row is one of

* a **clip row** ``<file>#t=<start>,<end>`` (the rows of
  :func:`skasc.datasets.load_audio_folder`; W3C Media Fragments' temporal
  dimension): seconds [start, end) of a file;
* a **TAU22 clip path**
  ``<scene>-<city>-<location id>-<segment id>-<snippet 0..9>-<device>.wav``:
  one 1-s snippet of a 10-s recording;
* any **other path**: a whole file.

(Waveform rows carry no name: their recording is given as ``groups``.)

Every question about a path row is answered here and only here, so that
:class:`~skasc.Reassembler` (which clips are read as one recording),
:func:`~skasc.recordings.recording_ids` and
:func:`~skasc.datasets.tau22_recording_groups` (grouped splits, one answer
per file) and the device-specific models (the device) agree:

=================  ==========================  =====================  ==========
row                recording                   position               device
=================  ==========================  =====================  ==========
clip row           the file                    index on the grid of   of the
                                               clips of its length    file name
TAU22 clip         the 10-s recording id       the snippet index      the name's
                   (folder plays no part)
other path         the file                    0                      --
=================  ==========================  =====================  ==========

Clips are joined into one signal only along one grid: the clips of a file
of one length and phase (``#t=0,1`` and ``#t=1,2``; ``#t=0.5,1.5`` and
``#t=1.5,2.5``), or the snippets of one TAU22 recording.
"""

from __future__ import annotations

import os
import re

import numpy as np

__all__ = [
    "CLIP_NAME_PATTERN", "FRAGMENT_PATTERN", "parse_clip_name", "split_fragment",
    "clip_fragment", "fragment_samples", "seconds_text", "is_path_array", "row_recording",
    "recording_id", "recording_ids", "row_device",
]

#: Regular expression of the TAU Urban Acoustic Scenes 2022 Mobile clip name
#: ``<scene>-<city>-<location id>-<segment id>-<snippet 0..9>-<device>.wav``
#: (matched against the base name of a path).
CLIP_NAME_PATTERN = re.compile(
    r"(?P<scene>[a-z0-9_]+)-(?P<city>[a-z0-9_]+)-(?P<location>[0-9]+)"
    r"-(?P<segment>[0-9]+)-(?P<snippet>[0-9])-(?P<device>[a-z0-9]+)\.wav"
)

#: A row naming part of a file: ``<path>#t=<start>,<end>``, the temporal
#: dimension of W3C Media Fragments 1.0 (Normal Play Time in seconds, with
#: the optional ``npt:`` prefix).  Only a suffix at the very end of the string
#: counts, so a path that itself contains ``#`` (even ``#t=``) still works:
#: the *last* ``#t=start,end`` is the fragment.
FRAGMENT_PATTERN = re.compile(
    r"#t=(?:npt:)?(?P<start>[0-9]+(?:\.[0-9]*)?),(?P<end>[0-9]+(?:\.[0-9]*)?)\Z"
)


def parse_clip_name(path):
    """Split a TAU22 clip name into its fields.

    The grammar is
    ``<scene>-<city>-<location id>-<segment id>-<snippet 0..9>-<device>.wav``;
    scene labels contain underscores but never hyphens, the device is one of
    a, b, c, s1..s6 in the real set (any ``[a-z0-9]+`` is accepted). Only the
    base name of ``path`` is parsed.

    Parameters
    ----------
    path : str or path-like
        E.g. ``"audio/airport-lisbon-1000-40000-0-a.wav"``.

    Returns
    -------
    fields : dict
        ``scene`` (str), ``city`` (str), ``location`` (str, the identifier
        ``"<city>-<location id>"`` as in meta.csv), ``segment`` (str, the
        segment id), ``snippet`` (int, 0..9), ``device`` (str) and
        ``recording`` (str, the 10-s parent recording: the base name without
        the snippet index and the extension).

    Raises
    ------
    ValueError
        If the name does not follow the grammar; the message names the file.

    Examples
    --------
    >>> from skasc._rows import parse_clip_name
    >>> f = parse_clip_name("audio/airport-lisbon-1000-40000-0-a.wav")
    >>> f["scene"], f["location"], f["snippet"], f["device"]
    ('airport', 'lisbon-1000', 0, 'a')
    >>> f["recording"]
    'airport-lisbon-1000-40000-a'
    """
    name = os.path.basename(os.fspath(path))
    m = CLIP_NAME_PATTERN.fullmatch(name)
    if m is None:
        raise ValueError(
            f"cannot parse clip name {os.fspath(path)!r}: expected "
            "'<scene>-<city>-<location id>-<segment id>-<snippet 0..9>-<device>.wav',"
            " e.g. 'airport-lisbon-1000-40000-0-a.wav'"
        )
    scene, city, loc, segment, snippet, device = m.group(
        "scene", "city", "location", "segment", "snippet", "device"
    )
    return {
        "scene": scene,
        "city": city,
        "location": f"{city}-{loc}",
        "segment": segment,
        "snippet": int(snippet),
        "device": device,
        "recording": f"{scene}-{city}-{loc}-{segment}-{device}",
    }


def split_fragment(row):
    """Split a clip row ``<path>#t=<start>,<end>`` into the file and its seconds.

    The suffix follows the temporal dimension of W3C Media Fragments 1.0
    (Normal Play Time, seconds, optional ``npt:`` prefix); only the last
    ``#t=start,end`` at the very end of the string counts (see
    :data:`FRAGMENT_PATTERN`), so paths containing ``#`` work.

    Parameters
    ----------
    row : str or path-like
        A row of :func:`skasc.datasets.load_audio_folder` (``".../a.wav#t=3,4"``)
        or a plain path.

    Returns
    -------
    path : str
        The file.
    start, end : float or None
        The clip's start and end in seconds; None for a plain path (the
        whole file).

    Raises
    ------
    ValueError
        If the fragment is empty (``end <= start``); the message names the row.

    Examples
    --------
    >>> from skasc._rows import split_fragment
    >>> split_fragment("/data/dog/bark #1.wav#t=3,4")
    ('/data/dog/bark #1.wav', 3.0, 4.0)
    >>> split_fragment("audio/airport-lisbon-1000-40000-0-a.wav")
    ('audio/airport-lisbon-1000-40000-0-a.wav', None, None)
    """
    row = os.fspath(row)
    m = FRAGMENT_PATTERN.search(row)
    if m is None:
        return row, None, None
    start, end = float(m.group("start")), float(m.group("end"))
    if not end > start:
        raise ValueError(
            f"clip row {row!r} names an empty part of the file: the end of"
            f" '#t={m.group('start')},{m.group('end')}' must come after its start"
        )
    return row[:m.start()], start, end


def seconds_text(t):
    """Seconds as short text: 3 -> "3", 0.25 -> "0.25" (at most 9 decimals)."""
    return f"{t:.9f}".rstrip("0").rstrip(".") or "0"


def clip_fragment(path, start, end):
    """The clip row ``<path>#t=<start>,<end>`` naming seconds [start, end) of a file.

    Examples
    --------
    >>> from skasc._rows import clip_fragment
    >>> clip_fragment("/data/dog/bark_01.wav", 3, 4.0)
    '/data/dog/bark_01.wav#t=3,4'
    >>> clip_fragment("a.wav", 0.5, 0.75)
    'a.wav#t=0.5,0.75'
    """
    return f"{os.fspath(path)}#t={seconds_text(start)},{seconds_text(end)}"


def fragment_samples(start, end, sr):
    """Samples of a clip of seconds [start, end) at ``sr`` Hz."""
    return int(round((end - start) * sr))


#: Rounding of a clip row's seconds (9 decimals, see :func:`clip_fragment`).
GRID_TOLERANCE = 1e-9


def row_recording(row):
    """The grid a path row's clip lies on, and its position there.

    Rows with equal grids and consecutive positions are clips that follow
    each other in one recording: :class:`~skasc.Reassembler` joins them.

    * A clip row ``<file>#t=<start>,<end>``: the file, the clip's length and
      the grid's phase (``start`` modulo the length), and the clip's index
      on that grid, up to the rounding of the seconds to 9 decimals (clips
      of 1/3 s group as exactly as clips of 1 s).  ``#t=3,4`` is position 3
      of the phase-0 grid of 1-s clips; ``#t=0.5,1.5`` and ``#t=1.5,2.5`` are
      positions 0 and 1 of the grid of phase 0.5 s.
    * A TAU22 clip name: the 10-s recording id and the snippet index.
    * Any other path: the whole file, position 0.

    Parameters
    ----------
    row : str or path-like

    Returns
    -------
    grid : tuple
        Hashable; its second item is :func:`recording_id` of the row.
    position : int

    Examples
    --------
    >>> from skasc._rows import row_recording
    >>> row_recording("/d/a.wav#t=3,4")
    (('clips', '/d/a.wav', 1.0, 0.0), 3)
    >>> row_recording("audio/bus-milan-1003-40030-7-b.wav")
    (('tau22', 'bus-milan-1003-40030-b'), 7)
    """
    row = os.fspath(row)
    file, start, end = split_fragment(row)
    if start is not None:
        length = end - start
        k = int(round(start / length))
        # Rows carry their seconds to 9 decimals (clip_fragment), so clips
        # of 1/3 s are 0.333333333 or 0.333333334 long and clip k starts up
        # to k * 1e-9 s off k * length: allow that rounding, and key the
        # grid on the length to the microsecond (a fraction of a sample).
        phase = 0.0
        if abs(start - k * length) > GRID_TOLERANCE * (k + 2):
            k = int(np.floor(start / length))
            phase = round(start - k * length, 6)
        return ("clips", file, round(length, 6), phase), k
    info = _tau22_fields(file)
    if info is not None:
        return ("tau22", info["recording"]), info["snippet"]
    return ("file", file), 0


def _tau22_fields(file):
    """:func:`parse_clip_name`'s fields of ``file``, None for a name off the TAU22 grammar."""
    try:
        return parse_clip_name(file)
    except ValueError:
        return None


def is_path_array(X):
    """Whether ``X`` is a non-empty 1-D sequence of paths (str or path-like)."""
    if isinstance(X, (str, os.PathLike)):
        return False
    if isinstance(X, (list, tuple)):
        return len(X) > 0 and all(isinstance(x, (str, os.PathLike)) for x in X)
    X = np.asarray(X) if not hasattr(X, "dtype") else X
    return getattr(X, "ndim", 0) == 1 and len(X) > 0 and all(
        isinstance(x, (str, os.PathLike)) for x in X
    )


def recording_id(row):
    """The recording of a path row, as text (see the module's table).

    Examples
    --------
    >>> from skasc._rows import recording_id
    >>> recording_id("/d/dog/a.wav#t=1,2"), recording_id("audio/bus-milan-1003-40030-7-b.wav")
    ('/d/dog/a.wav', 'bus-milan-1003-40030-b')
    >>> recording_id("/d/notes.wav")
    '/d/notes.wav'
    """
    file, start, _ = split_fragment(row)
    if start is not None:
        return file
    info = _tau22_fields(file)
    return file if info is None else info["recording"]


def recording_ids(X):
    """The recording of every path row: its file, or its TAU22 recording.

    Parameters
    ----------
    X : sequence of str or path-like
        Clip rows ``<file>#t=<start>,<end>`` (the file is the recording),
        TAU22 clip paths (the 10-s recording id, as
        ``load_tau22(...).recording``) or other paths (each file its own
        recording); see :func:`recording_id`.

    Returns
    -------
    ids : ndarray of str, shape (n_rows,)

    Examples
    --------
    >>> from skasc.recordings import recording_ids
    >>> recording_ids(["/d/dog/a.wav#t=0,1", "/d/dog/a.wav#t=1,2",
    ...                "audio/bus-milan-1003-40030-7-b.wav"]).tolist()
    ['/d/dog/a.wav', '/d/dog/a.wav', 'bus-milan-1003-40030-b']
    """
    ids = [recording_id(row) for row in X]
    return np.asarray(ids, dtype=str) if ids else np.empty(0, dtype="<U1")


def row_device(row):
    """The TAU22 device of a path row (a TAU22 clip, or a clip row of one).

    Raises
    ------
    ValueError
        If the file name is no TAU22 clip name (the message names it).

    Examples
    --------
    >>> from skasc._rows import row_device
    >>> row_device("audio/park-lyon-1001-40010-0-s2.wav#t=0.5,1")
    's2'
    """
    return parse_clip_name(split_fragment(os.fspath(row))[0])["device"]
