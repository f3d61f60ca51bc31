"""LogMel: log-mel energies computed once per recording, content-keyed cache."""

from __future__ import annotations

import os
import warnings
from collections import Counter
from numbers import Integral, Real

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, check_memory

from .._audio import RESAMPLERS, apply_impulse_response
from .._disk_store import STORE_DTYPES
from .._featureset import AudioLink, AudioSet, FeatureSet
from .._logmel import logmel, mel_filterbank
from .._rows import is_path_array
from ._impulse import ImpulseResponseAugmentation
from ._input import audio_set, check_n_features, check_waveforms
from ._feature_store import layout_key, write_feature_store
from ._recording_audio import content_digest, load_recording, raw_content, read_units

__all__ = ["LogMel"]


def _recording_features(units, params, read, raws=None):
    """Log-mel of one recording, time-major (frames, bands), piece lengths,
    and the rate each unit was resampled from (None: not resampled)."""
    signal, lengths, rates = load_recording(units, params["sr"], read["resample"], raws)
    feats = logmel(signal[None, :], **params)[0]  # (bands, frames)
    return np.ascontiguousarray(feats.T), lengths, rates


def _cached_recording_features(units, raws, digests, params, read):
    """:func:`_recording_features` for the cache, which keys it on
    ``digests``, ``params`` and ``read`` (the resampler) only: ``units`` and
    ``raws`` are ignored, the digests stand for them."""
    return _recording_features(units, params, read, raws)


def _variant_features(units, params, read, responses, raws=None):
    """Log-mel of a recording convolved with each of ``responses``, time-major,
    one array per response (the signal is loaded once, the log-mels batched)."""
    signal = load_recording(units, params["sr"], read["resample"], raws)[0]
    convolved = np.stack([apply_impulse_response(signal, h) for h in responses])
    return [np.ascontiguousarray(f.T) for f in logmel(convolved, **params)]


def _cached_variant_features(units, raws, digests, params, read, response, response_digest):
    """One variant of :func:`_variant_features` for the cache, keyed on the
    recording's ``digests``, ``params``, ``read`` and ``response_digest``
    (the response's content): ``units``, ``raws`` and ``response`` are
    ignored, the digests stand for them."""
    return _variant_features(units, params, read, [response], raws)[0]


def _describe_piece(audio, r, k):
    """The row of X (and file) holding piece ``k`` of recording ``r``."""
    rows = np.flatnonzero((audio.row_recording == r) & (audio.row_piece == k))
    if rows.size == 0:  # a piece no row points at: name the recording's first row
        rows = np.flatnonzero(audio.row_recording == r)
    piece = audio.recordings[r][k]
    where = f"row {int(rows[0])} of X"
    return f"file {piece!r} ({where})" if isinstance(piece, str) else where


def _check_finite_features(audio, per_rec, sr, resample):
    """Refuse features that overflowed: finite samples far above full scale
    (~1e19 and more) give a power beyond float32's range, i.e. inf log-mel."""
    for r, (feats, *_) in per_rec.items():
        if np.isfinite(feats).all():
            continue
        signal, lengths, _ = load_recording(read_units(audio.recordings[r]), sr, resample)
        peaks = [float(np.max(np.abs(x))) for x in np.split(signal, np.cumsum(lengths)[:-1])]
        k = int(np.argmax(peaks))
        raise ValueError(
            f"the log-mel features of {_describe_piece(audio, r, k)} are not finite:"
            f" the audio's power overflows float32 (largest |sample| {peaks[k]:.3g})."
            " Waveforms must be float samples in [-1, 1] or integer PCM: scale the"
            " audio down"
        )


class LogMel(TransformerMixin, BaseEstimator):
    """Log-mel energies, computed once per recording.

    Defaults are the paper's: 44.1 kHz, ``n_fft=4096``, Hamming window of
    3,528 samples (80 ms), hop 882 (20 ms), centred frames, 256 mel bands,
    ``10 * log10(max(power, amin))`` -> 256 x 51 per 1-s clip.  The values
    equal librosa's ``power_to_db(melspectrogram(...), top_db=None)`` on the
    same parameters (to 1e-3 dB) and are computed by a faster batched
    kernel (``skasc._logmel``).

    Input: the output of :class:`Reassembler`, or file paths / clip rows
    (``<file>#t=<start>,<end>``, of which only those seconds are read) / a
    2-D array of waveforms (each row then its own recording).  The clips of
    one file that a recording joins are read, and resampled, as one stretch
    of audio; a clip without Reassembler's context on its own.  Output: a
    :class:`~skasc.FeatureSet`, whose array view is ``(n_clips, n_mels *
    frames)`` and whose ``resampled`` lists the files resampled.
    Waveform arrays are float (full scale 1) or integer PCM (int16, int32,
    int8, uint8), scaled to [-1, 1] exactly as soundfile reads the same
    samples from a file: a clip gives the same features as a path and as
    an int16 array.  ``X`` is never modified.

    Refused with a ValueError: settings under which some mel band contains
    no FFT bin (too many bands for ``n_fft``; librosa only warns "Empty
    filters detected") or ``fmax`` above the Nyquist frequency ``sr / 2``
    (checked in :meth:`fit`), and audio whose features are not finite
    (samples so far above full scale that the power overflows float32;
    checked in :meth:`transform`, naming the row and file).

    Parameters
    ----------
    sr : int, default=44100
        Sampling rate in Hz the audio must have (or is resampled to, see
        ``resample``).
    n_fft : int, default=4096
        FFT size; a frame has ``1 + n_fft // 2`` frequency bins.
    win_length : int, default=3528
        Hamming window length (80 ms at 44.1 kHz), ``win_length <= n_fft``;
        the window is zero-padded and centred to ``n_fft`` as in librosa.
    hop_length : int, default=882
        Hop between frames (20 ms at 44.1 kHz): 51 frames per 1-s clip.
    n_mels : int, default=256
        Number of mel bands (Slaney mel scale and normalisation, librosa's
        defaults).
    fmin : float, default=0.0
        Lowest filter frequency in Hz, ``fmin < fmax``.
    fmax : float or None, default=None
        Highest filter frequency in Hz, at most ``sr / 2``; None: ``sr / 2``.
    n_jobs : int, default=None
        Recordings are computed in parallel with joblib on this many
        workers (None: 1, -1: all cores).
    memory : str, joblib.Memory or None, default=None
        Cache of per-recording features.  The key is the feature parameters
        and a BLAKE2b digest of the content of every piece: all the bytes of
        each audio file, all the samples of each array.  Paths, sizes and
        modification times play no part, so a file rewritten with other
        samples is recomputed even if its size and modification time are
        unchanged, and a copy of a file under another name is served from the
        cache.  Each file is read once per transform (to digest it) and, on a
        miss, decoded from the bytes that were digested: digesting costs a
        fraction of computing the features (the pipeline guide gives
        measured times).
    verbose : int, default=0
        Show a progress bar over recordings when > 0.
    resample : {"soxr_vhq", "soxr_hq", "soxr_mq", "soxr_lq", "soxr_qq"} or None, default=None
        What to do with a file stored at another rate than ``sr``.  None
        refuses it (a ValueError naming the file, as for TAU22, where every
        clip must be 44.1 kHz).  A soxr quality resamples it to ``sr`` with
        ``librosa.resample(x, orig_sr=rate, target_sr=sr, res_type=resample)``
        before the features are computed, so they equal librosa's log-mel of
        the resampled signal.  The output's ``resampled`` attribute lists the
        files resampled, with their rates; the cache key includes this
        parameter.

    feature_store : str, path-like or None, default=None
        None: the features are held in memory (fastest while they fit).  A
        folder: they are written to a store on disk there and read back
        batch by batch (:class:`~skasc._disk_store.DiskStore`), so that
        fitting, predicting and the teacher-output pass hold a batch, not
        the data set; the store is keyed on the rows, the parameters and
        the audio's content (a changed file is recomputed, a store is
        never read half-written) and an interrupted run resumes where it
        stopped.  For the full TAU22 development set (the training split's
        features are ~6.8 GiB at 256x51) on a machine without that memory
        to spare.
    store_dtype : {"float32", "float16"}, default="float32"
        What the disk store holds: float16 halves its size (resolution
        ~0.03 dB at -60 dB); reads are float32 either way.

    Attributes
    ----------
    n_features_in_ : int
        Samples per clip when fitted on waveforms.

    Examples
    --------
    >>> import numpy as np
    >>> from skasc import LogMel
    >>> X = np.random.default_rng(0).normal(scale=0.1, size=(2, 44100)).astype("float32")
    >>> F = LogMel().fit_transform(X)
    >>> F.feature_shape, np.asarray(F).shape
    ((1, 256, 51), (2, 13056))
    """

    _parameter_constraints: dict = {
        "sr": [Interval(Integral, 1, None, closed="left")],
        "n_fft": [Interval(Integral, 2, None, closed="left")],
        "win_length": [Interval(Integral, 1, None, closed="left")],
        "hop_length": [Interval(Integral, 1, None, closed="left")],
        "n_mels": [Interval(Integral, 1, None, closed="left")],
        "fmin": [Interval(Real, 0, None, closed="left")],
        "fmax": [Interval(Real, 0, None, closed="neither"), None],
        "n_jobs": [Integral, None],
        "memory": [None, str, HasMethods(["cache"])],
        "verbose": ["verbose"],
        "resample": [StrOptions(set(RESAMPLERS)), None],
        "feature_store": [None, str, os.PathLike],
        "store_dtype": [StrOptions(set(STORE_DTYPES))],
    }

    def __init__(
        self, sr=44100, n_fft=4096, win_length=3528, hop_length=882, n_mels=256,
        fmin=0.0, fmax=None, n_jobs=None, memory=None, verbose=0, resample=None,
        feature_store=None, store_dtype="float32",
    ):
        self.sr = sr
        self.n_fft = n_fft
        self.win_length = win_length
        self.hop_length = hop_length
        self.n_mels = n_mels
        self.fmin = fmin
        self.fmax = fmax
        self.n_jobs = n_jobs
        self.memory = memory
        self.verbose = verbose
        self.resample = resample
        self.feature_store = feature_store
        self.store_dtype = store_dtype

    def _params(self):
        return dict(
            sr=self.sr, n_fft=self.n_fft, win_length=self.win_length,
            hop_length=self.hop_length, n_mels=self.n_mels, fmin=float(self.fmin),
            fmax=None if self.fmax is None else float(self.fmax),
        )

    def _check_settings(self):
        """What the parameter table cannot express: relations between them."""
        if self.win_length > self.n_fft:
            raise ValueError(f"win_length={self.win_length} must be <= n_fft={self.n_fft}")
        nyquist = self.sr / 2
        if self.fmax is not None and self.fmax > nyquist:
            raise ValueError(
                f"fmax={self.fmax!r} Hz is above the Nyquist frequency sr / 2 ="
                f" {nyquist:g} Hz: the mel bands above it would be empty; pass"
                f" fmax <= {nyquist:g} or None"
            )
        with warnings.catch_warnings():
            # librosa's "Empty filters detected": refused below, naming the parameters
            warnings.simplefilter("ignore", UserWarning)
            mel = mel_filterbank(self.sr, self.n_fft, self.n_mels, fmin=self.fmin, fmax=self.fmax)
        empty = np.flatnonzero(mel.max(axis=1) <= 0)
        if empty.size:
            top = nyquist if self.fmax is None else self.fmax
            raise ValueError(
                f"n_mels={self.n_mels} mel bands between fmin={self.fmin:g} and"
                f" fmax={top:g} Hz are too many for n_fft={self.n_fft} at"
                f" sr={self.sr}: {empty.size} of them (the first is band"
                f" {int(empty[0])}) contain no FFT bin, so they would be empty"
                " (constant features). Use fewer mel bands, a larger n_fft or a"
                " wider frequency range"
            )

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Check the settings (and the width of waveform rows).

        No audio is read: features are computed in :meth:`transform`.

        Parameters
        ----------
        X : AudioSet, array-like of shape (n_clips,) or (n_clips, n_samples)
            The output of :class:`Reassembler`, path rows or waveforms.
        y : None
            Ignored.

        Returns
        -------
        self : LogMel
        """
        self._check_settings()
        self.__dict__.pop("n_features_in_", None)
        if not isinstance(X, AudioSet) and not is_path_array(X):
            check_n_features(self, check_waveforms(X), reset=True)
        self.is_fitted_ = True
        return self

    def transform(self, X):
        """Log-mel features, computed once per recording.

        Parameters
        ----------
        X : AudioSet, array-like of shape (n_clips,) or (n_clips, n_samples)
            The output of :class:`Reassembler` (recordings as it joined
            them), path rows or waveforms (each row its own recording).

        Returns
        -------
        features : FeatureSet
            One row per clip; ``features.resampled`` lists the files
            resampled (with ``resample``) and their rates.
        """
        check_is_fitted(self, "is_fitted_")
        params = self._params()
        audio = audio_set(self, X)
        return self._features(audio, params)

    def _features(self, audio, params):
        memory = check_memory(self.memory)
        read = {"resample": self.resample}
        irs = audio.impulse_responses
        if irs is not None and audio.sr != params["sr"]:
            raise ValueError(
                f"the impulse responses are at {audio.sr} Hz but LogMel(sr={params['sr']}):"
                " give DeviceImpulseResponse and LogMel the same sr"
            )
        cached = cached_variant = None
        if memory.location is not None:
            cached = memory.cache(_cached_recording_features, ignore=["units", "raws"])
            cached_variant = memory.cache(_cached_variant_features,
                                          ignore=["units", "raws", "response"])

        def compute(r, with_digests=False):
            units = read_units(audio.recordings[r])
            # the responses this recording's variants are convolved with
            chosen = [] if irs is None else [int(i) for i in irs.assignment[r] if i >= 0]
            raws = digests = None
            if cached is not None or with_digests:
                # read once: what is digested is what is decoded
                raws = [raw_content(u) for u in units]
                digests = tuple(content_digest(u, c) for u, c in zip(units, raws))
            if cached is None:
                feats, lengths, rates = _recording_features(units, params, read, raws)
                variants = (_variant_features(units, params, read, [irs.responses[i] for i in chosen], raws)
                            if chosen else [])
            else:
                feats, lengths, rates = cached(units, raws, digests, params, read)
                variants = [cached_variant(units, raws, digests, params, read,
                                           irs.responses[i], irs.digests[i]) for i in chosen]
            # names are added here, outside the cache: a copy of a file under
            # another name is served from it
            resampled = {u.source: rate for u, rate in zip(units, rates) if rate is not None}
            if with_digests:
                return digests, feats, lengths, resampled, variants
            return feats, lengths, resampled, variants

        def digest_only(r):
            units = read_units(audio.recordings[r])
            return tuple(content_digest(u, raw_content(u)) for u in units)

        jobs = {"plain": compute, "compute": lambda r: compute(r, True), "digest": digest_only}

        def run(mode, chunks):
            fn = jobs[mode]
            return self._map_chunks(lambda rec_ids: [fn(r) for r in rec_ids], chunks,
                                    "LogMel (checking the store)" if mode == "digest" else "LogMel")

        used = np.unique(audio.row_recording)
        # chunks of <= 32 recordings: fine-grained progress, little dispatch overhead
        chunks = [c for c in np.array_split(used, max(1, -(-len(used) // 32))) if len(c)]
        if self.feature_store is not None:
            key = layout_key(audio, used, params, read, None if irs is None else irs, self.store_dtype)
            store, placement, resampled = write_feature_store(
                self.feature_store, self.store_dtype, chunks, key, run, int(self.n_mels),
                lambda part: _check_finite_features(audio, part, params["sr"], self.resample))
            features = locate_rows(audio, placement, store, self.hop_length, irs)
        else:
            per_rec = {}
            for c, res in zip(chunks, run("plain", chunks)):
                per_rec.update(zip(c.tolist(), res))
            _check_finite_features(audio, per_rec, params["sr"], self.resample)
            features = _assemble(audio, per_rec, self.hop_length, irs)
            resampled = {}
            for _, _, rates, _ in per_rec.values():
                resampled.update(rates)
        # the way back to the audio, for teachers with their own front end
        features.audio_link = AudioLink(audio, self.hop_length, self.resample)
        features.resampled = dict(sorted(resampled.items()))
        return features

    def _map_chunks(self, job, chunks, desc):
        """``job(chunk)`` for each chunk, in order, over ``n_jobs`` workers,
        with a progress bar when ``verbose``; a generator."""
        if self.n_jobs in (None, 1):
            if self.verbose:
                from tqdm.auto import tqdm

                chunks = tqdm(chunks, desc=desc, unit="chunk")
            return (job(c) for c in chunks)
        results = Parallel(n_jobs=self.n_jobs, return_as="generator")(delayed(job)(c) for c in chunks)
        if self.verbose:
            from tqdm.auto import tqdm

            results = tqdm(results, total=len(chunks), desc=desc, unit="chunk")
        return results

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


def _assemble(audio, per_rec, hop, irs=None):
    """Concatenate per-recording features in memory and locate every row's window.

    With impulse responses ``irs``, the variants' features (``per_rec[r][3]``)
    follow all the originals in the store.
    """
    order = sorted(per_rec)
    placement, pos = {}, 0
    for r in order:
        placement[r] = [pos, len(per_rec[r][0]), per_rec[r][1], []]
        pos += len(per_rec[r][0])
    parts = [per_rec[r][0] for r in order]
    if irs is not None:
        for r in order:
            for feats in per_rec[r][3]:
                placement[r][3].append(pos)
                pos += len(feats)
                parts.append(feats)
    store = np.concatenate(parts) if parts else np.zeros((0, 1), np.float32)
    del parts
    return locate_rows(audio, placement, store, hop, irs)


def locate_rows(audio, placement, store, hop, irs=None, frames_of=None):
    """The FeatureSet of ``audio``'s rows on ``store``.

    ``placement[r]`` is ``(first frame, frames, piece lengths in samples,
    first frame of each variant)`` of recording ``r`` in the store; a
    clip of ``n`` samples has ``frames_of(n)`` frames (default: centred
    frames, ``1 + n // hop``) and starts at frame ``offset // hop``.  With
    impulse responses ``irs``, the FeatureSet gets each row's variant
    offsets and an :class:`~skasc.ImpulseResponseAugmentation`.
    """
    if frames_of is None:
        def frames_of(n):
            return 1 + n // hop

    n = len(audio)
    rec_start = np.empty(n, np.int64)
    rec_stop = np.empty(n, np.int64)
    row_start = np.empty(n, np.int64)
    widths = np.empty(n, np.int64)
    for i in range(n):
        r, k = audio.row_recording[i], audio.row_piece[i]
        start, frames, lengths = placement[r][:3]
        offset = int(np.sum(lengths[:k]))
        widths[i] = frames_of(int(lengths[k]))
        rec_start[i] = start
        rec_stop[i] = start + frames
        # a clip starting on the hop grid has its own window at offset / hop
        row_start[i] = start + offset // hop
    counts = Counter(widths.tolist())
    if len(counts) > 1:
        common = counts.most_common(1)[0][0]
        odd = int(np.flatnonzero(widths != common)[0])
        raise ValueError(
            f"clips have different lengths, giving {sorted(counts)} frames; all "
            f"clips in X must have the same duration: "
            f"{_describe_piece(audio, audio.row_recording[odd], audio.row_piece[odd])} "
            f"gives {widths[odd]} frames, {counts[common]} other clips {common}"
        )
    width = int(widths[0]) if n else 1
    row_start = np.minimum(row_start, rec_stop - width)
    if irs is None:
        return FeatureSet(store, rec_start, rec_stop, row_start, width)
    n_variants = irs.assignment.shape[1]
    offsets = np.zeros((n, n_variants), np.int64)  # 0: no variant, the row itself
    for i in range(n):
        variant_starts = placement[audio.row_recording[i]][3]
        for k, v in enumerate(variant_starts):
            offsets[i, k] = v - rec_start[i]
    augmentation = ImpulseResponseAugmentation(p=irs.p, n_variants=n_variants, digest=irs.digest)
    return FeatureSet(store, rec_start, rec_stop, row_start, width, (augmentation,), variants=offsets)
