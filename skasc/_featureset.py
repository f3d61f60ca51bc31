"""Row containers passed between the pipeline steps.

scikit-learn's Pipeline keeps one row per sample from the first step to the
classifier and passes ``y`` through untouched.  The paper needs more than a
row of numbers per 1-s clip at training time: the clip's 10-s parent
recording (for random crops) and the list of augmentations to re-draw every
epoch.  The two containers below carry that context *beside* the rows:

* :class:`AudioSet` -- output of :class:`~skasc.Reassembler`: one row per
  clip, each pointing at its recording (a tuple of pieces, file paths or
  arrays, in playing order) and at its own piece inside it.
* :class:`FeatureSet` -- output of :class:`~skasc.LogMel` and of the
  augmentation steps: the log-mel features of every recording stored once,
  time-major, and for each row the frame range of its recording and of its
  own window, plus the augmentations attached by the steps after LogMel
  (and, after :class:`~skasc.DeviceImpulseResponse`, the features of each
  recording's convolved variants, stored beside the originals).

Both behave as read-only arrays for scikit-learn (``len``, ``shape``,
``dtype``, integer/boolean/slice indexing, ``__array__``); the array view is
always the deterministic one: each row's own clip.  Random views are only
produced during training, by :func:`skasc._training.draw_batch` from the
pieces drawn here (:meth:`FeatureSet.draw_starts`,
:meth:`FeatureSet.draw_mask_plan`, :meth:`FeatureSet.mix_styles`), once per
batch with a generator seeded from ``random_state``, the epoch and the batch.
"""

from __future__ import annotations

import dataclasses
import numpy as np
import torch

__all__ = [
    "AudioSet",
    "FeatureSet",
    "CropAugmentation",
    "MaskAugmentation",
    "MixStyleAugmentation",
    "ImpulseResponseAugmentation",
    "AudioLink",
]


def _row_index(key, n):
    """Turn any scikit-learn style row key into an int64 index array."""
    if isinstance(key, (int, np.integer)):
        raise TypeError(
            "Row containers are indexed with slices, integer arrays or boolean "
            "masks; a single integer would drop the row axis."
        )
    if isinstance(key, tuple):
        # scikit-learn's _safe_indexing asks for array[rows, ...]
        if len(key) == 2 and (key[1] is Ellipsis or key[1] == slice(None)):
            key = key[0]
        else:
            raise IndexError("row containers only index rows: use X[rows] or X[rows, ...]")
    if isinstance(key, slice):
        return np.arange(n, dtype=np.int64)[key]
    key = np.asarray(key)
    if key.dtype == bool:
        if key.shape != (n,):
            raise IndexError(f"boolean mask of shape {key.shape} for {n} rows")
        return np.flatnonzero(key).astype(np.int64)
    if key.ndim != 1 or not np.issubdtype(key.dtype, np.integer):
        raise IndexError("rows must be indexed by a 1-D integer array, a slice or a mask")
    if key.size and (key.max() >= n or key.min() < -n):
        raise IndexError(f"row index out of range for {n} rows")
    return np.where(key < 0, key + n, key).astype(np.int64)


class AudioSet:
    """Clips with their parent recordings, as produced by :class:`~skasc.Reassembler`.

    Parameters
    ----------
    recordings : list of tuple
        Each recording is a tuple of pieces in playing order; a piece is a
        file path (str: a whole file, or a clip row
        ``<file>#t=<start>,<end>`` naming seconds of a file) or a 1-D
        float32 waveform.
    row_recording : array of int, shape (n_rows,)
        Index of each row's recording.
    row_piece : array of int, shape (n_rows,)
        Position of each row's own clip among its recording's pieces.
    sr : int
        Sample rate of every piece.
    impulse_responses : ImpulseResponseVariants, default=None
        Set by :meth:`DeviceImpulseResponse.fit_transform
        <skasc.DeviceImpulseResponse.fit_transform>` (training view only):
        the impulse responses and which of them each recording is convolved
        with, for :class:`~skasc.LogMel` to compute the variants' features.
        None everywhere else.

    Examples
    --------
    >>> import numpy as np
    >>> from skasc import AudioSet
    >>> a, b = np.zeros(100, "float32"), np.ones(100, "float32")
    >>> audio = AudioSet([(a, b)], row_recording=[0, 0], row_piece=[1, 0], sr=100)
    >>> audio.shape, float(audio.row_clip(0)[0])
    ((2, 100), 1.0)
    """

    def __init__(self, recordings, row_recording, row_piece, sr, impulse_responses=None):
        self.recordings = list(recordings)
        self.row_recording = np.asarray(row_recording, dtype=np.int64)
        self.row_piece = np.asarray(row_piece, dtype=np.int64)
        self.sr = int(sr)
        self.impulse_responses = impulse_responses

    def __len__(self):
        return len(self.row_recording)

    @property
    def dtype(self):
        return np.dtype(np.float32)

    @property
    def shape(self):
        if len(self) == 0:
            return (0, 0)
        from ._rows import fragment_samples, split_fragment

        piece = self.recordings[self.row_recording[0]][self.row_piece[0]]
        if isinstance(piece, str):
            _, start, end = split_fragment(piece)
            if start is not None:  # known without reading (or resampling) the file
                return (len(self), fragment_samples(start, end, self.sr))
        return (len(self), len(self.row_clip(0)))

    @property
    def ndim(self):
        return 2

    def row_clip(self, i, resample=None):
        """The row's own clip as a 1-D float32 waveform at ``sr`` Hz.

        A clip row ``<file>#t=<start>,<end>`` reads only those seconds of the
        file.  ``resample`` (a soxr quality, e.g. ``"soxr_hq"``) resamples a
        file stored at another rate; None refuses it.
        """
        from ._audio import read_clip, read_segment
        from ._rows import split_fragment

        piece = self.recordings[self.row_recording[i]][self.row_piece[i]]
        if isinstance(piece, str):
            file, start, end = split_fragment(piece)
            if start is not None:
                return read_segment(file, start, end, sr=self.sr, resample=resample)
            return read_clip(piece, sr=self.sr, resample=resample)
        return piece

    def __getitem__(self, key):
        rows = _row_index(key, len(self))
        # the recordings list is shared, so the per-recording assignment stays valid
        return AudioSet(self.recordings, self.row_recording[rows], self.row_piece[rows], self.sr,
                        self.impulse_responses)

    def __array__(self, dtype=None, copy=None):
        clips = [self.row_clip(i) for i in range(len(self))]
        lengths = np.array([len(c) for c in clips], dtype=np.int64)
        if len(np.unique(lengths)) > 1:
            values, counts = np.unique(lengths, return_counts=True)
            odd = int(np.flatnonzero(lengths != values[np.argmax(counts)])[0])
            piece = self.recordings[self.row_recording[odd]][self.row_piece[odd]]
            where = f"row {odd}" + (f" (file {piece!r})" if isinstance(piece, str) else "")
            raise ValueError(
                f"clips have different lengths {values.tolist()}; they cannot be "
                f"viewed as one 2-D array: {where} has {lengths[odd]} samples, "
                f"{counts.max()} other clips {values[np.argmax(counts)]}"
            )
        out = np.stack(clips) if clips else np.zeros((0, 0), np.float32)
        return out if dtype is None else out.astype(dtype)

    def __repr__(self):
        irs = "" if self.impulse_responses is None else (
            f", impulse_responses={len(self.impulse_responses.digests)}")
        return (f"AudioSet(n_rows={len(self)}, n_recordings={len(self.recordings)}, "
                f"sr={self.sr}{irs})")


@dataclasses.dataclass(frozen=True, eq=False)
class ImpulseResponseVariants:
    """Impulse responses and the variants of each recording to render.

    What :class:`~skasc.DeviceImpulseResponse` hands :class:`~skasc.LogMel`
    through :attr:`AudioSet.impulse_responses`.

    Attributes
    ----------
    responses : tuple of ndarray
        The impulse responses, float32, normalised (unit energy).
    digests : tuple of str
        BLAKE2b of each response's samples and rate: the feature cache's
        key for a variant.
    files : tuple of str
        Where each response was read from (for messages).
    assignment : ndarray of int, shape (n_recordings, n_variants)
        For each recording of the AudioSet, the response of each of its
        variants (an index into ``responses``), -1 where the recording has
        no such variant (it is not eligible).
    p : float
        Probability that a training row is drawn from one of its variants.
    digest : str
        BLAKE2b of everything above (what a training fingerprint needs).
    """

    responses: tuple
    digests: tuple
    files: tuple
    assignment: np.ndarray
    p: float
    digest: str


@dataclasses.dataclass(frozen=True, eq=False)
class AudioLink:
    """The way back from a FeatureSet's rows to the audio they came from.

    Set by :class:`~skasc.LogMel` so that a teacher with its own front end
    (e.g. :class:`~skasc.PretrainedClassifier`) can be given the audio of
    the very windows the student sees.

    Attributes
    ----------
    audio : AudioSet
        One row per FeatureSet row, in the same order.
    hop_length : int
        Samples (at ``audio.sr``) between two feature frames: window start
        frame ``s`` of a recording is its sample ``s * hop_length``.
    resample : str or None
        How files at another rate were resampled (LogMel's ``resample``).

    Examples
    --------
    >>> import numpy as np
    >>> from skasc import LogMel
    >>> X = np.zeros((3, 44100), "float32")
    >>> link = LogMel().fit_transform(X).audio_link
    >>> link.hop_length, link.audio.sr, len(link[[0, 2]].audio)
    (882, 44100, 2)
    """

    audio: AudioSet
    hop_length: int
    resample: str | None = None

    def __getitem__(self, rows):
        return AudioLink(self.audio[rows], self.hop_length, self.resample)


@dataclasses.dataclass(frozen=True)
class CropAugmentation:
    """Random window of the row's recording instead of its own window.

    ``step`` is the grid of allowed start frames (1: any frame), ``p`` the
    probability that a row is cropped at random rather than at its own
    window.

    Examples
    --------
    >>> from skasc import CropAugmentation
    >>> CropAugmentation(step=50)
    CropAugmentation(step=50, p=1.0)
    """

    step: int = 1
    p: float = 1.0


@dataclasses.dataclass(frozen=True)
class MaskAugmentation:
    """SpecAugment masks to draw at training time.

    ``n_freq`` frequency masks and ``n_time`` time masks, each of a width
    drawn uniformly from 0 to ``freq_width`` / ``time_width`` (inclusive),
    set to ``value``.

    Examples
    --------
    >>> from skasc import MaskAugmentation
    >>> MaskAugmentation(freq_width=8).n_freq
    1
    """

    freq_width: int = 10
    time_width: int = 10
    n_freq: int = 1
    n_time: int = 1
    value: float = 0.0


@dataclasses.dataclass(frozen=True)
class MixStyleAugmentation:
    """Frequency-MixStyle to draw at training time (see :class:`~skasc.FreqMixStyle`).

    With probability ``p`` per batch, each row's per-band mean and standard
    deviation over its frames (``eps`` added to the variance) are replaced
    by a ``Beta(alpha, alpha)`` mix of its own and those of a row drawn by a
    random permutation of the batch.

    Examples
    --------
    >>> from skasc import MixStyleAugmentation
    >>> MixStyleAugmentation()
    MixStyleAugmentation(p=0.4, alpha=0.3, eps=1e-06)
    """

    p: float = 0.4
    alpha: float = 0.3
    eps: float = 1e-6


@dataclasses.dataclass(frozen=True)
class ImpulseResponseAugmentation:
    """Rows drawn from their recordings' convolved variants at training time.

    Attached by :class:`~skasc.LogMel` when its input came from
    :class:`~skasc.DeviceImpulseResponse`: with probability ``p`` a training
    row's window is taken from one of its recording's ``n_variants``
    convolved copies (uniformly), whose features
    :attr:`FeatureSet.variants` locates in the store.  ``digest`` stands for
    the impulse responses and the assignment of responses to recordings.

    Examples
    --------
    >>> from skasc import ImpulseResponseAugmentation
    >>> ImpulseResponseAugmentation(p=0.4, n_variants=2).n_variants
    2
    """

    p: float = 0.4
    n_variants: int = 1
    digest: str = ""


class FeatureSet:
    """Per-recording features with one row per clip.

    Parameters
    ----------
    store : ndarray of shape (n_frames_total, n_bands)
        Features of all recordings, time-major, concatenated.
    rec_start, rec_stop : array of int, shape (n_rows,)
        Frame range in ``store`` of each row's recording.
    row_start : array of int, shape (n_rows,)
        First frame of each row's own window.
    width : int
        Frames per row (51 for a 1-s clip at the paper's 20-ms hop).
    augmentations : tuple
        :class:`CropAugmentation` / :class:`MaskAugmentation` /
        :class:`MixStyleAugmentation` / :class:`ImpulseResponseAugmentation`
        objects to draw at training time, in order.
    resampled : dict, default=None
        ``{file: sample rate}`` of the files whose audio :class:`~skasc.LogMel`
        resampled to compute these features (None: none).
    variants : array of int, shape (n_rows, n_variants), default=None
        For each row, where each convolved variant of its recording lies in
        ``store``: the variant's first frame minus ``rec_start`` (0: the row
        has no such variant).  Set by :class:`~skasc.LogMel` after
        :class:`~skasc.DeviceImpulseResponse`; only training draws use it.
    audio_link : AudioLink, default=None
        Where the rows' audio is (set by :class:`~skasc.LogMel`; None for
        features given as arrays).

    Notes
    -----
    ``np.asarray(fs)`` gives the deterministic view, shape
    ``(n_rows, n_bands * width)`` (band-major, i.e. a reshape of
    ``(n_rows, n_bands, width)``); :attr:`feature_shape` tells the
    classifier how to unflatten it.

    Examples
    --------
    >>> import numpy as np
    >>> from skasc import FeatureSet
    >>> F = FeatureSet.from_array(np.zeros((3, 4, 5), "float32"))  # 3 clips, 4 bands, 5 frames
    >>> F.shape, F.feature_shape, F.windows([0]).shape
    ((3, 20), (1, 4, 5), (1, 4, 5))
    """

    def __init__(self, store, rec_start, rec_stop, row_start, width, augmentations=(),
                 resampled=None, variants=None, audio_link=None):
        store = np.asarray(store)
        if store.ndim != 2:
            raise ValueError(f"store must be 2-D (frames, bands), got shape {store.shape}")
        self.store = np.ascontiguousarray(store, dtype=np.float32)
        self.rec_start = np.asarray(rec_start, dtype=np.int64)
        self.rec_stop = np.asarray(rec_stop, dtype=np.int64)
        self.row_start = np.asarray(row_start, dtype=np.int64)
        self.width = int(width)
        self.augmentations = tuple(augmentations)
        self.resampled = dict(resampled or {})
        n = len(self.row_start)
        if audio_link is not None and len(audio_link.audio) != n:
            raise ValueError(f"audio_link has {len(audio_link.audio)} rows for {n} feature rows")
        self.audio_link = audio_link
        if not (len(self.rec_start) == len(self.rec_stop) == n):
            raise ValueError("rec_start, rec_stop and row_start must have one entry per row")
        if n and (
            np.any(self.rec_stop - self.rec_start < self.width)
            or np.any(self.row_start < self.rec_start)
            or np.any(self.row_start + self.width > self.rec_stop)
            or np.any(self.rec_stop > len(self.store))
        ):
            raise ValueError("every row's window must lie inside its recording and the store")
        self.variants = None
        if variants is not None:
            variants = np.asarray(variants, dtype=np.int64)
            if variants.ndim != 2 or len(variants) != n:
                raise ValueError(f"variants must have shape (n_rows={n}, n_variants), got {variants.shape}")
            if n and variants.size and (
                np.any(self.rec_start[:, None] + variants < 0)
                or np.any(self.rec_stop[:, None] + variants > len(self.store))
            ):
                raise ValueError("every variant of a row's recording must lie inside the store")
            self.variants = variants

    # -- construction -----------------------------------------------------
    @classmethod
    def from_array(cls, X):
        """Wrap plain features, each row its own recording.

        ``X`` of shape (n, bands, frames) is taken as it is; (n, d) as one
        band of ``d`` frames.
        """
        X = np.asarray(X, dtype=np.float32)
        if X.ndim == 2:
            X = X[:, None, :]
        if X.ndim != 3:
            raise ValueError(f"features must be 2-D or 3-D, got shape {X.shape}")
        n, bands, frames = X.shape
        store = np.ascontiguousarray(X.transpose(0, 2, 1)).reshape(n * frames, bands)
        start = np.arange(n, dtype=np.int64) * frames
        return cls(store, start, start + frames, start, frames)

    def with_augmentation(self, augmentation):
        """Copy (sharing the store) with one more augmentation attached."""
        return FeatureSet(
            self.store, self.rec_start, self.rec_stop, self.row_start, self.width,
            self.augmentations + (augmentation,), self.resampled, self.variants,
            self.audio_link,
        )

    def without_augmentations(self):
        """Copy (sharing the store) without augmentations or variants: the
        predict-time view."""
        return FeatureSet(self.store, self.rec_start, self.rec_stop, self.row_start, self.width,
                          resampled=self.resampled, audio_link=self.audio_link)

    # -- array protocol ---------------------------------------------------
    def __len__(self):
        return len(self.row_start)

    @property
    def n_bands(self):
        return self.store.shape[1]

    @property
    def feature_shape(self):
        """(channels, bands, frames) of one row as the network sees it."""
        return (1, self.n_bands, self.width)

    @property
    def shape(self):
        return (len(self), self.n_bands * self.width)

    @property
    def ndim(self):
        return 2

    @property
    def dtype(self):
        return self.store.dtype

    def __getitem__(self, key):
        rows = _row_index(key, len(self))
        return FeatureSet(
            self.store, self.rec_start[rows], self.rec_stop[rows], self.row_start[rows],
            self.width, self.augmentations, self.resampled,
            None if self.variants is None else self.variants[rows],
            None if self.audio_link is None else self.audio_link[rows],
        )

    def windows(self, rows=None, starts=None):
        """Features of ``rows`` at frame ``starts``, shape (n, bands, width)."""
        rows = np.arange(len(self)) if rows is None else np.asarray(rows)
        starts = self.row_start[rows] if starts is None else np.asarray(starts)
        frames = starts[:, None] + np.arange(self.width)
        return self.store[frames].transpose(0, 2, 1)

    def __array__(self, dtype=None, copy=None):
        out = self.windows().reshape(len(self), -1)
        return out if dtype is None else out.astype(dtype)

    def __repr__(self):
        augs = ", ".join(type(a).__name__ for a in self.augmentations) or "none"
        return (
            f"FeatureSet(n_rows={len(self)}, feature_shape={self.feature_shape}, "
            f"store_frames={len(self.store)}, augmentations={augs})"
        )

    def band_statistics(self):
        """Mean and standard deviation of each band over the frames of the
        rows' recordings, each recording counted once."""
        spans = np.unique(np.stack([self.rec_start, self.rec_stop], axis=1), axis=0)
        frames = self.store[np.concatenate([np.arange(a, b) for a, b in spans])]
        return frames.mean(axis=0), frames.std(axis=0)

    # -- training-time draws ----------------------------------------------
    def draw_starts(self, rows, rng):
        """Window start (store frame) per row after the crop augmentations
        and, with an :class:`ImpulseResponseAugmentation`, in the variant
        drawn for the row.

        Crops are drawn first, in the order they were attached; then, per
        impulse-response augmentation, whether each row takes a variant and
        which.  Without such an augmentation nothing more is drawn, so the
        crops are the same numbers as without this feature.
        """
        rows = np.asarray(rows)
        starts = self.row_start[rows].copy()
        for aug in self.augmentations:
            if not isinstance(aug, CropAugmentation):
                continue
            lo = self.rec_start[rows]
            n_pos = (self.rec_stop[rows] - self.width - lo) // aug.step + 1
            random_starts = lo + aug.step * np.floor(rng.random(len(rows)) * n_pos).astype(np.int64)
            take = rng.random(len(rows)) < aug.p
            starts = np.where(take, random_starts, starts)
        for aug in self.augmentations:
            if not isinstance(aug, ImpulseResponseAugmentation) or self.variants is None:
                continue
            take = rng.random(len(rows)) < aug.p
            k = np.floor(rng.random(len(rows)) * self.variants.shape[1]).astype(np.int64)
            if self.variants.shape[1]:
                # the same window, in the variant's copy of the recording
                starts = np.where(take, starts + self.variants[rows, k], starts)
        return starts

    def source_starts(self, rows, starts):
        """The window starts of the original recordings that ``starts`` (as
        drawn by :meth:`draw_starts`) are copies of.

        A start inside a convolved variant maps to the same frame of the
        row's own recording; any other start is returned as it is.  For
        anything keyed on the clean features, e.g. cached teacher outputs.
        """
        rows, starts = np.asarray(rows), np.asarray(starts, dtype=np.int64)
        if self.variants is None or not self.variants.shape[1]:
            return starts.copy()
        offsets = np.concatenate([np.zeros((len(rows), 1), np.int64), self.variants[rows]], axis=1)
        lo = self.rec_start[rows, None] + offsets
        inside = (starts[:, None] >= lo) & (starts[:, None] < self.rec_stop[rows, None] + offsets)
        which = np.argmax(inside, axis=1)  # the original (column 0) first
        return starts - offsets[np.arange(len(rows)), which]

    def mix_styles(self, x, rng):
        """Apply the attached :class:`MixStyleAugmentation` objects to a drawn batch.

        ``x`` is the batch after crops and masks, a numpy array or torch
        tensor (on any device) of shape (n, bands, frames) or
        (n, channels, bands, frames); statistics are taken over the frames
        (the last axis) of each row and band.  Draws, per augmentation, one
        uniform number (is the batch mixed?) and, if it is, ``n`` Beta
        weights and a permutation of the rows.  Without such augmentations
        it returns ``x`` itself and draws nothing.
        """
        for aug in self.augmentations:
            if isinstance(aug, MixStyleAugmentation):
                x = _mix_style(x, aug, rng)
        return x

    def draw_mask_plan(self, n, rng):
        """The SpecAugment masks for ``n`` rows: (axis, start, width, value) each."""
        plan = []
        for aug in self.augmentations:
            if isinstance(aug, MaskAugmentation):
                plan += _mask_plan(aug, n, self.n_bands, self.width, rng)
        return plan


def _mix_style(x, aug, rng):
    """Frequency-MixStyle of one batch (see :meth:`FeatureSet.mix_styles`)."""
    if not rng.random() < aug.p:
        return x
    n = x.shape[0]
    lam = rng.beta(aug.alpha, aug.alpha, size=n).astype(np.float32)
    perm = rng.permutation(n)
    shape = (n,) + (1,) * (x.ndim - 1)
    if isinstance(x, torch.Tensor):
        # two passes: torch.var_mean over a short last axis is several times slower
        mu = x.mean(dim=-1, keepdim=True)
        d = x - mu
        sig = ((d * d).mean(dim=-1, keepdim=True) + aug.eps).sqrt()
        lam = torch.as_tensor(lam, device=x.device).view(shape)
        perm = torch.as_tensor(perm, device=x.device)
    else:
        mu = x.mean(axis=-1, keepdims=True)
        d = x - mu
        sig = np.sqrt((d * d).mean(axis=-1, keepdims=True) + np.float32(aug.eps))
        lam = lam.reshape(shape)
    mu_mix = lam * mu + (1 - lam) * mu[perm]
    sig_mix = lam * sig + (1 - lam) * sig[perm]
    return d * (sig_mix / sig) + mu_mix


def _mask_ranges(n, size, max_width, rng):
    width = rng.integers(0, max_width + 1, size=n) if max_width > 0 else np.zeros(n, np.int64)
    width = np.minimum(width, size)
    start = np.floor(rng.random(n) * (size - width + 1)).astype(np.int64)
    return start, width


def _mask_plan(aug, n, bands, frames, rng):
    plan = []
    for _ in range(aug.n_freq):
        plan.append((1, *_mask_ranges(n, bands, aug.freq_width, rng), aug.value))
    for _ in range(aug.n_time):
        plan.append((2, *_mask_ranges(n, frames, aug.time_width, rng), aug.value))
    return plan


def as_tensor_windows(x):
    """float32 tensor of shape (n, 1, bands, frames) from (n, bands, frames)."""
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).unsqueeze(1)
