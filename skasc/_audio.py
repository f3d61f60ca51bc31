"""Low-level audio helpers: reading clips and parts of files, resampling,
checking in-memory waveforms, impulse responses.  What a row *names* (a
TAU22 clip, a clip row ``path#t=start,end``) is :mod:`skasc._rows`' job.

These functions are small on purpose: every error names the file (or the row)
and says what is wrong, so that a problem in a 230,350-clip data set can be
found without a debugger.
"""

import io
import os
import pathlib


import numpy as np
import soundfile as sf

from ._hashing import Hasher
from ._rows import fragment_samples, seconds_text

__all__ = [
    "read_clip", "read_file", "validate_waveforms",
    "pcm_to_float", "decode_audio", "RESAMPLERS", "audio_info", "read_span", "finish_span",
    "read_segment", "resample_audio", "read_impulse_responses", "apply_impulse_response",
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

#: The resamplers offered (``res_type`` of :func:`librosa.resample`): soxr's
#: quality levels, from very high to quick.
RESAMPLERS = ("soxr_vhq", "soxr_hq", "soxr_mq", "soxr_lq", "soxr_qq")

#: Bytes read to find a file's header (the chunks before the audio data).
_HEADER_BYTES = 1 << 16


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
    except OSError as exc:
        raise _open_error(path, exc) from exc


def _open_error(path, exc):
    """The exception to raise, naming ``path``, for an OSError on opening it."""
    if isinstance(exc, FileNotFoundError):
        return FileNotFoundError(f"audio file {path!r} not found")
    if isinstance(exc, PermissionError):
        return PermissionError(
            f"audio file {path!r} cannot be read: permission denied ({exc.strerror});"
            " check the file's permissions"
        )
    return type(exc)(f"cannot read audio file {path!r}: {exc}")


def _check_wav_complete(data, path, file_size=None):
    """Refuse a WAV file whose data chunk is shorter than its header says.

    libsndfile silently reads the samples that are there, so an interrupted
    copy or download would otherwise give a short clip.  Non-WAV data and
    streamed WAVs (data size 0 or 0xFFFFFFFF: unknown) are not checked.
    ``data`` is the whole file, or its beginning (the header) when
    ``file_size``, the file's size in bytes, is given.
    """
    file_size = len(data) if file_size is None else file_size
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return
    pos, block_align = 12, 0
    while pos + 8 <= len(data):
        chunk, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
        body = pos + 8
        if chunk == b"fmt " and size >= 14 and body + 14 <= len(data):
            block_align = int.from_bytes(data[body + 12:body + 14], "little")
        if chunk == b"data":
            present = file_size - body
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


def decode_audio(data, path, *, sr=44100, n_samples=None, resample=None):
    """Decode the bytes of one mono audio file, checking its format, and
    return the file's own sample rate too.

    :func:`read_clip` decodes ``read_file(path)`` with it; a caller that
    already holds the bytes (e.g. to digest them) decodes exactly those.

    Parameters
    ----------
    data : bytes
        The file's content.
    path : str
        The file's name, used in error messages only.
    sr, n_samples, resample
        As for :func:`read_clip`.

    Returns
    -------
    x : ndarray of shape (n_samples,), dtype float32
        At ``sr`` Hz.
    file_sr : int
        The rate the file was stored at (``x`` was resampled if it differs).
    """
    _check_wav_complete(data, path)
    try:
        samples, file_sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile errors, format errors, ...
        reason = getattr(exc, "error_string", None) or exc
        raise ValueError(
            f"cannot read audio file {path!r}: not a readable audio file ({reason})"
        ) from exc
    _check_rate(file_sr, sr, resample, path)
    check_channels(samples.shape[1], path)
    x = samples[:, 0]
    if x.shape[0] == 0:
        raise ValueError(f"audio file {path!r} has no samples")
    _check_finite(x, path)
    x = resample_audio(x, file_sr, sr, resample)
    if n_samples is not None and x.shape[0] != n_samples:
        raise ValueError(
            f"audio file {path!r} has {x.shape[0]} samples"
            + (f" after resampling from {file_sr} Hz" if file_sr != sr else "")
            + f"; expected {n_samples} ({n_samples / sr:g} s at {sr} Hz)"
        )
    return np.ascontiguousarray(x), int(file_sr)


def _check_rate(file_sr, sr, resample, path):
    if file_sr != sr and resample is None:
        raise ValueError(
            f"audio file {path!r} has sample rate {file_sr} Hz; expected {sr} Hz."
            " To resample such files (with soxr), pass resample='soxr_hq', e.g."
            " LogMel(resample='soxr_hq')"
        )
    if resample is not None and resample not in RESAMPLERS:
        raise ValueError(f"resample must be one of {list(RESAMPLERS)} or None, got {resample!r}")


def check_channels(channels, path):
    if channels != 1:
        raise ValueError(
            f"audio file {path!r} has {channels} channels (stereo/multi-channel);"
            " expected mono (1 channel)"
        )


def _check_finite(x, path):
    finite = np.isfinite(x)
    if not finite.all():
        first = int(np.flatnonzero(~finite)[0])
        raise ValueError(
            f"audio file {path!r} contains {int((~finite).sum())} NaN/inf samples"
            f" (first at sample {first})"
        )


def resample_audio(x, orig_sr, target_sr, resample="soxr_hq"):
    """Resample a 1-D signal with soxr (through :func:`librosa.resample`).

    Parameters
    ----------
    x : ndarray of shape (n,)
        The samples.
    orig_sr, target_sr : int
        Sample rates in Hz.
    resample : str, default="soxr_hq"
        One of :data:`RESAMPLERS`, the ``res_type`` of :func:`librosa.resample`.

    Returns
    -------
    y : ndarray of shape (ceil(n * target_sr / orig_sr),), dtype float32
        Exactly ``librosa.resample(x, orig_sr=orig_sr, target_sr=target_sr,
        res_type=resample)`` as float32; ``x`` itself if the rates are equal.
    """
    if orig_sr == target_sr:
        return x
    import librosa  # imported here: reading files at the target rate never needs it

    y = librosa.resample(x, orig_sr=orig_sr, target_sr=target_sr, res_type=resample)
    return np.ascontiguousarray(y, dtype=np.float32)


def read_clip(path, *, sr=44100, n_samples=None, resample=None, return_sr=False):
    """Read one mono wav clip as a float32 vector, checking its format.

    Parameters
    ----------
    path : str or path-like
        The wav file. It is only read, never modified.
    sr : int, default=44100
        Required sample rate in Hz (the rate returned).
    n_samples : int or None, default=None
        Required number of samples (after resampling); ``None`` accepts any
        non-zero length.
    resample : {"soxr_vhq", "soxr_hq", "soxr_mq", "soxr_lq", "soxr_qq"} or None, default=None
        None: a file at another rate than ``sr`` is refused.  Otherwise it
        is resampled to ``sr`` with :func:`resample_audio` (soxr at this
        quality).
    return_sr : bool, default=False
        Also return the rate the file is stored at.

    Returns
    -------
    x : ndarray of shape (n_samples,), dtype float32
        The samples, in [-1, 1] for PCM files.
    file_sr : int
        Only with ``return_sr``: the file's own sample rate.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    PermissionError
        If the file may not be read.
    ValueError
        If ``path`` is a directory or the file is not readable audio, is a
        WAV file whose data is shorter than its header says (truncated), has
        a sample rate other than ``sr`` (without ``resample``), more than one
        channel, a length
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
    x, file_sr = decode_audio(read_file(path), path, sr=sr, n_samples=n_samples, resample=resample)
    return (x, file_sr) if return_sr else x


def _open_checked(path):
    """An open :class:`soundfile.SoundFile`, after checking what can be
    checked from the header: the file exists, may be read, is not a
    truncated WAV and is readable audio.  Errors name the file."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"audio file {path!r} is a directory, not an audio file")
    try:
        with open(path, "rb") as fh:
            head = fh.read(_HEADER_BYTES)
            size = os.fstat(fh.fileno()).st_size
    except OSError as exc:
        raise _open_error(path, exc) from exc
    _check_wav_complete(head, path, size)
    try:
        return sf.SoundFile(path)
    except Exception as exc:  # libsndfile errors, format errors, ...
        reason = getattr(exc, "error_string", None) or exc
        raise ValueError(
            f"cannot read audio file {path!r}: not a readable audio file ({reason})"
        ) from exc


def audio_info(path):
    """Sample rate, frame count and channels of an audio file, from its header.

    No audio is read: only the header (at most the first 64 KiB, to check
    that a WAV file is as long as its header says).

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    info : dict
        ``samplerate`` (int, Hz), ``frames`` (int) and ``channels`` (int).

    Raises
    ------
    FileNotFoundError, PermissionError, ValueError
        As :func:`read_clip`, for a missing, forbidden, truncated or
        unreadable file; the message names it.
    """
    with _open_checked(path) as f:
        return {"samplerate": int(f.samplerate), "frames": int(f.frames), "channels": int(f.channels)}


def read_span(path, start, end):
    """Seconds [start, end) of a mono file at its own rate, reading only them.

    The file is opened, the read position set to the first frame
    (``round(start * rate)``) and only the frames up to
    ``round(end * rate)`` -- or the end of the file, whichever comes first
    -- are read: a clip of a 1-hour file costs one clip's worth of reading.

    Parameters
    ----------
    path : str or path-like
    start, end : float
        Seconds, ``0 <= start < end``.

    Returns
    -------
    x : ndarray of shape (n,), dtype float32
        The samples (``n`` is smaller than requested where the file ends
        before ``end``).
    sr : int
        The file's sample rate.

    Raises
    ------
    FileNotFoundError, PermissionError
        For a missing or forbidden file.
    ValueError
        For an unreadable or truncated file, more than one channel, NaN/inf
        samples, or a ``start`` at or after the end of the file.  The
        message names the file.
    """
    path = os.fspath(path)
    with _open_checked(path) as f:
        rate, frames = int(f.samplerate), int(f.frames)
        check_channels(f.channels, path)
        first, last = int(round(start * rate)), min(int(round(end * rate)), frames)
        if first >= frames:
            raise ValueError(
                f"clip {seconds_text(start)}-{seconds_text(end)} s of audio file"
                f" {path!r} starts after the end of the file ({frames / rate:g} s long);"
                " was the file replaced by a shorter one?"
            )
        try:
            f.seek(first)
            x = f.read(last - first, dtype="float32", always_2d=True)[:, 0]
        except Exception as exc:
            reason = getattr(exc, "error_string", None) or exc
            raise ValueError(f"cannot read audio file {path!r}: {reason}") from exc
    _check_finite(x, path)
    return np.ascontiguousarray(x), rate


def finish_span(x, file_sr, path, *, sr, n_samples, resample=None):
    """Samples from :func:`read_span` at ``sr`` Hz and exactly ``n_samples`` long.

    Resampled with :func:`resample_audio` when ``file_sr != sr`` (refused
    without ``resample``), then zero-padded at the end (a clip reaching
    past the end of its file) or cut to ``n_samples``.
    """
    _check_rate(file_sr, sr, resample, path)
    x = resample_audio(x, file_sr, sr, resample)
    if len(x) < n_samples:
        x = np.concatenate([x, np.zeros(n_samples - len(x), np.float32)])
    return np.ascontiguousarray(x[:n_samples])


def read_segment(path, start, end, *, sr=44100, resample=None):
    """Seconds [start, end) of a mono file at ``sr`` Hz, reading only that part.

    :func:`read_span`, then :func:`finish_span`: the result has exactly
    ``round((end - start) * sr)`` samples, zero-padded where the file ends
    before ``end``.

    Parameters
    ----------
    path : str or path-like
    start, end : float
        Seconds, ``0 <= start < end``.
    sr : int, default=44100
        Rate of the result in Hz.
    resample : str or None, default=None
        As for :func:`read_clip`.

    Returns
    -------
    x : ndarray of shape (round((end - start) * sr),), dtype float32

    Raises
    ------
    FileNotFoundError, PermissionError, ValueError
        As :func:`read_span`, and for a file at another rate than ``sr``
        without ``resample``.

    Examples
    --------
    >>> import numpy as np, soundfile as sf, tempfile, os
    >>> from skasc._audio import read_segment
    >>> path = os.path.join(tempfile.mkdtemp(), "long.wav")
    >>> sf.write(path, np.zeros(16000 * 5), 16000)
    >>> read_segment(path, 4, 5, sr=16000).shape
    (16000,)
    >>> read_segment(path, 4, 5, sr=44100, resample="soxr_hq").shape
    (44100,)
    """
    path = os.fspath(path)
    x, file_sr = read_span(path, start, end)
    return finish_span(x, file_sr, path, sr=sr, n_samples=fragment_samples(start, end, sr),
                       resample=resample)


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


def read_impulse_responses(folder, *, sr=44100, resample=None):
    """Every impulse response WAV in ``folder``, normalised to unit energy.

    Parameters
    ----------
    folder : str or path-like
        Searched recursively for ``*.wav`` files (any case), taken in sorted
        order of their paths relative to ``folder``.
    sr : int, default=44100
        The rate the responses must have (the rate of the audio they will be
        convolved with).
    resample : {"soxr_vhq", "soxr_hq", "soxr_mq", "soxr_lq", "soxr_qq"} or None, default=None
        None refuses a response stored at another rate; a soxr quality
        resamples it to ``sr`` first (:func:`resample_audio`).

    Returns
    -------
    files : list of str
        The files, in the order of the responses.
    responses : list of ndarray
        float32, mono, each divided by the square root of its energy
        (``sum(h ** 2) == 1``): convolving white noise with it keeps the
        noise's power, so the response changes the spectrum's shape and not
        the overall level.
    digests : list of str
        BLAKE2b of each normalised response and ``sr``: its content key.

    Raises
    ------
    FileNotFoundError
        If ``folder`` does not exist.
    NotADirectoryError
        If ``folder`` is not a folder.
    ValueError
        If it holds no WAV file, or a file is no readable mono audio, is
        truncated, holds NaN/inf or only zeros, or is stored at another rate
        than ``sr`` without ``resample``.  The message names the file.

    Examples
    --------
    >>> import numpy as np, soundfile as sf, tempfile, os
    >>> from skasc._audio import read_impulse_responses
    >>> folder = tempfile.mkdtemp()
    >>> sf.write(os.path.join(folder, "dev.wav"), np.array([2.0, 0.0, 0.0]), 44100, subtype="FLOAT")
    >>> files, irs, _ = read_impulse_responses(folder)
    >>> irs[0].tolist()
    [1.0, 0.0, 0.0]
    """
    root = pathlib.Path(os.fspath(folder)).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"impulse response folder {str(root)!r} not found")
    if not root.is_dir():
        raise NotADirectoryError(f"impulse response folder {str(root)!r} is not a folder")
    found = sorted((p for p in root.rglob("*") if p.suffix.lower() == ".wav" and p.is_file()),
                   key=lambda p: p.relative_to(root).as_posix())
    if not found:
        raise ValueError(
            f"impulse response folder {str(root)!r} holds no .wav file: expected one"
            " mono WAV per device impulse response"
        )
    files, responses, digests = [], [], []
    for path in found:
        path = str(path)
        data = read_file(path)
        try:
            file_sr = sf.info(io.BytesIO(data)).samplerate
        except Exception:  # unreadable: decode_audio below names the reason
            file_sr = sr
        if file_sr != sr and resample is None:
            raise ValueError(
                f"impulse response {path!r} has sample rate {file_sr} Hz; the audio is"
                f" at {sr} Hz. Resample it, or pass resample='soxr_hq' to"
                " DeviceImpulseResponse to resample it with soxr"
            )
        h, _ = decode_audio(data, path, sr=sr, resample=resample)
        energy = float(np.sum(np.square(h, dtype=np.float64)))
        if not energy > 0:
            raise ValueError(f"impulse response {path!r} holds only zeros")
        h = (h / np.sqrt(energy)).astype(np.float32)
        digest = Hasher().update(f"ir:{sr}:", h)
        files.append(path)
        responses.append(h)
        digests.append(digest.hexdigest())
    return files, responses, digests


def apply_impulse_response(signal, response):
    """``signal`` convolved with ``response``, cut to the signal's length.

    The full convolution (overlap-add, :func:`scipy.signal.oaconvolve`)
    keeps its first ``len(signal)`` samples: the output is aligned with the
    input (a response whose energy comes first, e.g. a minimum-phase one,
    adds no delay), and the tail that rings past the end is dropped, as in
    Morocutti et al.'s DIR augmentation.

    Parameters
    ----------
    signal, response : ndarray of shape (n,) and (m,)

    Returns
    -------
    ndarray of shape (n,), dtype float32

    Examples
    --------
    >>> import numpy as np
    >>> from skasc._audio import apply_impulse_response
    >>> apply_impulse_response(np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0])).tolist()
    [0.0, 1.0, 2.0]
    """
    from scipy.signal import oaconvolve

    y = oaconvolve(np.asarray(signal, dtype=np.float32), np.asarray(response, dtype=np.float32))
    return np.ascontiguousarray(y[: len(signal)], dtype=np.float32)
