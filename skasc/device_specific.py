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
import sys
import warnings
from types import SimpleNamespace

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, _fit_context, clone
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.validation import check_is_fitted, column_or_1d

from ._base import clone_keeping_fitted, is_fitted
from ._featureset import AudioSet, FeatureSet
from ._predict import (
    checked_accuracy,
    decision_from_scores,
    labels_from_scores,
    logit_scores,
    n_rows,
)
from ._rows import row_device
from ._validation import check_labels

__all__ = ["DeviceSpecificClassifier", "row_devices", "single_class_devices"]


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
    n = n_rows(X)
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
    return np.asarray([row_device(str(r)) for r in rows], dtype=str)


def single_class_devices(y, devices, min_clips=1):
    """The devices that would get a model of their own from clips of one class.

    :class:`DeviceSpecificClassifier` fine-tunes a copy of the general
    model for every device with at least ``min_clips`` training clips; a
    copy fine-tuned on a single class would learn to answer only it, so
    such a device is left to the general model, with a warning.

    Parameters
    ----------
    y : array-like of shape (n_clips,)
    devices : array-like of shape (n_clips,)
    min_clips : int, default=1

    Returns
    -------
    found : dict
        Device name -> (its one class, its clip count).

    Examples
    --------
    >>> from skasc.device_specific import single_class_devices
    >>> single_class_devices(["bus", "park", "bus"], ["a", "a", "b"])
    {'b': ('bus', 1)}
    """
    y, devices = np.asarray(y), np.asarray(devices, dtype=str)
    names, counts = np.unique(devices, return_counts=True)
    found = {}
    for device, count in zip(names, counts):
        classes = np.unique(y[devices == device])
        if count >= min_clips and len(classes) < 2:
            found[str(device)] = (classes.tolist()[0], int(count))
    return found


def _near_miss(device, known):
    """A device of ``known`` that ``device`` was probably meant to be (same
    name up to case, spaces or number type: 'A' for 'a', '1.0' for '1')."""
    for name in known:
        if device.strip().lower() == name.strip().lower():
            return name
        try:
            if float(device) == float(name):
                return name
        except ValueError:
            continue
    return None


def _scored_without_devices():
    """Whether this fit runs inside scikit-learn's cross-validation
    (GridSearchCV, cross_validate, ...) that will score the model without
    ``devices``: without metadata routing they go to ``fit`` only."""
    frame = sys._getframe(1)
    while frame is not None:
        if (frame.f_code.co_name == "_fit_and_score"
                and frame.f_globals.get("__name__", "").startswith("sklearn.model_selection")):
            return "devices" not in (frame.f_locals.get("score_params") or {})
        frame = frame.f_back
    return False


def _architecture(estimator, input_shape):
    """The network-defining arguments of ``estimator``'s final step
    (``module*`` entries of its skorch spec), or None if it does not say."""
    final = _final_step(estimator)
    try:
        spec = final._net_spec(SimpleNamespace(feature_shape=tuple(input_shape)), 2)
    except Exception:  # not a skasc network classifier: nothing to compare
        return None
    return {k: v for k, v in spec.items() if k.startswith("module") and k != "module__n_classes"}


def _take(X, rows):
    """Rows ``rows`` (int array) of ``X``, in the container ``X`` came in."""
    if isinstance(X, (FeatureSet, AudioSet, np.ndarray)):
        return X[rows]
    if hasattr(X, "iloc"):  # pandas
        return X.iloc[rows]
    if hasattr(X, "tocsr"):  # scipy sparse: row indexing in CSR
        return X.tocsr()[rows]
    if isinstance(X, (list, tuple)):
        return [X[i] for i in rows]
    return np.asarray(X)[rows]  # array-likes that only convert


def _holds_paths(X):
    rows = X if isinstance(X, (list, tuple)) else (X if isinstance(X, np.ndarray) and X.ndim == 1 else None)
    return rows is not None and len(rows) > 0 and isinstance(rows[0], str)


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
    unseen s4-s6 of TAU22) go to the general model.  Every model's
    probabilities are placed by class label, never by column position.

    A device with ``min_clips`` or more clips all of one class gets no
    model of its own (its copy could only predict that class): a
    UserWarning names it, and the general model serves it.

    Refused before anything trains, with a one-line ValueError: a prefit
    general model that never saw some label of ``y``, ``fine_tune``
    parameters that change the network's
    architecture or set ``warm_start``, and cross-validation that passes
    ``devices`` to ``fit`` but not to ``score`` (no metadata routing: see
    below).  At predict time a device name that differs from a fitted
    device only in case, spaces or number type (``"A"`` for ``"a"``,
    ``1.0`` for ``1``) is refused instead of being sent, as an unseen
    device, to the general model.

    The device of a row is read from the TAU22 file name when ``X`` holds
    paths: wrap the whole Pipeline, from the paths on, so that each device's
    copy sees its own clips' features.  For features or waveforms pass
    ``devices=`` (one per row) to ``fit`` and to every method that predicts
    or scores; with scikit-learn's metadata routing enabled, request it with
    ``set_fit_request(devices=True)`` (and likewise for predict and score)
    so that a GridSearchCV or Pipeline routes it.

    ``predict``, ``predict_proba``, ``predict_log_proba``,
    ``decision_function`` (one column for two classes) and ``score`` follow
    the contract of every skasc classifier
    (:class:`~skasc._predict.SceneClassifierMixin`), each clip's outputs
    coming from its device's model.

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
        Devices with fewer training clips get no model of their own (the
        general model serves them).
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
        # everything is checked before the general model or any copy trains
        y = check_labels(column_or_1d(y, warn=True))
        if len(y) != n_rows(X):
            raise ValueError(f"X and y have different lengths: X has {n_rows(X)} rows, y has {len(y)}")
        explicit = devices is not None
        devices = row_devices(X, devices)
        if explicit and not _holds_paths(X) and _scored_without_devices():
            raise ValueError(
                "DeviceSpecificClassifier is cross-validated (GridSearchCV, cross_validate, ...)"
                " with devices= for fit only, so every score would fail (NaN): enable metadata"
                " routing, sklearn.set_config(enable_metadata_routing=True), and request them with"
                " .set_fit_request(devices=True).set_score_request(devices=True)"
            )
        general = self.estimator
        if isinstance(general, FrozenEstimator):
            general = general.estimator
        fitted = is_fitted(general)
        if not hasattr(_final_step(general), "warm_start"):
            raise TypeError(
                f"the final step of estimator ({type(_final_step(general)).__name__}) has no "
                "warm_start parameter: device-specific fine-tuning needs a skasc classifier "
                "(DwsCNNClassifier, DistilledStudent) or a Pipeline ending in one")
        if fitted:
            unknown = np.setdiff1d(np.unique(y), np.asarray(general.classes_))
            if len(unknown):
                raise ValueError(
                    f"the prefit estimator (the general model) was fitted on classes "
                    f"{np.asarray(general.classes_).tolist()}, but y has other classes too: "
                    f"{unknown.tolist()}; its device-specific copies can only predict its classes: "
                    "pass an unfitted estimator to train it on y, or drop those clips"
                )
        self._check_fine_tune(general)
        one_class = single_class_devices(y, devices, self.min_clips)
        if one_class:
            listed = ", ".join(f"{d!r} ({n} clip(s), all {c!r})" for d, (c, n) in one_class.items())
            warnings.warn(
                f"device(s) {listed} have training clips of one class only: a copy fine-tuned on"
                " them would predict only that class, so the general model serves them (see"
                " device_estimators_); give them clips of other classes for a model of their own",
                UserWarning, stacklevel=3,
            )
        if not fitted:
            general = clone(general).fit(X, y)
        self.general_estimator_ = general
        self.classes_ = np.asarray(general.classes_)
        if hasattr(general, "n_features_in_"):
            self.n_features_in_ = general.n_features_in_
        names, counts = np.unique(devices, return_counts=True)
        self.n_clips_per_device_ = {str(d): int(c) for d, c in zip(names, counts)}
        self.device_estimators_ = {}
        for device in names[counts >= self.min_clips]:
            if str(device) in one_class:
                continue  # warned above: the general model serves it
            rows = np.flatnonzero(devices == device)
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

    def _check_fine_tune(self, general):
        """Refuse, before any training, ``fine_tune`` parameters that are
        unknown, turn fine-tuning off or change the network's architecture
        (the copies continue the general model's weights)."""
        if not self.fine_tune:
            return
        ends = [k for k in self.fine_tune if k == "warm_start" or k.endswith("__warm_start")]
        if ends:
            raise ValueError(
                f"fine_tune sets {ends[0]!r}: the device copies always continue the general"
                " model's weights (warm_start=True); leave it out"
            )
        probe = clone(general)
        probe.set_params(**self.fine_tune)  # unknown names raise here, naming them
        shape = getattr(_final_step(general), "input_shape_", (1, 8, 12))
        before, after = _architecture(general, shape), _architecture(probe, shape)
        if before is not None and after is not None and before != after:
            changed = {k: (before.get(k), after.get(k)) for k in set(before) | set(after)
                       if before.get(k) != after.get(k)}
            what = ", ".join(f"{k.removeprefix('module__')} {a!r} -> {b!r}"
                             for k, (a, b) in sorted(changed.items()))
            raise ValueError(
                f"fine_tune={self.fine_tune!r} changes the network's architecture ({what}): the"
                " device copies continue the general model's weights, so fine_tune may only"
                " change how they train (max_epochs, lr, batch_size, ...)"
            )

    def _device_names(self, X, devices):
        """Row devices, refusing names that differ from a fitted device only
        in case, spaces or number type (they would silently get the general model)."""
        devices = row_devices(X, devices)
        known = list(self.n_clips_per_device_)
        for device in np.unique(devices):
            if device in self.n_clips_per_device_:
                continue
            meant = _near_miss(str(device), known)
            if meant is not None:
                raise ValueError(
                    f"devices holds {str(device)!r}, which is no device of fit but looks like"
                    f" {meant!r}: device names must match exactly (case and type); an unknown"
                    " device is sent to the general model"
                )
        return devices

    def _route(self, X, devices, outputs, fill=0.0, dtype=np.float64):
        """``outputs(model, rows_of_X)`` of every clip's device model, columns
        placed by label in the order of ``classes_`` (``fill`` where a model
        lacks a class)."""
        check_is_fitted(self, "device_estimators_")
        devices = self._device_names(X, devices)
        column = {c: i for i, c in enumerate(self.classes_.tolist())}
        out = np.full((len(devices), len(self.classes_)), fill, dtype)
        for device in np.unique(devices):
            rows = np.flatnonzero(devices == device)
            model = self.device_estimators_.get(str(device), self.general_estimator_)
            # by label, never by position: a model's columns follow its own classes_
            labels = np.asarray(model.classes_).tolist()
            foreign = [c for c in labels if c not in column]
            if foreign:
                raise ValueError(
                    f"the model of device {str(device)!r} predicts classes {foreign} that"
                    f" DeviceSpecificClassifier does not know ({self.classes_.tolist()})"
                )
            out[np.ix_(rows, [column[c] for c in labels])] = outputs(model, _take(X, rows))
        return out

    # The methods follow skasc's one contract (skasc._predict.SceneClassifierMixin),
    # through its functions: they take ``devices`` besides X, which the
    # mixin's methods do not (metadata routing reads it from the signatures).

    def predict_proba(self, X, devices=None):
        """Class probabilities of each clip from its device's model.

        Parameters
        ----------
        X : array-like of shape (n_clips,) or (n_clips, ...)
            What the general model takes.
        devices : array-like of shape (n_clips,), default=None
            None: read from the paths.

        Returns
        -------
        proba : ndarray of shape (n_clips, n_classes), float64
            Columns follow ``classes_``.
        """
        return self._route(X, devices, lambda model, x: model.predict_proba(x))

    def predict_log_proba(self, X, devices=None):
        """Log class probabilities of each clip from its device's model.

        Parameters
        ----------
        X : array-like of shape (n_clips,) or (n_clips, ...)
            What the general model takes.
        devices : array-like of shape (n_clips,), default=None
            None: read from the paths.

        Returns
        -------
        log_proba : ndarray of shape (n_clips, n_classes), float64
            The model's ``predict_log_proba`` (the log of its
            ``predict_proba`` for a model without one); columns follow
            ``classes_``.
        """
        def log_proba(model, x):
            if hasattr(model, "predict_log_proba"):
                return model.predict_log_proba(x)
            with np.errstate(divide="ignore"):  # a probability of 0 is -inf
                return np.log(np.asarray(model.predict_proba(x), dtype=np.float64))

        return self._route(X, devices, log_proba, fill=-np.inf)

    def decision_function(self, X, devices=None):
        """Raw scores of each clip from its device's model, in scikit-learn's shape.

        Parameters
        ----------
        X : array-like of shape (n_clips,) or (n_clips, ...)
            What the general model takes.
        devices : array-like of shape (n_clips,), default=None
            None: read from the paths.

        Returns
        -------
        scores : ndarray of shape (n_clips,) for two classes, else (n_clips, n_classes), float32
            Each model's logits (``predict_logits``; for another model its
            ``decision_function``, else the log of its ``predict_proba``).
            With two classes, scikit-learn's convention: the score of
            ``classes_[1]`` minus that of ``classes_[0]``, positive where
            :meth:`predict` gives ``classes_[1]``.
        """
        return decision_from_scores(self._route(X, devices, logit_scores, -np.inf, np.float32))

    def predict(self, X, devices=None):
        """Most probable scene of each clip, from its device's model.

        Parameters
        ----------
        X : array-like of shape (n_clips,) or (n_clips, ...)
            What the general model takes.
        devices : array-like of shape (n_clips,), default=None
            None: read from the paths.

        Returns
        -------
        y_pred : ndarray of shape (n_clips,)
            Labels of ``classes_``: ``classes_[argmax(predict_proba(X))]``.
        """
        return labels_from_scores(self.predict_proba(X, devices=devices), self.classes_)

    def score(self, X, y, sample_weight=None, devices=None):
        """Accuracy of the device-routed predictions.

        Parameters
        ----------
        X : array-like of shape (n_clips,) or (n_clips, ...)
            What the general model takes.
        y : array-like of shape (n_clips,)
            True labels; labels the model never saw raise.
        sample_weight : array-like of shape (n_clips,), default=None
        devices : array-like of shape (n_clips,), default=None
            None: read from the paths.

        Returns
        -------
        score : float
        """
        check_is_fitted(self, "device_estimators_")
        return checked_accuracy(y, lambda: self.predict(X, devices=devices), self.classes_,
                                sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags
