"""Every skasc classifier predicts and scores by one contract (skasc._predict).

DwsCNNClassifier, EnsembleTeacher (of networks, and with a scikit-learn
member), DistilledStudent, PretrainedClassifier, OnnxClassifier and
DeviceSpecificClassifier go through the same checks, for three classes and
for two: the shapes and dtypes of predict / predict_proba /
predict_log_proba / decision_function (scikit-learn's 1-D two-class
decision_function), predict == classes_[argmax(predict_proba)], score ==
accuracy of predict, and one meaning of a 2-D array: flattened clips
(n_clips, n_features_in_), the FeatureSet's array view -- or waveforms for
the classifier that reads audio.
"""

from dataclasses import dataclass, field

import numpy as np
import pytest
from scipy.special import softmax
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score

from skasc import (
    DeviceSpecificClassifier,
    DistilledStudent,
    DwsCNNClassifier,
    EnsembleTeacher,
    FeatureSet,
    PretrainedClassifier,
)
from skasc._predict import decision_from_scores, log_proba_from_scores, proba_from_scores

try:
    import onnx  # noqa: F401
    import onnxruntime  # noqa: F401
except ImportError:  # optional dependencies
    onnx = None

LABELS = {3: ("bus", "park", "tram"), 2: ("bus", "park")}
N = 36
KINDS = ["DwsCNNClassifier", "EnsembleTeacher", "EnsembleTeacher+LogisticRegression",
         "DistilledStudent", "OnnxClassifier", "DeviceSpecificClassifier", "PretrainedClassifier"]


def _net(seed=0, **kw):
    return DwsCNNClassifier(**{**dict(hidden=4, linear_hidden=8, max_epochs=2, batch_size=16,
                                      random_state=seed), **kw})


@dataclass
class Case:
    """A fitted classifier, its test input and what its methods also need."""

    model: object
    X: np.ndarray
    y: np.ndarray
    reads: str = "features"
    kw: dict = field(default_factory=dict)  # e.g. devices=

    def __call__(self, method, X=None):
        return getattr(self.model, method)(self.X if X is None else X, **self.kw)


def _waveforms(y, n_samples=3200, seed=0):
    """0.1-s clips at 32 kHz, a tone per class in noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / 32000
    freq = 300.0 * (1 + np.searchsorted(np.unique(y), y))
    return (0.01 * rng.normal(size=(len(y), n_samples))
            + 0.1 * np.sin(2 * np.pi * freq[:, None] * t)).astype(np.float32)


def _build(kind, n_classes, toy_logmels, tmp_path):
    X, y = toy_logmels(n=N, labels=LABELS[n_classes])
    if kind == "DwsCNNClassifier":
        return Case(_net().fit(X, y), X, y)
    if kind == "EnsembleTeacher":
        return Case(EnsembleTeacher([_net(0), _net(1)]).fit(X, y), X, y)
    if kind == "EnsembleTeacher+LogisticRegression":
        # a scikit-learn member reads the features as the FeatureSet's flat rows
        return Case(EnsembleTeacher([_net(0), LogisticRegression(max_iter=300)],
                                    fusion="proba").fit(X, y), X, y)
    if kind == "DistilledStudent":
        return Case(DistilledStudent(_net(1).fit(X, y), hidden=4, linear_hidden=8, max_epochs=2,
                                     batch_size=16, random_state=0).fit(X, y), X, y)
    if kind == "OnnxClassifier":
        if onnx is None:
            pytest.skip("needs onnx and onnxruntime")
        from skasc.export import OnnxClassifier, export_onnx

        return Case(OnnxClassifier(export_onnx(_net().fit(X, y), tmp_path / "m.onnx")), X, y)
    if kind == "DeviceSpecificClassifier":
        devices = np.repeat(["a", "b"], N // 2)  # every device records every class
        model = DeviceSpecificClassifier(_net(), fine_tune={"max_epochs": 1}).fit(
            X, y, devices=devices)
        # rows of a fitted device and of one never seen (the general model's)
        return Case(model, X, y, kw={"devices": np.repeat(["a", "s4"], N // 2)})
    if kind == "PretrainedClassifier":
        # the narrowest EfficientAT width without pretrained weights: offline and fast
        audio = _waveforms(y)
        model = PretrainedClassifier("mn01_as", weights=False, max_epochs=1, batch_size=16,
                                     sr=32000, random_state=0).fit(audio, y)
        return Case(model, audio, y, reads="audio")
    raise AssertionError(kind)


@pytest.fixture(scope="module", params=[(k, c) for k in KINDS for c in (3, 2)],
                ids=[f"{k}-{c}classes" for k in KINDS for c in (3, 2)])
def case(request, toy_logmels, tmp_path_factory):
    kind, n_classes = request.param
    return _build(kind, n_classes, toy_logmels, tmp_path_factory.mktemp("contract"))


def test_shapes_dtypes_and_labels(case):
    classes = np.asarray(case.model.classes_)
    n, c = len(case.y), len(classes)
    pred = case("predict")
    assert pred.shape == (n,) and pred.dtype == classes.dtype and set(pred) <= set(classes)
    proba = case("predict_proba")
    assert proba.shape == (n, c) and proba.dtype == np.float64
    assert (proba > 0).all()
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-12)
    log_proba = case("predict_log_proba")
    assert log_proba.shape == (n, c) and log_proba.dtype == np.float64
    np.testing.assert_allclose(log_proba, np.log(proba), rtol=1e-12, atol=1e-15)
    # predict is the class of the largest probability, as a label of classes_
    np.testing.assert_array_equal(pred, classes[proba.argmax(1)])


def test_decision_function_in_scikit_learns_shape(case):
    classes = np.asarray(case.model.classes_)
    pred = case("predict")
    scores = case("decision_function")
    assert scores.dtype == np.float32
    if len(classes) == 2:
        # one column: the score of classes_[1], positive exactly where it is predicted
        assert scores.shape == (len(case.y),)
        np.testing.assert_array_equal(pred, classes[(scores > 0).astype(int)])
    else:
        assert scores.shape == (len(case.y), len(classes))
        np.testing.assert_array_equal(pred, classes[scores.argmax(1)])
    if hasattr(case.model, "predict_logits"):  # every class's logit, always
        logits = case("predict_logits")
        assert logits.shape == (len(case.y), len(classes)) and logits.dtype == np.float32
        expected = logits[:, 1] - logits[:, 0] if len(classes) == 2 else logits
        np.testing.assert_array_equal(scores, expected)
        np.testing.assert_allclose(case("predict_proba"), softmax(logits.astype(np.float64), axis=1),
                                   rtol=1e-10)


def test_score_is_the_accuracy_of_predict(case):
    pred = case("predict")
    y = case.y
    assert case.model.score(case.X, y, **case.kw) == pytest.approx(accuracy_score(y, pred))
    w = np.linspace(0.5, 2.0, len(y))
    assert case.model.score(case.X, y, sample_weight=w, **case.kw) == pytest.approx(
        accuracy_score(y, pred, sample_weight=w))
    unseen = y.astype(object)
    unseen[0] = "metro"
    with pytest.raises(ValueError, match=r"not fitted on: \['metro'\]"):
        case.model.score(case.X, unseen, **case.kw)
    with pytest.raises(ValueError, match="no label at row 1"):
        case.model.score(case.X, np.r_[y[:1], [None], y[2:]].astype(object), **case.kw)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        case.model.score(case.X, y[:-1], **case.kw)


def test_a_2d_array_holds_flattened_clips(case):
    if case.reads == "audio":
        # for a classifier that reads audio a 2-D array is waveforms: again
        # (n_clips, n_features_in_), the samples of each clip
        assert case.model.n_features_in_ == case.X.shape[1]
        with pytest.raises(ValueError, match="features"):
            case("predict", case.X[:, :-320])
        return
    X = case.X
    flat = X.reshape(len(X), -1)
    features = FeatureSet.from_array(X)
    np.testing.assert_array_equal(np.asarray(features), flat)  # the FeatureSet's array view
    ref = case("predict_proba")
    for same in (flat, features, X[:, None], list(flat)):
        np.testing.assert_allclose(case("predict_proba", same), ref, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(case("predict", flat), case("predict"))
    np.testing.assert_allclose(case("decision_function", flat), case("decision_function"),
                               rtol=1e-6, atol=1e-6)
    assert case.model.score(flat, case.y, **case.kw) == case.model.score(X, case.y, **case.kw)
    # clips of another size are refused, flat or not
    for other in (X[:, :, :6], X[:, :, :6].reshape(len(X), -1)):
        with pytest.raises(ValueError):
            case("predict", other)


def test_a_model_fitted_on_2d_rows_reads_them_as_one_band(toy_logmels):
    X, y = toy_logmels(n=N)
    flat = X.reshape(len(X), -1)
    clf = _net(max_epochs=1).fit(flat, y)
    # (n, d): one band of d frames, the flattened-clips meaning with C = F = 1
    assert clf.input_shape_ == (1, 1, flat.shape[1]) and clf.n_features_in_ == flat.shape[1]
    np.testing.assert_array_equal(clf.predict_proba(flat),
                                  clf.predict_proba(FeatureSet.from_array(flat)))
    with pytest.raises(ValueError, match="feature shape"):
        clf.predict(X)  # 8 bands of 12 frames is another input than 1 band of 96


def test_far_apart_logits_keep_every_probability_and_its_log():
    logits = np.array([[0.0, -120.0, -700.0], [50.0, 50.0, 0.0]], np.float32)
    proba, log_proba = proba_from_scores(logits), log_proba_from_scores(logits)
    # in float32 exp(-120) is 0, and its log -inf
    assert (proba > 0).all() and np.isfinite(log_proba).all()
    np.testing.assert_allclose(log_proba, np.log(proba), rtol=1e-12)
    np.testing.assert_allclose(log_proba[0], [0.0, -120.0, -700.0], atol=1e-12)
    assert decision_from_scores(logits[:, :2]).tolist() == [-120.0, 0.0]
