"""Checks of estimator inputs shared by the torch classifiers and OnnxClassifier."""

from __future__ import annotations

import numpy as np

__all__ = ["check_known_labels"]


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
