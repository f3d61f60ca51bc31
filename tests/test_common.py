"""scikit-learn's estimator checks, run on every public estimator of skasc.

The list of estimators is discovered from ``skasc.__all__``: a new public
estimator that is not given a test instance below makes
``test_every_public_estimator_is_checked`` fail, so none can skip the battery.

Test instances use small networks and few epochs so the battery stays fast;
they run the same code as the defaults.  Mixup is off for the classifier
instances because ``check_classifiers_train`` asks for > 83 % training
accuracy after a handful of epochs on a 300-sample toy set, which mixup's
soft targets slow down (mixup itself is tested in test_classifiers.py).

Exempted checks are listed in ``EXPECTED_FAILED`` with the reason.
"""

import inspect
import os
import tempfile

import numpy as np
import pytest
import soundfile as sf
from sklearn.base import BaseEstimator
from sklearn.utils.estimator_checks import check_param_validation, parametrize_with_checks
from sklearn.utils.validation import _num_samples

import skasc
from skasc import (
    DeviceImpulseResponse,
    DeviceSpecificClassifier,
    DistilledStudent,
    DwsCNNClassifier,
    EnsembleTeacher,
    FreqMixStyle,
    LogMel,
    PretrainedClassifier,
    RandomCrop,
    Reassembler,
    SpecAugment,
)


def _net(hidden=8, seed=0):
    return DwsCNNClassifier(hidden=hidden, max_epochs=20, mixup_alpha=0, random_state=seed)


class _DevicesBySign(DeviceSpecificClassifier):
    """DeviceSpecificClassifier whose rows without ``devices`` go to devices "a"
    and "b" by the sign of their first value (a property of the row itself,
    so that reordering or subsetting the rows does not change their devices).

    scikit-learn's checks cannot pass per-row metadata, and the public class
    refuses to guess the devices of arrays; this test-only subclass supplies
    them so the whole battery runs through the public class's code.
    """

    @staticmethod
    def _devices(X, devices):
        if devices is not None:
            return devices
        x = None if hasattr(X, "toarray") else np.asarray(X)
        if x is None or x.ndim < 2 or 0 in x.shape or x.dtype.kind not in "biuf":
            # sparse, empty or non-numeric: one device; the general model
            # then refuses such X with scikit-learn's own message
            return np.full(_num_samples(X), "a")
        return np.where(x.reshape(len(x), -1)[:, 0] > 0, "a", "b")

    def fit(self, X, y, devices=None):
        return super().fit(X, y, devices=self._devices(X, devices))

    def predict_proba(self, X, devices=None):
        return super().predict_proba(X, devices=self._devices(X, devices))

    def predict(self, X, devices=None):
        return super().predict(X, devices=self._devices(X, devices))

    def predict_log_proba(self, X, devices=None):
        return super().predict_log_proba(X, devices=self._devices(X, devices))

    def decision_function(self, X, devices=None):
        return super().decision_function(X, devices=self._devices(X, devices))

    def score(self, X, y, sample_weight=None, devices=None):
        return super().score(X, y, sample_weight=sample_weight, devices=self._devices(X, devices))


def _impulse_response_folder():
    """Two tiny impulse responses (the instances are built at import time).

    A fixed path, so the test ids are the same in every process; each file
    is written whole and renamed into place, so concurrent runs agree.
    """
    folder = os.path.join(tempfile.gettempdir(), "skasc-test-common-irs")
    os.makedirs(folder, exist_ok=True)
    for name, h in (("d1.wav", [1.0, 0.3, -0.1]), ("d2.wav", [0.5, 0.5])):
        tmp = os.path.join(folder, f".{name}.{os.getpid()}.tmp")
        sf.write(tmp, np.array(h), 44100, subtype="FLOAT", format="WAV")
        os.replace(tmp, os.path.join(folder, name))
    return folder


INSTANCES = [
    Reassembler(),
    DeviceImpulseResponse(_impulse_response_folder(), random_state=0),
    # small STFT so the toy inputs (a few samples per row) give several frames
    LogMel(n_fft=64, win_length=64, hop_length=16, n_mels=8),
    RandomCrop(),
    SpecAugment(),
    FreqMixStyle(),
    _net(),
    EnsembleTeacher([_net(seed=0), _net(hidden=4, seed=1)]),
    # an unfitted teacher: cloned and fitted inside fit, then distilled
    DistilledStudent(_net(), hidden=4, max_epochs=20, mixup_alpha=0, random_state=0),
    # DeviceSpecificClassifier's code, with devices the checks cannot pass
    _DevicesBySign(_net(), fine_tune={"max_epochs": 2}),
    # the narrowest EfficientAT width, no pretrained weights (tests run offline
    # and fast); rows are waveforms at 32 kHz, the network's own rate
    PretrainedClassifier("mn01_as", weights=False, max_epochs=2, sr=32000, random_state=0),
]

#: check name -> reason, per estimator class name
EXPECTED_FAILED = {
    name: {
        "check_estimators_dtypes": (
            "int64 waveforms are refused: not a PCM sample type, so their full scale is "
            "unknown (int8/uint8/int16/int32 are scaled to [-1, 1] as soundfile does)"
        )
    }
    for name in ("Reassembler", "DeviceImpulseResponse", "LogMel", "PretrainedClassifier")
}
EXPECTED_FAILED["PretrainedClassifier"].update({
    "check_classifier_data_not_an_array": (
        "the same int64 refusal: the check's X is int64, which is no PCM sample type"),
    "check_classifiers_train": (
        "weights=False (the battery runs offline and fast): in the check's few epochs the "
        "randomly initialised MobileNet fits the toy set in training mode, but its batch-norm "
        "running statistics have not caught up, so its evaluation-mode predictions are near "
        "constant. With the pretrained weights it passes the same data: "
        "test_pretrained.py::test_pretrained_head_fits_the_checks_toy_data"),
})


def _expected_failed(estimator):
    return EXPECTED_FAILED.get(type(estimator).__name__, {})


@parametrize_with_checks(INSTANCES, expected_failed_checks=_expected_failed)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize(
    "estimator", INSTANCES + [DeviceSpecificClassifier(_net(), fine_tune={"max_epochs": 2})],
    ids=lambda est: type(est).__name__)
def test_parameters_declared_and_validated(estimator):
    # scikit-learn's own check: every constructor parameter has an entry in
    # _parameter_constraints and a bad value raises InvalidParameterError on fit
    check_param_validation(type(estimator).__name__, estimator)


def test_onnx_classifier_parameters_declared_and_validated(tmp_path, toy_logmels):
    """scikit-learn's check_param_validation, at construction: OnnxClassifier
    wraps a file and has no fit, so the check's own fit-time route is redone
    here on its constructor."""
    pytest.importorskip("onnxruntime")
    from skasc.export import OnnxClassifier, export_onnx

    X, y = toy_logmels()
    onnx_file = export_onnx(DwsCNNClassifier(hidden=4, max_epochs=1, random_state=0).fit(X, y),
                            tmp_path / "model.onnx")
    from sklearn.utils._param_validation import (InvalidParameterError, generate_invalid_param_val,
                                                 make_constraint)

    valid = {"path": onnx_file, "n_threads": 2, "chunk_size": 3}
    assert set(OnnxClassifier._parameter_constraints) == set(valid)
    assert OnnxClassifier(**valid).n_threads == 2
    OnnxClassifier(str(onnx_file), n_threads=None, chunk_size=None)
    bad_type = type("BadType", (), {})()
    for name, constraints in OnnxClassifier._parameter_constraints.items():
        match = rf"The '{name}' parameter of OnnxClassifier must be .* Got .* instead."
        with pytest.raises(InvalidParameterError, match=match):
            OnnxClassifier(**{**valid, name: bad_type})
        for constraint in map(make_constraint, constraints):
            try:
                bad_value = generate_invalid_param_val(constraint)
            except NotImplementedError:
                continue
            with pytest.raises(InvalidParameterError, match=match):
                OnnxClassifier(**{**valid, name: bad_value})
    for name, value in (("n_threads", 0), ("chunk_size", -1), ("n_threads", 1.5)):
        with pytest.raises(InvalidParameterError, match=f"'{name}' parameter"):
            OnnxClassifier(**{**valid, name: value})


def test_every_public_estimator_is_checked():
    public = {
        name for name in skasc.__all__
        if inspect.isclass(getattr(skasc, name)) and issubclass(getattr(skasc, name), BaseEstimator)
    }
    # a class counts as checked when the battery runs its code (an instance of
    # it or of a test subclass)
    checked = {name for name in public for est in INSTANCES if isinstance(est, getattr(skasc, name))}
    assert public, "no public estimators found"
    assert public <= checked, f"estimators without checks: {sorted(public - checked)}"
