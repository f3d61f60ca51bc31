"""One contract for predicting and scoring, shared by every skasc classifier.

:class:`SceneClassifierMixin` gives ``predict``, ``predict_proba``,
``predict_log_proba``, ``decision_function`` and ``score`` from one method
of raw scores (``predict_logits``: every class's logit); the functions below
it are the same rules for a classifier that cannot inherit them as they are
(:class:`~skasc.device_specific.DeviceSpecificClassifier`, whose methods also
take ``devices``).  The contract and the reasons for its choices are in the
mixin's docstring.
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_softmax
from sklearn.metrics import accuracy_score
from sklearn.utils.validation import check_consistent_length, check_is_fitted, column_or_1d

from ._featureset import AudioSet, FeatureSet
from ._validation import check_known_labels, check_labels

__all__ = [
    "SceneClassifierMixin",
    "labels_from_scores",
    "log_proba_from_scores",
    "proba_from_scores",
    "decision_from_scores",
    "logit_scores",
    "checked_accuracy",
    "n_rows",
    "unflatten_rows",
]


# -- scores -> the methods' outputs ----------------------------------------------------


def _as_scores(scores):
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must have shape (n_clips, n_classes), got {scores.shape}")
    return scores


def labels_from_scores(scores, classes):
    """``classes[argmax(scores, axis=1)]``: the predicted label of each row.

    Parameters
    ----------
    scores : array-like of shape (n_clips, n_classes)
        Raw scores (or probabilities) with columns in the order of ``classes``.
    classes : ndarray of shape (n_classes,)

    Returns
    -------
    ndarray of shape (n_clips,)
        Labels taken from ``classes`` (their dtype).

    Examples
    --------
    >>> import numpy as np
    >>> from skasc._predict import labels_from_scores
    >>> labels_from_scores([[0.1, 2.0], [3.0, -1.0]], np.array(["bus", "park"])).tolist()
    ['park', 'bus']
    """
    return np.asarray(classes)[np.argmax(_as_scores(scores), axis=1)]


def log_proba_from_scores(scores):
    """Log class probabilities (a stable log-softmax), float64.

    Float64, like :func:`proba_from_scores`: its ``exp`` is the
    probabilities, and a class far below the best one keeps a finite
    log-probability (float32 probabilities would round it to 0 from a
    logit gap of about 100 on, and the largest to exactly 1).

    Parameters
    ----------
    scores : array-like of shape (n_clips, n_classes)

    Returns
    -------
    ndarray of shape (n_clips, n_classes), float64

    Examples
    --------
    >>> from skasc._predict import log_proba_from_scores
    >>> log_proba_from_scores([[0.0, 0.0], [200.0, 0.0]]).round(3).tolist()
    [[-0.693, -0.693], [0.0, -200.0]]
    """
    return log_softmax(_as_scores(scores).astype(np.float64), axis=1)


def proba_from_scores(scores):
    """Class probabilities (softmax of the scores), float64.

    ``exp`` of :func:`log_proba_from_scores`, so that one is their
    logarithm and rows sum to 1 to float64 precision.

    Parameters
    ----------
    scores : array-like of shape (n_clips, n_classes)

    Returns
    -------
    ndarray of shape (n_clips, n_classes), float64

    Examples
    --------
    >>> from skasc._predict import proba_from_scores
    >>> proba_from_scores([[0.0, 0.0], [1000.0, 0.0]]).tolist()
    [[0.5, 0.5], [1.0, 0.0]]
    """
    return np.exp(log_proba_from_scores(scores))


def decision_from_scores(scores):
    """``decision_function``'s output from every class's scores, scikit-learn's shape.

    Parameters
    ----------
    scores : array-like of shape (n_clips, n_classes)

    Returns
    -------
    ndarray of shape (n_clips,) for two classes, else (n_clips, n_classes), float32
        Two classes: the score of the second class minus that of the first
        (positive where the second one is predicted); otherwise the scores.

    Examples
    --------
    >>> from skasc._predict import decision_from_scores
    >>> decision_from_scores([[1.0, 3.0], [2.0, 0.5]]).tolist()
    [2.0, -1.5]
    >>> decision_from_scores([[1.0, 3.0, 0.0]]).shape
    (1, 3)
    """
    scores = _as_scores(scores).astype(np.float32, copy=False)
    return scores[:, 1] - scores[:, 0] if scores.shape[1] == 2 else scores


#: Where a classifier's scores are read from, by default: raw scores first.
SCORE_METHODS = ("predict_logits", "decision_function", "predict_proba")


def logit_scores(estimator, X, order=SCORE_METHODS, floor=None):
    """Every class's raw score of any fitted classifier, columns in its ``classes_`` order.

    The first method of ``order`` the estimator has: ``predict_logits``
    (skasc classifiers), ``decision_function`` (a two-class 1-D score ``d``
    becomes the columns ``(0, d)``, whose difference it is), or the log of
    ``predict_proba``.

    Parameters
    ----------
    estimator : fitted classifier
    X : the estimator's input
    order : sequence of str, default=SCORE_METHODS
        A teacher reads ``predict_proba`` before ``decision_function``
        (whose scale, e.g. an SVM's margins, says nothing about confidence).
    floor : float or None, default=None
        Probabilities are clipped to at least ``floor`` before the log (None:
        a probability of 0 gives -inf).

    Returns
    -------
    ndarray of shape (n_clips, n_classes), float32

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skasc._predict import logit_scores, decision_from_scores
    >>> X, y = np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1]
    >>> clf = LogisticRegression().fit(X, y)
    >>> bool(np.allclose(decision_from_scores(logit_scores(clf, X)), clf.decision_function(X)))
    True
    """
    for method in order:
        if not hasattr(estimator, method):
            continue
        if method == "predict_proba":
            p = np.asarray(estimator.predict_proba(X), dtype=np.float64)
            if floor:
                p = np.clip(p, floor, None)
            with np.errstate(divide="ignore"):  # a probability of 0 is a score of -inf
                return np.log(p).astype(np.float32)
        scores = np.asarray(getattr(estimator, method)(X), dtype=np.float32)
        if scores.ndim == 1:
            return np.stack([np.zeros_like(scores), scores], axis=1)
        return scores
    raise TypeError(f"{type(estimator).__name__} has none of {', '.join(order)}")


def checked_accuracy(y, predict, classes, sample_weight=None):
    """Accuracy of ``predict()`` against ``y``, refusing labels the model never saw.

    ``y`` is checked first (missing, bytes or mixed labels; labels outside
    ``classes``), so a mistake in it is named before any prediction runs.

    Parameters
    ----------
    y : array-like of shape (n_clips,)
    predict : callable
        Returns the predicted labels (called once, after the checks of ``y``).
    classes : ndarray or None
        The labels the model knows; None where they are known only once
        the model has run (``predict`` then checks ``y`` against them).
    sample_weight : array-like of shape (n_clips,), default=None

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from skasc._predict import checked_accuracy
    >>> checked_accuracy(["bus", "park"], lambda: np.array(["bus", "bus"]), ["bus", "park"])
    0.5
    """
    y = check_labels(column_or_1d(y))
    if classes is not None:
        check_known_labels(y, classes)
    y_pred = predict()
    check_consistent_length(y_pred, y, sample_weight)
    return float(accuracy_score(y, y_pred, sample_weight=sample_weight))


# -- what an input means ---------------------------------------------------------------


def n_rows(X):
    """Number of rows (clips) of ``X``: ``shape[0]`` of an array-like, else ``len``.

    Parameters
    ----------
    X : array-like, FeatureSet, AudioSet or sequence of rows

    Returns
    -------
    int

    Examples
    --------
    >>> import numpy as np
    >>> from skasc._predict import n_rows
    >>> n_rows(np.zeros((3, 8, 12))), n_rows(["a.wav", "b.wav"])
    (3, 2)
    """
    shape = None if isinstance(X, (str, bytes)) else getattr(X, "shape", None)
    if shape is None and not hasattr(X, "__len__") and hasattr(X, "__array__"):
        shape = np.asarray(X).shape  # an array-like that only converts
    if shape is not None and len(shape):
        return int(shape[0])
    if shape is not None or isinstance(X, (str, bytes)) or not hasattr(X, "__len__"):
        raise TypeError(f"Expected sequence or array-like (one row per clip), got {type(X)}")
    return len(X)


def unflatten_rows(X, input_shape):
    """A 2-D numeric array of flattened clips as clips of ``input_shape``; anything else as it is.

    The one meaning of a 2-D array given to a fitted feature classifier:
    ``(n_clips, n_features_in_)``, each row a clip's features flattened
    band-major -- :class:`~skasc.FeatureSet`'s array view -- whose width is
    ``C * F * T`` of ``input_shape = (C, F, T)``.  Such an array is reshaped
    to ``(n_clips, C, F, T)``; other inputs (FeatureSets, 3-D and 4-D
    arrays, 2-D arrays of another width, audio rows) are returned untouched,
    for the classifier's own checks.

    Parameters
    ----------
    X : array-like or FeatureSet
    input_shape : tuple of int
        The fitted ``(C, F, T)``.

    Returns
    -------
    X or ndarray of shape (n_clips, C, F, T)

    Examples
    --------
    >>> import numpy as np
    >>> from skasc._predict import unflatten_rows
    >>> unflatten_rows(np.zeros((2, 96)), (1, 8, 12)).shape
    (2, 1, 8, 12)
    >>> unflatten_rows(np.zeros((2, 8, 12)), (1, 8, 12)).shape
    (2, 8, 12)
    """
    if isinstance(X, (FeatureSet, AudioSet)) or hasattr(X, "tocsr") or not (
            isinstance(X, (list, tuple)) or hasattr(X, "__array__")):
        return X  # row containers, sparse matrices, ...: left to the classifier's checks
    try:
        arr = np.asarray(X)
    except (TypeError, ValueError):  # ragged rows: the classifier's checks name them
        return X
    width = int(np.prod(input_shape))
    if arr.ndim == 2 and arr.dtype.kind in "biuf" and arr.shape[1] == width:
        return arr.reshape(len(arr), *input_shape)
    return X


# -- the mixin -------------------------------------------------------------------------


class SceneClassifierMixin:
    """Prediction and scoring from every class's raw scores: the skasc contract.

    A class using it provides ``predict_logits(X)`` (or overrides
    ``_scores``): float32 scores of shape ``(n_clips, n_classes)``, columns
    in the order of ``classes_``, raising NotFittedError when unfitted.
    From them, for every skasc classifier (the torch networks,
    :class:`~skasc.PretrainedClassifier`, :class:`~skasc.export.OnnxClassifier`
    through this mixin; :class:`~skasc.device_specific.DeviceSpecificClassifier`
    through the same functions of this module):

    * ``predict(X)``: shape ``(n_clips,)``, labels of ``classes_`` (their
      dtype), ``classes_[argmax(predict_proba(X))]``;
    * ``predict_proba(X)``: ``(n_clips, n_classes)`` float64, the softmax of
      the scores, rows summing to 1;
    * ``predict_log_proba(X)``: ``(n_clips, n_classes)`` float64, its log,
      computed stably.  Both are computed from the float32 scores in
      float64, as scikit-learn's classifiers return them: in float32 the
      probability of a class about 100 logits below the best rounds to 0
      (its log to -inf) and the best one's to exactly 1, so that
      ``predict_log_proba`` could not be both finite and the log of
      ``predict_proba``;
    * ``decision_function(X)``: scikit-learn's convention for classifiers
      (e.g. :meth:`sklearn.linear_model.LogisticRegression.decision_function`):
      with two classes a 1-D array of shape ``(n_clips,)``, the score of
      ``classes_[1]`` -- its logit minus that of ``classes_[0]``, positive
      exactly where ``predict`` gives ``classes_[1]`` -- and otherwise the
      scores, ``(n_clips, n_classes)``; float32.  This is the shape
      scikit-learn's tools expect (``roc_auc_score``, ``check_estimator``,
      ``CalibratedClassifierCV``), so it is the shape for every skasc
      classifier; ``predict_logits`` always gives every class's column
      (what distillation and export use);
    * ``score(X, y, sample_weight=None)``: the (weighted) accuracy of
      ``predict``, with ``y`` checked first: missing or mixed labels and
      labels outside ``classes_`` raise ValueError instead of counting as
      errors, and ``X`` and ``y`` of different lengths raise.

    **What X means** is the same for every method and what ``fit`` took:
    a classifier of log-mel features (:class:`~skasc.DwsCNNClassifier`,
    :class:`~skasc.DistilledStudent`, an :class:`~skasc.EnsembleTeacher`
    with a member that reads features, :class:`~skasc.export.OnnxClassifier`)
    takes a :class:`~skasc.FeatureSet` or an array of shape
    ``(n_clips, bands, frames)`` or ``(n_clips, 1, bands, frames)``; a 2-D
    array is ``(n_clips, n_features_in_)``, each row one clip's features
    flattened band-major, i.e. the FeatureSet's array view
    ``np.asarray(features)``, reshaped to ``input_shape_``
    (:func:`unflatten_rows`).  A model fitted on a 2-D array ``(n, d)`` took
    it as one band of ``d`` frames (``input_shape_ == (1, 1, d)``): the same
    meaning, with one band.  A classifier that reads audio
    (:class:`~skasc.PretrainedClassifier`) takes audio rows, and for it a
    2-D array is ``(n_clips, n_samples)`` waveforms -- again
    ``(n_clips, n_features_in_)``.  ``DeviceSpecificClassifier`` takes what
    its general model takes.

    Examples
    --------
    >>> import numpy as np
    >>> from skasc._predict import SceneClassifierMixin
    >>> class Fixed(SceneClassifierMixin):
    ...     classes_ = np.array(["bus", "park"])
    ...     def _fitted_classes(self):
    ...         return self.classes_
    ...     def predict_logits(self, X):
    ...         return np.asarray(X, dtype=np.float32)
    >>> Fixed().decision_function([[0.0, 2.0], [1.0, 0.0]]).tolist()
    [2.0, -1.0]
    >>> Fixed().predict([[0.0, 2.0], [1.0, 0.0]]).tolist()
    ['park', 'bus']
    """

    def _scores(self, X):
        """Every class's raw score, (n_clips, n_classes), columns in ``classes_`` order."""
        return self.predict_logits(X)

    def _fitted_classes(self):
        """``classes_`` of the fitted model (NotFittedError if it is not fitted);
        None where only the scores tell the number of classes."""
        check_is_fitted(self)
        return self.classes_

    def _labels(self, n_columns):
        """The label of each score column."""
        return self.classes_

    def predict(self, X):
        """Most probable class of each clip.

        Parameters
        ----------
        X : FeatureSet, array-like or audio rows
            The clips, in the input ``fit`` took (see the class docstring):
            features as a FeatureSet, an array (n_clips, bands, frames) or
            flattened, ``(n_clips, n_features_in_)``; audio rows for a
            classifier that reads audio.

        Returns
        -------
        ndarray of shape (n_clips,)
            Labels of ``classes_``, the class of the largest score.
        """
        scores = self._scores(X)
        return labels_from_scores(scores, self._labels(np.shape(scores)[1]))

    def predict_proba(self, X):
        """Class probabilities of each clip.

        Parameters
        ----------
        X : FeatureSet, array-like or audio rows
            The clips, in the input ``fit`` took (see :meth:`predict`).

        Returns
        -------
        ndarray of shape (n_clips, n_classes), float64
            Softmax of the scores; columns follow ``classes_``.
        """
        return proba_from_scores(self._scores(X))

    def predict_log_proba(self, X):
        """Log class probabilities of each clip.

        Parameters
        ----------
        X : FeatureSet, array-like or audio rows
            The clips, in the input ``fit`` took (see :meth:`predict`).

        Returns
        -------
        ndarray of shape (n_clips, n_classes), float64
            Log-softmax of the scores, the log of :meth:`predict_proba`;
            columns follow ``classes_``.
        """
        return log_proba_from_scores(self._scores(X))

    def decision_function(self, X):
        """Raw scores of each clip, in scikit-learn's shape.

        Parameters
        ----------
        X : FeatureSet, array-like or audio rows
            The clips, in the input ``fit`` took (see :meth:`predict`).

        Returns
        -------
        ndarray of shape (n_clips,) for two classes, else (n_clips, n_classes), float32
            The logits.  With two classes, scikit-learn's convention: the
            logit of ``classes_[1]`` minus that of ``classes_[0]``, positive
            where :meth:`predict` gives ``classes_[1]``.
        """
        return decision_from_scores(self._scores(X))

    def score(self, X, y, sample_weight=None):
        """Accuracy; labels the model never saw raise instead of counting as errors.

        Parameters
        ----------
        X : FeatureSet, array-like or audio rows
            The clips, in the input ``fit`` took (see :meth:`predict`).
        y : array-like of shape (n_clips,)
            True labels, all among ``classes_``.
        sample_weight : array-like of shape (n_clips,), default=None

        Returns
        -------
        float
            Fraction of clips predicted correctly (weighted).
        """
        known = self._fitted_classes()
        if known is not None:
            return checked_accuracy(y, lambda: self.predict(X), known, sample_weight)

        def predict_checked():
            scores = self._scores(X)
            labels = self._labels(np.shape(scores)[1])
            check_known_labels(column_or_1d(y), labels)
            return labels_from_scores(scores, labels)

        return checked_accuracy(y, predict_checked, None, sample_weight)
