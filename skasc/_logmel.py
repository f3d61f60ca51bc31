"""Fast batched log-mel energies, numerically equal to librosa's.

The kernel computes, for a batch of waveforms,
``librosa.power_to_db(librosa.feature.melspectrogram(...), ref=1.0,
amin=amin, top_db=None)`` with the same window (librosa's periodic window
zero-padded and centred to ``n_fft``), the same centred framing and padding,
and the same mel filters (:func:`librosa.filters.mel`), but it is several
times faster:

* frames are a strided view of the signal (padded copies only at the
  edges); only the ``win_length`` taps under the window are multiplied, into
  a zero-tailed ``n_fft`` buffer -- the frame shifted by
  ``(n_fft - win_length) // 2``, which changes the phase, not the power;
* the FFT is float32, batched, in chunks of 128 frames, into buffers that
  are pooled between calls (fresh ones cost page faults); it writes its
  output bin-major, squared in place: the power is ``re**2 + im**2``, no
  complex ``abs``;
* the mel filterbank is applied as a sparse CSR matrix: each of the 256
  triangular filters covers 2 to 65 of the 2049 bins (4062 non-zeros), so
  the product does 1/129 of the work of librosa's dense ``256 x 2049`` one.
  It is applied to ``re**2`` and ``im**2`` separately, and the two halves
  are added on the 8x smaller mel output;
* chunks are spread over ``n_threads`` Python threads (torch releases the
  GIL), torch running one intra-op thread each: MKL's own multi-threaded FFT
  is slower on batches of 4096-point transforms.

Precision.  A float32 FFT has an absolute error of about ``eps32 * ||frame||``
per bin.  For most audio this is negligible (typically 1e-5 to 2e-4 dB), but
bands far below the frame's energy -- steep (brown) spectra, a loud tone over
faint noise -- can err by up to ~9e-4 dB on synthetic scenes and by 0.04 dB
on a full-scale tone over -120 dB noise.  Every chunk is therefore checked:
from each frame's energy and each band's power a conservative estimate of the
float32 error is formed (white rounding noise), and frames where it exceeds
1e-4 dB are recomputed in float64 from the original samples.  On the
synthetic scenes of the tests and benchmark that is 2 to 5 % of the frames
(none for most clips, up to 60 % for brown-noise-dominated ones); a
recomputed frame costs about 2.5 float32 ones.  The rounding error is not
quite white: MKL's (and pocketfft's) float32 FFT concentrates part of a
strong tone's error into a few "image" bins, up to ~30 times the average
error amplitude, which the check does not predict.  This is why frames kept
in float32 reach ~9e-4 dB at worst (largest of ~830 synthetic 10-s scenes
and 150 tone-over-noise clips; none above 1e-3 dB); a check that also
covered these would recompute ~8 % of the frames (~18 % slower) to halve
that worst case, which was not worth it.
"""

import numbers
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np
import torch

__all__ = ["logmel", "mel_filterbank"]

#: Frames per FFT chunk (~4 MiB of buffers; 64..168 measured equally fast).
_CHUNK_FRAMES = 128
_PAD_MODES = ("constant", "edge", "reflect", "symmetric")
#: Per-bin variance of the float32 error (input rounding + FFT), in units of
#: ``eps32**2 * frame_energy``; measured ~1.3 for MKL's FFT, taken as 2.
_F32_ERR_VAR = 2.0
#: A frame is recomputed in float64 when the predicted size of its float32
#: error exceeds this (dB) in any band.  Frames kept in float32 stayed below
#: 9e-4 dB (see the module docstring for what the prediction misses).
_F32_TOL_DB = 1e-4
_DB = 10.0 / np.log(10.0)


def _check_int(value, name, low=1):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value!r}")
    return int(value)


def _check_real(value, name, *, low=None, strict=True, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if low is not None and (value <= low if strict else value < low):
        op = ">" if strict else ">="
        raise ValueError(f"{name} must be {op} {low}, got {value!r}")
    return value


def _check_mel_range(sr, fmin, fmax):
    fmin = _check_real(fmin, "fmin", low=0, strict=False)
    fmax = _check_real(fmax, "fmax", allow_none=True)
    if fmax is not None and fmax <= fmin:
        raise ValueError(f"fmax must be > fmin, got fmin={fmin!r}, fmax={fmax!r}")
    if fmax is None and sr / 2 <= fmin:
        raise ValueError(f"fmin must be < sr / 2 = {sr / 2!r}, got {fmin!r}")
    return fmin, fmax


def mel_filterbank(sr, n_fft, n_mels, fmin=0.0, fmax=None, htk=False, norm="slaney",
                   dtype=np.float32):
    """Mel filterbank matrix, exactly :func:`librosa.filters.mel`.

    Parameters
    ----------
    sr : float
        Sampling rate in Hz (> 0).
    n_fft : int
        FFT size; the filters act on its ``1 + n_fft // 2`` bins.
    n_mels : int
        Number of mel bands (>= 1).
    fmin : float, default=0.0
        Lowest frequency (Hz, >= 0).
    fmax : float or None, default=None
        Highest frequency (Hz, > ``fmin``); None means ``sr / 2``.
    htk : bool, default=False
        Use the HTK mel formula instead of Slaney's.
    norm : {"slaney"}, float or None, default="slaney"
        Filter normalisation, as in librosa.
    dtype : numpy dtype, default=np.float32
        Dtype of the matrix (librosa's ``melspectrogram`` uses float32).

    Returns
    -------
    ndarray of shape (n_mels, 1 + n_fft // 2)
        The filter weights (row ``m`` is band ``m``).

    Raises
    ------
    ValueError
        On non-positive sizes or an empty frequency range.

    Examples
    --------
    >>> mel_filterbank(44100, 4096, 256).shape
    (256, 2049)
    """
    import librosa

    sr = _check_real(sr, "sr", low=0)
    n_fft = _check_int(n_fft, "n_fft")
    n_mels = _check_int(n_mels, "n_mels")
    fmin, fmax = _check_mel_range(sr, fmin, fmax)
    return librosa.filters.mel(
        sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk, norm=norm,
        dtype=dtype,
    )


class _Plan:
    """Window, sparse filterbank and float32-error thresholds of one setting."""

    def __init__(self, sr, n_fft, win_length, n_mels, fmin, fmax, htk, norm, window):
        import librosa

        try:
            win = librosa.filters.get_window(window, win_length, fftbins=True)
        except Exception as exc:  # librosa.ParameterError, scipy's ValueError
            raise ValueError(f"invalid window {window!r}: {exc}") from exc
        win = np.asarray(win, dtype=np.float64)
        if win.shape != (win_length,):
            raise ValueError(
                f"window must have win_length={win_length} samples, got shape {win.shape}"
            )
        self.n_fft = n_fft
        self.n_bins = n_fft // 2 + 1
        self.win_length = win_length
        self.n_mels = n_mels
        # librosa.util.pad_center puts the window at [lpad, lpad + win_length)
        self.lpad = (n_fft - win_length) // 2
        self.win = {torch.float32: torch.from_numpy(win.astype(np.float32)),
                    torch.float64: torch.from_numpy(win)}
        # librosa's "Empty filters detected" warning reaches the caller, as
        # from librosa.feature.melspectrogram
        mel = mel_filterbank(sr, n_fft, n_mels, fmin=fmin, fmax=fmax, htk=htk,
                             norm=norm, dtype=np.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's sparse CSR "beta" warning
            mel64 = mel.astype(np.float64)
            # Frame energies come from the mel powers: the filters scaled to
            # peak 1 sum to >= 1 between the first and last centre; the bins
            # they miss (DC, the top, outside fmin..fmax) get an extra row.
            peak = mel64.max(axis=1)
            inv_peak = np.divide(1.0, peak, out=np.zeros_like(peak), where=peak > 0)
            uncovered = np.clip(1.0 - inv_peak @ mel64, 0.0, None)
            self.inv_peak = torch.from_numpy(inv_peak.astype(np.float32))[None, :]
            # float32 path: filters plus the "uncovered" row
            self.mel_ext = torch.from_numpy(
                np.vstack([mel, uncovered[None, :].astype(np.float32)])).to_sparse_csr()
            self.mel64 = torch.from_numpy(mel64).to_sparse_csr()
        # Float32 error model: per-bin error variance s2 = c * eps^2 * E (E the
        # frame energy), band error std ~ DB * (sqrt(2 s2 sum w^2 P) + s2 sum w) / P
        # <= DB * (sqrt(2 s2 wmax P) + s2 W) / P.  It exceeds tol iff
        # P < ystar * E; solve tol*y = a*sqrt(y) + b for y (P = y * E).
        eps = float(np.finfo(np.float32).eps)
        a = _DB * eps * np.sqrt(2 * _F32_ERR_VAR * mel64.max(axis=1))
        b = _DB * _F32_ERR_VAR * eps**2 * mel64.sum(axis=1)
        root = (a + np.sqrt(a * a + 4 * _F32_TOL_DB * b)) / (2 * _F32_TOL_DB)
        ystar = root**2
        with np.errstate(divide="ignore"):
            inv = np.where(ystar > 0, 1.0 / ystar, np.inf)
        self.inv_ystar = torch.from_numpy(inv.astype(np.float32))[:, None]


@lru_cache(maxsize=32)
def _cached_plan(*args):
    return _Plan(*args)


def _get_plan(sr, n_fft, win_length, n_mels, fmin, fmax, htk, norm, window):
    args = (sr, n_fft, win_length, n_mels, fmin, fmax, htk, norm, window)
    try:
        hash(args)
    except TypeError:  # array or callable window
        return _Plan(*args)
    return _cached_plan(*args)


class _Workspace:
    """Scratch tensors of one worker, kept between calls.

    Fresh multi-MiB buffers cost page faults (a large share of the work for
    a 1-s clip), so they are pooled and reused.
    """

    def __init__(self):
        self._flat = {}
        self._frames = {}

    def flat(self, name, numel, dtype):
        """A 1-D tensor of ``numel`` elements (contents undefined)."""
        t = self._flat.get((name, dtype))
        if t is None or t.numel() < numel:
            t = self._flat[(name, dtype)] = torch.empty(numel, dtype=dtype)
        return t[:numel]

    def frames(self, rows, n_fft, win_length, dtype):
        """A ``(rows, n_fft)`` buffer whose columns ``win_length:`` are zero."""
        t, cfg = self._frames.get(dtype, (None, None))
        if t is None or cfg != (n_fft, win_length) or t.shape[0] < rows:
            t = torch.zeros(max(rows, _CHUNK_FRAMES), n_fft, dtype=dtype)
            self._frames[dtype] = (t, (n_fft, win_length))
        return t[:rows]


_POOL = []
_POOL_LOCK = threading.Lock()
_POOL_MAX = 4


def _acquire_workspace():
    with _POOL_LOCK:
        return _POOL.pop() if _POOL else _Workspace()


def _release_workspace(ws):
    with _POOL_LOCK:
        if len(_POOL) < _POOL_MAX:
            _POOL.append(ws)


def _segment(x, c0, c1, s0, s1, off, pad_mode, dtype):
    """Rows ``c0:c1`` of the padded signal, padded positions ``s0:s1``.

    The padded signal is ``np.pad(x, ((0, 0), (off, off)), mode=pad_mode)``,
    built here only where the segment needs it; away from the edges (and
    when ``x`` already has ``dtype``) the result is a view of ``x``.
    """
    k, T = c1 - c0, x.shape[1]
    if s0 >= off and s1 <= off + T and x.dtype == dtype:
        return x[c0:c1, s0 - off:s1 - off]  # no padding, no conversion: a view
    seg = np.empty((k, s1 - s0), dtype=dtype)
    a, b = max(s0, off), min(s1, off + T)  # the signal's own samples
    if b > a:
        seg[:, a - s0:b - s0] = x[c0:c1, a - off:b - off]
    if s0 >= off and s1 <= off + T:
        return seg
    if pad_mode == "constant":
        if s0 < off:
            seg[:, :min(off, s1) - s0] = 0
        if s1 > off + T:
            seg[:, max(off + T, s0) - s0:] = 0
    elif T > off:  # one reflection is enough: pad only the edge samples
        if s0 < off:
            head = np.pad(x[c0:c1, :off + 1], ((0, 0), (off, 0)), mode=pad_mode)
            seg[:, :min(off, s1) - s0] = head[:, s0:min(off, s1)]
        if s1 > off + T:
            # tail[:, j] sits at padded position T - 1 + j
            tail = np.pad(x[c0:c1, T - off - 1:], ((0, 0), (0, off)), mode=pad_mode)
            t0 = max(off + T, s0)
            seg[:, t0 - s0:] = tail[:, t0 - T + 1:s1 - T + 1]
    else:  # short signal: numpy's repeated reflection, exactly as librosa
        seg[:] = np.pad(x[c0:c1], ((0, 0), (off, off)), mode=pad_mode)[:, s0:s1]
    return seg


def logmel(
    waveforms, *, sr=44100, n_fft=4096, win_length=3528, hop_length=882, n_mels=256,
    fmin=0.0, fmax=None, window="hamming", center=True, pad_mode="constant",
    power=2.0, amin=1e-10, dtype=np.float32, htk=False, norm="slaney", n_threads=None,
):
    """Batched log-mel energies in dB, equal to librosa's.

    For each waveform this equals, to within 1e-3 dB (typically 1e-5 to
    2e-4 dB)::

        S = librosa.feature.melspectrogram(
            y=y, sr=sr, n_fft=n_fft, hop_length=hop_length,
            win_length=win_length, window=window, center=center,
            pad_mode=pad_mode, power=power, n_mels=n_mels, fmin=fmin,
            fmax=fmax, htk=htk, norm=norm)
        librosa.power_to_db(S, ref=1.0, amin=amin, top_db=None)

    i.e. ``10 * log10(max(mel_power, amin))``.  There is no ``top_db``
    clipping, so a frame's value depends only on the samples under its
    window: the interior frames of a recording equal those of any crop
    taken on the hop grid.

    Parameters
    ----------
    waveforms : array-like of shape (n_clips, n_samples) or (n_samples,)
        Real floating-point audio (float32 or float64; other float types are
        converted to float32).  All clips have the same length.
    sr : float, default=44100
        Sampling rate in Hz.
    n_fft : int, default=4096
        FFT size; frames have ``1 + n_fft // 2`` frequency bins.
    win_length : int, default=3528
        Window length (80 ms at 44.1 kHz), ``1 <= win_length <= n_fft``; the
        window is zero-padded and centred to ``n_fft`` as in librosa.
    hop_length : int, default=882
        Hop between frames (20 ms at 44.1 kHz).
    n_mels : int, default=256
        Number of mel bands.
    fmin : float, default=0.0
        Lowest filter frequency in Hz.
    fmax : float or None, default=None
        Highest filter frequency in Hz (None: ``sr / 2``).
    window : str, tuple, float, callable or array, default="hamming"
        Window specification, as for :func:`librosa.filters.get_window`
        (periodic, ``fftbins=True``).
    center : bool, default=True
        Centre the frames: pad ``n_fft // 2`` samples on both sides, so there
        are ``1 + n_samples // hop_length`` frames (for even ``n_fft``).  When
        False, frames start at sample 0 and ``n_samples >= n_fft`` is
        required.
    pad_mode : {"constant", "edge", "reflect", "symmetric"}, default="constant"
        Padding used when ``center=True`` (as :func:`numpy.pad`).
    power : float, default=2.0
        Exponent of the magnitude spectrogram (2: power, 1: magnitude).
    amin : float, default=1e-10
        Floor of the mel power before the logarithm (> 0).
    dtype : {np.float32, np.float64}, default=np.float32
        Output dtype.
    htk : bool, default=False
        HTK mel scale (see :func:`mel_filterbank`).
    norm : {"slaney"}, float or None, default="slaney"
        Mel filter normalisation (see :func:`mel_filterbank`).
    n_threads : int or None, default=None
        Worker threads; None uses :func:`torch.get_num_threads`.  During
        the call torch runs with one intra-op thread per worker (the
        previous setting is restored on return).

    Returns
    -------
    ndarray of shape (n_clips, n_mels, n_frames), or (n_mels, n_frames) for 1-D input
        Log-mel energies in dB.  With the defaults, a 1-s clip at 44.1 kHz
        gives 256 x 51 and a 10-s recording 256 x 501.

    Raises
    ------
    ValueError
        On invalid parameters (non-positive sizes, ``win_length > n_fft``,
        ``fmax <= fmin``, unknown ``pad_mode`` ...), non-float, complex,
        empty or non-finite input, or ``center=False`` with fewer than
        ``n_fft`` samples.

    Warns
    -----
    UserWarning
        librosa's "Empty filters detected" when some mel band contains no FFT
        bin (too many bands for ``n_fft``, or ``fmax`` above ``sr / 2``): its
        output is the constant ``10 * log10(amin)``, as in librosa.

    Notes
    -----
    The FFT runs in float32.  Frames with a band so far below the frame's
    energy that float32 rounding could approach the tolerance (very steep
    spectra, or a loud tone over faint noise; see the module docstring) are
    recomputed in float64 from the original samples, so that inputs with a
    very large spectral dynamic range stay within the tolerance too.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(scale=0.1, size=(2, 44100))
    >>> logmel(x.astype(np.float32)).shape
    (2, 256, 51)
    """
    # ---- validation -------------------------------------------------------
    sr = _check_real(sr, "sr", low=0)
    n_fft = _check_int(n_fft, "n_fft")
    win_length = _check_int(win_length, "win_length")
    if win_length > n_fft:
        raise ValueError(f"win_length must be <= n_fft={n_fft}, got {win_length}")
    hop_length = _check_int(hop_length, "hop_length")
    n_mels = _check_int(n_mels, "n_mels")
    fmin, fmax = _check_mel_range(sr, fmin, fmax)
    power = _check_real(power, "power", low=0)
    amin = _check_real(amin, "amin", low=0)
    if not isinstance(center, (bool, np.bool_)):
        raise ValueError(f"center must be a bool, got {center!r}")
    if pad_mode not in _PAD_MODES:
        raise ValueError(f"pad_mode must be one of {_PAD_MODES}, got {pad_mode!r}")
    try:
        out_dtype = np.dtype(dtype)
    except TypeError as exc:
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}") from exc
    if out_dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    if n_threads is None:
        n_threads = torch.get_num_threads()
    n_threads = _check_int(n_threads, "n_threads")

    if isinstance(waveforms, torch.Tensor):
        waveforms = waveforms.detach().cpu().numpy()
    x = np.asarray(waveforms)
    if x.dtype.kind != "f":
        raise ValueError(
            f"waveforms must be real floating-point audio, got dtype {x.dtype}"
        )
    if x.ndim not in (1, 2):
        raise ValueError(
            f"waveforms must be 1-D (n_samples,) or 2-D (n_clips, n_samples), "
            f"got shape {x.shape}"
        )
    squeeze = x.ndim == 1
    if squeeze:
        x = x[None]
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float32)
    n, T = x.shape
    if T == 0:
        raise ValueError("waveforms must have at least one sample")
    if not np.isfinite(x).all():
        raise ValueError("waveforms must be finite everywhere (found NaN or inf)")
    off = n_fft // 2 if center else 0
    if T + 2 * off < n_fft:
        raise ValueError(
            f"center=False needs at least n_fft={n_fft} samples, got {T}"
        )
    n_frames = 1 + (T + 2 * off - n_fft) // hop_length
    plan = _get_plan(sr, n_fft, win_length, n_mels, fmin, fmax, htk, norm, window)

    out = np.empty((n, n_mels, n_frames), dtype=out_dtype)
    if n == 0:
        return out
    out_t = torch.from_numpy(out)

    # ---- work items: (clips c0:c1, frames f0:f1), ~_CHUNK_FRAMES frames ----
    clips_per_item = max(1, _CHUNK_FRAMES // n_frames)
    items = []
    for c0 in range(0, n, clips_per_item):
        c1 = min(n, c0 + clips_per_item)
        for f0 in range(0, n_frames, _CHUNK_FRAMES):
            items.append((c0, c1, f0, min(n_frames, f0 + _CHUNK_FRAMES)))
    exponent = power / 2.0
    local = threading.local()  # per worker thread
    f32, f64 = torch.float32, torch.float64

    def frames_of(seg):
        # (k, m, win_length) view: the window's support within each frame
        fr = torch.from_numpy(seg).unfold(1, n_fft, hop_length)
        return fr[..., plan.lpad:plan.lpad + win_length]

    def squared_spectra(ws, frames, rdt):
        """``(n_bins, 2 * n)``: re**2, im**2 of the frames' spectra, interleaved.

        ``frames`` is ``(k, m, win_length)`` (``n = k * m``).
        """
        k, m = frames.shape[0], frames.shape[1]
        n = k * m
        # frames are windowed into buf[:, :win_length]; the zero tail pads
        # them to n_fft (a shift of the centred frame: same power)
        buf = ws.frames(n, n_fft, win_length, rdt)
        torch.mul(frames, plan.win[rdt], out=buf[:, :win_length].view(k, m, win_length))
        # spectra are written bin-major (n_bins, frames), the layout the
        # sparse product needs: letting the FFT write it is cheaper than
        # transposing afterwards
        cdt = torch.complex64 if rdt == f32 else torch.complex128
        XT = ws.flat("XT", n * plan.n_bins, cdt).view(plan.n_bins, n)
        torch.fft.rfft(buf, out=XT.T)
        Z = torch.view_as_real(XT).view(plan.n_bins, 2 * n)
        return Z.square_()

    def mel_f32(ws, seg):
        """Float32 path: mel power (n_mels, k*m), clamped, and frame energies."""
        fr = frames_of(seg)
        km = fr.shape[0] * fr.shape[1]
        Z = squared_spectra(ws, fr, f32)
        # the filters apply to re**2 and im**2 separately; the two are added
        # on the 8x smaller mel output (one pass less over the spectra)
        M2 = ws.flat("M2", (n_mels + 1) * 2 * km, f32).view(n_mels + 1, 2 * km)
        torch.mm(plan.mel_ext, Z, out=M2)
        M = ws.flat("M", n_mels * km, f32).view(n_mels, km)
        torch.add(M2[:n_mels, 0::2], M2[:n_mels, 1::2], out=M)
        # E = sum(frame**2) = (1/n_fft) sum_{all k} |X_k|**2 <= (2/n_fft) sum P,
        # with sum P ~ sum_m M_m / peak_m + (uncovered bins); a slight
        # overestimate, on the safe side
        energy = torch.mm(plan.inv_peak, M)[0]
        energy += M2[n_mels, 0::2]
        energy += M2[n_mels, 1::2]
        energy *= 2.0 / n_fft
        M.clamp_(min=amin)
        return M, energy

    def mel_f64(ws, seg, select=None):
        """Float64 path: mel power (float32, clamped) of all frames of ``seg``,
        or of the flat frame indices ``select``."""
        fr = frames_of(seg)
        if select is not None:
            m = fr.shape[1]
            fr = fr[select // m, select % m][None]
        Z = squared_spectra(ws, fr, f64)
        if exponent == 1.0:
            M2 = plan.mel64 @ Z
            M = M2[:, 0::2] + M2[:, 1::2]
        else:
            M = plan.mel64 @ (Z[:, 0::2] + Z[:, 1::2]).pow_(exponent)
        return M.clamp_(min=amin).to(f32)

    def work(item):
        if not hasattr(local, "single"):
            # OpenMP's and MKL's thread counts are per thread: a new worker
            # would run MKL's FFT on the default number of threads
            torch.set_num_threads(1)
            local.single = True
        ws = _acquire_workspace()
        try:
            chunk(ws, *item)
        finally:
            _release_workspace(ws)

    def chunk(ws, c0, c1, f0, f1):
        k, m = c1 - c0, f1 - f0
        s0, s1 = f0 * hop_length, (f1 - 1) * hop_length + n_fft
        if exponent != 1.0:
            # |X|**power with power != 2 (rarely used): the float32 error
            # model does not apply, compute in float64
            M = mel_f64(ws, _segment(x, c0, c1, s0, s1, off, pad_mode, np.float64))
        else:
            M, energy = mel_f32(ws, _segment(x, c0, c1, s0, s1, off, pad_mode, np.float32))
            # frames where float32 rounding could approach the tolerance: a
            # band below ystar * E  ->  recompute them in float64
            risky = torch.amin(M * plan.inv_ystar, dim=0) < energy
            if bool(risky.any()):
                idx = risky.nonzero().squeeze(1)
                seg64 = _segment(x, c0, c1, s0, s1, off, pad_mode, np.float64)
                M[:, idx] = mel_f64(ws, seg64, idx)
        M.log10_().mul_(10.0)
        out_t[c0:c1, :, f0:f1] = M.view(n_mels, k, m).transpose(0, 1)

    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        if n_threads == 1 or len(items) == 1:
            for item in items:
                work(item)
        else:
            with ThreadPoolExecutor(min(n_threads, len(items))) as pool:
                for _ in pool.map(work, items):
                    pass
    finally:
        torch.set_num_threads(prev)
    return out[0] if squeeze else out
