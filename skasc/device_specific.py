"""Device-specific models: one network per recording device, fine-tuned from a
general one (the DCASE 2025 Task 1 baseline's recipe).

In DCASE 2025 Task 1 the recording device of every test clip is known.  The
baseline trains one general model (on the 25 % subset), then fine-tunes a
copy of it on the training clips of each device, and at test time sends each
clip to its device's model; clips of devices not seen in training go to the
general model.  It reports 50.72 % for the general model against 51.89 %
with device-specific models (mean of 4 runs).
:class:`DeviceSpecificClassifier` is that recipe as a scikit-learn
meta-estimator.
"""

from __future__ import annotations

import copy
import numbers

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, _fit_context, clone
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline
from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.validation import _num_samples, check_is_fitted, column_or_1d

from ._audio import parse_clip_name, split_fragment
from ._featureset import FeatureSet
from .classifiers import _is_fitted, clone_keeping_fitted
from ._validation import check_known_labels

__all__ = ["DeviceSpecificClassifier", "row_devices"]


def row_devices(X, devices=None, *, name="devices"):
    """The recording device of every row of ``X``.

    Parameters
    ----------
    X : array-like of shape (n_rows,) or (n_rows, ...)
        Rows; paths to TAU22 clips (or clip rows of such files) carry their
        device in the file name.
    devices : array-like of shape (n_rows,), default=None
        The devices, given explicitly; required when ``X`` holds waveforms
        or features.

    Returns
    -------
    devices : ndarray of str, shape (n_rows,)

    Examples
    --------
    >>> from skasc.device_specific import row_devices
    >>> row_devices(["audio/bus-milan-1003-40030-7-b.wav",
    ...              "audio/park-lyon-1001-40010-0-s2.wav"]).tolist()
    ['b', 's2']
    """
    n = _num_samples(X)
    if devices is not None:
        devices = column_or_1d(np.asarray(devices, dtype=object)).astype(str)
        if len(devices) != n:
            raise ValueError(f"{name} has {len(devices)} entries for {n} rows of X")
        return devices
    rows = X if not isinstance(X, np.ndarray) else (X if X.ndim == 1 else None)
    if rows is None or isinstance(X, FeatureSet) or (n and not isinstance(rows[0], str)):
        raise ValueError(
            f"X holds {'features' if isinstance(X, FeatureSet) else 'arrays'}, not TAU22 file "
            f"paths, so the device of each row is unknown: pass {name}=... (one device per row), "
            "or wrap the whole Pipeline (from the paths on) in DeviceSpecificClassifier")
    return np.asarray([parse_clip_name(split_fragment(str(r))[0])["device"] for r in rows], dtype=str)


def _take(X, rows):
    if isinstance(X, FeatureSet):
        return X[rows]
    if hasattr(X, "__array__") and not hasattr(X, "__getitem__"):
        X = np.asarray(X)  # array-likes that only convert
    return _safe_indexing(X, rows)


def _final_step(estimator):
    """The estimator that trains the network: a Pipeline's last step, or itself."""
    return estimator.steps[-1][1] if isinstance(estimator, Pipeline) else estimator


class DeviceSpecificClassifier(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """One classifier per recording device, fine-tuned from a general classifier.

    ``fit`` trains the general classifier on all clips (or takes it as it is
    when already fitted), then, for every device with at least ``min_clips``
    training clips, continues training a copy of it on that device's clips
    (``warm_start=True``, with the parameters in ``fine_tune``).  ``predict``
    sends every clip to its device's model; clips of other devices (e.g. the
    unseen s4-s6 of TAU22) go to the general model.

    The device of a row is read from the TAU22 file name when ``X`` holds
    paths: wrap the whole Pipeline, from the paths on, so that each device's
    copy sees its own clips' features.  For features or waveforms pass
    ``devices=`` (one per row) to ``fit``, ``predict``, ``predict_proba`` and
    ``score``; with scikit-learn's metadata routing enabled, request it with
    ``set_fit_request(devices=True)`` (and likewise for predict and score)
    so that a GridSearchCV or Pipeline routes it.

    Parameters
    ----------
    estimator : skasc classifier or Pipeline ending in one
        The general model: fitted (used as it is, also when wrapped in
        :class:`~sklearn.frozen.FrozenEstimator`) or not (cloned and fitted
        on all clips).  Its final step must accept ``warm_start``
        (:class:`~skasc.DwsCNNClassifier`, :class:`~skasc.DistilledStudent`:
        device-specific distilled students keep the general student's
        teacher).
    fine_tune : dict, default=None
        Parameters set on each device's copy before it trains, e.g.
        ``{"max_epochs": 20, "lr": 1e-3}`` (or ``"clf__max_epochs"`` for a
        Pipeline).  None: the general model's own parameters.
    min_clips : int, default=1
        Devices with fewer training clips get no model of their own.
    verbose : int, default=0
        Print a line per device model.

    Attributes
    ----------
    general_estimator_ : estimator
        The fitted general model.
    device_estimators_ : dict
        Device name -> fitted device-specific model.
    classes_ : ndarray
    n_features_in_ : int
        As the general model's (when it has one).
    n_clips_per_device_ : dict
        Training clips of every device seen in ``fit``.

    Examples
    --------
    >>> import numpy as np
    >>> from skasc import DwsCNNClassifier
    >>> from skasc.device_specific import DeviceSpecificClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 8, 12)).astype("float32")
    >>> y = np.repeat(["bus", "park"], 30)
    >>> X[y == "park", :4] += 2.0
    >>> devices = np.tile(["a", "b", "c"], 20)
    >>> general = DwsCNNClassifier(hidden=4, max_epochs=3, random_state=0)
    >>> model = DeviceSpecificClassifier(general, fine_tune={"max_epochs": 2})
    >>> model = model.fit(X, y, devices=devices)
    >>> sorted(model.device_estimators_)
    ['a', 'b', 'c']
    >>> model.predict(X[:2], devices=["a", "s4"]).shape  # s4: the general model
    (2,)
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "predict_proba"])],
        "fine_tune": [dict, None],
        "min_clips": [Interval(numbers.Integral, 1, None, closed="left")],
        "verbose": ["verbose"],
    }

    def __init__(self, estimator, *, fine_tune=None, min_clips=1, verbose=0):
        self.estimator = estimator
        self.fine_tune = fine_tune
        self.min_clips = min_clips
        self.verbose = verbose

    def __sklearn_clone__(self):
        # a fitted general model is kept (not refitted per clone), as
        # DistilledStudent keeps a fitted teacher
        return clone_keeping_fitted(self, "estimator")

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, devices=None):
        """Fit (or take) the general model, then fine-tune a copy per device.

        Parameters
        ----------
        X : array-like of shape (n_clips,) or (n_clips, ...)
            TAU22 paths (the devices are read from the names) or features /
            waveforms with ``devices``.
        y : array-like of shape (n_clips,)
            Scene labels.
        devices : array-like of shape (n_clips,), default=None
            The recording device of every clip; None: read from the paths.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        y = column_or_1d(y, warn=True)
        if len(y) != _num_samples(X):
            raise ValueError(f"X and y have different lengths: X has {len(X)} rows, y has {len(y)}")
        devices = row_devices(X, devices)
        general = self.estimator
        if isinstance(general, FrozenEstimator):
            general = general.estimator
        if not _is_fitted(general):
            general = clone(general).fit(X, y)
        if not hasattr(_final_step(general), "warm_start"):
            raise TypeError(
                f"the final step of estimator ({type(_final_step(general)).__name__}) has no "
                "warm_start parameter: device-specific fine-tuning needs a skasc classifier "
                "(DwsCNNClassifier, DistilledStudent) or a Pipeline ending in one")
        self.general_estimator_ = general
        self.classes_ = np.asarray(general.classes_)
        if hasattr(general, "n_features_in_"):
            self.n_features_in_ = general.n_features_in_
        names, counts = np.unique(devices, return_counts=True)
        self.n_clips_per_device_ = {str(d): int(c) for d, c in zip(names, counts)}
        self.device_estimators_ = {}
        for device in names[counts >= self.min_clips]:
            rows = np.flatnonzero(devices == device)
            if len(np.unique(y[rows])) < 2:
                continue  # one class: nothing to fine-tune on; the general model serves it
            model = copy.deepcopy(general)  # the general weights are the starting point
            final = _final_step(model)
            final.set_params(warm_start=True)
            if self.fine_tune:
                model.set_params(**self.fine_tune)
            if self.verbose:
                print(f"[DeviceSpecificClassifier] device {device}: fine-tuning on "
                      f"{len(rows)} clips", flush=True)
            self.device_estimators_[str(device)] = model.fit(_take(X, rows), y[rows])
        return self

    def _route(self, X, devices):
        check_is_fitted(self, "device_estimators_")
        devices = row_devices(X, devices)
        out = np.zeros((len(devices), len(self.classes_)), np.float32)
        for device in np.unique(devices):
            rows = np.flatnonzero(devices == device)
            model = self.device_estimators_.get(str(device), self.general_estimator_)
            out[rows] = model.predict_proba(_take(X, rows))
        return out

    def predict_proba(self, X, devices=None):
        """Class probabilities of each clip from its device's model.

        Parameters
        ----------
        X : array-like of shape (n_clips,) or (n_clips, ...)
        devices : array-like of shape (n_clips,), default=None
            None: read from the paths.

        Returns
        -------
        proba : ndarray of shape (n_clips, n_classes)
        """
        return self._route(X, devices)

    def predict(self, X, devices=None):
        """Most probable scene of each clip, from its device's model.

        Parameters
        ----------
        X : array-like of shape (n_clips,) or (n_clips, ...)
        devices : array-like of shape (n_clips,), default=None
            None: read from the paths.

        Returns
        -------
        y_pred : ndarray of shape (n_clips,)
        """
        proba = self._route(X, devices)  # checks that the model is fitted
        return self.classes_[np.argmax(proba, axis=1)]

    def score(self, X, y, sample_weight=None, devices=None):
        """Accuracy of the device-routed predictions.

        Parameters
        ----------
        X : array-like of shape (n_clips,) or (n_clips, ...)
        y : array-like of shape (n_clips,)
            True labels; labels the model never saw raise.
        sample_weight : array-like of shape (n_clips,), default=None
        devices : array-like of shape (n_clips,), default=None
            None: read from the paths.

        Returns
        -------
        score : float
        """
        from sklearn.metrics import accuracy_score

        check_is_fitted(self, "device_estimators_")
        y = column_or_1d(y)
        check_known_labels(y, self.classes_)
        return float(accuracy_score(y, self.predict(X, devices=devices), sample_weight=sample_weight))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags
