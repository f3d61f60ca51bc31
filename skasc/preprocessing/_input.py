"""From the rows the user passes to what the steps work on.

Path rows (see :mod:`skasc._rows`) and waveform arrays become an
:class:`~skasc.AudioSet` (each row pointing at its recording and its piece
in it), feature arrays a :class:`~skasc.FeatureSet`; what is neither is
refused in one line naming what it is.
"""

from __future__ import annotations

import os
from collections import defaultdict
from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_array

from .._audio import validate_waveforms
from .._featureset import AudioSet, FeatureSet
from .._rows import is_path_array, row_recording

__all__ = ["refuse_non_audio", "check_n_features", "audio_set", "check_waveforms",
           "group_rows", "as_feature_set"]


def _paths(X):
    return [os.fspath(p) for p in X]


def refuse_non_audio(X, name="X"):
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


def check_n_features(est, X, reset):
    """scikit-learn's n_features_in_ contract for array input."""
    n = X.shape[1]
    if reset:
        est.n_features_in_ = n
    elif hasattr(est, "n_features_in_") and n != est.n_features_in_:
        raise ValueError(
            f"X has {n} features, but {type(est).__name__} is expecting "
            f"{est.n_features_in_} features as input."
        )


def audio_set(est, X, groups=None, positions=None, reassemble=False, reset=False):
    """Rows of X (paths, waveforms or an AudioSet) as an AudioSet."""
    if isinstance(X, AudioSet):
        return X
    if is_path_array(X):
        paths = _paths(X)
        if not reassemble:
            return AudioSet([(p,) for p in paths], np.arange(len(paths)), np.zeros(len(paths)), est.sr)
        if groups is None or positions is None:
            found = [row_recording(p) for p in paths]
            if groups is None:
                groups = [g for g, _ in found]
            if positions is None:
                positions = [k for _, k in found]
        return group_rows(paths, groups, positions, est.sr)
    X = check_waveforms(X)
    check_n_features(est, X, reset)
    clips = list(X)
    if not reassemble or groups is None:
        return AudioSet([(c,) for c in clips], np.arange(len(clips)), np.zeros(len(clips)), est.sr)
    if positions is None:
        positions = np.arange(len(clips))  # row order inside each group
    return group_rows(clips, groups, positions, est.sr)




def check_waveforms(X):
    """2-D float32 waveforms (n_clips, n_samples), with scikit-learn's messages.

    Integer PCM keeps its dtype through ``check_array`` so that
    :func:`~skasc._audio.validate_waveforms` scales it to [-1, 1].
    """
    refuse_non_audio(X)
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


def group_rows(pieces, groups, positions, sr):
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
    for g, rows in by_group.items():
        rows = sorted(rows, key=lambda r: (positions[r], r))
        run, last = [], None
        for r in rows:
            if last is not None and positions[r] == positions[last]:
                a, b = pieces[last], pieces[r]
                if isinstance(a, str) and isinstance(b, str) and a != b:
                    # e.g. one TAU22 snippet in two folders: which one is the
                    # recording's audio is not for us to guess
                    raise ValueError(
                        f"rows {last} and {r} of X are both clip {positions[r]} of recording"
                        f" {g!r} but name different files ({a!r}, {b!r}): pass groups"
                        " (and positions) to say which recording each row belongs to"
                    )
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
    if isinstance(X, AudioSet) or is_path_array(X):
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
    arr = check_array(X, allow_nd=True, dtype=[np.float32, np.float64], ensure_min_samples=1)
    if arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim not in (2, 3):
        raise ValueError(
            f"{name} must be 2-D (n_clips, n_frames), 3-D (n_clips, n_bands, n_frames) "
            f"or 4-D with one channel; got shape {arr.shape}"
        )
    return FeatureSet.from_array(arr)


