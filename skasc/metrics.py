"""DCASE-style evaluation of acoustic scene classifiers.

Thin wrappers over :mod:`sklearn.metrics` that compute the numbers the DCASE
2022/2023 Task 1 challenge reports, the way its official baseline evaluation
code computes them (``do_evaluation`` in the DCASE 2022 Task 1 baseline
``task1.py``, with ``sed_eval.scene.SceneClassificationMetrics`` for the
accuracies and ``sklearn.metrics.log_loss`` for the log-losses):

* **accuracy** is the *macro-average* (class-wise) accuracy: the accuracy of
  each scene class (its recall) averaged over the classes, which is
  :func:`sklearn.metrics.balanced_accuracy_score`;
* **log-loss** is the multi-class cross-entropy of the predicted
  probabilities.  The baseline code computes the overall and per-device
  log-loss with plain ``sklearn.metrics.log_loss`` over the clips (the mean
  over clips, ``average="micro"`` here) and lists the class-wise log-loss
  (mean over the clips of one class) beside it; ``average="macro"`` gives
  the mean of those class-wise values.  On a class-balanced split such as
  ``fold1_evaluate`` both are equal.
* results are broken down per recording device and per device group: real
  devices (a, b, c), simulated devices seen in training (s1-s3) and
  simulated devices unseen in training (s4-s6).

:func:`macro_accuracy` and :func:`dcase_log_loss` give the two numbers,
:func:`device_report` the whole breakdown, :func:`format_device_report`
prints it.  :func:`recording_report` scores both levels of a data set of
longer recordings: the clips, and the recordings (files) with one decision
each from their clips (:func:`skasc.recordings.aggregate_proba`);
``device_report(..., recordings=...)`` adds the recording level to the
breakdown.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from sklearn.metrics import confusion_matrix, log_loss

from ._table import format_table
from .datasets import REAL_DEVICES, SEEN_DEVICES, UNSEEN_DEVICES
from .recordings import REDUCTIONS, group_by_recording, reduce_proba, recording_labels

__all__ = [
    "DEVICE_GROUPS",
    "macro_accuracy",
    "dcase_log_loss",
    "device_report",
    "format_device_report",
    "recording_report",
]

#: Device groups of the challenge, in reporting order.
DEVICE_GROUPS = {"real": REAL_DEVICES, "seen": SEEN_DEVICES, "unseen": UNSEEN_DEVICES}
_DEVICE_ORDER = tuple(d for g in DEVICE_GROUPS.values() for d in g)

# Rows of a probability matrix may deviate this much from summing to one
# (float32 softmax outputs do, by ~1e-7) before they count as not being
# probabilities; within it they are renormalised.
_PROBA_SUM_TOL = 1e-3


# --------------------------------------------------------------------------
# input validation


def _as_1d(values, name):
    arr = np.asarray(values)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.ravel()
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one entry per clip), got shape {arr.shape}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _check_lengths(**arrays):
    lengths = {name: len(a) for name, a in arrays.items() if a is not None}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{name} has {n}" for name, n in lengths.items())
        raise ValueError(f"inconsistent numbers of clips: {detail}")
    n = next(iter(lengths.values()))
    if n == 0:
        raise ValueError("no clips to evaluate: the inputs are empty")
    return n


def _check_labels(labels, *, name="labels"):
    labels = _as_1d(labels, name)
    if len(labels) == 0:
        raise ValueError(f"{name} must not be empty")
    uniq = np.unique(labels)
    if len(uniq) != len(labels):
        raise ValueError(f"{name} must not contain duplicates, got {labels.tolist()}")
    return labels


def _check_known(values, labels, name):
    unknown = np.setdiff1d(np.unique(values), labels)
    if len(unknown):
        raise ValueError(
            f"{name} contains labels not in labels: {unknown.tolist()}; "
            f"known labels are {labels.tolist()}"
        )


def _check_proba(proba, n_rows, n_labels):
    try:
        proba = np.asarray(proba, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("proba must be a numeric array of shape (n_clips, n_labels)") from None
    if proba.ndim != 2:
        raise ValueError(f"proba must be 2-D (n_clips, n_labels), got shape {proba.shape}")
    if proba.shape[0] != n_rows:
        raise ValueError(
            f"inconsistent numbers of clips: proba has {proba.shape[0]} rows, y_true has {n_rows}"
        )
    if proba.shape[1] != n_labels:
        raise ValueError(
            f"proba has {proba.shape[1]} columns but there are {n_labels} labels; pass "
            "labels in the order of proba's columns (e.g. the classifier's classes_)"
        )
    if not np.all(np.isfinite(proba)):
        raise ValueError("proba contains NaN or infinite values")
    if proba.min() < 0 or proba.max() > 1 + _PROBA_SUM_TOL:
        raise ValueError(
            f"proba must hold probabilities in [0, 1], got values in "
            f"[{proba.min():.4g}, {proba.max():.4g}]"
        )
    sums = proba.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > _PROBA_SUM_TOL)
    if len(bad):
        raise ValueError(
            f"the rows of proba must sum to 1 (probabilities, not logits); row {bad[0]} "
            f"sums to {sums[bad[0]]:.6g} ({len(bad)} rows off by more than {_PROBA_SUM_TOL})"
        )
    return proba / sums[:, None]


def _resolve_labels(labels, *label_arrays):
    if labels is None:
        present = [np.asarray(a) for a in label_arrays if a is not None]
        return np.unique(np.concatenate(present))
    return _check_labels(labels)


# --------------------------------------------------------------------------
# scalar metrics


def _class_recalls(y_true, y_pred, labels):
    """Recall of every label (NaN where the label has no clip in y_true)."""
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.diag(cm) / support
    return np.where(support > 0, recall, np.nan), support


def macro_accuracy(y_true, y_pred, *, labels=None):
    """Macro-average (class-wise) accuracy, the DCASE Task 1 accuracy.

    The accuracy of every scene class present in ``y_true`` (the share of its
    clips predicted as that class, i.e. its recall), averaged over those
    classes with equal weight.  Equal to
    :func:`sklearn.metrics.balanced_accuracy_score`, without its warning
    when ``y_pred`` holds a class that ``y_true`` lacks (as on one device's
    clips).

    Parameters
    ----------
    y_true : array-like of shape (n_clips,)
        True scene labels.
    y_pred : array-like of shape (n_clips,)
        Predicted scene labels.
    labels : array-like, default=None
        The known labels.  If given, a label of ``y_true`` or ``y_pred``
        outside it raises ``ValueError``.  Classes without clips in
        ``y_true`` never count in the average.

    Returns
    -------
    accuracy : float
        In [0, 1].

    Raises
    ------
    ValueError
        If the inputs are empty, of different lengths, not 1-D, or hold
        labels outside ``labels``.

    See Also
    --------
    sklearn.metrics.balanced_accuracy_score : the same number.
    device_report : accuracy per device, device group and class.

    Examples
    --------
    Two classes; ``park`` is right 1 time of 2, ``bus`` 3 times of 3, so
    the macro accuracy is (0.5 + 1.0) / 2 while the plain accuracy is 4/5:

    >>> from skasc.metrics import macro_accuracy
    >>> y_true = ["park", "park", "bus", "bus", "bus"]
    >>> y_pred = ["park", "bus", "bus", "bus", "bus"]
    >>> macro_accuracy(y_true, y_pred)
    0.75
    """
    y_true = _as_1d(y_true, "y_true")
    y_pred = _as_1d(y_pred, "y_pred")
    _check_lengths(y_true=y_true, y_pred=y_pred)
    labels = _resolve_labels(labels, y_true, y_pred)
    _check_known(y_true, labels, "y_true")
    _check_known(y_pred, labels, "y_pred")
    recall, _ = _class_recalls(y_true, y_pred, labels)
    return float(np.nanmean(recall))


def _log_losses(y_true, proba, labels):
    """Mean log-loss over all clips and per label (NaN where absent)."""
    order = np.argsort(labels, kind="stable")  # sklearn wants sorted columns
    labels_sorted, proba_sorted = labels[order], proba[:, order]
    overall = float(log_loss(y_true, proba_sorted, labels=labels_sorted))
    per_class = np.full(len(labels), np.nan)
    for k, lab in enumerate(labels):
        rows = y_true == lab
        if rows.any():
            per_class[k] = log_loss(y_true[rows], proba_sorted[rows], labels=labels_sorted)
    return overall, per_class


def dcase_log_loss(y_true, proba, labels=None, *, average="micro"):
    """Multi-class log-loss (cross-entropy) as the DCASE Task 1 evaluation computes it.

    ``sklearn.metrics.log_loss`` on the clips, with the class probabilities
    in the columns of ``proba`` in the order of ``labels``.  The DCASE
    2022 Task 1 baseline's evaluation code (``do_evaluation``), on which the
    2023 task builds, reports as overall (and per-device) log-loss exactly
    this mean over clips, and the class-wise log-losses (mean over one
    class's clips) beside it; ``average="macro"`` returns the mean of those
    class-wise values instead.  On a class-balanced split (the official
    ``fold1_evaluate``) the two coincide.

    Probabilities are taken as float64 and clipped by sklearn to
    ``[eps, 1 - eps]`` (float64 machine epsilon in recent scikit-learn), so a
    confident wrong answer costs at most about 36 nats.

    Parameters
    ----------
    y_true : array-like of shape (n_clips,)
        True scene labels.
    proba : array-like of shape (n_clips, n_labels)
        Predicted probabilities (e.g. ``predict_proba``), rows summing to 1
        (deviations up to 1e-3 are renormalised).
    labels : array-like of shape (n_labels,), default=None
        The label of each column of ``proba``, e.g. the classifier's
        ``classes_``.  None: the sorted unique labels of ``y_true``, which
        must then number ``n_labels``.
    average : {"micro", "macro"}, default="micro"
        "micro": mean over clips (the challenge's overall log-loss);
        "macro": mean over the classes present in ``y_true`` of the
        class-wise log-loss.

    Returns
    -------
    loss : float
        In nats (natural logarithm); 0 is perfect, ``log(n_labels)`` is a
        uniform guess.

    Raises
    ------
    ValueError
        If lengths differ, ``proba`` is not a probability matrix of the
        right shape, ``y_true`` holds a label outside ``labels``, or
        ``average`` is unknown.

    See Also
    --------
    sklearn.metrics.log_loss : the "micro" number.

    Examples
    --------
    >>> import numpy as np
    >>> from skasc.metrics import dcase_log_loss
    >>> y_true = ["bus", "park", "park"]
    >>> proba = [[0.5, 0.5], [0.5, 0.5], [0.5, 0.5]]
    >>> round(dcase_log_loss(y_true, proba, labels=["bus", "park"]), 4)  # log(2)
    0.6931

    The columns follow ``labels``, whatever their order:

    >>> proba = [[0.8, 0.2], [0.1, 0.9], [0.1, 0.9]]
    >>> a = dcase_log_loss(y_true, proba, labels=["bus", "park"])
    >>> b = dcase_log_loss(y_true, np.fliplr(proba), labels=["park", "bus"])
    >>> bool(np.isclose(a, b))
    True
    """
    if average not in ("micro", "macro"):
        raise ValueError(f"average must be 'micro' or 'macro', got {average!r}")
    y_true = _as_1d(y_true, "y_true")
    n = _check_lengths(y_true=y_true)
    labels = _resolve_labels(labels, y_true)
    _check_known(y_true, labels, "y_true")
    proba = _check_proba(proba, n, len(labels))
    overall, per_class = _log_losses(y_true, proba, labels)
    if average == "micro":
        return overall
    return float(np.nanmean(per_class))


# --------------------------------------------------------------------------
# per-device report


def _ordered_devices(devices):
    present = set(devices.tolist())
    known = [d for d in _DEVICE_ORDER if d in present]
    return known + sorted(present - set(known), key=str)


def _scores(y_true, y_pred, proba, labels):
    recall, support = _class_recalls(y_true, y_pred, labels)
    out = {
        "accuracy": float(np.nanmean(recall)),
        "log_loss": None,
        "n": int(len(y_true)),
    }
    per_class_ll = None
    if proba is not None:
        overall, per_class_ll = _log_losses(y_true, proba, labels)
        out["log_loss"] = overall
    return out, recall, support, per_class_ll


def device_report(y_true, y_pred, devices, proba=None, labels=None, *, recordings=None,
                  reduce="mean"):
    """DCASE Task 1 results per device, device group and class.

    Parameters
    ----------
    y_true : array-like of shape (n_clips,)
        True scene labels.
    y_pred : array-like of shape (n_clips,)
        Predicted scene labels.
    devices : array-like of shape (n_clips,)
        Recording device of each clip (``a``, ``b``, ``c``, ``s1`` ... ``s6``;
        other names are reported per device but belong to no group), e.g.
        ``load_tau22(root, "evaluate").device``.
    proba : array-like of shape (n_clips, n_labels), default=None
        Predicted probabilities; the log-losses are None without them.
    labels : array-like, default=None
        Known labels, in the order of ``proba``'s columns.  None: the sorted
        union of ``y_true`` and ``y_pred`` (which must then match
        ``proba``'s width).
    recordings : array-like of shape (n_clips,), default=None
        The recording (file) of each clip, e.g.
        ``load_audio_folder(...).groups``: adds the ``"recordings"`` entry.
    reduce : {"mean", "geometric", "max", "vote"} or callable, default="mean"
        How the recording level combines the clips' ``proba`` (see
        :func:`skasc.recordings.aggregate_proba`).  A callable must return
        non-negative scores with a positive sum, normalised to sum to 1 for
        the log-loss; others raise ValueError naming the recording.
        Without ``proba`` a recording's decision is the majority vote of its
        clips' ``y_pred`` (a tie goes to the first label in ``labels``).

    Returns
    -------
    report : dict
        JSON-serialisable, with the keys

        ``"overall"``
            ``{"accuracy", "log_loss", "n"}`` on all clips: macro-average
            accuracy (in [0, 1]), log-loss (mean over clips, see
            :func:`dcase_log_loss`; None without ``proba``), clip count.
        ``"devices"``
            ``{device: {"accuracy", "log_loss", "n"}}`` for every device
            present, in the order a, b, c, s1 ... s6, then others; each
            computed on that device's clips alone.
        ``"groups"``
            ``{"real" | "seen" | "unseen": {"accuracy", "log_loss", "n",
            "devices"}}`` for each group with a device present: the
            unweighted mean of the group's per-device values (each device
            counts equally, as each class does in the accuracy), ``n`` the
            group's clips, ``devices`` the devices averaged.
        ``"classes"``
            ``{label: {"accuracy", "log_loss", "n"}}`` for every label with
            clips in ``y_true``: the class's accuracy (recall) and its mean
            log-loss over its clips.
        ``"labels"``
            The labels, as a list.
        ``"recordings"``
            Only with ``recordings``: ``{"accuracy", "log_loss", "n"}`` of
            one decision per recording (``n`` recordings), as
            :func:`recording_report`.

    Raises
    ------
    ValueError
        If lengths differ, an input is empty or malformed, a label is
        outside ``labels``, ``proba`` is not a probability matrix
        matching ``labels``, or the clips of a recording have different
        true labels.

    See Also
    --------
    format_device_report : the report as an aligned text or Markdown table.

    Examples
    --------
    >>> from skasc.metrics import device_report
    >>> y_true  = ["bus", "park", "bus", "park", "bus", "park"]
    >>> y_pred  = ["bus", "park", "bus", "bus",  "park", "park"]
    >>> devices = ["a",   "a",    "s1",  "s1",   "s4",  "s4"]
    >>> rep = device_report(y_true, y_pred, devices)
    >>> rep["devices"]["a"]["accuracy"], rep["devices"]["s1"]["accuracy"]
    (1.0, 0.5)
    >>> rep["groups"]["unseen"]["accuracy"], round(rep["overall"]["accuracy"], 4)
    (0.5, 0.6667)
    >>> rep["classes"]["park"]
    {'accuracy': 0.6666666666666666, 'log_loss': None, 'n': 3}
    """
    y_true = _as_1d(y_true, "y_true")
    y_pred = _as_1d(y_pred, "y_pred")
    devices = _as_1d(devices, "devices").astype(str)
    n = _check_lengths(y_true=y_true, y_pred=y_pred, devices=devices)
    labels = _resolve_labels(labels, y_true, y_pred)
    _check_known(y_true, labels, "y_true")
    _check_known(y_pred, labels, "y_pred")
    if proba is not None:
        proba = _check_proba(proba, n, len(labels))

    overall, recall, support, per_class_ll = _scores(y_true, y_pred, proba, labels)
    classes = {}
    for k, lab in enumerate(labels):
        if support[k] == 0:
            continue
        classes[_plain(lab)] = {
            "accuracy": float(recall[k]),
            "log_loss": None if per_class_ll is None else float(per_class_ll[k]),
            "n": int(support[k]),
        }

    per_device = {}
    for dev in _ordered_devices(devices):
        rows = devices == dev
        per_device[dev], *_ = _scores(
            y_true[rows], y_pred[rows], None if proba is None else proba[rows], labels
        )

    groups = {}
    for name, members in DEVICE_GROUPS.items():
        present = [d for d in members if d in per_device]
        if not present:
            continue
        lls = [per_device[d]["log_loss"] for d in present]
        groups[name] = {
            "accuracy": float(np.mean([per_device[d]["accuracy"] for d in present])),
            "log_loss": None if proba is None else float(np.mean(lls)),
            "n": int(sum(per_device[d]["n"] for d in present)),
            "devices": present,
        }

    report = {
        "overall": overall,
        "devices": per_device,
        "groups": groups,
        "classes": classes,
        "labels": [_plain(lab) for lab in labels],
    }
    if recordings is not None:
        if proba is None:  # one-hot clip decisions: their mean is the vote share
            clip_scores = (y_pred[:, None] == labels[None, :]).astype(np.float64)
            report["recordings"] = _recording_scores(y_true, clip_scores, recordings, labels, "mean")
            report["recordings"]["log_loss"] = None
        else:
            report["recordings"] = _recording_scores(y_true, proba, recordings, labels, reduce)
    return report


def _check_reduced_scores(reduced, ids, reduce):
    """Refuse scores of a callable ``reduce`` that cannot be read as
    probabilities: the recording log-loss normalises each row to sum to 1,
    which for negative scores (log-probabilities, logits) or an all-zero
    row gives numbers that mean nothing."""
    bad = np.flatnonzero((reduced < 0).any(axis=1) | ~(reduced.sum(axis=1) > 0))
    if bad.size:
        r = int(bad[0])
        name = getattr(reduce, "__name__", repr(reduce))
        raise ValueError(
            f"reduce={name} returned scores that are not probabilities for recording"
            f" {ids.tolist()[r]!r}: {np.round(reduced[r], 6).tolist()}; the recording log-loss"
            " needs non-negative scores with a positive sum (normalised to sum to 1), e.g."
            " probabilities rather than log-probabilities or logits"
        )


def _recording_scores(y_true, proba, recordings, labels, reduce):
    """Accuracy, log-loss and count of one decision per recording."""
    if reduce not in REDUCTIONS and not callable(reduce):
        raise ValueError(f"reduce must be one of {list(REDUCTIONS)} or a callable, got {reduce!r}")
    recordings = _as_1d(recordings, "recordings")
    _check_lengths(y_true=y_true, recordings=recordings)
    ids, index = group_by_recording(recordings, len(y_true))
    reduced, winner = reduce_proba(proba, index, len(ids), reduce)
    if callable(reduce):
        _check_reduced_scores(reduced, ids, reduce)
    _, y_rec = recording_labels(y_true, recordings)
    sums = reduced.sum(axis=1, keepdims=True)
    reduced = reduced / np.where(sums > 0, sums, 1.0)
    scores, *_ = _scores(y_rec, labels[winner], reduced, labels)
    return scores


def recording_report(y_true, proba, recordings, labels=None, *, reduce="mean"):
    """Scores at both levels: every clip, and every recording (file) once.

    The clip level scores each row's own prediction (the argmax of its
    ``proba``); the recording level first reduces the clips of each
    recording to one row (:func:`skasc.recordings.aggregate_proba`) and
    scores that, against the recording's label.  Accuracies are the
    class-wise (macro-average) accuracy of :func:`macro_accuracy`, log-losses
    the mean over clips, respectively recordings, of :func:`dcase_log_loss`.

    Parameters
    ----------
    y_true : array-like of shape (n_clips,)
        True labels; the clips of a recording share one.
    proba : array-like of shape (n_clips, n_labels)
        Clip probabilities (``predict_proba``), columns in the order of
        ``labels``.
    recordings : array-like of shape (n_clips,)
        The recording of each clip, e.g. ``load_audio_folder(...).groups``.
    labels : array-like of shape (n_labels,), default=None
        The label of each column of ``proba`` (e.g. ``classes_``).  None:
        the sorted unique labels of ``y_true``.
    reduce : {"mean", "geometric", "max", "vote"} or callable, default="mean"
        How the clips of a recording are combined.  A callable must return
        non-negative scores with a positive sum (normalised to sum to 1);
        others raise ValueError naming the recording.

    Returns
    -------
    report : dict
        ``{"clips": {"accuracy", "log_loss", "n"}, "recordings": {"accuracy",
        "log_loss", "n"}, "reduce": reduce}``, JSON-serialisable for a named
        ``reduce``.

    Raises
    ------
    ValueError
        As :func:`dcase_log_loss`; and if the clips of a recording have
        different labels, or ``reduce`` is unknown.

    See Also
    --------
    skasc.predict_recordings : the recording-level predictions themselves.

    Examples
    --------
    Two files of two clips; file ``f2``'s clips disagree, their mean does
    not:

    >>> from skasc.metrics import recording_report
    >>> y = ["cat", "cat", "dog", "dog"]
    >>> proba = [[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.1, 0.9]]
    >>> rep = recording_report(y, proba, ["f1", "f1", "f2", "f2"])
    >>> rep["clips"]["accuracy"], rep["recordings"]["accuracy"], rep["recordings"]["n"]
    (0.75, 1.0, 2)
    """
    y_true = _as_1d(y_true, "y_true")
    n = _check_lengths(y_true=y_true)
    labels = _resolve_labels(labels, y_true)
    _check_known(y_true, labels, "y_true")
    proba = _check_proba(proba, n, len(labels))
    clips, *_ = _scores(y_true, labels[np.argmax(proba, axis=1)], proba, labels)
    return {
        "clips": clips,
        "recordings": _recording_scores(y_true, proba, recordings, labels, reduce),
        "reduce": reduce if isinstance(reduce, str) else getattr(reduce, "__name__", repr(reduce)),
    }


def _plain(value):
    """numpy scalars as Python scalars, for JSON."""
    return value.item() if isinstance(value, np.generic) else value


# --------------------------------------------------------------------------
# formatting


def _check_report(report):
    if not isinstance(report, Mapping) or not {"overall", "devices", "groups", "classes"} <= set(report):
        raise TypeError("report must be the dict returned by device_report")


def _fmt_acc(v):
    return "-" if v is None else f"{100 * v:.1f}"


def _fmt_ll(v):
    return "-" if v is None else f"{v:.3f}"


def format_device_report(report, *, markdown=False):
    """A :func:`device_report` as two tables: devices, then classes.

    The first table has one column per aggregate (all clips, the groups
    real / seen / unseen) and per device, with rows accuracy (%),
    log-loss and clip count; the second one row per class.  A report with
    a recording level (``device_report(..., recordings=...)``) has a
    column ``by file`` after ``all``: one decision per recording, its count
    given as ``<n> files``.

    Parameters
    ----------
    report : dict
        As returned by :func:`device_report`.
    markdown : bool, default=False
        Markdown tables instead of aligned plain text.

    Returns
    -------
    text : str

    Examples
    --------
    >>> from skasc.metrics import device_report, format_device_report
    >>> rep = device_report(["bus", "park", "bus", "park"], ["bus", "park", "park", "park"],
    ...                     ["a", "a", "s4", "s4"])
    >>> print(format_device_report(rep))
                   all   real  unseen      a    s4
    ------------  ----  -----  ------  -----  ----
    accuracy (%)  75.0  100.0    50.0  100.0  50.0
    log-loss         -      -       -      -     -
    clips            4      2       2      2     2
    <BLANKLINE>
    class  accuracy (%)  log-loss  clips
    -----  ------------  --------  -----
    bus            50.0         -      2
    park          100.0         -      2
    """
    _check_report(report)
    cols = [("all", report["overall"])]
    if "recordings" in report:
        cols.append(("by file", report["recordings"]))
    cols += list(report["groups"].items())
    cols += list(report["devices"].items())
    header = [""] + [str(name) for name, _ in cols]
    rows = [
        ["accuracy (%)"] + [_fmt_acc(c["accuracy"]) for _, c in cols],
        ["log-loss"] + [_fmt_ll(c["log_loss"]) for _, c in cols],
        ["clips"] + [f"{c['n']} files" if name == "by file" else str(c["n"]) for name, c in cols],
    ]
    first = format_table(header, rows, ["l"] + ["r"] * len(cols), markdown=markdown)
    class_rows = [
        [str(lab), _fmt_acc(c["accuracy"]), _fmt_ll(c["log_loss"]), str(c["n"])]
        for lab, c in report["classes"].items()
    ]
    second = format_table(["class", "accuracy (%)", "log-loss", "clips"], class_rows,
                          ["l", "r", "r", "r"], markdown=markdown)
    return first + "\n\n" + second
