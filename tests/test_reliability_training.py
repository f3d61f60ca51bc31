"""Training never returns a silently wrong model: checkpoints are bound to the
data and parameters they were trained with, Ctrl-C stops ``fit`` and the
command, a diverging run stops, and every parameter and CLI flag is checked
before any work starts."""

import re

import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import KFold, cross_validate
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import EarlyStopping

from skasc import DistilledStudent, DwsCNNClassifier, EnsembleTeacher
from skasc.exceptions import TrainingCollapsedError

from _ctrl_c import CtrlCAt


def _toy(n=30, seed=0):
    rng = np.random.default_rng(seed)
    y = np.array(["bus", "park", "tram"])[np.arange(n) % 3]
    return rng.normal(size=(n, 8, 12)).astype(np.float32), y


def _net(**kw):
    return DwsCNNClassifier(**{**dict(hidden=4, max_epochs=3, batch_size=16, random_state=0), **kw})


def _checkpoints(folder):
    return sorted(folder.glob("*/checkpoint.pt"))


# -- 1. checkpoints bound to data and parameters -------------------------------------


def test_checkpoint_of_other_data_of_the_same_size_is_not_resumed(tmp_path):
    X1, y = _toy(seed=1)
    X2, _ = _toy(seed=2)
    _net(checkpoint_dir=tmp_path).fit(X1, y)
    again = _net(checkpoint_dir=tmp_path).fit(X2, y)
    fresh = _net().fit(X2, y)
    np.testing.assert_allclose(again.predict_proba(X2), fresh.predict_proba(X2), atol=1e-6)
    assert len(_checkpoints(tmp_path)) == 2  # each kept in its own place


def test_checkpoint_of_other_labels_or_parameters_is_not_resumed(tmp_path, trained_epochs):
    X, y = _toy()
    _net(checkpoint_dir=tmp_path).fit(X, y)
    _net(checkpoint_dir=tmp_path).fit(X, np.roll(y, 1))
    _net(checkpoint_dir=tmp_path, lr=0.02).fit(X, y)
    assert trained_epochs == [1, 2, 3] * 3
    assert len(_checkpoints(tmp_path)) == 3
    trained_epochs.clear()
    _net(checkpoint_dir=tmp_path, lr=0.02).fit(X, y)  # everything matches: nothing to train
    assert trained_epochs == []


def test_cross_validate_with_checkpoint_dir_scores_each_fold_with_its_own_model(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 8, 12)).astype(np.float32)
    y = rng.integers(0, 2, 40)  # random labels: only a model that saw the test rows scores well
    clf = _net(hidden=8, max_epochs=15, mixup_alpha=0, lr_schedule=None)
    cv = KFold(2, shuffle=True, random_state=0)
    plain = cross_validate(clf, X, y, cv=cv)["test_score"]
    ckpt = cross_validate(clf.set_params(checkpoint_dir=tmp_path), X, y, cv=cv)["test_score"]
    np.testing.assert_array_equal(ckpt, plain)
    assert len(_checkpoints(tmp_path)) == 2


def test_distilled_student_checkpoint_is_bound_to_its_teacher(tmp_path, trained_epochs):
    X, y = _toy()
    t1, t2 = (_net(hidden=4, random_state=s).fit(X, y) for s in (1, 2))
    trained_epochs.clear()
    DistilledStudent(t1, hidden=4, max_epochs=2, random_state=0, checkpoint_dir=tmp_path).fit(X, y)
    DistilledStudent(t2, hidden=4, max_epochs=2, random_state=0, checkpoint_dir=tmp_path).fit(X, y)
    assert trained_epochs == [1, 2, 1, 2]


def test_corrupt_or_truncated_checkpoint_file_is_named(tmp_path):
    X, y = _toy()
    _net(checkpoint_dir=tmp_path).fit(X, y)
    (path,) = _checkpoints(tmp_path)
    data = path.read_bytes()
    for broken in (data[: len(data) // 2], b"", b"not a checkpoint"):
        path.write_bytes(broken)
        with pytest.raises(ValueError, match=re.escape(str(path))):
            _net(checkpoint_dir=tmp_path).fit(X, y)


def test_checkpoint_dir_that_is_a_file_is_refused(tmp_path):
    X, y = _toy()
    not_a_dir = tmp_path / "ckpt"
    not_a_dir.write_text("x")
    with pytest.raises(ValueError, match="checkpoint_dir .*ckpt.* is a file"):
        _net(checkpoint_dir=not_a_dir).fit(X, y)


def test_interrupted_save_leaves_the_last_finished_epoch(tmp_path, monkeypatch, trained_epochs):
    X, y = _toy()
    real_save = torch.save
    saves = []

    def save_then_ctrl_c(obj, f, *args, **kwargs):
        saves.append(f)
        if len(saves) == 2:  # Ctrl-C while the second epoch is being written
            with open(f, "wb") as fh:
                fh.write(b"half")
            raise KeyboardInterrupt
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        _net(checkpoint_dir=tmp_path).fit(X, y)
    monkeypatch.setattr(torch, "save", real_save)
    trained_epochs.clear()
    resumed = _net(checkpoint_dir=tmp_path).fit(X, y)
    assert trained_epochs == [2, 3]  # epoch 1 was finished and saved; epoch 2 is trained again
    np.testing.assert_allclose(resumed.predict_proba(X), _net().fit(X, y).predict_proba(X), atol=1e-6)


# -- 2. interrupts --------------------------------------------------------------------


@pytest.mark.parametrize("make", [
    lambda cb: _net(max_epochs=5, callbacks=[cb]),
    lambda cb: DistilledStudent(_net().fit(*_toy()), hidden=4, max_epochs=5, callbacks=[cb]),
])
def test_ctrl_c_stops_fit_and_leaves_no_fitted_model(make):
    X, y = _toy()
    clf = make(CtrlCAt(2))
    with pytest.raises(KeyboardInterrupt):
        clf.fit(X, y)
    with pytest.raises(NotFittedError):
        check_is_fitted(clf)
    with pytest.raises(NotFittedError):
        clf.predict(X)


def test_ctrl_c_in_an_ensemble_member_stops_the_ensemble():
    X, y = _toy()
    ens = EnsembleTeacher([_net(), _net(callbacks=[CtrlCAt(2)])])
    with pytest.raises(KeyboardInterrupt):
        ens.fit(X, y)
    with pytest.raises(NotFittedError):
        check_is_fitted(ens)


def test_interrupted_fit_resumes_from_the_last_finished_epoch(tmp_path, trained_epochs):
    X, y = _toy()
    with pytest.raises(KeyboardInterrupt):
        _net(max_epochs=5, checkpoint_dir=tmp_path, callbacks=[CtrlCAt(3)]).fit(X, y)
    assert trained_epochs == [1, 2, 3]  # interrupted at the start of epoch 3
    trained_epochs.clear()
    resumed = _net(max_epochs=5, checkpoint_dir=tmp_path).fit(X, y)
    assert trained_epochs == [3, 4, 5]
    assert len(resumed.net_.history) == 5
    straight = _net(max_epochs=5).fit(X, y)
    np.testing.assert_allclose(resumed.predict_proba(X), straight.predict_proba(X), atol=1e-6)


def test_early_stopping_still_ends_training_normally():
    X, y = _toy()
    stop = EarlyStopping(monitor="train_loss", patience=1, threshold=10.0, sink=lambda *a, **k: None)
    clf = _net(max_epochs=10, callbacks=[stop]).fit(X, y)
    check_is_fitted(clf)
    assert len(clf.net_.history) < 10


# -- 3. non-finite training ---------------------------------------------------------


def test_diverging_training_stops_naming_epoch_and_batch():
    X, y = _toy()
    clf = _net(lr=1e30, max_epochs=5, lr_schedule=None)
    with pytest.raises(FloatingPointError, match=r"non-finite.*epoch \d+, batch \d+"):
        clf.fit(X, y)
    with pytest.raises(NotFittedError):
        check_is_fitted(clf)


def _dead_head(X, y, **kw):
    """A fitted network whose fc1 units are all negative for every input: the
    state the paper's student reached at lr 0.01 on the full-size replica."""
    clf = _net(warm_start=True, **kw).fit(X, y)
    with torch.no_grad():
        clf.module_.fc1.bias.fill_(-1e4)
    assert np.ptp(clf.predict_logits(X), axis=0).max() == 0  # one output for every clip
    return clf


def test_healthy_training_records_that_outputs_depend_on_the_input():
    X, y = _toy(n=64)
    clf = _net().fit(X, y)
    flags = [b["outputs_constant"] for epoch in clf.net_.history for b in epoch["batches"]]
    assert flags == [False] * 12  # 3 epochs x 4 batches of 16 distinct clips


def test_collapsed_training_stops_after_twenty_batches_naming_where_it_began(tmp_path, trained_epochs):
    X, y = _toy(n=320)  # 20 batches of 16 per epoch
    clf = _dead_head(X, y, max_epochs=3)
    clf.set_params(checkpoint_dir=tmp_path)
    trained_epochs.clear()
    with pytest.raises(TrainingCollapsedError,
                       match=r"^training collapsed in epoch 1, batch 1: .* 20 training batches in a row"
                             r".*lower lr \(it was 0\.01\)$"):
        clf.fit(X, y)
    assert trained_epochs == [1]  # stopped within the first of three epochs
    assert _checkpoints(tmp_path) == []  # which is not recorded as finished
    with pytest.raises(NotFittedError):
        check_is_fitted(clf)


def test_collapse_in_a_run_shorter_than_the_patience_is_caught_at_the_end_and_on_resume(tmp_path):
    X, y = _toy(n=64)  # 4 batches per epoch: 8 in the run, fewer than 20
    clf = _dead_head(X, y, max_epochs=2)
    clf.set_params(checkpoint_dir=tmp_path)
    with pytest.raises(TrainingCollapsedError, match=r"epoch 1, batch 1: .* 8 training batches in a row"):
        clf.fit(X, y)
    # its checkpoint says finished, but a rerun resuming it gets no model either
    (checkpoint,) = _checkpoints(tmp_path)
    assert torch.load(checkpoint, weights_only=True)["finished"]
    again = _dead_head(X, y, max_epochs=2)
    again.set_params(checkpoint_dir=tmp_path)
    with pytest.raises(TrainingCollapsedError, match=r"8 training batches in a row"):
        again.fit(X, y)
    with pytest.raises(NotFittedError):
        check_is_fitted(again)


def test_features_whose_band_statistics_overflow_are_refused():
    X, y = _toy()
    X[0, 0, 0] = 3e38  # finite, but its square is not
    with pytest.raises(ValueError, match="too large to standardize"):
        _net().fit(X, y)


@pytest.mark.parametrize("param", ["lr", "mixup_alpha", "weight_decay"])
@pytest.mark.parametrize("value", [np.inf, np.nan])
def test_non_finite_hyperparameters_are_refused(param, value):
    with pytest.raises(InvalidParameterError, match=f"'{param}' parameter"):
        _net(**{param: value}).fit(*_toy())


@pytest.mark.parametrize("param", ["temperature", "soft_weight"])
def test_non_finite_distillation_parameters_are_refused(param):
    with pytest.raises(InvalidParameterError, match=f"'{param}' parameter"):
        DistilledStudent(_net(), **{param: np.inf}).fit(*_toy())


# -- 5. members and teachers that give no scores --------------------------------------

FITTED = []


class Recorder(ClassifierMixin, BaseEstimator):
    """A scikit-learn classifier with neither predict_proba nor decision_function."""

    def fit(self, X, y):
        FITTED.append(type(self).__name__)
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return np.full(len(X), self.classes_[0])


def test_member_without_scores_is_refused_before_any_training(trained_epochs):
    FITTED.clear()
    with pytest.raises(TypeError, match=r"estimators\[1\] is a Recorder.*predict_proba"):
        EnsembleTeacher([_net(), Recorder()]).fit(*_toy())
    assert trained_epochs == [] and FITTED == []


def test_teacher_without_scores_is_refused_before_any_training(trained_epochs):
    FITTED.clear()
    with pytest.raises(TypeError, match="teacher is a Recorder.*decision_function"):
        DistilledStudent(Recorder(), hidden=4, max_epochs=1).fit(*_toy())
    assert trained_epochs == [] and FITTED == []


def test_bad_member_parameters_are_refused_before_any_member_trains(trained_epochs):
    with pytest.raises(InvalidParameterError, match="'hidden' parameter"):
        EnsembleTeacher([_net(), _net(hidden=0)]).fit(*_toy())
    with pytest.raises(ValueError, match="device"):
        EnsembleTeacher([_net(), _net(device="gpu0")]).fit(*_toy())
    assert trained_epochs == []


# -- 4. parameters declared and validated once ---------------------------------------
# (scikit-learn's check_param_validation runs on every estimator in test_common.py)


@pytest.mark.parametrize("make, param", [
    (lambda: _net(standardize="no"), "standardize"),
    (lambda: _net(callbacks=5), "callbacks"),
    (lambda: _net(verbose=-1), "verbose"),
    (lambda: _net(checkpoint_dir=5), "checkpoint_dir"),
    (lambda: _net(random_state="seed"), "random_state"),
    (lambda: _net(lr_schedule="step"), "lr_schedule"),
    (lambda: EnsembleTeacher([_net()], n_jobs=0), "n_jobs"),
    (lambda: EnsembleTeacher([_net()], n_jobs=1.5), "n_jobs"),
    (lambda: EnsembleTeacher([_net()], verbose="loud"), "verbose"),
    (lambda: EnsembleTeacher([_net()], fusion="max"), "fusion"),
    (lambda: EnsembleTeacher(_net()), "estimators"),
    (lambda: DistilledStudent(_net(), standardize="no"), "standardize"),
    (lambda: DistilledStudent(_net(), soft_weight=1.5), "soft_weight"),
    (lambda: DistilledStudent(_net(), temperature=0), "temperature"),
    (lambda: DistilledStudent(5), "teacher"),
])
def test_bad_parameter_is_refused_naming_it(make, param, trained_epochs):
    with pytest.raises(InvalidParameterError, match=f"'{param}' parameter"):
        make().fit(*_toy())
    assert trained_epochs == []


@pytest.mark.parametrize("make, match", [
    (lambda: _net(callbacks=[5]), r"callbacks\[0\]"),
    (lambda: _net(callbacks=[("name", 5)]), r"callbacks\[0\]"),
    (lambda: _net(device="gpu0"), "device"),
    (lambda: DistilledStudent(_net(), device="nonsense"), "device"),
    (lambda: EnsembleTeacher([]), "at least one"),
])
def test_checks_beyond_the_table_raise_value_error_naming_the_parameter(make, match, trained_epochs):
    with pytest.raises(ValueError, match=match):
        make().fit(*_toy())
    assert trained_epochs == []


def test_callbacks_and_named_callback_pairs_are_accepted():
    X, y = _toy()
    clf = _net(max_epochs=1, callbacks=[CtrlCAt(5), ("again", CtrlCAt(7))]).fit(X, y)
    check_is_fitted(clf)
