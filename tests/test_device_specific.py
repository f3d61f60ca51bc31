"""DeviceSpecificClassifier: one model per device, fine-tuned from a general one."""

import numpy as np
import pytest
import sklearn
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GroupKFold, cross_validate
from sklearn.pipeline import Pipeline

from skasc import DistilledStudent, DwsCNNClassifier, LogMel, Reassembler, complexity_report
from skasc.datasets import load_tau22
from skasc.device_specific import DeviceSpecificClassifier, row_devices


@pytest.fixture
def data(toy_logmels):
    X, y = toy_logmels(n=90)
    devices = np.repeat(["a", "b", "c"], 30)  # every device records every class
    return X, y, devices


def _general(**kw):
    return DwsCNNClassifier(**{**dict(hidden=4, max_epochs=3, batch_size=16, random_state=0), **kw})


def test_one_model_per_device_and_the_general_model_for_others(data):
    X, y, devices = data
    model = DeviceSpecificClassifier(_general(), fine_tune={"max_epochs": 2}).fit(X, y, devices=devices)
    assert sorted(model.device_estimators_) == ["a", "b", "c"]
    assert model.n_clips_per_device_ == {"a": 30, "b": 30, "c": 30}
    test_devices = np.repeat(["a", "b", "s4"], 30)
    proba = model.predict_proba(X, devices=test_devices)
    for device, est in [("a", model.device_estimators_["a"]), ("b", model.device_estimators_["b"]),
                        ("s4", model.general_estimator_)]:
        rows = test_devices == device
        np.testing.assert_allclose(proba[rows], est.predict_proba(X[rows]), rtol=1e-6, atol=1e-7)
    # the device models really differ from the general one
    assert not np.allclose(model.device_estimators_["a"].predict_proba(X),
                           model.general_estimator_.predict_proba(X))
    pred = model.predict(X, devices=test_devices)
    np.testing.assert_array_equal(pred, model.classes_[proba.argmax(1)])
    assert model.score(X, y, devices=test_devices) == np.mean(pred == y)
    # the other methods of the contract are routed the same way
    scores = model.decision_function(X, devices=test_devices)
    log_proba = model.predict_log_proba(X, devices=test_devices)
    for device, est in [("a", model.device_estimators_["a"]), ("s4", model.general_estimator_)]:
        rows = test_devices == device
        np.testing.assert_allclose(scores[rows], est.decision_function(X[rows]), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(log_proba[rows], est.predict_log_proba(X[rows]), rtol=1e-6, atol=1e-6)


def test_two_class_decision_function_is_one_column(data):
    X, y, devices = data
    y2 = np.where(y == "tram", "bus", y)
    model = DeviceSpecificClassifier(_general(), fine_tune={"max_epochs": 1}).fit(X, y2, devices=devices)
    scores = model.decision_function(X, devices=devices)
    assert scores.shape == (len(X),) and scores.dtype == np.float32
    pred = model.predict(X, devices=devices)
    np.testing.assert_array_equal(pred, model.classes_[(scores > 0).astype(int)])
    rows = devices == "b"
    np.testing.assert_allclose(scores[rows], model.device_estimators_["b"].decision_function(X[rows]),
                               rtol=1e-6, atol=1e-6)


def test_fine_tuning_starts_from_the_general_weights(data):
    X, y, devices = data
    general = _general().fit(X, y)
    before = general.predict_proba(X)
    # one epoch at a vanishing learning rate: a warm start stays close to the
    # general model (only BatchNorm's running statistics move); a fresh
    # initialisation does not
    model = DeviceSpecificClassifier(general, fine_tune={"max_epochs": 1, "lr": 1e-12}).fit(
        X, y, devices=devices)
    assert model.general_estimator_ is general  # fitted: used as it is, not refitted
    for est in model.device_estimators_.values():
        assert np.abs(est.predict_proba(X) - before).max() < 0.05
    fresh = _general(max_epochs=1, lr=1e-12, random_state=1).fit(X, y)
    assert np.abs(fresh.predict_proba(X) - before).max() > 0.2
    np.testing.assert_array_equal(general.predict_proba(X), before)  # left as it was


def test_devices_are_read_from_tau22_paths_through_a_whole_pipeline(tau22_root):
    train, test = load_tau22(tau22_root, "train"), load_tau22(tau22_root, "evaluate")
    small = dict(n_mels=16, n_fft=1024, win_length=1024, hop_length=2205)
    pipe = Pipeline([("reassemble", Reassembler()), ("logmel", LogMel(**small)),
                     ("clf", _general(max_epochs=2))])
    model = DeviceSpecificClassifier(pipe, fine_tune={"clf__max_epochs": 1}).fit(train.X, train.y)
    assert set(model.device_estimators_) <= set(np.unique(train.device))
    assert model.device_estimators_, "no device model was trained"
    np.testing.assert_array_equal(row_devices(test.X), test.device)
    proba = model.predict_proba(test.X)
    unseen = ~np.isin(test.device, list(model.device_estimators_))
    assert unseen.any()
    np.testing.assert_allclose(proba[unseen], model.general_estimator_.predict_proba(test.X[unseen]),
                               rtol=1e-6, atol=1e-7)


def test_features_without_devices_are_refused(data):
    X, y, _ = data
    with pytest.raises(ValueError, match="devices=") as info:
        DeviceSpecificClassifier(_general()).fit(X, y)
    assert "not TAU22 file paths" in str(info.value)
    with pytest.raises(ValueError, match="devices has 2 entries for 90 rows"):
        DeviceSpecificClassifier(_general()).fit(X, y, devices=["a", "b"])


def test_general_model_without_warm_start_is_refused(data):
    from sklearn.neighbors import KNeighborsClassifier

    X, y, devices = data
    with pytest.raises(TypeError, match="warm_start"):
        DeviceSpecificClassifier(KNeighborsClassifier()).fit(X.reshape(90, -1), y, devices=devices)


def test_device_specific_distilled_students_keep_the_teacher(data):
    X, y, devices = data
    teacher = _general(hidden=6).fit(X, y)
    student = DistilledStudent(teacher, hidden=4, max_epochs=2, batch_size=16, random_state=0)
    model = DeviceSpecificClassifier(FrozenEstimator(student.fit(X, y)),
                                     fine_tune={"max_epochs": 1}).fit(X, y, devices=devices)
    for est in model.device_estimators_.values():
        assert isinstance(est, DistilledStudent)
        np.testing.assert_array_equal(est.teacher_.predict_proba(X), teacher.predict_proba(X))


def test_complexity_report_is_per_model_and_the_largest(data):
    X, y, devices = data
    model = DeviceSpecificClassifier(_general(), fine_tune={"max_epochs": 1}).fit(X, y, devices=devices)
    report = complexity_report(model)
    general = complexity_report(model.general_estimator_)
    assert set(report.per_model) == {"general", "a", "b", "c"}
    assert all(r.total_params == general.total_params for r in report.per_model.values())
    # the limits apply per model: the report is one model's, not a sum
    assert (report.total_params, report.total_macs) == (general.total_params, general.total_macs)
    assert "per model" in report.to_string()


def test_devices_routed_by_metadata_routing_in_cross_validation(data):
    X, y, devices = data
    groups = np.arange(90) % 5
    with sklearn.config_context(enable_metadata_routing=True):
        model = DeviceSpecificClassifier(_general(max_epochs=2), fine_tune={"max_epochs": 1})
        model.set_fit_request(devices=True).set_score_request(devices=True)
        scores = cross_validate(model, X, y, cv=GroupKFold(2),
                                params={"devices": devices, "groups": groups})["test_score"]
    assert len(scores) == 2 and np.all((scores > 0.3) & (scores <= 1.0))


def test_fine_tuning_checkpoint_is_bound_to_its_starting_weights(data, tmp_path):
    X, y, _ = data
    runs = []
    for seed in (0, 1):  # two general models: same data and parameters, other weights
        general = _general(random_state=seed).fit(X, y)
        # the fine-tuning runs differ only in the weights they start from
        general.set_params(warm_start=True, max_epochs=1, random_state=0, checkpoint_dir=tmp_path)
        runs.append(general.fit(X, y).predict_proba(X))
    # each fine-tuning run trained in its own folder: none resumed the other's
    assert len(list(tmp_path.glob("*/checkpoint.pt"))) == 2
    assert not np.allclose(runs[0], runs[1])
