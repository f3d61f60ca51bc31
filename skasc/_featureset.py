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
produced during training, by :func:`skasc.preprocessing._augmentation.draw_batch`,
which has each attached augmentation draw itself on the batch, once per
batch with a generator seeded from ``random_state``, the epoch and the batch.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from ._disk_store import DiskStore

__all__ = [
    "AudioSet",
    "FeatureSet",
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
        :class:`~skasc.CropAugmentation` / :class:`~skasc.MaskAugmentation` /
        :class:`~skasc.MixStyleAugmentation` /
        :class:`~skasc.ImpulseResponseAugmentation` objects (each draws
        itself on a training batch), in the order attached.
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
        if not isinstance(store, DiskStore):  # a disk store stays on disk
            store = np.asarray(store)
            if store.ndim != 2:
                raise ValueError(f"store must be 2-D (frames, bands), got shape {store.shape}")
            store = np.ascontiguousarray(store, dtype=np.float32)
        self.store = store
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
        if isinstance(self.store, DiskStore):
            return self.store.windows(starts, self.width).transpose(0, 2, 1)
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

    def recording_spans(self):
        """The (start, stop) store frames of the rows' recordings, each once,
        sorted: shape (n_recordings, 2)."""
        return np.unique(np.stack([self.rec_start, self.rec_stop], axis=1), axis=0)

    def band_statistics(self):
        """Mean and standard deviation of each band over the frames of the
        rows' recordings, each recording counted once (float32).

        A :class:`~skasc._disk_store.DiskStore` is read recording by
        recording, the sums kept in float64: memory holds one recording.
        """
        if isinstance(self.store, DiskStore):
            n, total, squares = 0, np.zeros(self.n_bands), np.zeros(self.n_bands)
            for a, b in self.recording_spans():
                frames = self.store[a:b].astype(np.float64)
                n, total, squares = n + len(frames), total + frames.sum(0), squares + (frames**2).sum(0)
            mean = total / max(n, 1)
            std = np.sqrt(np.maximum(squares / max(n, 1) - mean**2, 0.0))
            return mean.astype(np.float32), std.astype(np.float32)
        frames = self.store[np.concatenate([np.arange(a, b) for a, b in self.recording_spans()])]
        return frames.mean(axis=0), frames.std(axis=0)

    def abs_max(self):
        """Largest magnitude in the rows' recordings (read recording by recording)."""
        return max((float(np.abs(self.store[a:b]).max()) for a, b in self.recording_spans() if b > a),
                   default=0.0)

    def source_starts(self, rows, starts):
        """The window starts of the original recordings that ``starts`` (as
        drawn by the window stages of the augmentations) are copies of.

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


def as_tensor_windows(x):
    """float32 tensor of shape (n, 1, bands, frames) from (n, bands, frames)."""
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).unsqueeze(1)
