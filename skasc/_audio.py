"""Low-level audio helpers: reading clips, parsing TAU22 file names, checking
in-memory waveforms.

These functions are small on purpose: every error names the file (or the row)
and says what is wrong, so that a problem in a 230,350-clip data set can be
found without a debugger.
"""

import os
import re

import numpy as np
import soundfile as sf

__all__ = ["read_clip", "parse_clip_name", "validate_waveforms", "CLIP_NAME_PATTERN"]

#: Regular expression of the TAU Urban Acoustic Scenes 2022 Mobile clip name
#: ``<scene>-<city>-<location id>-<segment id>-<snippet 0..9>-<device>.wav``
#: (matched against the base name of a path).
CLIP_NAME_PATTERN = re.compile(
    r"(?P<scene>[a-z0-9_]+)-(?P<city>[a-z0-9_]+)-(?P<location>[0-9]+)"
    r"-(?P<segment>[0-9]+)-(?P<snippet>[0-9])-(?P<device>[a-z0-9]+)\.wav"
)


def read_clip(path, *, sr=44100, n_samples=None):
    """Read one mono wav clip as a float32 vector, checking its format.

    Parameters
    ----------
    path : str or path-like
        The wav file. It is only read, never modified.
    sr : int, default=44100
        Required sample rate in Hz.
    n_samples : int or None, default=None
        Required number of samples; ``None`` accepts any non-zero length.

    Returns
    -------
    x : ndarray of shape (n_samples,), dtype float32
        The samples, in [-1, 1] for PCM files.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not readable audio, has a sample rate other than
        ``sr``, more than one channel, a length other than ``n_samples``,
        no samples, or NaN/inf samples. The message names the file.

    Examples
    --------
    >>> import numpy as np, soundfile as sf, tempfile, os
    >>> from skasc._audio import read_clip
    >>> path = os.path.join(tempfile.mkdtemp(), "tone.wav")
    >>> sf.write(path, 0.1 * np.ones(44100), 44100, subtype="PCM_24")
    >>> x = read_clip(path, n_samples=44100)
    >>> x.shape, x.dtype
    ((44100,), dtype('float32'))
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"audio file {path!r} not found")
    if os.path.isdir(path):
        raise ValueError(f"audio file {path!r} is a directory, not a wav file")
    try:
        data, file_sr = sf.read(path, dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile errors, format errors, ...
        raise ValueError(
            f"cannot read audio file {path!r}: not a readable audio file ({exc})"
        ) from exc
    if file_sr != sr:
        raise ValueError(
            f"audio file {path!r} has sample rate {file_sr} Hz; expected {sr} Hz"
        )
    if data.shape[1] != 1:
        raise ValueError(
            f"audio file {path!r} has {data.shape[1]} channels (stereo/multi-channel);"
            " expected mono (1 channel)"
        )
    x = data[:, 0]
    if n_samples is not None and x.shape[0] != n_samples:
        raise ValueError(
            f"audio file {path!r} has {x.shape[0]} samples; expected {n_samples}"
            f" ({n_samples / sr:g} s at {sr} Hz)"
        )
    if x.shape[0] == 0:
        raise ValueError(f"audio file {path!r} has no samples")
    finite = np.isfinite(x)
    if not finite.all():
        first = int(np.flatnonzero(~finite)[0])
        raise ValueError(
            f"audio file {path!r} contains {int((~finite).sum())} NaN/inf samples"
            f" (first at sample {first})"
        )
    return np.ascontiguousarray(x)


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
    >>> from skasc._audio import parse_clip_name
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


def validate_waveforms(X, *, name="X"):
    """Check an in-memory batch of waveforms and return it as float32.

    Parameters
    ----------
    X : array-like of shape (n_clips, n_samples)
        Real-valued waveforms, one clip per row. A float32 C-contiguous array
        is returned as is (no copy).
    name : str, default="X"
        Name used in error messages.

    Returns
    -------
    X : ndarray of shape (n_clips, n_samples), dtype float32

    Raises
    ------
    ValueError
        If ``X`` is not a 2-D real numeric array (a single 1-D clip is
        rejected: pass ``x[np.newaxis]``), has no clips or no samples, or
        contains NaN/inf (the first bad row is named).

    Examples
    --------
    >>> import numpy as np
    >>> from skasc._audio import validate_waveforms
    >>> validate_waveforms(np.zeros((2, 44100))).dtype
    dtype('float32')
    """
    try:
        arr = np.asarray(X)
    except ValueError as exc:  # ragged nested sequences
        raise ValueError(
            f"{name} must be a 2-D array of shape (n_clips, n_samples) with clips"
            f" of equal length: {exc}"
        ) from exc
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise ValueError(
            f"{name} must be a real numeric array of waveforms; got dtype {arr.dtype}"
            " (clips of different lengths or non-numeric values?)"
        )
    if arr.ndim == 1:
        raise ValueError(
            f"{name} is 1-D with shape {arr.shape}: expected a 2-D array of shape"
            " (n_clips, n_samples); for a single clip x pass x[np.newaxis] or"
            " x.reshape(1, -1)"
        )
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D of shape (n_clips, n_samples); got shape {arr.shape}"
        )
    if arr.shape[0] == 0:
        raise ValueError(f"{name} has 0 clips (shape {arr.shape})")
    if arr.shape[1] == 0:
        raise ValueError(f"{name} has clips of 0 samples (shape {arr.shape})")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    finite_rows = np.isfinite(arr).all(axis=1)
    if not finite_rows.all():
        bad = np.flatnonzero(~finite_rows)
        raise ValueError(
            f"{name} contains NaN or inf values in {bad.size} clip(s); first at"
            f" row {int(bad[0])}"
        )
    return arr
