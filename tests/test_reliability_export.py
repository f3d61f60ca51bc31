"""Issue 9 (Reliability II), inference side: the fast predictor never serves
stale weights, and OnnxClassifier keeps the torch classifiers' contract."""

import copy
import pickle
import re

import numpy as np
import pytest
import torch

from skasc import DwsCNNClassifier, EnsembleTeacher
from skasc._featureset import FeatureSet
from skasc._inference import FastPredictor
from skasc._networks import held_networks
from skasc._ops import fuse_logits
from skasc.export import OnnxClassifier, export_onnx

try:
    import onnx
    import onnxruntime  # noqa: F401
except ImportError:  # optional dependencies: only the OnnxClassifier tests need them
    onnx = None

needs_onnx = pytest.mark.skipif(onnx is None, reason="needs onnx and onnxruntime")

SHAPE = (1, 8, 12)


def _toy(n=24, seed=0):
    rng = np.random.default_rng(seed)
    y = np.array(["bus", "park", "tram"])[np.arange(n) % 3]
    X = rng.normal(size=(n,) + SHAPE[1:]).astype(np.float32)
    for k, lab in enumerate(("bus", "park", "tram")):
        X[y == lab, 2 * k: 2 * k + 2] += 2.0
    return X, y


@pytest.fixture(scope="module")
def toy():
    return _toy()


@pytest.fixture(scope="module")
def fitted_models(toy):
    torch.set_num_threads(1)
    X, y = toy
    net = DwsCNNClassifier(hidden=4, max_epochs=6, batch_size=8, random_state=0).fit(X, y)
    members = [DwsCNNClassifier(hidden=4, max_epochs=6, batch_size=8, random_state=s)
               for s in range(2)]
    teacher = EnsembleTeacher(members, fusion="proba").fit(X, y)
    return {"DwsCNNClassifier": net, "EnsembleTeacher": teacher}


# ---------------------------------------------------------------------------
# stale fast predictor
# ---------------------------------------------------------------------------


def _eager_proba(est, X):
    """What the network computes now: module(x) in eval mode, fused, softmax."""
    x = torch.from_numpy(X[:, None])
    mods = held_networks(est).modules
    with torch.no_grad():
        outs = []
        for m in mods:
            m.eval()
            outs.append(m(x).float())
        return torch.softmax(fuse_logits(outs, getattr(est, "fusion", "logits")), 1).numpy()


def _first_bn(module):
    return next(m for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d))


def _other_weights(module):
    other = copy.deepcopy(module)
    g = torch.Generator().manual_seed(123)
    with torch.no_grad():
        for p in other.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return other.state_dict()


EDITS = {
    # .data has its own version counter: these bumped nothing before
    "param_data_mul": lambda m: m.fc2.weight.data.mul_(0.5),
    "param_data_assign": lambda m: setattr(
        m.fc2.weight, "data", torch.randn_like(m.fc2.weight) * 3.0),
    "param_data_assign_same_storage_size": lambda m: setattr(
        m.input_conv.weight, "data", m.input_conv.weight.detach().clone().neg()),
    "bn_buffer_data": lambda m: _first_bn(m).running_var.data.mul_(0.01),
    "input_norm_buffer_data": lambda m: m.input_scale.data.mul_(10.0),
    "bn_buffer_inplace": lambda m: _first_bn(m).running_mean.add_(3.0),
    "load_state_dict": lambda m: m.load_state_dict(_other_weights(m)),
}


@pytest.mark.parametrize("edit", sorted(EDITS))
@pytest.mark.parametrize("kind", ["DwsCNNClassifier", "EnsembleTeacher"])
def test_predict_proba_follows_edited_weights(fitted_models, toy, kind, edit):
    X, _ = toy
    est = copy.deepcopy(fitted_models[kind])  # its own (empty) predictor cache
    before = est.predict_proba(X)  # builds and caches the fast predictor
    np.testing.assert_allclose(before, _eager_proba(est, X), atol=1e-5)
    EDITS[edit](held_networks(est).modules[0])
    expected = _eager_proba(est, X)
    assert np.abs(expected - before).max() > 1e-3  # the edit changes the outputs
    np.testing.assert_allclose(est.predict_proba(X), expected, atol=1e-5)


def test_is_stale_on_data_edits():
    from skasc.nn import DwsCNN

    net = DwsCNN(n_classes=3, hidden=4, input_shape=SHAPE).eval()
    fast = FastPredictor(net, SHAPE)
    assert not fast.is_stale(net)
    assert not fast.is_stale(net)  # checking changes nothing
    net.fc1.bias.data.add_(0.25)
    assert fast.is_stale(net)
    fast = FastPredictor(net, SHAPE)
    assert not fast.is_stale(net)
    net.dw3.bn1.running_mean.data[0] += 1.0  # one value of one buffer
    assert fast.is_stale(net)
    fast = FastPredictor(net, SHAPE)
    assert fast.is_stale(copy.deepcopy(net))  # other objects: stale by identity
    assert pickle.loads(pickle.dumps(fast)).is_stale(net)  # no snapshot after pickling
    big = torch.nn.Linear(300, 100)  # large tensors take another comparison path
    fast = FastPredictor(big, (1, 1, 300))
    assert not fast.is_stale(big)
    big.weight.data[-1, -1] += 1.0
    assert fast.is_stale(big)
    with torch.no_grad():
        net.fc2.bias[0] = float("nan")  # NaN equals itself bitwise: not rebuilt every call
    with pytest.warns(RuntimeWarning, match="could not fold"):
        fast = FastPredictor(net, SHAPE)
    assert not fast.is_stale(net)


# ---------------------------------------------------------------------------
# OnnxClassifier: the torch classifiers' contract
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def onnx_file(fitted_models, tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    return export_onnx(fitted_models["DwsCNNClassifier"], path)


@pytest.fixture(scope="module")
def onnx_clf(onnx_file):
    return OnnxClassifier(onnx_file)


def _methods(clf, y):
    return {"predict": clf.predict, "predict_proba": clf.predict_proba,
            "predict_logits": clf.predict_logits, "score": lambda X: clf.score(X, y[:len(X)])}


@needs_onnx
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_onnx_refuses_non_finite_input(onnx_clf, fitted_models, toy, bad):
    X, y = toy
    Xb = X.copy()
    Xb[3, 2, 5] = bad
    torch_clf = fitted_models["DwsCNNClassifier"]
    with pytest.raises(ValueError, match="NaN|infinity"):  # the contract to match
        torch_clf.predict_proba(Xb)
    for method in _methods(onnx_clf, y).values():
        with pytest.raises(ValueError, match="NaN|infinity"):
            method(Xb)
        with pytest.raises(ValueError, match="NaN|infinity"):  # also in a FeatureSet
            method(FeatureSet.from_array(Xb))
    # finite float64 values beyond float32's range become inf in the model
    big = X.astype(np.float64)
    big[0, 0, 0] = 1e39
    with pytest.raises(ValueError, match="infinity"), np.errstate(over="ignore"):
        onnx_clf.predict(big)


@needs_onnx
def test_onnx_score_checks_lengths(onnx_clf, toy):
    X, y = toy
    assert onnx_clf.score(X[:1], y[:1]) in (0.0, 1.0)
    for Xs, ys in ((X, y[:1]), (X[:1], y), (X, y[:-1])):
        with pytest.raises(ValueError, match="inconsistent numbers of samples"):
            onnx_clf.score(Xs, ys)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        onnx_clf.score(X, y, sample_weight=np.ones(3))


@needs_onnx
def test_onnx_score_refuses_unseen_labels(onnx_clf, fitted_models, toy, tmp_path):
    X, y = toy
    torch_clf = fitted_models["DwsCNNClassifier"]
    y_new = y.copy().astype(object)
    y_new[0] = "metro"
    with pytest.raises(ValueError, match="not fitted on") as torch_err:
        torch_clf.score(X, y_new)
    with pytest.raises(ValueError, match=r"not fitted on: \['metro'\]") as onnx_err:
        onnx_clf.score(X, y_new)
    assert str(onnx_err.value) == str(torch_err.value)  # the same message
    assert onnx_clf.score(X, y) == pytest.approx(torch_clf.score(X, y))
    # a bare module export has no labels: y holds class indices 0..n_classes-1
    bare = OnnxClassifier(export_onnx(torch_clf.module_, tmp_path / "bare.onnx"))
    idx = np.searchsorted(torch_clf.classes_, y)
    assert bare.score(X, idx) == pytest.approx(torch_clf.score(X, y))
    with pytest.raises(ValueError, match=r"not fitted on: \[3\]"):
        bare.score(X, np.where(np.arange(len(idx)) == 0, 3, idx))


@needs_onnx
def test_onnx_refuses_empty_input(onnx_clf, toy):
    X, y = toy
    for empty in (X[:0], X[:0, None], X[:0].reshape(0, X[0].size), FeatureSet.from_array(X[:0])):
        for method in _methods(onnx_clf, y).values():
            with pytest.raises(ValueError, match="X holds no clips"):
                method(empty)


def _cuts(full):
    """Truncations of a valid file: arbitrary, and at each field boundary near its end."""
    model = onnx.load_from_string(full)
    cuts = {0, 1, 10, len(full) // 3, len(full) // 2, len(full) - 1}
    cuts.update(range(max(1, len(full) - 400), len(full)))
    for keep in range(len(model.metadata_props)):  # cut inside the metadata
        m = copy.deepcopy(model)
        del m.metadata_props[keep:]
        cuts.add(len(m.SerializeToString()))
    m = copy.deepcopy(model)
    del m.metadata_props[:]
    del m.opset_import[:]
    cuts.add(len(m.SerializeToString()))  # just after the graph
    for c in cuts:
        assert full.startswith(full[:c])
    return sorted(cuts)


@needs_onnx
def test_onnx_junk_and_truncated_files(onnx_file, tmp_path):
    full = onnx_file.read_bytes()
    bad = tmp_path / "bad.onnx"
    for data in [b"not an onnx model at all", b"\x00" * 64]:
        bad.write_bytes(data)
        with pytest.raises(ValueError, match=re.escape(str(bad))):
            OnnxClassifier(bad)
    cuts = _cuts(full)
    for c in cuts:
        bad.write_bytes(full[:c])
        with pytest.raises(ValueError, match=re.escape(str(bad))):
            OnnxClassifier(str(bad))
    # a file that never was: OSErrors name it too
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nope.onnx"))):
        OnnxClassifier(tmp_path / "nope.onnx")
    with pytest.raises(IsADirectoryError, match=re.escape(str(tmp_path))):
        OnnxClassifier(tmp_path)


@needs_onnx
def test_onnx_pickled_classifier_refuses_a_changed_file(fitted_models, toy, tmp_path):
    X, _ = toy
    path = export_onnx(fitted_models["DwsCNNClassifier"], tmp_path / "m.onnx")
    clf = OnnxClassifier(path)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    blob = pickle.dumps(clf)
    export_onnx(fitted_models["EnsembleTeacher"], path)  # same labels, other model
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*changed"):
        pickle.loads(blob).predict(X)
