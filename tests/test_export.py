"""ONNX export (float, int8), scoring of the exported files, and the fast CPU predictor."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline

from skasc import DwsCNNClassifier, EnsembleTeacher, RandomCrop, SpecAugment
from skasc._inference import FastPredictor, cached_fast_predictor
from skasc._networks import held_networks
from skasc._ops import fuse_logits, softmax
from skasc.export import OnnxClassifier, export_onnx, onnx_predict_proba, quantized_param_bytes
from skasc.nn import DwsCNN

SHAPE = (1, 32, 26)


def _randomise_bn(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(m.num_features, generator=g))  # some < 0
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.2)
    if hasattr(module, "set_input_normalization"):  # per-band standardisation buffers
        bands = module.input_shape[1]
        module.set_input_normalization(torch.randn(bands, generator=g),
                                       torch.rand(bands, generator=g) + 0.5)
    return module


def _toy(toy_logmels, n=90, seed=0):
    """Separable toy log-mels of SHAPE: each class lights up 6 bands of its own."""
    return toy_logmels(n=n, shape=SHAPE[1:], seed=seed, shift=2.0, band_width=6, band_stride=8)


@pytest.fixture(scope="module")
def toy(toy_logmels):
    return _toy(toy_logmels)


@pytest.fixture(scope="module")
def fitted(toy):
    torch.set_num_threads(1)
    X, y = toy
    return DwsCNNClassifier(hidden=6, max_epochs=2, batch_size=16, random_state=0).fit(X, y)


@pytest.fixture(scope="module")
def accurate(toy):
    """A model that really separates the toy classes (for the int8 accuracy check)."""
    torch.set_num_threads(1)
    X, y = toy
    return DwsCNNClassifier(hidden=8, max_epochs=12, batch_size=16, random_state=0).fit(X, y)


# ---------------------------------------------------------------------------
# FastPredictor (no ONNX needed for the torch backend)
# ---------------------------------------------------------------------------


def _backends():
    out = [("torch", True), ("torch", False)]
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return out
    return out + [("onnxruntime", True)]


@pytest.mark.parametrize("backend,fused", _backends())
@pytest.mark.parametrize("fusion", ["logits", "proba"])
def test_fast_predictor_matches_eager(backend, fused, fusion):
    torch.manual_seed(0)
    members = [_randomise_bn(DwsCNN(n_classes=4, hidden=5, input_shape=SHAPE).eval(), s)
               for s in range(2)]
    x = np.random.default_rng(1).normal(size=(23,) + SHAPE).astype(np.float32)
    for mods in (members[:1], members):
        with torch.inference_mode():
            ref = fuse_logits([m(torch.from_numpy(x)) for m in mods], fusion).numpy()
        fast = FastPredictor(mods, SHAPE, fusion=fusion, backend=backend, n_threads=2,
                             chunk_size=4, fused_kernels=fused)
        got = fast.logits(x)
        assert got.shape == ref.shape and got.dtype == np.float32
        np.testing.assert_allclose(softmax(got), softmax(ref), atol=1e-4)
        np.testing.assert_allclose(got, ref, atol=1e-4, rtol=1e-4)
        # any batch size, and (N, F, T) without the channel axis
        np.testing.assert_allclose(fast.logits(x[:1, 0]), got[:1], atol=1e-5)
        # pickling drops the run-time objects and rebuilds them
        again = pickle.loads(pickle.dumps(fast))
        np.testing.assert_allclose(again.logits(x), got, atol=1e-6)
    assert torch.get_num_threads() == 1  # the caller's setting survives the workers


def test_fast_predictor_falls_back_when_folding_is_wrong(monkeypatch):
    """A network the folding does not reproduce is run as it is, with a warning."""
    from skasc import _inference

    net = _randomise_bn(DwsCNN(n_classes=3, hidden=4, input_shape=SHAPE).eval())
    x = np.random.default_rng(0).normal(size=(6,) + SHAPE).astype(np.float32)
    stage2 = _inference._FoldedDwsCNN._stage2
    monkeypatch.setattr(_inference._FoldedDwsCNN, "_stage2",
                        lambda self, *a: stage2(self, *a) + 1.0)
    with pytest.warns(RuntimeWarning, match="could not fold"):
        fast = FastPredictor(net, SHAPE)
    with torch.inference_mode():
        np.testing.assert_allclose(fast.logits(x), net(torch.from_numpy(x)).numpy(), atol=1e-5)


def test_fast_predictor_on_fitted_classifier(fitted, toy):
    X, _ = toy
    fast = FastPredictor([fitted.module_], fitted.input_shape_)
    np.testing.assert_allclose(softmax(fast.logits(X[:, None])), fitted.predict_proba(X), atol=1e-4)
    assert not fast.is_stale([fitted.module_])
    with torch.no_grad():
        fitted.module_.fc2.bias.add_(0.0)  # the same content: still fresh
    assert not fast.is_stale([fitted.module_])
    saved = fitted.module_.fc2.bias.detach().clone()
    with torch.no_grad():
        fitted.module_.fc2.bias.add_(0.5)
    try:
        assert fast.is_stale([fitted.module_])
    finally:  # the module-scoped fixture is shared
        with torch.no_grad():
            fitted.module_.fc2.bias.copy_(saved)


class Wrapped(torch.nn.Module):  # not a plain DwsCNN: run / exported as it is
    input_shape = SHAPE

    def __init__(self):
        super().__init__()
        self.net = DwsCNN(n_classes=3, hidden=4, input_shape=SHAPE).eval()

    def forward(self, x):
        return self.net(x) * 2.0


def test_cached_fast_predictor(fitted):
    mods = [fitted.module_]
    before = dict(vars(fitted))
    fast = cached_fast_predictor(fitted, mods, fitted.input_shape_)
    assert isinstance(fast, FastPredictor)
    assert cached_fast_predictor(fitted, mods, fitted.input_shape_) is fast  # cached
    assert vars(fitted).keys() == before.keys()  # nothing stored on the estimator
    with torch.no_grad():
        fitted.module_.fc1.weight.mul_(1.0)  # the same content
    assert cached_fast_predictor(fitted, mods, fitted.input_shape_) is fast
    with torch.no_grad():
        fitted.module_.fc1.weight.mul_(2.0)
    try:
        assert cached_fast_predictor(fitted, mods, fitted.input_shape_) is not fast  # stale
    finally:  # the module-scoped fixture is shared (x2 then /2 is exact)
        with torch.no_grad():
            fitted.module_.fc1.weight.div_(2.0)
    assert cached_fast_predictor(fitted, mods, fitted.input_shape_, device="cuda") is None
    handle = fitted.module_.register_forward_hook(lambda *a: None)
    try:  # a hook must see the forward passes: no fast path
        assert cached_fast_predictor(fitted, mods, fitted.input_shape_) is None
    finally:
        handle.remove()


def test_fast_predictor_generic_module_and_errors():
    mod = Wrapped().eval()
    x = np.random.default_rng(0).normal(size=(5,) + SHAPE).astype(np.float32)
    fast = FastPredictor(mod, SHAPE)
    with torch.inference_mode():
        np.testing.assert_allclose(fast.logits(x), mod(torch.from_numpy(x)).numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="onnxruntime"):
        FastPredictor(mod, SHAPE, backend="onnxruntime")
    with pytest.raises(ValueError, match="backend"):
        FastPredictor(mod, SHAPE, backend="tvm")
    with pytest.raises(ValueError, match="shape"):
        fast.logits(np.zeros((2, 1, 8, 8), np.float32))
    assert fast.logits(np.zeros((0,) + SHAPE, np.float32)).shape[0] == 0


# ---------------------------------------------------------------------------
# ONNX export
# ---------------------------------------------------------------------------

try:
    import onnx
    import onnxruntime as ort
except ImportError:  # optional dependencies
    onnx = ort = None

pytestmark_onnx = pytest.mark.skipif(onnx is None, reason="needs onnx and onnxruntime")


@pytestmark_onnx
def test_float_export_matches_predict_proba(fitted, toy, tmp_path):
    X, y = toy
    path = export_onnx(fitted, tmp_path / "model.onnx")
    assert path == tmp_path / "model.onnx" and path.is_file()
    model = onnx.load(str(path))
    assert [i.name for i in model.graph.input] == ["logmel"]
    assert [o.name for o in model.graph.output] == ["logits"]
    np.testing.assert_allclose(onnx_predict_proba(path, X), fitted.predict_proba(X), atol=1e-4)
    clf = OnnxClassifier(path)
    assert clf.classes_.tolist() == fitted.classes_.tolist()
    np.testing.assert_array_equal(clf.predict(X), fitted.predict(X))
    assert clf.score(X, y) == pytest.approx(fitted.score(X, y))
    # float parameter bytes: 4 per parameter (BatchNorm of pw_conv1 folded into a bias)
    n_params = sum(p.numel() for p in fitted.module_.parameters())
    assert 4 * n_params <= quantized_param_bytes(path) <= 4 * n_params + 4 * 8 * 6 * 3


@pytestmark_onnx
def test_dynamic_batch_axis(fitted, toy, tmp_path):
    X, _ = toy
    path = export_onnx(fitted, tmp_path / "m.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    dim0 = sess.get_inputs()[0].shape[0]
    assert not isinstance(dim0, int)  # symbolic
    ref = fitted.predict_logits(X[:7])
    for n in (1, 7):
        out = sess.run(None, {"logmel": X[:n, None]})[0]
        assert out.shape == (n, 3)
        np.testing.assert_allclose(out, ref[:n], atol=1e-4)


@pytestmark_onnx
def test_pipeline_and_module_export(fitted, toy, tmp_path):
    X, y = toy
    pipe = Pipeline([("crop", RandomCrop()), ("mask", SpecAugment()),
                     ("clf", DwsCNNClassifier(hidden=4, max_epochs=1, random_state=0))]).fit(X, y)
    path = export_onnx(pipe, tmp_path / "pipe.onnx")
    np.testing.assert_allclose(onnx_predict_proba(path, X), pipe.predict_proba(X), atol=1e-4)
    # a bare module: no labels stored, predict gives indices
    path = export_onnx(fitted.module_, tmp_path / "module.onnx")
    clf = OnnxClassifier(path)
    assert clf.classes_ is None
    np.testing.assert_array_equal(clf.predict(X), np.argmax(fitted.predict_logits(X), 1))


@pytestmark_onnx
def test_generic_module_export(tmp_path):
    mod = Wrapped().eval()
    x = np.random.default_rng(0).normal(size=(3,) + SHAPE).astype(np.float32)
    path = export_onnx(mod, tmp_path / "wrapped.onnx")
    with torch.inference_mode():
        ref = mod(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(OnnxClassifier(path).predict_logits(x), ref, atol=1e-4)


@pytestmark_onnx
@pytest.mark.parametrize("fusion", ["logits", "proba"])
def test_ensemble_export_equals_fused_logits(toy, tmp_path, fusion):
    # the ONNX fusion nodes mirror skasc._ops.fuse_logits, which the torch
    # classifiers use: the two must agree
    X, y = toy
    members = [DwsCNNClassifier(hidden=4, max_epochs=1, batch_size=16, random_state=s)
               for s in range(3)]
    teacher = EnsembleTeacher(members, fusion=fusion).fit(X, y)
    path = export_onnx(teacher, tmp_path / "teacher.onnx")
    model = onnx.load(str(path))
    assert len(model.graph.input) == 1 and len(model.graph.output) == 1  # one graph
    got = OnnxClassifier(path).predict_logits(X)
    np.testing.assert_allclose(got, teacher.predict_logits(X), atol=1e-4)
    np.testing.assert_allclose(softmax(got), teacher.predict_proba(X), atol=1e-4)
    fast = FastPredictor(held_networks(teacher).modules, teacher.input_shape_, fusion=fusion)
    np.testing.assert_allclose(fast.logits(X), teacher.predict_logits(X), atol=1e-4)


@pytestmark_onnx
def test_int8_quantization_keeps_accuracy(accurate, toy, toy_logmels, tmp_path):
    X, y = toy
    X_test, y_test = _toy(toy_logmels, n=150, seed=1)
    float_acc = accurate.score(X_test, y_test)
    assert float_acc >= 0.9  # the check below means something
    fpath = export_onnx(accurate, tmp_path / "float.onnx")
    qpath = export_onnx(accurate, tmp_path / "int8.onnx", quantize="int8", calibration_X=X)
    q = OnnxClassifier(qpath)
    int8_acc = q.score(X_test, y_test)
    assert int8_acc >= float_acc - 0.05
    # it really is quantized: int8 weights, QDQ nodes, fewer bytes, different outputs
    model = onnx.load(str(qpath))
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in model.graph.node}
    by_dtype = quantized_param_bytes(qpath, by_dtype=True)
    assert by_dtype.get("int8", 0) > 0
    assert by_dtype["total"] < 0.6 * quantized_param_bytes(fpath)
    diff = np.abs(q.predict_proba(X_test) - accurate.predict_proba(X_test)).max()
    assert 0 < diff < 0.2
    # calibration data may also be a FeatureSet, or flat rows
    from skasc.preprocessing import as_feature_set

    export_onnx(accurate, tmp_path / "int8b.onnx", quantize="int8",
                calibration_X=as_feature_set(X[:20]))
    export_onnx(accurate, tmp_path / "int8c.onnx", quantize="int8",
                calibration_X=X[:20].reshape(20, -1))


@pytestmark_onnx
def test_export_errors(fitted, tmp_path):
    with pytest.raises(NotFittedError):
        export_onnx(DwsCNNClassifier(), tmp_path / "x.onnx")
    with pytest.raises(NotFittedError):
        export_onnx(EnsembleTeacher([DwsCNNClassifier()]), tmp_path / "x.onnx")
    with pytest.raises(FileNotFoundError):
        export_onnx(fitted, tmp_path / "missing_dir" / "x.onnx")
    with pytest.raises(IsADirectoryError):
        export_onnx(fitted, tmp_path)
    with pytest.raises(ValueError, match="calibration_X"):
        export_onnx(fitted, tmp_path / "q.onnx", quantize="int8")
    with pytest.raises(ValueError, match="quantize"):
        export_onnx(fitted, tmp_path / "q.onnx", quantize="int4")
    with pytest.raises(ValueError, match="calibration_X"):
        export_onnx(fitted, tmp_path / "q.onnx", quantize="int8",
                    calibration_X=np.zeros((4, 7, 7), np.float32))
    with pytest.raises(TypeError):
        export_onnx(object(), tmp_path / "x.onnx")
    assert not (tmp_path / "q.onnx").exists() and not (tmp_path / "x.onnx").exists()
