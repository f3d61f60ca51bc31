"""Low-level audio helpers: reading clips, parsing TAU22 file names, checking
in-memory waveforms.

These functions are small on purpose: every error names the file (or the row)
and says what is wrong, so that a problem in a 230,350-clip data set can be
found without a debugger.
"""

import io
import os
import re

import numpy as np
import soundfile as sf

__all__ = [
    "read_clip", "read_file", "decode_clip", "parse_clip_name", "validate_waveforms",
    "pcm_to_float", "CLIP_NAME_PATTERN",
]

#: Integer sample types taken as PCM, with the offset and the full scale that
#: map them to [-1, 1] exactly as soundfile (libsndfile) reads PCM files as
#: float: ``(x - offset) / scale``.  8-bit WAV is unsigned (offset 128);
#: 24-bit samples read as int32 are left-justified, so int32 covers them.
PCM_SCALES = {
    np.dtype(np.int8): (0, 2**7),
    np.dtype(np.uint8): (2**7, 2**7),
    np.dtype(np.int16): (0, 2**15),
    np.dtype(np.int32): (0, 2**31),
}

#: Regular expression of the TAU Urban Acoustic Scenes 2022 Mobile clip name
#: ``<scene>-<city>-<location id>-<segment id>-<snippet 0..9>-<device>.wav``
#: (matched against the base name of a path).
CLIP_NAME_PATTERN = re.compile(
    r"(?P<scene>[a-z0-9_]+)-(?P<city>[a-z0-9_]+)-(?P<location>[0-9]+)"
    r"-(?P<segment>[0-9]+)-(?P<snippet>[0-9])-(?P<device>[a-z0-9]+)\.wav"
)


def read_file(path):
    """The bytes of an audio file, with errors that name it.

    Parameters
    ----------
    path : str or path-like
        The file. It is only read, never modified.

    Returns
    -------
    data : bytes

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    PermissionError
        If the file may not be read.
    ValueError
        If ``path`` is a directory.
    OSError
        On any other failure to read it.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"audio file {path!r} is a directory, not a wav file")
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"audio file {path!r} not found") from None
    except PermissionError as exc:
        raise PermissionError(
            f"audio file {path!r} cannot be read: permission denied ({exc.strerror});"
            " check the file's permissions"
        ) from exc
    except OSError as exc:
        raise type(exc)(f"cannot read audio file {path!r}: {exc}") from exc


def _check_wav_complete(data, path):
    """Refuse a WAV file whose data chunk is shorter than its header says.

    libsndfile silently reads the samples that are there, so an interrupted
    copy or download would otherwise give a short clip.  Non-WAV data and
    streamed WAVs (data size 0 or 0xFFFFFFFF: unknown) are not checked.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return
    pos, block_align = 12, 0
    while pos + 8 <= len(data):
        chunk, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
        body = pos + 8
        if chunk == b"fmt " and size >= 14 and body + 14 <= len(data):
            block_align = int.from_bytes(data[body + 12:body + 14], "little")
        if chunk == b"data":
            present = len(data) - body
            if present < size < 0xFFFFFFFF:
                unit = block_align or 1
                what = "samples" if block_align else "bytes"
                raise ValueError(
                    f"audio file {path!r} is truncated: its header declares"
                    f" {size // unit} {what} of audio but the file holds only"
                    f" {present // unit} (an incomplete copy or download?)"
                )
            return
        pos = body + size + (size & 1)  # chunks are padded to even sizes


def decode_clip(data, path, *, sr=44100, n_samples=None):
    """Decode the bytes of one mono audio file, checking its format.

    :func:`read_clip` is ``decode_clip(read_file(path), path, ...)``; this
    half lets a caller that already holds the bytes (e.g. to digest them)
    decode exactly those bytes.

    Parameters
    ----------
    data : bytes
        The file's content.
    path : str
        The file's name, used in error messages only.
    sr, n_samples
        As for :func:`read_clip`.

    Returns
    -------
    x : ndarray of shape (n_samples,), dtype float32

    Raises
    ------
    ValueError
        As :func:`read_clip`.
    """
    _check_wav_complete(data, path)
    try:
        samples, file_sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile errors, format errors, ...
        reason = getattr(exc, "error_string", None) or exc
        raise ValueError(
            f"cannot read audio file {path!r}: not a readable audio file ({reason})"
        ) from exc
    if file_sr != sr:
        raise ValueError(
            f"audio file {path!r} has sample rate {file_sr} Hz; expected {sr} Hz"
        )
    if samples.shape[1] != 1:
        raise ValueError(
            f"audio file {path!r} has {samples.shape[1]} channels (stereo/multi-channel);"
            " expected mono (1 channel)"
        )
    x = samples[:, 0]
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
    PermissionError
        If the file may not be read.
    ValueError
        If ``path`` is a directory or the file is not readable audio, is a
        WAV file whose data is shorter than its header says (truncated), has
        a sample rate other than ``sr``, more than one channel, a length
        other than ``n_samples``, no samples, or NaN/inf samples. The message
        names the file.

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
    return decode_clip(read_file(path), path, sr=sr, n_samples=n_samples)


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


def pcm_to_float(X, *, name="X"):
    """Integer PCM samples as float32 in [-1, 1], scaled as soundfile does.

    ``int16 / 2**15``, ``int32 / 2**31``, ``int8 / 2**7`` and, for 8-bit
    WAV's unsigned samples, ``(uint8 - 128) / 2**7``: the values soundfile
    returns when it reads the same samples from a file as float.  Float
    arrays are returned unchanged.

    Parameters
    ----------
    X : ndarray
        Samples of any shape.
    name : str, default="X"
        Name used in error messages.

    Returns
    -------
    ndarray
        ``X`` itself if it is floating-point, else a new float32 array (the
        input is never modified).

    Raises
    ------
    ValueError
        For other integer types (int64, uint16, ...): they are no PCM sample
        format, and an array of Python ints (int64) is more likely audio in
        some other unit; the message says how to convert it.

    Examples
    --------
    >>> import numpy as np
    >>> from skasc._audio import pcm_to_float
    >>> pcm_to_float(np.array([-32768, 0, 16384], dtype=np.int16))
    array([-1. ,  0. ,  0.5], dtype=float32)
    """
    X = np.asarray(X)
    if X.dtype.kind == "f":
        return X
    if X.dtype not in PCM_SCALES:
        raise ValueError(
            f"{name} has integer dtype {X.dtype}, which is not a PCM sample type:"
            " pass float waveforms in [-1, 1] (e.g. X / 32768 for 16-bit samples"
            " stored in a wider type), or int8, uint8, int16 or int32 PCM samples,"
            " which are scaled to [-1, 1] as soundfile reads them"
        )
    offset, scale = PCM_SCALES[X.dtype]
    if offset:
        # int16 holds uint8 - 128 exactly; the scaling is then exact in float32
        X = X.astype(np.int16) - offset
    # the conversion rounds int32 to float32 as libsndfile does; the power
    # of two scale is exact
    out = X.astype(np.float32)
    out *= np.float32(1.0 / scale)
    return out


def validate_waveforms(X, *, name="X"):
    """Check an in-memory batch of waveforms and return it as float32.

    Parameters
    ----------
    X : array-like of shape (n_clips, n_samples)
        Real-valued waveforms, one clip per row: floats (taken as they are,
        full scale 1), or integer PCM samples (int8, uint8, int16, int32),
        scaled to [-1, 1] as soundfile reads them (see
        :func:`pcm_to_float`). A float32 C-contiguous array is returned as is
        (no copy); ``X`` is never modified.
    name : str, default="X"
        Name used in error messages.

    Returns
    -------
    X : ndarray of shape (n_clips, n_samples), dtype float32

    Raises
    ------
    ValueError
        If ``X`` is not a 2-D real numeric array (a single 1-D clip is
        rejected: pass ``x[np.newaxis]``), has an integer type other than
        the PCM ones, has no clips or no samples, or contains NaN/inf (the
        first bad row is named).

    Examples
    --------
    >>> import numpy as np
    >>> from skasc._audio import validate_waveforms
    >>> validate_waveforms(np.zeros((2, 44100))).dtype
    dtype('float32')
    >>> validate_waveforms(np.full((1, 3), -16384, dtype=np.int16))
    array([[-0.5, -0.5, -0.5]], dtype=float32)
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
    arr = np.ascontiguousarray(pcm_to_float(arr, name=name), dtype=np.float32)
    finite_rows = np.isfinite(arr).all(axis=1)
    if not finite_rows.all():
        bad = np.flatnonzero(~finite_rows)
        raise ValueError(
            f"{name} contains NaN or inf values in {bad.size} clip(s); first at"
            f" row {int(bad[0])}"
        )
    return arr
