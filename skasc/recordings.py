"""Recording-level prediction: one decision per file from its clips.

The pipeline predicts every 1-s clip on its own (the rows stay clips, and
so does ``predict_proba``).  A user with a folder of recordings usually
wants one answer per *file*: :func:`predict_recordings` takes a fitted
pipeline or classifier, predicts the clips, and reduces the clip
probabilities of each recording to one row -- by default their mean.

Which clips belong together is read from the rows themselves, as
:class:`~skasc.Reassembler` reads it: a clip row ``<file>#t=<start>,<end>``
(:func:`~skasc.datasets.load_audio_folder`) belongs to its file, a TAU22
clip to its 10-s recording (``load_tau22(...).recording``), any other path
is a recording of its own.  For waveforms or features pass ``recordings``.

Only the estimator's public ``predict_proba`` and ``classes_`` are used, so
every skasc classifier, a Pipeline ending in one, and
:class:`~skasc.export.OnnxClassifier` work alike.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils import Bunch
from sklearn.utils._param_validation import StrOptions, validate_params

from ._rows import is_path_array, recording_ids

__all__ = ["REDUCTIONS", "recording_ids", "aggregate_proba", "recording_labels", "predict_recordings"]

#: The named reductions of clip probabilities to one row per recording.
REDUCTIONS = ("mean", "geometric", "max", "vote")

# floor of a probability before its logarithm ("geometric"): a clip that
# rules a class out entirely counts as very strong, finite evidence
_LOG_FLOOR = 1e-12


def group_by_recording(recordings, n_rows):
    """Recording ids in order of first appearance, and each row's index into them."""
    recordings = np.asarray(recordings)
    if recordings.ndim != 1 or len(recordings) != n_rows:
        raise ValueError(
            f"recordings must hold one id per clip ({n_rows}), got shape {recordings.shape}"
        )
    if n_rows == 0:
        raise ValueError("no clips: the inputs are empty")
    uniq, first, inverse = np.unique(recordings, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return uniq[order], rank[inverse.ravel()]


def _check_clip_proba(proba):
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape[1] == 0:
        raise ValueError(f"proba must be 2-D (n_clips, n_classes), got shape {proba.shape}")
    if not np.all(np.isfinite(proba)) or proba.min() < 0:
        raise ValueError("proba must hold finite, non-negative probabilities")
    return proba


def reduce_proba(proba, index, n_rec, reduce):
    """(n_rec, n_classes) reduced probabilities and the winning column of each."""
    n_classes = proba.shape[1]
    counts = np.bincount(index, minlength=n_rec).astype(np.float64)[:, None]
    sums = np.zeros((n_rec, n_classes))
    np.add.at(sums, index, proba)
    mean = sums / counts
    if callable(reduce):
        out = np.empty((n_rec, n_classes))
        for r in range(n_rec):
            row = np.asarray(reduce(proba[index == r]), dtype=np.float64)
            if row.shape != (n_classes,) or not np.all(np.isfinite(row)):
                raise ValueError(
                    f"reduce must return {n_classes} finite scores for a recording, got"
                    f" {row!r}"
                )
            out[r] = row
        return out, np.argmax(out, axis=1)
    if reduce == "mean":
        out = mean
    elif reduce == "geometric":
        logs = np.zeros((n_rec, n_classes))
        np.add.at(logs, index, np.log(np.maximum(proba, _LOG_FLOOR)))
        logs /= counts
        out = np.exp(logs - logs.max(axis=1, keepdims=True))
        out /= out.sum(axis=1, keepdims=True)
    elif reduce == "max":
        out = np.zeros((n_rec, n_classes))
        np.maximum.at(out, index, proba)
        out /= np.maximum(out.sum(axis=1, keepdims=True), np.finfo(float).tiny)
    else:  # "vote": the share of each recording's clips that picks each class
        out = np.zeros((n_rec, n_classes))
        np.add.at(out, (index, np.argmax(proba, axis=1)), 1.0)
        out /= counts
        # ties go to the class of highest mean probability
        tied = out == out.max(axis=1, keepdims=True)
        return out, np.argmax(np.where(tied, mean, -np.inf), axis=1)
    return out, np.argmax(out, axis=1)


_REDUCE = [StrOptions(set(REDUCTIONS)), callable]


@validate_params(
    {"proba": ["array-like"], "recordings": ["array-like"], "reduce": _REDUCE},
    prefer_skip_nested_validation=True,
)
def aggregate_proba(proba, recordings, *, reduce="mean"):
    """Reduce clip probabilities to one row per recording.

    Parameters
    ----------
    proba : array-like of shape (n_clips, n_classes)
        Clip probabilities, e.g. ``predict_proba``.
    recordings : array-like of shape (n_clips,)
        The recording of each clip (e.g. ``load_audio_folder(...).groups``).
    reduce : {"mean", "geometric", "max", "vote"} or callable, default="mean"
        How the clips of a recording are combined:

        * ``"mean"``: the mean of the clip probabilities;
        * ``"geometric"``: the normalised geometric mean (the softmax of
          the mean log-probability, probabilities floored at 1e-12): a
          class that some clips rule out is penalised more;
        * ``"max"``: each class's largest clip probability, normalised to
          sum to 1: a class heard clearly in one clip wins;
        * ``"vote"``: the share of clips whose most probable class is each
          class (majority vote; a tie goes to the tied class of highest
          mean probability);
        * a callable taking the (n_clips_of_recording, n_classes) array of
          a recording and returning n_classes scores.

    Returns
    -------
    recordings : ndarray of shape (n_recordings,)
        The recording ids, in order of first appearance.
    proba : ndarray of shape (n_recordings, n_classes), dtype float64
        The reduced rows (summing to 1 for the named reductions).

    Raises
    ------
    ValueError
        If ``proba`` is not a 2-D array of finite non-negative values, or
        ``recordings`` does not hold one id per clip.

    Examples
    --------
    >>> from skasc.recordings import aggregate_proba
    >>> ids, p = aggregate_proba([[0.9, 0.1], [0.3, 0.7], [0.2, 0.8]], ["a", "a", "b"])
    >>> ids.tolist(), p.round(2).tolist()
    (['a', 'b'], [[0.6, 0.4], [0.2, 0.8]])
    """
    proba = _check_clip_proba(proba)
    ids, index = group_by_recording(recordings, len(proba))
    return ids, reduce_proba(proba, index, len(ids), reduce)[0]


@validate_params(
    {"y": ["array-like"], "recordings": ["array-like"]},
    prefer_skip_nested_validation=True,
)
def recording_labels(y, recordings):
    """The label of every recording, from the labels of its clips.

    Parameters
    ----------
    y : array-like of shape (n_clips,)
    recordings : array-like of shape (n_clips,)

    Returns
    -------
    recordings : ndarray of shape (n_recordings,)
        In order of first appearance, as :func:`aggregate_proba`.
    labels : ndarray of shape (n_recordings,)

    Raises
    ------
    ValueError
        If the clips of a recording have different labels (the message
        names the recording and the labels).

    Examples
    --------
    >>> from skasc.recordings import recording_labels
    >>> ids, labels = recording_labels(["dog", "dog", "cat"], ["f1", "f1", "f2"])
    >>> ids.tolist(), labels.tolist()
    (['f1', 'f2'], ['dog', 'cat'])
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D (one label per clip), got shape {y.shape}")
    ids, index = group_by_recording(recordings, len(y))
    first = np.zeros(len(ids), dtype=np.int64)
    first[index[::-1]] = np.arange(len(y))[::-1]
    labels = y[first]
    bad = np.flatnonzero(y != labels[index])
    if bad.size:
        r = index[bad[0]]
        raise ValueError(
            f"the clips of recording {ids[r].item()!r} have different labels"
            f" {sorted(set(y[index == r].tolist()))}: a recording has one label"
        )
    return ids, labels


@validate_params(
    {"estimator": "no_validation", "X": "no_validation", "recordings": ["array-like", None],
     "reduce": _REDUCE},
    prefer_skip_nested_validation=True,
)
def predict_recordings(estimator, X, recordings=None, *, reduce="mean"):
    """One prediction per recording (file) from a fitted pipeline or classifier.

    Calls ``estimator.predict_proba(X)`` once -- every clip predicted on its
    own, as ``predict`` does -- and reduces the clip probabilities of each
    recording with :func:`aggregate_proba`.

    Parameters
    ----------
    estimator : fitted estimator with ``predict_proba`` and ``classes_``
        A Pipeline ending in a skasc classifier, a skasc classifier, or an
        :class:`~skasc.export.OnnxClassifier` (whose ``classes_`` may be
        None: the predictions are then class indices).
    X : array-like
        What ``estimator.predict_proba`` takes, one row per clip: the clip
        rows of :func:`~skasc.datasets.load_audio_folder`, TAU22 paths,
        waveforms or features.
    recordings : array-like of shape (n_clips,), default=None
        The recording of each row.  None: read from the rows (see
        :func:`recording_ids`), which must then be paths.
    reduce : {"mean", "geometric", "max", "vote"} or callable, default="mean"
        See :func:`aggregate_proba`.

    Returns
    -------
    result : sklearn.utils.Bunch
        recording : ndarray of shape (n_recordings,)
            The recordings, in order of first appearance in ``X``.
        y_pred : ndarray of shape (n_recordings,)
            The predicted class of each recording.
        proba : ndarray of shape (n_recordings, n_classes)
            The reduced probabilities, columns in the order of ``classes``.
        classes : ndarray of shape (n_classes,)
            ``estimator.classes_``.
        n_clips : ndarray of int, shape (n_recordings,)
            Clips of each recording.
        index : ndarray of int, shape (n_clips,)
            For each row of ``X``, the index of its recording in
            ``recording`` (e.g. ``result.y_pred[result.index]`` broadcasts
            the file decisions back to the clips).

    Raises
    ------
    TypeError
        If ``estimator`` has no ``predict_proba``.
    ValueError
        If ``recordings`` is None and ``X`` holds no paths, or it does not
        hold one id per row of ``X``.

    See Also
    --------
    skasc.metrics.recording_report : scores at clip and recording level.

    Examples
    --------
    >>> import numpy as np
    >>> from skasc.recordings import predict_recordings
    >>> class Fixed:  # any fitted estimator with predict_proba and classes_
    ...     classes_ = np.array(["cat", "dog"])
    ...     def predict_proba(self, X):
    ...         return np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]])
    >>> X = ["/d/a.wav#t=0,1", "/d/a.wav#t=1,2", "/d/b.wav#t=0,1"]
    >>> res = predict_recordings(Fixed(), X)
    >>> res.recording.tolist(), res.y_pred.tolist(), res.proba.round(2).tolist()
    (['/d/a.wav', '/d/b.wav'], ['cat', 'dog'], [[0.55, 0.45], [0.3, 0.7]])
    """
    if not callable(getattr(estimator, "predict_proba", None)):
        raise TypeError(
            f"estimator must have a predict_proba method; {type(estimator).__name__} has none"
        )
    if recordings is None:
        if not is_path_array(X):
            raise ValueError(
                "recordings is None, so the recording of each row is read from the rows,"
                " but X holds no file paths; pass recordings (one id per row of X)"
            )
        recordings = recording_ids(X)
    proba = _check_clip_proba(estimator.predict_proba(X))
    ids, index = group_by_recording(recordings, len(proba))
    reduced, winner = reduce_proba(proba, index, len(ids), reduce)
    classes = getattr(estimator, "classes_", None)
    classes = np.arange(proba.shape[1]) if classes is None else np.asarray(classes)
    if len(classes) != proba.shape[1]:
        raise ValueError(
            f"estimator.classes_ has {len(classes)} entries but predict_proba gives"
            f" {proba.shape[1]} columns"
        )
    return Bunch(
        recording=ids,
        y_pred=classes[winner],
        proba=reduced,
        classes=classes,
        n_clips=np.bincount(index, minlength=len(ids)).astype(np.int64),
        index=index.astype(np.int64),
    )
