"""Checks of estimator inputs shared by the torch classifiers and OnnxClassifier.

Each raises one ValueError whose message names the argument and the first
offending entry, before any work is done: numpy's or scikit-learn's own
messages about the same mistakes name internals (``'<' not supported between
instances of 'NoneType' and 'str'``, ``range() arg 3 must not be zero``).
"""

from __future__ import annotations

import math
from numbers import Integral

import numpy as np

__all__ = ["check_known_labels", "check_labels", "check_batch_size"]


def check_known_labels(y, classes):
    """Raise if ``y`` holds labels outside ``classes``.

    A score would otherwise count them as plain errors, silently.

    Examples
    --------
    >>> from skasc._validation import check_known_labels
    >>> check_known_labels(["bus"], ["bus", "park"])
    >>> check_known_labels(["tram"], ["bus", "park"])
    Traceback (most recent call last):
    ...
    ValueError: y contains labels the model was not fitted on: ['tram']; known classes are ['bus', 'park']
    """
    unseen = np.setdiff1d(np.unique(y), classes)
    if len(unseen):
        raise ValueError(
            f"y contains labels the model was not fitted on: {unseen.tolist()}; "
            f"known classes are {np.asarray(classes).tolist()}"
        )


def _is_missing(label):
    return label is None or (isinstance(label, (float, np.floating)) and math.isnan(label))


def check_labels(y, *, name="y"):
    """``y`` as a 1-D array of class labels, refusing what is no label.

    Refused, naming ``name`` and the first offending row: a missing label
    (None or NaN: an unlabelled clip), a bytes label (decode it to str),
    and labels of mixed kinds (str beside numbers), which numpy cannot
    sort into classes.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
    name : str, default="y"
        The argument, as named in the messages.

    Returns
    -------
    y : ndarray of shape (n_samples,)

    Examples
    --------
    >>> from skasc._validation import check_labels
    >>> check_labels(["bus", "park"]).tolist()
    ['bus', 'park']
    >>> check_labels(["bus", None])
    Traceback (most recent call last):
    ...
    ValueError: y has no label at row 1 (None): every clip needs a label; drop the unlabelled clips or fill them in
    """
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one label per clip), got shape {arr.shape}")
    if arr.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            k = int(bad[0])
            what = "no label" if np.isnan(arr[k]) else "an infinite label"
            raise ValueError(
                f"{name} has {what} at row {k} ({arr[k].item()!r}): every clip needs a label; "
                "drop the unlabelled clips or fill them in"
            )
    if arr.dtype.kind == "S":
        raise ValueError(
            f"{name} holds bytes ({arr[0].item()!r} at row 0), not str labels: decode them, "
            "e.g. [label.decode() for label in y]"
        )
    # a list is looked at as given: numpy turns ["bus", 3] into text silently
    items = arr if arr.dtype.kind == "O" else (
        np.asarray(list(y), dtype=object) if isinstance(y, (list, tuple)) and arr.ndim == 1 else None)
    if items is not None:
        kinds = {}
        for k, label in enumerate(items):
            if _is_missing(label):
                raise ValueError(
                    f"{name} has no label at row {k} ({label!r}): every clip needs a label; "
                    "drop the unlabelled clips or fill them in"
                )
            if isinstance(label, bytes):
                raise ValueError(
                    f"{name} holds bytes ({label!r} at row {k}), not str labels: decode them, "
                    "e.g. [label.decode() for label in y]"
                )
            kind = "str" if isinstance(label, str) else "number" if isinstance(
                label, (Integral, float, np.number)) else type(label).__name__
            kinds.setdefault(kind, k)
        if len(kinds) > 1:
            (a, i), (b, j) = sorted(kinds.items(), key=lambda kv: kv[1])[:2]
            raise ValueError(
                f"{name} mixes labels of different kinds: {items[i]!r} (row {i}, a {a}) and "
                f"{items[j]!r} (row {j}, a {b}); give every label as the same kind, e.g. all str"
            )
    return arr


def check_batch_size(batch_size, *, name="batch_size"):
    """``batch_size`` as an int >= 1, or a ValueError naming ``name``.

    For the ``batch_size`` argument of prediction methods, which
    ``_parameter_constraints`` do not cover (they validate ``fit``'s
    parameters): 0 would otherwise fail inside ``range`` with "arg 3 must
    not be zero" and a negative value return no rows at all.

    Parameters
    ----------
    batch_size : int
    name : str, default="batch_size"

    Returns
    -------
    batch_size : int

    Examples
    --------
    >>> from skasc._validation import check_batch_size
    >>> check_batch_size(64)
    64
    >>> check_batch_size(0)
    Traceback (most recent call last):
    ...
    ValueError: batch_size must be an integer >= 1 (clips per forward pass), got 0
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, Integral) or batch_size < 1:
        raise ValueError(f"{name} must be an integer >= 1 (clips per forward pass), got {batch_size!r}")
    return int(batch_size)
