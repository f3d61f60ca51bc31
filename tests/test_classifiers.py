"""The classifiers: training recipe, ensemble fusion, distillation, persistence."""

import pickle

import joblib
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import Pipeline

from skasc import (
    DistilledStudent,
    DwsCNNClassifier,
    EnsembleTeacher,
    FeatureSet,
    LogMel,
    RandomCrop,
    Reassembler,
    SpecAugment,
)
from skasc._training import BatchDrawer, distillation_loss
from skasc.datasets import load_tau22


@pytest.fixture
def toy(toy_logmels):
    """60 clips of 8 x 12 features; each class lights up two bands of its own."""
    return toy_logmels()


def _net(**kw):
    params = dict(hidden=6, max_epochs=8, batch_size=16, random_state=0)
    params.update(kw)
    return DwsCNNClassifier(**params)


def test_learns_string_and_integer_labels(toy):
    X, y = toy
    clf = _net().fit(X, y)
    assert list(clf.classes_) == ["bus", "park", "tram"]
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)
    assert clf.score(X, y) > 0.9
    yi = np.searchsorted(clf.classes_, y) + 10
    clf_int = _net().fit(X, yi)
    # the integer labels come back as they were, and the classes are learnt
    np.testing.assert_array_equal(clf_int.classes_, [10, 11, 12])
    assert np.mean(clf_int.predict(X) == yi) > 0.9
    assert clf_int.input_shape_ == (1, 8, 12) and clf_int.n_features_in_ == 96


def test_paper_recipe_defaults_and_decaying_lr(toy):
    clf = DwsCNNClassifier()
    assert (clf.hidden, clf.batch_size, clf.lr, clf.mixup_alpha, clf.max_epochs) == (18, 64, 0.01, 0.5, 200)
    assert DistilledStudent().max_epochs == 600
    X, y = toy
    fitted = _net().fit(X, y)
    opt_lr = fitted.net_.optimizer_.param_groups[0]["lr"]
    assert isinstance(fitted.net_.optimizer_, torch.optim.Adam)
    assert opt_lr < 0.01 * 0.1  # cosine decay brings it near zero by the end
    # skorch's LRScheduler with the closed-form cosine: the rate of each epoch
    np.testing.assert_allclose(fitted.net_.history[:, "event_lr"],
                               0.01 * 0.5 * (1 + np.cos(np.pi * np.arange(8) / 8)), rtol=1e-12)
    assert "event_lr" not in _net(lr_schedule=None, max_epochs=1).fit(X, y).net_.history[0]


def test_criterion_is_soft_target_cross_entropy(toy):
    X, y = toy
    net = _net(max_epochs=1).fit(X, y).net_
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 3, generator=g)
    soft = torch.softmax(torch.randn(5, 3, generator=g), 1)
    torch.testing.assert_close(net.criterion_(logits, soft), F.cross_entropy(logits, soft))


def test_decision_function_gives_the_raw_scores_behind_predict_and_predict_proba(toy):
    X, y = toy
    members = [_net(hidden=4, max_epochs=3, random_state=s) for s in range(2)]
    fitted = [_net(max_epochs=3).fit(X, y), EnsembleTeacher(members).fit(X, y),
              EnsembleTeacher(members, fusion="proba").fit(X, y)]
    fitted.append(DistilledStudent(fitted[0], hidden=4, max_epochs=2, random_state=0).fit(X, y))
    for est in fitted:
        scores = est.decision_function(X)
        assert scores.shape == (len(X), 3)
        np.testing.assert_array_equal(est.predict_logits(X), scores)
        np.testing.assert_array_equal(est.predict(X), est.classes_[scores.argmax(1)])
        np.testing.assert_allclose(est.predict_proba(X), torch.softmax(torch.as_tensor(scores), 1).numpy(),
                                   rtol=1e-6)
    # fusion="proba": the log of the members' averaged probabilities
    proba = np.mean([m.predict_proba(X) for m in fitted[2].estimators_], axis=0)
    np.testing.assert_allclose(fitted[2].decision_function(X), np.log(proba), atol=1e-5)
    # the members' averaged logits
    logits = np.mean([m.decision_function(X) for m in fitted[1].estimators_], axis=0)
    np.testing.assert_allclose(fitted[1].decision_function(X), logits, atol=1e-5)


def test_binary_decision_function_is_one_column_in_scikit_learns_convention(toy_logmels):
    X, y = toy_logmels(labels=("bus", "park"))
    for est in (_net(max_epochs=3).fit(X, y),
                EnsembleTeacher([_net(hidden=4, max_epochs=2, random_state=s) for s in range(2)]).fit(X, y)):
        logits = est.predict_logits(X)
        assert logits.shape == (len(X), 2)  # every class's logit
        scores = est.decision_function(X)
        np.testing.assert_array_equal(scores, logits[:, 1] - logits[:, 0])
        np.testing.assert_array_equal(est.predict(X), est.classes_[(scores > 0).astype(int)])
        assert set(est.predict(X)) == {"bus", "park"}


def test_compile_trains_a_compiled_step_and_leaves_the_plain_network(monkeypatch, tmp_path, toy):
    # the "eager" backend runs TorchDynamo's capture without C++ code generation (seconds, not a minute)
    real_compile = torch.compile
    compiled = []

    def compile_eager(module, **kw):
        compiled.append(kw)
        return real_compile(module, **{**kw, "backend": "eager"})

    monkeypatch.setattr(torch, "compile", compile_eager)
    X, y = toy
    eager = _net(max_epochs=2, checkpoint_dir=tmp_path).fit(X, y)
    comp = _net(max_epochs=2, compile=True, checkpoint_dir=tmp_path).fit(X, y)
    assert compiled and compiled[0]["dynamic"] is False
    assert type(comp.module_).__name__ == "DwsCNN" and type(comp.net_.module_).__name__ == "DwsCNN"
    np.testing.assert_allclose(comp.predict_proba(X), eager.predict_proba(X), atol=1e-5)
    # compile is not part of the fingerprint: the compiled fit found the eager one's finished checkpoint
    assert len(list(tmp_path.glob("*/checkpoint.pt"))) == 1
    pickle.loads(pickle.dumps(comp))


def test_same_seed_same_predictions_different_seed_differs(toy):
    X, y = toy
    a = _net(random_state=3).fit(X, y).predict_proba(X)
    b = _net(random_state=3).fit(X, y).predict_proba(X)
    c = _net(random_state=4).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-4


def test_mixup_batches_are_convex_combinations():
    # rows in general position, so a mix identifies its two rows
    F_ = FeatureSet.from_array(np.random.default_rng(0).normal(size=(4, 2, 3)).astype(np.float32))
    drawer = BatchDrawer(F_, n_classes=3, mixup_alpha=0.5, seed=0)
    labels = [0, 1, 2, 0]
    x, target = drawer(list(zip(range(4), labels)))
    np.testing.assert_allclose(target.sum(1).numpy(), 1, rtol=1e-6)
    clean = torch.as_tensor(F_.windows())[:, None]
    onehot = F.one_hot(torch.tensor(labels), 3).float()
    # one lam per batch: row i mixes itself with a partner j, inputs and labels alike
    lam = None
    for i in range(4):
        for j in range(4):
            if i == j:
                continue
            denom = clean[i] - clean[j]
            cand = float(((x[i] - clean[j]) / denom).flatten()[0])
            if torch.allclose(x[i], cand * clean[i] + (1 - cand) * clean[j], atol=1e-4):
                torch.testing.assert_close(target[i], cand * onehot[i] + (1 - cand) * onehot[j])
                assert lam is None or abs(lam - cand) < 1e-4
                lam = cand
    assert lam is not None and 0 < lam < 1
    drawer.set_epoch(2)
    x2, _ = drawer(list(zip(range(4), labels)))
    assert not torch.equal(x, x2)  # a new epoch draws a new mix


def test_ensemble_fuses_by_averaging_logits_and_probabilities(toy):
    X, y = toy
    members = [_net(random_state=s, hidden=4) for s in range(3)]
    ens = EnsembleTeacher(members).fit(X, y)
    each = np.stack([m.predict_logits(X) for m in ens.estimators_])
    np.testing.assert_allclose(ens.predict_logits(X), each.mean(0), atol=1e-5)
    ens_p = EnsembleTeacher(members, fusion="proba").fit(X, y)
    probs = np.stack([m.predict_proba(X) for m in ens_p.estimators_]).mean(0)
    np.testing.assert_allclose(ens_p.predict_proba(X), probs, atol=1e-5)
    # members are clones: the passed estimators stay unfitted
    assert not hasattr(members[0], "module_")


def test_ensemble_parallel_equals_serial(toy):
    X, y = toy
    members = [_net(random_state=s, hidden=4, max_epochs=3) for s in range(2)]
    serial = EnsembleTeacher(members, n_jobs=1).fit(X, y).predict_logits(X)
    parallel = EnsembleTeacher(members, n_jobs=2).fit(X, y).predict_logits(X)
    np.testing.assert_allclose(serial, parallel, atol=1e-5)


def test_distillation_loss_is_hinton():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    target = F.one_hot(torch.tensor([0, 1, 2, 3, 0]), 4).float()
    T, w = 2.0, 0.5
    hard = F.cross_entropy(s, target.argmax(1))
    p_t = F.softmax(t / T, 1)
    kl = (p_t * (p_t.log() - F.log_softmax(s / T, 1))).sum(1).mean()
    expected = (1 - w) * hard + w * T * T * kl
    torch.testing.assert_close(distillation_loss(s, target, F.log_softmax(t / T, 1), T, w), expected)


def test_teacher_sees_the_batch_the_student_sees(toy):
    X, y = toy
    teacher = _net(hidden=8).fit(X, y)
    F_ = FeatureSet.from_array(X)
    student = DistilledStudent(teacher, hidden=4, max_epochs=2, batch_size=20, random_state=0,
                               teacher_outputs="online")
    seen = {"student": [], "teacher": []}

    pipe = Pipeline([("crop", RandomCrop()), ("specaug", SpecAugment(2, 2)), ("clf", student)])
    import skasc._training as tr

    orig_get_loss = tr.SceneNet.get_loss

    def get_loss(self, y_pred, y_true, X=None, training=False):
        if training and self.teacher is not None:
            seen["student"].append(X.clone())
            h = self.teacher.members[0].register_forward_pre_hook(
                lambda m, inp: seen["teacher"].append(inp[0].clone()))
            try:
                return orig_get_loss(self, y_pred, y_true, X, training)
            finally:
                h.remove()
        return orig_get_loss(self, y_pred, y_true, X, training)

    tr.SceneNet.get_loss = get_loss
    try:
        pipe.fit(F_, y)
    finally:
        tr.SceneNet.get_loss = orig_get_loss
    assert len(seen["student"]) == len(seen["teacher"]) == 6  # 3 batches x 2 epochs
    for xs, xt in zip(seen["student"], seen["teacher"]):
        torch.testing.assert_close(xs, xt)
    # the batches are augmented (not the clean windows)
    clean = torch.as_tensor(F_.windows())[:, None]
    assert not any(torch.equal(xs, clean[: len(xs)]) for xs in seen["student"])


def test_fitted_teacher_is_frozen_under_clone_and_grid_search(toy):
    X, y = toy
    groups = np.arange(len(y)) // 3
    teacher = _net(hidden=8).fit(X, y)
    state = {k: v.clone() for k, v in teacher.module_.state_dict().items()}
    history_len = len(teacher.net_.history)
    for t in (teacher, FrozenEstimator(teacher)):
        student = DistilledStudent(t, hidden=4, max_epochs=2, random_state=0)
        assert clone(student).teacher is t
        search = GridSearchCV(student, {"hidden": [2, 4]}, cv=GroupKFold(2)).fit(X, y, groups=groups)
        assert search.best_estimator_.teacher_ is teacher
    assert len(teacher.net_.history) == history_len  # never refitted
    for k, v in teacher.module_.state_dict().items():
        torch.testing.assert_close(v, state[k])


def test_unfitted_teacher_is_cloned_and_fitted_first(toy):
    X, y = toy
    teacher = _net(hidden=8, max_epochs=2)
    student = DistilledStudent(teacher, hidden=4, max_epochs=2, random_state=0).fit(X, y)
    assert student.teacher_ is not teacher and hasattr(student.teacher_, "module_")
    assert not hasattr(teacher, "module_")
    assert clone(DistilledStudent(teacher)).teacher is not teacher


def test_pure_distillation_follows_the_teacher_not_the_labels(toy_logmels):
    X, y = toy_logmels(n=90)
    teacher = EnsembleTeacher([_net(hidden=8, random_state=s) for s in range(2)]).fit(X, y)
    t_pred = teacher.predict(X)
    assert np.mean(t_pred == y) > 0.9
    # labels shuffled: with soft_weight=1 only the teacher's soft targets teach
    y_wrong = np.random.default_rng(0).permutation(y)
    kd = DistilledStudent(teacher, hidden=4, max_epochs=8, batch_size=16, soft_weight=1.0,
                          temperature=2.0, random_state=0).fit(X, y_wrong)
    plain = _net(hidden=4, max_epochs=8, random_state=0).fit(X, y_wrong)
    assert np.mean(kd.predict(X) == t_pred) > 0.85
    assert np.mean(plain.predict(X) == t_pred) < 0.7


def test_temperature_and_soft_weight_reach_the_loss(toy):
    X, y = toy
    teacher = _net(hidden=8, max_epochs=3).fit(X, y)
    student = DistilledStudent(teacher, hidden=4, max_epochs=1, temperature=3.5, soft_weight=0.25).fit(X, y)
    assert (student.net_.temperature, student.net_.soft_weight) == (3.5, 0.25)
    a = DistilledStudent(teacher, hidden=4, max_epochs=2, soft_weight=0.0, random_state=0).fit(X, y)
    b = DistilledStudent(teacher, hidden=4, max_epochs=2, soft_weight=1.0, random_state=0).fit(X, y)
    plain = _net(hidden=4, max_epochs=2, batch_size=64, random_state=0).fit(X, y)
    # soft_weight=0 is plain training on the labels; 1 is pure distillation
    np.testing.assert_allclose(a.predict_proba(X), plain.predict_proba(X), atol=1e-5)
    assert np.abs(a.predict_proba(X) - b.predict_proba(X)).max() > 1e-3


def test_pickle_and_joblib_round_trips_give_identical_predictions(tmp_path, toy):
    X, y = toy
    for est in (_net(), EnsembleTeacher([_net(hidden=4, max_epochs=2, random_state=s) for s in range(2)]),
                DistilledStudent(_net(hidden=4, max_epochs=2), hidden=4, max_epochs=2, random_state=0)):
        est.fit(X, y)
        ref = est.predict_proba(X)
        np.testing.assert_array_equal(pickle.loads(pickle.dumps(est)).predict_proba(X), ref)
        joblib.dump(est, tmp_path / "m.joblib")
        np.testing.assert_array_equal(joblib.load(tmp_path / "m.joblib").predict_proba(X), ref)


@pytest.mark.parametrize("bad, match", [
    (dict(hidden=0), "'hidden' parameter of DwsCNNClassifier must be an int in the range"),
    (dict(hidden=-3), "'hidden' parameter"),
    (dict(lr=0), "'lr' parameter of DwsCNNClassifier must be a float in the range"),
    (dict(batch_size=0), "'batch_size' parameter"),
    (dict(lr_schedule="step"), "'lr_schedule' parameter"),
])
def test_bad_parameters(bad, match, toy):
    X, y = toy
    with pytest.raises(ValueError, match=match):
        _net(**bad).fit(X, y)


def test_grid_search_over_hidden_on_audio_pipeline(tau22_root):
    data = load_tau22(tau22_root, "train")
    keep = np.isin(data.recording, np.unique(data.recording)[::4][:16])
    X, y, rec = data.X[keep], data.y[keep], data.recording[keep]
    pipe = Pipeline([
        ("reassemble", Reassembler()),
        ("logmel", LogMel(n_mels=32, n_fft=2048, win_length=1764, hop_length=1764)),
        ("crop", RandomCrop()),
        ("specaug", SpecAugment(4, 3)),
        ("clf", DwsCNNClassifier(max_epochs=2, random_state=0)),
    ])
    search = GridSearchCV(pipe, {"clf__hidden": [4, 8]}, cv=GroupKFold(2)).fit(X, y, groups=rec)
    scores = search.cv_results_["mean_test_score"]
    assert len(scores) == 2
    assert search.best_params_ == {"clf__hidden": [4, 8][int(np.argmax(scores))]}
    assert search.best_estimator_[-1].input_shape_ == (1, 32, 26)


def test_compile_needs_a_compiler_and_pythons_headers_on_cpu(monkeypatch, tmp_path):
    import shutil
    import sysconfig

    from skasc import _base

    include = tmp_path / "include"
    include.mkdir()
    monkeypatch.setattr(sysconfig, "get_paths", lambda *a, **k: {"include": str(include)})
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    assert not _base.compiler_available("cpu")  # g++ but no Python.h: eager, not a failed batch
    (include / "Python.h").write_text("")
    assert _base.compiler_available("cpu")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert not _base.compiler_available("cpu")  # headers but no compiler


def test_fitted_model_does_not_carry_its_training_data(toy_logmels):
    X, y = toy_logmels(n=3000)
    clf = _net(max_epochs=1, batch_size=256).fit(X, y)
    assert len(pickle.dumps(clf)) < X.nbytes / 4  # weights and optimizer state, no data


def test_compile_auto_is_decided_from_the_runs_size(monkeypatch, toy):
    from skasc import _base

    assert _base.use_compile(True, 10, 1, "cpu") and not _base.use_compile(False, 10**6, 600, "cpu")
    monkeypatch.setattr(_base, "compiler_available", lambda device: True)
    threshold = _base.AUTO_COMPILE_SAMPLE_EPOCHS
    assert not _base.use_compile("auto", 1_300, 5, "cpu")  # the demo's students: eager
    assert _base.use_compile("auto", 139_620, 600, "cpu")  # the paper's: compiled
    assert _base.use_compile("auto", threshold, 1, "cpu") and not _base.use_compile("auto", threshold - 1, 1, "cpu")
    monkeypatch.setattr(_base, "compiler_available", lambda device: False)
    assert not _base.use_compile("auto", 139_620, 600, "cpu")  # no compiler: eager, no error
    # a short fit with the default stays eager: skorch is told compile=False
    X, y = toy
    clf = DwsCNNClassifier(hidden=4, max_epochs=1, random_state=0)
    assert clf.compile == "auto"
    clf.fit(X, y)
    assert clf.net_.compile is False
