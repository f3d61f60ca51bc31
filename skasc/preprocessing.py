"""scikit-learn transformers of the paper's audio front end.

The four steps keep one row per 1-s clip from start to end, so ``y`` stays
aligned inside an ordinary :class:`sklearn.pipeline.Pipeline`:

``Reassembler`` -> ``LogMel`` -> ``RandomCrop`` -> ``SpecAugment`` -> classifier

* At **fit** time, :class:`Reassembler` gives each clip its 10-s parent
  recording, :class:`LogMel` computes the features once per recording, and
  :class:`RandomCrop` / :class:`SpecAugment` attach their augmentation to
  the rows.  The classifier re-draws crops and masks for every batch of
  every epoch (see :class:`~skasc.FeatureSet`).
* At **predict** time (``transform``), every clip stands alone: features
  are computed on the 1-s clip itself and the augmentation steps are the
  identity, which is the paper's test protocol.

Two steps of the DCASE 2024/2025 recipes fit the same scheme (see the
generalization guide): :class:`DeviceImpulseResponse`, between
``Reassembler`` and ``LogMel``, has ``LogMel`` compute the features of a few
convolved copies of each recording once, beside the originals, and
:class:`FreqMixStyle`, after ``LogMel``, attaches Frequency-MixStyle, drawn
per batch like the masks.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections import Counter, defaultdict
from numbers import Integral, Real

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, check_memory

from ._audio import (
    RESAMPLERS,
    _seconds_text,
    apply_impulse_response,
    decode_audio,
    finish_span,
    fragment_samples,
    parse_clip_name,
    read_clip,
    read_file,
    read_impulse_responses,
    read_span,
    split_fragment,
    validate_waveforms,
)
from ._featureset import (
    AudioLink,
    AudioSet,
    CropAugmentation,
    FeatureSet,
    ImpulseResponseAugmentation,
    ImpulseResponseVariants,
    MaskAugmentation,
    MixStyleAugmentation,
)
from ._logmel import logmel, mel_filterbank

__all__ = [
    "Reassembler",
    "DeviceImpulseResponse",
    "LogMel",
    "RandomCrop",
    "SpecAugment",
    "FreqMixStyle",
    "as_feature_set",
]


# --------------------------------------------------------------------------
# input handling shared by the steps


def _is_path_array(X):
    if isinstance(X, (str, os.PathLike)):
        return False
    if isinstance(X, (list, tuple)):
        return len(X) > 0 and all(isinstance(x, (str, os.PathLike)) for x in X)
    X = np.asarray(X) if not hasattr(X, "dtype") else X
    return getattr(X, "ndim", 0) == 1 and len(X) > 0 and all(
        isinstance(x, (str, os.PathLike)) for x in X
    )


def _paths(X):
    return [os.fspath(p) for p in X]


def _refuse_non_audio(X, name="X"):
    """Refuse, in one line, what is neither path rows nor waveforms.

    Each of these would otherwise reach numpy (``could not convert string to
    float``, ``Expected 2D array, got scalar array``) or, for features, be
    taken for waveforms and turned into features of features.
    """
    if isinstance(X, FeatureSet):
        augs = ", ".join(type(a).__name__ for a in X.augmentations)
        raise TypeError(
            f"{name} holds features (a FeatureSet{' with ' + augs if augs else ''}), not audio:"
            " the steps that act on features (RandomCrop, SpecAugment, FreqMixStyle) go after"
            " LogMel in the Pipeline, and LogMel needs file paths or waveforms"
        )
    if isinstance(X, (str, bytes, os.PathLike)):
        raise TypeError(
            f"{name} is a single path {X!r}, not a list of rows: pass [path] (one row per clip)"
        )
    if isinstance(X, (list, tuple)) or (isinstance(X, np.ndarray) and X.ndim == 1):
        rows = list(X)
        if any(isinstance(r, bytes) for r in rows):  # np.bytes_ is bytes too
            k = next(i for i, r in enumerate(rows) if isinstance(r, bytes))
            raise TypeError(
                f"{name} holds bytes paths ({bytes(rows[k])!r} at row {k}), not str: decode them,"
                f" e.g. [os.fsdecode(p) for p in {name}]"
            )
        paths = [isinstance(r, (str, os.PathLike)) for r in rows]
        if any(paths) and not all(paths):
            k = paths.index(False)
            raise TypeError(
                f"{name} mixes file paths with other rows: row {k} is {rows[k]!r}; every row"
                " must be a path (or every row a waveform)"
            )


def _check_n_features(est, X, reset):
    """scikit-learn's n_features_in_ contract for array input."""
    n = X.shape[1]
    if reset:
        est.n_features_in_ = n
    elif hasattr(est, "n_features_in_") and n != est.n_features_in_:
        raise ValueError(
            f"X has {n} features, but {type(est).__name__} is expecting "
            f"{est.n_features_in_} features as input."
        )


def _audio_set(est, X, groups=None, positions=None, reassemble=False, reset=False):
    """Rows of X (paths, waveforms or an AudioSet) as an AudioSet."""
    if isinstance(X, AudioSet):
        return X
    if _is_path_array(X):
        paths = _paths(X)
        if not reassemble:
            return AudioSet([(p,) for p in paths], np.arange(len(paths)), np.zeros(len(paths)), est.sr)
        if groups is None or positions is None:
            found = [row_recording(p) for p in paths]
            if groups is None:
                groups = [g for g, _ in found]
            if positions is None:
                positions = [k for _, k in found]
        return _group_rows(paths, groups, positions, est.sr)
    X = _check_waveforms(X)
    _check_n_features(est, X, reset)
    clips = list(X)
    if not reassemble or groups is None:
        return AudioSet([(c,) for c in clips], np.arange(len(clips)), np.zeros(len(clips)), est.sr)
    if positions is None:
        positions = np.arange(len(clips))  # row order inside each group
    return _group_rows(clips, groups, positions, est.sr)


#: Rounding of a clip row's seconds (9 decimals, see ``clip_fragment``).
_GRID_TOLERANCE = 1e-9


def row_recording(row):
    """The recording a path row belongs to, and the row's position in it.

    * A clip row ``<file>#t=<start>,<end>`` (see
      :func:`skasc.datasets.load_audio_folder`): the file, and the clip's
      index on the grid of clips of its duration (``start / (end - start)``,
      so ``#t=3,4`` is position 3), up to the rounding of the seconds to 9
      decimals (clips of 1/3 s group as exactly as clips of 1 s).  A clip
      off that grid (``#t=0.5,1.5``) is a recording of its own.
    * A TAU22 clip name: the folder and the 10-s recording id, and the
      snippet index.

    Parameters
    ----------
    row : str

    Returns
    -------
    group : tuple
        Hashable; rows with equal groups and consecutive positions are
        joined by :class:`Reassembler`.
    position : int

    Raises
    ------
    ValueError
        For a plain path that is no TAU22 clip name (the message names it
        and says how other data refers to its clips).
    """
    file, start, end = split_fragment(row)
    if start is not None:
        length = end - start
        k = int(round(start / length))
        # Rows carry their seconds to 9 decimals (clip_fragment), so clips
        # of 1/3 s are 0.333333333 or 0.333333334 long and clip k starts up
        # to k * 1e-9 s off k * length: allow that rounding, and key the
        # grid on the length to the microsecond (a fraction of a sample).
        if abs(start - k * length) > _GRID_TOLERANCE * (k + 2):
            return ("clip", row), 0
        return ("file", file, round(length, 6)), k
    try:
        info = parse_clip_name(row)
    except ValueError as exc:
        raise ValueError(
            f"{exc}. Other data names each clip as '<file>#t=<start>,<end>' (the rows"
            " of skasc.datasets.load_audio_folder), or pass groups (and positions)"
        ) from None
    return (os.path.dirname(row), info["recording"]), info["snippet"]


def _check_waveforms(X):
    """2-D float32 waveforms (n_clips, n_samples), with scikit-learn's messages.

    Integer PCM keeps its dtype through ``check_array`` so that
    :func:`~skasc._audio.validate_waveforms` scales it to [-1, 1].
    """
    from sklearn.utils import check_array

    _refuse_non_audio(X)
    X = check_array(X, dtype="numeric", input_name="X")
    return validate_waveforms(X)


def _check_groups(groups):
    """Refuse a missing group: NaN is unequal to itself, so its rows would
    silently each become a recording of their own."""
    for k, g in enumerate(groups):
        if g is None or (isinstance(g, (float, np.floating)) and np.isnan(g)):
            raise ValueError(
                f"groups has no recording at row {k} ({g!r}): give every row its recording"
            )


def _check_positions(positions):
    """Positions as int64; NaN, infinite or fractional ones are refused.

    Rows are joined where positions are consecutive integers, so a
    fractional position would silently break (or, rounded, merge) a
    recording.
    """
    if positions.ndim != 1:
        raise ValueError(f"positions must be 1-D (one per row of X), got shape {positions.shape}")
    if positions.dtype.kind in "iu":
        return positions.astype(np.int64)
    try:
        values = positions.astype(np.float64)
    except (TypeError, ValueError):
        k = next(i for i, p in enumerate(positions) if not isinstance(p, (Integral, Real)))
        raise ValueError(
            f"positions must be integers (the place of each row in its recording); row {k}"
            f" is {positions.tolist()[k]!r}"
        ) from None
    bad = np.flatnonzero(~np.isfinite(values) | (values != np.round(values)))
    if bad.size:
        k = int(bad[0])
        raise ValueError(
            f"positions must be whole numbers (the place of each row in its recording); row {k}"
            f" is {positions.tolist()[k]!r}"
        )
    return values.astype(np.int64)


def _group_rows(pieces, groups, positions, sr):
    """Recordings = maximal runs of consecutive positions inside a group."""
    n = len(pieces)
    groups = list(groups)
    positions = np.asarray(positions)
    if len(groups) != n or len(positions) != n:
        raise ValueError(
            f"groups and positions must have one entry per row of X ({n}), got "
            f"{len(groups)} and {len(positions)}"
        )
    _check_groups(groups)
    positions = _check_positions(positions)
    by_group = defaultdict(list)
    for i, g in enumerate(groups):
        by_group[g].append(i)
    recordings, row_rec, row_piece = [], np.empty(n, np.int64), np.empty(n, np.int64)
    for rows in by_group.values():
        rows = sorted(rows, key=lambda r: (positions[r], r))
        run, last = [], None
        for r in rows:
            if last is not None and positions[r] == positions[last]:
                # the same clip twice: share the piece already placed
                row_rec[r], row_piece[r] = row_rec[last], row_piece[last]
                continue
            if last is not None and positions[r] != positions[last] + 1:
                recordings.append(tuple(pieces[i] for i in run))
                run = []
            row_rec[r], row_piece[r] = len(recordings), len(run)
            run.append(r)
            last = r
        recordings.append(tuple(pieces[i] for i in run))
    return AudioSet(recordings, row_rec, row_piece, sr)


def as_feature_set(X, *, name="X"):
    """Features as a :class:`~skasc.FeatureSet` (plain arrays wrapped row-wise).

    Plain arrays are validated: numeric, finite, 2-D ``(n, frames)`` (one
    band) or 3-D ``(n, bands, frames)``.
    """
    if isinstance(X, FeatureSet):
        return X
    if isinstance(X, AudioSet) or _is_path_array(X):
        raise TypeError(
            f"{name} holds audio, not features: put a LogMel step before this one"
        )
    single = isinstance(X, (str, bytes, os.PathLike))
    first = (X[0] if isinstance(X, (list, tuple)) and X else
             X.flat[0] if isinstance(X, np.ndarray) and X.ndim == 1 and X.size else None)
    if single or isinstance(first, (str, bytes, os.PathLike)):
        raise TypeError(
            f"{name} holds {'a single path' if single else 'paths'}"
            f" ({X if single else first!r}), not features: compute them with LogMel first"
            " (a Pipeline from the paths on)"
        )
    from sklearn.utils import check_array

    arr = check_array(X, allow_nd=True, dtype=[np.float32, np.float64], ensure_min_samples=1)
    if arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim not in (2, 3):
        raise ValueError(
            f"{name} must be 2-D (n_clips, n_frames), 3-D (n_clips, n_bands, n_frames) "
            f"or 4-D with one channel; got shape {arr.shape}"
        )
    return FeatureSet.from_array(arr)


# --------------------------------------------------------------------------
# Reassembler


class Reassembler(TransformerMixin, BaseEstimator):
    """Give every 1-s clip its parent recording as context.

    Rows are not merged: each row stays one clip, and learns which
    recording it belongs to and where it sits in it.  For path rows the
    recording is found in the row itself:

    * clip rows ``<file>#t=<start>,<end>`` (the rows of
      :func:`~skasc.datasets.load_audio_folder`): the recording is the
      file, and the clips of one file are ordered by their start;
    * TAU22 file paths
      (``<scene>-<city>-<location>-<segment>-<snippet>-<device>.wav``): the
      recording is the name without the snippet index, ordered by snippet.

    For waveform arrays pass ``groups`` (and optionally ``positions``) to
    :meth:`fit_transform`, e.g. through a Pipeline as
    ``pipe.fit(X, y, reassemble__groups=recording_ids)``; given for paths,
    they replace what the rows say.

    Only clips present in ``X`` are joined, and only where their positions
    are consecutive, so a cross-validation split never pulls a held-out
    clip into training and a missing snippet never creates a jump.

    :meth:`transform` (predict time) returns every clip on its own: the
    paper tests on the 1-s clips as they are.

    Waveform arrays are float (full scale 1) or integer PCM: int16, int32,
    int8 and uint8 samples are scaled to [-1, 1] exactly as soundfile reads
    them from a file (``int16 / 2**15``, ``int32 / 2**31``,
    ``(uint8 - 128) / 2**7``), so a clip gives the same features as an
    int16 array and as a file path.  Other integer types (int64, uint16,
    ...) are refused.  ``X`` itself is never modified.

    Parameters
    ----------
    sr : int, default=44100
        Sample rate the audio must have.

    Attributes
    ----------
    n_features_in_ : int
        Samples per clip, when fitted on waveforms (not set for paths).
    n_recordings_ : int
        Recordings found at fit time.

    Examples
    --------
    >>> import numpy as np
    >>> from skasc import Reassembler
    >>> X = np.random.default_rng(0).normal(size=(4, 100)).astype("float32") * 0.1
    >>> audio = Reassembler().fit_transform(X, groups=["r1", "r1", "r2", "r2"])
    >>> len(audio), len(audio.recordings)
    (4, 2)
    """

    _parameter_constraints: dict = {"sr": [Interval(Integral, 1, None, closed="left")]}

    def __init__(self, sr=44100):
        self.sr = sr

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, groups=None, positions=None):
        """Find the recordings of the clips (see :meth:`fit_transform`).

        Parameters
        ----------
        X, y, groups, positions
            As for :meth:`fit_transform`.

        Returns
        -------
        self : Reassembler
        """
        self.fit_transform(X, y, groups=groups, positions=positions)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None, groups=None, positions=None):
        """Give every clip its recording: the training view.

        Parameters
        ----------
        X : array-like of shape (n_clips,) or (n_clips, n_samples)
            Path rows (clip rows ``<file>#t=<start>,<end>`` or TAU22 clip
            paths) or waveforms.
        y : None
            Ignored.
        groups : array-like of shape (n_clips,), default=None
            The recording of each row; None: read from path rows (waveform
            rows are then each their own recording).
        positions : array-like of int, shape (n_clips,), default=None
            The position of each row in its recording; None: read from path
            rows, or the row order within each group.

        Returns
        -------
        audio : AudioSet
            One row per clip, each pointing at its recording and its piece.
        """
        for attr in ("n_features_in_",):
            self.__dict__.pop(attr, None)
        out = _audio_set(self, X, groups, positions, reassemble=True, reset=True)
        self.n_recordings_ = len(out.recordings)
        return out

    def transform(self, X):
        """Every clip on its own: the predict-time view.

        Parameters
        ----------
        X : array-like of shape (n_clips,) or (n_clips, n_samples)
            Path rows or waveforms.

        Returns
        -------
        audio : AudioSet
            One row per clip, each its own one-piece recording.
        """
        check_is_fitted(self, "n_recordings_")
        return _audio_set(self, X, reassemble=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


# --------------------------------------------------------------------------
# DeviceImpulseResponse


def _recording_device(pieces):
    """The TAU22 device of a recording, read from its first piece's file name."""
    piece = pieces[0]
    if not isinstance(piece, str):
        raise ValueError(
            "DeviceImpulseResponse(devices=...) reads each recording's device from"
            " its TAU22 file name, but X holds waveforms: pass file paths, or"
            " devices=None to convolve every recording"
        )
    file = split_fragment(piece)[0]
    try:
        return parse_clip_name(file)["device"]
    except ValueError as exc:
        raise ValueError(
            f"DeviceImpulseResponse(devices=...) reads each recording's device from"
            f" its TAU22 file name: {exc}; pass devices=None to convolve every recording"
        ) from None


def _recording_devices(audio):
    """{recording index: TAU22 device} of the recordings rows of ``audio`` use."""
    return {int(r): _recording_device(audio.recordings[r]) for r in np.unique(audio.row_recording)}


def _check_devices_present(devices, found):
    """Refuse a ``devices=`` filter that selects no recording of the data;
    warn about names that select none (a misspelt device convolves nothing)."""
    present = sorted(set(found.values()))
    absent = [d for d in devices if d not in present]
    if not absent:
        return
    near = {d: p for d in absent for p in present if d.lower() == p.lower()}
    hint = (f" (device names are case-sensitive: {', '.join(f'{d!r} is not {p!r}' for d, p in near.items())})"
            if near else "")
    if len(absent) == len(set(devices)):
        raise ValueError(
            f"DeviceImpulseResponse(devices={list(devices)!r}) names no device of X, whose"
            f" recordings are of devices {present}{hint}: no recording would be convolved"
        )
    warnings.warn(
        f"DeviceImpulseResponse(devices=...): X has no recording of device(s) {absent}{hint};"
        f" only those of {sorted(set(devices) - set(absent))} are convolved",
        UserWarning, stacklevel=3,
    )


def _refuse_features(X):
    if isinstance(X, FeatureSet):
        raise TypeError(
            "X holds features, not audio: DeviceImpulseResponse convolves the"
            " waveforms, so it goes before LogMel in the Pipeline"
        )


class DeviceImpulseResponse(TransformerMixin, BaseEstimator):
    """Device impulse response (DIR) augmentation, with features computed once.

    The waveform of a training recording is convolved with the impulse
    response of a recording device, so the network hears the scene as other
    microphones would record it (Morocutti et al., "Device-robust acoustic
    scene classification via impulse response augmentation", EUSIPCO 2023).
    With probability ``p`` a training row is drawn, for the epoch, from a
    convolved copy of its recording, else from the recording itself.

    A waveform-level augmentation would normally rule out computing the
    features once.  Here each eligible recording gets ``n_variants`` copies,
    each convolved with a different response drawn from ``random_state``,
    and :class:`~skasc.LogMel` (the next step) computes their features once,
    beside the originals, through its cache (keyed on the recording's and
    the response's content).  The classifier then picks, for every row of
    every batch, the original or one of the variants (probability ``p``,
    the variant uniformly), from the generator it already draws crops and
    masks from: draws depend only on the seed, the epoch and the batch, so
    training is reproducible and resumes exactly.  Each recording thus meets
    at most ``n_variants`` of the responses, but over the data set all of
    them are used.  The cost is memory: the feature store holds
    ``1 + n_variants`` copies of the eligible recordings (see the
    generalization guide for measured times).

    At predict time (``transform``) the audio passes unchanged.

    Convolution: the full convolution with the response (normalised to unit
    energy, see below), cut to the recording's length, as in Morocutti et
    al.'s code: a response whose energy comes first (a measured one, or the
    minimum-phase ones :func:`~skasc.datasets.make_tau22` writes) adds no
    delay, and the tail past the recording's end is dropped.

    Parameters
    ----------
    ir_dir : str or path-like
        Folder of impulse responses: every ``*.wav`` file in it (searched
        recursively, sorted by path), mono, at ``sr`` Hz.  Each is divided
        by the square root of its energy (``sum(h**2) = 1``), so a response
        changes the spectrum's shape but not, for broadband sound, the level:
        level is not what distinguishes devices here, and measured responses
        come at arbitrary scales.  (Peak normalisation would make the level
        depend on how spread out the response is.)
    p : float, default=0.4
        Probability that a training row is taken from a convolved variant.
        0.4 is the default of the DIR augmentation in the DCASE 2024/2025
        Task 1 code of CP-JKU, who proposed it.
    n_variants : int, default=4
        Convolved copies per eligible recording (capped at the number of
        responses; each copy uses a different response).  Memory and feature
        time grow with ``1 + n_variants``.
    devices : array-like of str or None, default=None
        Only recordings of these devices are convolved, read from TAU22 file
        names (X must then hold paths).  ``("a",)`` is Morocutti et al.'s
        choice: only the reference device's recordings get other devices'
        responses.  None: every recording.
    sr : int, default=44100
        Sample rate of the audio and of the responses.
    resample : {"soxr_vhq", "soxr_hq", "soxr_mq", "soxr_lq", "soxr_qq"} or None, default=None
        None refuses a response stored at another rate (naming the file); a
        soxr quality resamples it to ``sr``.
    random_state : int, RandomState instance or None, default=None
        Draws which responses each recording's variants use.  Fix it for a
        reproducible (and resumable) training run.

    Attributes
    ----------
    files_ : list of str
        The response files, in order.
    impulse_responses_ : list of ndarray
        The normalised responses.
    digests_ : list of str
        Content key of each response.
    n_variants_ : int
        Variants per eligible recording: ``min(n_variants, len(files_))``.
    n_features_in_ : int
        Samples per clip, when fitted on waveforms.

    See Also
    --------
    skasc.datasets.make_tau22 : writes the seen devices' responses of the replica.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np, soundfile as sf
    >>> from skasc import DeviceImpulseResponse
    >>> folder = tempfile.mkdtemp()
    >>> sf.write(os.path.join(folder, "dev1.wav"), np.array([1.0, 0.5]), 44100, subtype="FLOAT")
    >>> X = np.random.default_rng(0).normal(scale=0.1, size=(2, 100)).astype("float32")
    >>> step = DeviceImpulseResponse(folder, random_state=0)
    >>> audio = step.fit_transform(X)
    >>> step.n_variants_, audio.impulse_responses.assignment.tolist()
    (1, [[0], [0]])
    >>> step.transform(X).impulse_responses is None
    True
    """

    _parameter_constraints: dict = {
        "ir_dir": [str, os.PathLike],
        "p": [Interval(Real, 0, 1, closed="both")],
        "n_variants": [Interval(Integral, 1, None, closed="left")],
        "devices": ["array-like", None],
        "sr": [Interval(Integral, 1, None, closed="left")],
        "resample": [StrOptions(set(RESAMPLERS)), None],
        "random_state": ["random_state"],
    }

    def __init__(self, ir_dir, p=0.4, n_variants=4, devices=None, sr=44100, resample=None,
                 random_state=None):
        self.ir_dir = ir_dir
        self.p = p
        self.n_variants = n_variants
        self.devices = devices
        self.sr = sr
        self.resample = resample
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Read the impulse responses (and the width of waveform rows).

        Parameters
        ----------
        X : AudioSet, array-like of shape (n_clips,) or (n_clips, n_samples)
            The output of :class:`Reassembler`, path rows or waveforms.
        y : None
            Ignored.

        Returns
        -------
        self : DeviceImpulseResponse
        """
        if self.devices is not None and not all(isinstance(d, str) for d in self.devices):
            raise ValueError(f"devices must be device names (strings) or None; got {self.devices!r}")
        if self.devices is not None and len(self.devices) == 0:
            raise ValueError(
                "devices=() names no device, so no recording would be convolved: pass None to"
                " convolve every recording's, or leave DeviceImpulseResponse out"
            )
        self.__dict__.pop("n_features_in_", None)
        _refuse_features(X)
        if isinstance(X, AudioSet):
            if X.sr != self.sr:
                raise ValueError(
                    f"X holds audio at {X.sr} Hz but DeviceImpulseResponse(sr={self.sr})"
                )
        elif not _is_path_array(X):
            _check_n_features(self, _check_waveforms(X), reset=True)
        if self.devices is not None:  # before any response is read
            _check_devices_present(self.devices, _recording_devices(_audio_set(self, X)))
        self.files_, self.impulse_responses_, self.digests_ = read_impulse_responses(
            self.ir_dir, sr=self.sr, resample=self.resample)
        self.n_variants_ = min(int(self.n_variants), len(self.files_))
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None):
        """The audio with the variants to render attached (training view).

        Parameters
        ----------
        X : AudioSet, array-like of shape (n_clips,) or (n_clips, n_samples)
            The output of :class:`Reassembler` (recordings as it joined
            them), path rows or waveforms (each row its own recording).
        y : None
            Ignored.

        Returns
        -------
        audio : AudioSet
            The same rows and recordings, with ``impulse_responses`` saying
            which responses each recording's variants are convolved with.
            Its array view is the unchanged audio.
        """
        self.fit(X, y)
        audio = _audio_set(self, X)
        n_rec, n_irs, k = len(audio.recordings), len(self.files_), self.n_variants_
        rng = np.random.default_rng(check_random_state(self.random_state).randint(2**31 - 1))
        if k >= n_irs:
            assignment = np.tile(np.arange(n_irs, dtype=np.int64), (n_rec, 1))
        else:  # k different responses per recording
            assignment = np.argsort(rng.random((n_rec, n_irs)), axis=1)[:, :k].astype(np.int64)
        eligible = np.ones(n_rec, bool)
        if self.devices is not None:
            wanted = set(self.devices)
            eligible[:] = False
            for r, device in _recording_devices(audio).items():
                eligible[r] = device in wanted
        if self.p == 0:  # never drawn: nothing to render
            eligible[:] = False
        assignment[~eligible] = -1
        h = hashlib.blake2b(digest_size=16)
        h.update(f"{float(self.p)!r}:{self.digests_!r}:".encode())
        h.update(assignment.view(np.uint8))
        variants = ImpulseResponseVariants(
            responses=tuple(self.impulse_responses_), digests=tuple(self.digests_),
            files=tuple(self.files_), assignment=assignment, p=float(self.p), digest=h.hexdigest(),
        )
        return AudioSet(audio.recordings, audio.row_recording, audio.row_piece, audio.sr, variants)

    def transform(self, X):
        """The audio unchanged: the predict-time view.

        Parameters
        ----------
        X : AudioSet, array-like of shape (n_clips,) or (n_clips, n_samples)

        Returns
        -------
        audio : AudioSet
            The rows as given, no variants attached.
        """
        check_is_fitted(self, "files_")
        _refuse_features(X)
        audio = _audio_set(self, X)
        if audio.impulse_responses is None:
            return audio
        return AudioSet(audio.recordings, audio.row_recording, audio.row_piece, audio.sr)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


# --------------------------------------------------------------------------
# LogMel


class _Unit:
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


def _read_units(pieces):
    """Group a recording's pieces, in order, into :class:`_Unit`."""
    units = []
    for p in pieces:
        if not isinstance(p, str):
            units.append(_Unit("array", p))
            continue
        file, start, end = split_fragment(p)
        if start is None:
            units.append(_Unit("file", p))
            continue
        last = units[-1] if units else None
        if (last is not None and last.kind == "span" and last.source == file
                and abs(last.bounds[-1][1] - start) < 1e-9):
            last.bounds.append((start, end))
        else:
            units.append(_Unit("span", file, [(start, end)]))
    return units


def _raw_content(unit):
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
                f"clip {_seconds_text(start)}-{_seconds_text(end)} s of audio file"
                f" {unit.source!r} starts after the end of the file"
                f" ({(first + n_read) / rate:g} s long); was the file replaced by a shorter one?"
            )


def _load_recording(units, sr, resample, raws=None):
    """Samples of a recording at ``sr`` Hz.

    Returns the signal, the length of each piece and, per unit, the rate it
    was resampled from (None where it was not).
    """
    parts, lengths, rates = [], [], []
    for i, u in enumerate(units):
        if raws is not None:
            raw = raws[i]
        else:  # a plain file is read by read_clip below
            raw = _raw_content(u) if u.kind == "span" else None
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


def _recording_features(units, params, read, raws=None):
    """Log-mel of one recording, time-major (frames, bands), piece lengths,
    and the rate each unit was resampled from (None: not resampled)."""
    signal, lengths, rates = _load_recording(units, params["sr"], read["resample"], raws)
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
    signal = _load_recording(units, params["sr"], read["resample"], raws)[0]
    convolved = np.stack([apply_impulse_response(signal, h) for h in responses])
    return [np.ascontiguousarray(f.T) for f in logmel(convolved, **params)]


def _cached_variant_features(units, raws, digests, params, read, response, response_digest):
    """One variant of :func:`_variant_features` for the cache, keyed on the
    recording's ``digests``, ``params``, ``read`` and ``response_digest``
    (the response's content): ``units``, ``raws`` and ``response`` are
    ignored, the digests stand for them."""
    return _variant_features(units, params, read, [response], raws)[0]


def _content_digest(unit, raw):
    """BLAKE2b of what a unit's features are computed from: a file's bytes,
    a span's samples, rate and clip bounds, or an array's samples."""
    h = hashlib.blake2b(digest_size=16)
    if unit.kind == "file":
        h.update(b"file:")
        h.update(raw)
    elif unit.kind == "span":
        x, rate = raw
        t0 = unit.bounds[0][0]
        bounds = [(round(a - t0, 9), round(b - t0, 9)) for a, b in unit.bounds]
        h.update(f"span:{rate}:{bounds}:".encode())
        h.update(x.view(np.uint8))
    else:
        h.update(b"array:")
        h.update(np.ascontiguousarray(unit.source).view(np.uint8))
    return h.hexdigest()


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
        signal, lengths, _ = _load_recording(_read_units(audio.recordings[r]), sr, resample)
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
        miss, decoded from the bytes that were digested.  On the default
        :func:`~skasc.datasets.make_tau22` replica (2,500 1-s clips of 24-bit
        audio, 330 MB, in the page cache, one thread) digesting takes ~0.4 s
        against ~2.2 s to compute the features, and a transform served from
        the cache ~0.55 s.
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
    }

    def __init__(
        self, sr=44100, n_fft=4096, win_length=3528, hop_length=882, n_mels=256,
        fmin=0.0, fmax=None, n_jobs=None, memory=None, verbose=0, resample=None,
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
        if not isinstance(X, AudioSet) and not _is_path_array(X):
            _check_n_features(self, _check_waveforms(X), reset=True)
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
        audio = _audio_set(self, X)
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

        def compute(r):
            units = _read_units(audio.recordings[r])
            # the responses this recording's variants are convolved with
            chosen = [] if irs is None else [int(i) for i in irs.assignment[r] if i >= 0]
            if cached is None:
                feats, lengths, rates = _recording_features(units, params, read)
                variants = (_variant_features(units, params, read, [irs.responses[i] for i in chosen])
                            if chosen else [])
            else:
                # read once: what is digested is what is decoded
                raws = [_raw_content(u) for u in units]
                digests = tuple(_content_digest(u, c) for u, c in zip(units, raws))
                feats, lengths, rates = cached(units, raws, digests, params, read)
                variants = [cached_variant(units, raws, digests, params, read,
                                           irs.responses[i], irs.digests[i]) for i in chosen]
            # names are added here, outside the cache: a copy of a file under
            # another name is served from it
            resampled = {u.source: rate for u, rate in zip(units, rates) if rate is not None}
            return feats, lengths, resampled, variants

        def job(rec_ids):
            return [compute(r) for r in rec_ids]

        used = np.unique(audio.row_recording)
        # chunks of <= 32 recordings: fine-grained progress, little dispatch overhead
        chunks = [c for c in np.array_split(used, max(1, -(-len(used) // 32))) if len(c)]
        if self.verbose:
            from tqdm.auto import tqdm

            chunks_iter = tqdm(chunks, desc="LogMel", unit="chunk")
        else:
            chunks_iter = chunks
        if self.n_jobs in (None, 1):
            results = [job(c) for c in chunks_iter]
        else:
            results = Parallel(n_jobs=self.n_jobs, return_as="generator")(
                delayed(job)(c) for c in chunks
            )
            if self.verbose:
                from tqdm.auto import tqdm

                results = tqdm(results, total=len(chunks), desc="LogMel", unit="chunk")
        per_rec = {}
        for c, res in zip(chunks, results):
            per_rec.update(zip(c.tolist(), res))
        _check_finite_features(audio, per_rec, params["sr"], self.resample)
        features = _assemble(audio, per_rec, self.hop_length, irs)
        # the way back to the audio, for teachers with their own front end
        features.audio_link = AudioLink(audio, self.hop_length, self.resample)
        resampled = {}
        for _, _, rates, _ in per_rec.values():
            resampled.update(rates)
        features.resampled = dict(sorted(resampled.items()))
        return features

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


def _assemble(audio, per_rec, hop, irs=None):
    """Concatenate per-recording features and locate every row's window.

    With impulse responses ``irs``, the variants' features (``per_rec[r][3]``)
    follow all the originals in the store, and the FeatureSet gets each
    row's variant offsets and an :class:`~skasc.ImpulseResponseAugmentation`.
    """
    order = sorted(per_rec)
    store_start, pos = {}, 0
    for r in order:
        store_start[r] = pos
        pos += len(per_rec[r][0])
    parts = [per_rec[r][0] for r in order]
    variant_start = {}
    if irs is not None:
        for r in order:
            for k, feats in enumerate(per_rec[r][3]):
                variant_start[r, k] = pos
                pos += len(feats)
                parts.append(feats)
    store = np.concatenate(parts) if parts else np.zeros((0, 1), np.float32)
    del parts
    n = len(audio)
    rec_start = np.empty(n, np.int64)
    rec_stop = np.empty(n, np.int64)
    row_start = np.empty(n, np.int64)
    widths = np.empty(n, np.int64)
    for i in range(n):
        r, k = audio.row_recording[i], audio.row_piece[i]
        feats, lengths = per_rec[r][:2]
        offset = int(np.sum(lengths[:k]))
        widths[i] = 1 + int(lengths[k]) // hop
        rec_start[i] = store_start[r]
        rec_stop[i] = store_start[r] + len(feats)
        # a clip starting on the hop grid has its own window at offset / hop
        row_start[i] = store_start[r] + offset // hop
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
        r = audio.row_recording[i]
        for k in range(len(per_rec[r][3])):
            offsets[i, k] = variant_start[r, k] - rec_start[i]
    augmentation = ImpulseResponseAugmentation(p=irs.p, n_variants=n_variants, digest=irs.digest)
    return FeatureSet(store, rec_start, rec_stop, row_start, width, (augmentation,), variants=offsets)


# --------------------------------------------------------------------------
# augmentation steps


class _AugmentationStep(TransformerMixin, BaseEstimator):
    """Attach an augmentation at fit time; identity at predict time."""

    _parameter_constraints: dict = {}

    def _augmentation(self):
        raise NotImplementedError

    def _check_can_act(self, features):
        """Say so (warn or raise) when the augmentation can change no row of ``features``."""

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Remember the feature shape.

        Parameters
        ----------
        X : FeatureSet or array-like of shape (n_clips, n_bands, n_frames)
            Features, e.g. the output of :class:`LogMel`.
        y : None
            Ignored.

        Returns
        -------
        self
        """
        features = as_feature_set(X)
        self.feature_shape_ = features.feature_shape
        self.n_features_in_ = features.shape[1]
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None):
        """The features with this step's augmentation attached (training view).

        Parameters
        ----------
        X : FeatureSet or array-like of shape (n_clips, n_bands, n_frames)
        y : None
            Ignored.

        Returns
        -------
        features : FeatureSet
            The same rows and store, one more augmentation attached.
        """
        self.fit(X, y)
        features = as_feature_set(X)
        self._check_can_act(features)
        return features.with_augmentation(self._augmentation())

    def transform(self, X):
        """The features without augmentations (predict-time view).

        Parameters
        ----------
        X : FeatureSet or array-like of shape (n_clips, n_bands, n_frames)

        Returns
        -------
        features : FeatureSet
            The same rows, no augmentation attached.
        """
        check_is_fitted(self, "feature_shape_")
        features = as_feature_set(X)
        if features.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {features.shape[1]} features, but {type(self).__name__} is "
                f"expecting {self.n_features_in_} features as input."
            )
        return features.without_augmentations()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


class RandomCrop(_AugmentationStep):
    """Random 1-s window of the clip's parent recording, re-drawn every batch.

    At fit time the rows get a :class:`~skasc.CropAugmentation`: when the
    classifier builds a training batch it takes, for each row, a window of
    the row's width (51 frames for a 1-s clip) starting at a random frame of
    the row's recording.  A new start is drawn for every batch of every
    epoch from the classifier's seeded generator.  At predict time
    (``transform``) every row is its own window, unchanged.

    Cropping features instead of audio is exact up to the hop grid: away
    from the recording's edges a window of the recording's log-mel equals
    the log-mel of the audio under it.

    Parameters
    ----------
    step : int, default=1
        Allowed crop starts are every ``step``-th frame of the recording
        (1: any frame; 50 with the default hop: only the 1-s snippet grid).
    p : float, default=1.0
        Probability that a row is cropped at random; otherwise its own
        window is used.

    Attributes
    ----------
    feature_shape_ : tuple
        (channels, bands, frames) of a row seen at fit time.
    n_features_in_ : int
        ``bands * frames``.

    Examples
    --------
    >>> import numpy as np
    >>> from skasc import RandomCrop
    >>> X = np.zeros((3, 4, 51), dtype="float32")
    >>> Xt = RandomCrop().fit_transform(X)
    >>> Xt.augmentations
    (CropAugmentation(step=1, p=1.0),)
    """

    _parameter_constraints: dict = {
        **_AugmentationStep._parameter_constraints,
        "step": [Interval(Integral, 1, None, closed="left")],
        "p": [Interval(Real, 0, 1, closed="both")],
    }

    def __init__(self, step=1, p=1.0):
        self.step = step
        self.p = p

    def _augmentation(self):
        return CropAugmentation(step=int(self.step), p=float(self.p))

    def _check_can_act(self, features):
        # rows without recording context (no Reassembler before LogMel, or
        # plain feature arrays) are their whole recording: no other window
        if len(features) and np.all(features.rec_stop - features.rec_start <= features.width):
            warnings.warn(
                "RandomCrop has nothing to crop: every row is its whole recording, so every"
                " crop is the row itself. Put Reassembler before LogMel so that rows see their"
                " recording (or, for features of single clips, leave RandomCrop out)",
                UserWarning, stacklevel=4,  # the caller of fit_transform, past _fit_context
            )


class SpecAugment(_AugmentationStep):
    """SpecAugment frequency and time masks, re-drawn every batch.

    At fit time the rows get a :class:`~skasc.MaskAugmentation`: in every
    training batch each row receives ``n_freq_masks`` bands and
    ``n_time_masks`` frame ranges set to ``mask_value``, each mask of a
    width drawn uniformly from 0 to the maximum width (inclusive; the paper
    uses one mask of each kind, 0-10 wide, set to zero).  Identity at
    predict time.

    Parameters
    ----------
    freq_mask_width : int, default=10
        Largest frequency-mask width in bands.
    time_mask_width : int, default=10
        Largest time-mask width in frames.
    n_freq_masks, n_time_masks : int, default=1
        Masks of each kind per row.
    mask_value : float, default=0.0
        Value written into the masked cells (finite).

    Examples
    --------
    >>> import numpy as np
    >>> from skasc import SpecAugment
    >>> Xt = SpecAugment(freq_mask_width=8).fit_transform(np.zeros((2, 16, 51), "float32"))
    >>> Xt.augmentations[0].freq_width
    8
    """

    _parameter_constraints: dict = {
        **_AugmentationStep._parameter_constraints,
        "freq_mask_width": [Interval(Integral, 0, None, closed="left")],
        "time_mask_width": [Interval(Integral, 0, None, closed="left")],
        "n_freq_masks": [Interval(Integral, 0, None, closed="left")],
        "n_time_masks": [Interval(Integral, 0, None, closed="left")],
        # finite: an open interval without ends excludes NaN and +-inf
        "mask_value": [Interval(Real, None, None, closed="neither")],
    }

    def __init__(self, freq_mask_width=10, time_mask_width=10, n_freq_masks=1,
                 n_time_masks=1, mask_value=0.0):
        self.freq_mask_width = freq_mask_width
        self.time_mask_width = time_mask_width
        self.n_freq_masks = n_freq_masks
        self.n_time_masks = n_time_masks
        self.mask_value = mask_value

    def _augmentation(self):
        return MaskAugmentation(
            freq_width=int(self.freq_mask_width), time_width=int(self.time_mask_width),
            n_freq=int(self.n_freq_masks), n_time=int(self.n_time_masks),
            value=float(self.mask_value),
        )


class FreqMixStyle(_AugmentationStep):
    """Frequency-MixStyle, re-drawn every batch.

    With probability ``p`` a training batch is restyled: each row's mean
    and standard deviation over its frames, per frequency band, are
    normalised away and replaced by a mix of its own and those of another
    row of the batch (a random permutation), weighted by
    ``lam ~ Beta(alpha, alpha)`` drawn per row::

        mu, sig = x.mean(frames), sqrt(x.var(frames) + eps)      # per row and band
        x = (x - mu) / sig * (lam * sig + (1 - lam) * sig[perm]) + lam * mu + (1 - lam) * mu[perm]

    The per-band statistics of a log-mel spectrogram carry much of the
    recording device's frequency response, so mixing them simulates
    devices between those of the batch (Schmid et al., DCASE 2022
    workshop; the Frequency-MixStyle of the DCASE 2024 and 2025 Task 1
    baselines).  At fit time the rows get a
    :class:`~skasc.MixStyleAugmentation`, applied by the classifier to every
    training batch after the crops and masks, from the same seeded
    generator; at predict time (``transform``) the step is the identity.

    Defaults are the DCASE 2024 Task 1 baseline's (``mixstyle_p=0.4``,
    ``mixstyle_alpha=0.3``, ``eps=1e-6`` in CPJKU/dcase2024_task1_baseline),
    chosen so that the figures can be compared with it.  As there, the
    statistics are taken over time only, per row and band; the standard
    deviation here is the population one (the baseline's unbiased
    variance differs by a factor 51/50 on 51-frame rows).

    Parameters
    ----------
    p : float, default=0.4
        Probability that a batch is restyled.
    alpha : float, default=0.3
        Parameter of the Beta distribution of the mixing weights (> 0;
        small values keep most rows close to themselves or their partner).
    eps : float, default=1e-6
        Added to the variance before the square root (> 0).

    Attributes
    ----------
    feature_shape_ : tuple
        (channels, bands, frames) of a row seen at fit time.
    n_features_in_ : int
        ``bands * frames``.

    Examples
    --------
    >>> import numpy as np
    >>> from skasc import FreqMixStyle
    >>> Xt = FreqMixStyle(p=1.0).fit_transform(np.zeros((4, 8, 51), "float32"))
    >>> Xt.augmentations
    (MixStyleAugmentation(p=1.0, alpha=0.3, eps=1e-06),)
    """

    _parameter_constraints: dict = {
        **_AugmentationStep._parameter_constraints,
        "p": [Interval(Real, 0, 1, closed="both")],
        "alpha": [Interval(Real, 0, None, closed="neither")],
        "eps": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(self, p=0.4, alpha=0.3, eps=1e-6):
        self.p = p
        self.alpha = alpha
        self.eps = eps

    def _augmentation(self):
        return MixStyleAugmentation(p=float(self.p), alpha=float(self.alpha), eps=float(self.eps))
