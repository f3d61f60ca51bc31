"""ONNX export (float and int8) of fitted skasc classifiers, and scoring of the result.

:func:`export_onnx` writes a fitted :class:`~skasc.DwsCNNClassifier`,
:class:`~skasc.DistilledStudent`, :class:`~skasc.EnsembleTeacher` (its
members fused in one graph), a :class:`~sklearn.pipeline.Pipeline` ending in
one of them, or a bare :class:`~skasc.nn.DwsCNN`, to an ONNX file:

* input ``"logmel"``: float32 ``(N, C, F, T)`` (``C = 1`` for log-mel
  features), ``N`` dynamic; output ``"logits"``: float32 ``(N, n_classes)``;
* the class labels, input shape and fusion are stored in the model's
  metadata (``skasc.classes``, ``skasc.input_shape``, ``skasc.fusion``), so
  :class:`OnnxClassifier` can predict labels from the file alone;
* the float export is checked with ONNX Runtime against the eager PyTorch
  model (class probabilities must agree to 1e-4, else ``RuntimeError``);
* ``quantize="int8"`` applies ONNX Runtime's post-training static
  quantization (QDQ format, per-channel int8 weights, int8 activations
  calibrated with MinMax on ``calibration_X``).

The graph of a :class:`~skasc.nn.DwsCNN` is written node by node from the
module's weights (no dependency on the PyTorch ONNX exporter), with the
second BatchNorm of each DwBlock folded into the pointwise convolution
before it (exact up to float32 rounding: both are linear); other modules go
through :func:`torch.onnx.export`.

Requires the optional packages ``onnx`` and ``onnxruntime``.

Examples
--------
>>> import numpy as np, tempfile, pathlib
>>> from skasc import DwsCNNClassifier
>>> from skasc.export import export_onnx, OnnxClassifier
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(40, 8, 12)).astype("float32")
>>> y = np.repeat(["bus", "park"], 20)
>>> X[y == "park", :4] += 2.0
>>> clf = DwsCNNClassifier(hidden=4, max_epochs=3, random_state=0).fit(X, y)
>>> path = export_onnx(clf, pathlib.Path(tempfile.mkdtemp()) / "model.onnx")
>>> onnx_clf = OnnxClassifier(path)
>>> bool(np.allclose(onnx_clf.predict_proba(X), clf.predict_proba(X), atol=1e-4))
True
>>> onnx_clf.classes_.tolist()
['bus', 'park']
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import pathlib
import tempfile
import warnings
from numbers import Integral

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, validate_parameter_constraints

__all__ = [
    "export_onnx",
    "onnx_predict_proba",
    "onnx_predict_logits",
    "OnnxClassifier",
    "quantized_param_bytes",
]

INPUT_NAME = "logmel"
OUTPUT_NAME = "logits"
#: Largest disagreement in probability tolerated between ONNX Runtime and eager.
FLOAT_TOLERANCE = 1e-4
_QUANTIZE = (None, "int8")


def _need(module):
    try:
        return __import__(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"skasc.export needs the optional package {module!r} "
            f"(pip install onnx onnxruntime)") from exc


# ---------------------------------------------------------------------------
# what to export
# ---------------------------------------------------------------------------


def _resolve(obj):
    """(modules, input_shape, fusion, classes) of an estimator or module."""
    from sklearn.utils.validation import check_is_fitted

    if isinstance(obj, torch.nn.Module):
        shape = getattr(obj, "input_shape", None)
        if shape is None:
            raise TypeError(
                "a bare torch module needs an `input_shape` attribute (C, F, T); "
                "export a fitted skasc classifier or a DwsCNN instead")
        return [obj], tuple(shape), "logits", None
    # Pipeline / FrozenEstimator / search: the model that predicts
    if hasattr(obj, "steps") and isinstance(getattr(obj, "steps"), list):
        if not obj.steps:
            raise ValueError("empty Pipeline")
        return _resolve(obj.steps[-1][1])
    if type(obj).__name__ == "FrozenEstimator" and hasattr(obj, "estimator"):
        return _resolve(obj.estimator)
    if hasattr(obj, "best_estimator_"):
        return _resolve(obj.best_estimator_)
    if not hasattr(obj, "_torch_modules"):
        raise TypeError(
            f"cannot export {type(obj).__name__}: expected a fitted skasc classifier "
            "(DwsCNNClassifier, DistilledStudent, EnsembleTeacher), a Pipeline ending "
            "in one, or a DwsCNN module")
    check_is_fitted(obj)
    modules = obj._torch_modules()  # raises NotFittedError when unfitted
    fusion = getattr(obj, "fusion", "logits")
    return list(modules), tuple(obj.input_shape_), fusion, np.asarray(obj.classes_)


def _cpu_copies(modules):
    out = []
    for m in modules:
        dev = next((p.device for p in m.parameters()), torch.device("cpu"))
        out.append((copy.deepcopy(m).cpu() if dev.type != "cpu" else m).eval())
    return out


def _eager_logits(modules, x, fusion):
    """Reference: what EnsembleTeacher / the classifier compute, in float32."""
    from ._inference import _fuse

    with torch.inference_mode():
        xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        return _fuse([m(xt).float() for m in modules], fusion).numpy()


# ---------------------------------------------------------------------------
# graph building
# ---------------------------------------------------------------------------


class _Graph:
    """Tiny helper collecting ONNX nodes and initializers."""

    def __init__(self, opset):
        self.opset = opset
        self.nodes = []
        self.inits = []
        self._n = 0

    def name(self, base):
        self._n += 1
        return f"{base}_{self._n}"

    def init(self, base, array, dtype=np.float32):
        from onnx import numpy_helper

        name = self.name(base)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array, dtype=dtype), name))
        return name

    def node(self, op, inputs, base, **attrs):
        from onnx import helper

        out = self.name(base)
        self.nodes.append(helper.make_node(op, list(inputs), [out], name=out, **attrs))
        return out


def _np(t):
    return t.detach().cpu().double().numpy()


def _conv(g, x, w, b, pad, group, base):
    inputs = [x, g.init(base + ".weight", _np(w))]
    if b is not None:
        inputs.append(g.init(base + ".bias", _np(b)))
    k = list(w.shape[2:])
    return g.node("Conv", inputs, base, kernel_shape=k, pads=[pad, pad, pad, pad],
                  strides=[1, 1], dilations=[1, 1], group=group)


def _dwscnn_graph(g, m, x, prefix):
    """Append the nodes of DwsCNN ``m`` reading ``x``; return its logits name."""
    from ._inference import _bn_affine

    mean, scale = getattr(m, "input_mean", None), getattr(m, "input_scale", None)
    if mean is not None and scale is not None:  # per-band standardisation buffers
        x = g.node("Sub", [x, g.init(f"{prefix}input_mean", _np(mean))], f"{prefix}standardize")
        x = g.node("Mul", [x, g.init(f"{prefix}input_scale", _np(scale))], f"{prefix}standardize")
    h = _conv(g, x, m.input_conv.weight, m.input_conv.bias, 3, 1, f"{prefix}input_conv")

    def block(h, blk, name):
        c = blk.channels
        bn = blk.bn1
        t = g.node("BatchNormalization", [
            h,
            g.init(f"{name}.bn1.weight", _np(bn.weight) if bn.weight is not None else np.ones(c)),
            g.init(f"{name}.bn1.bias", _np(bn.bias) if bn.bias is not None else np.zeros(c)),
            g.init(f"{name}.bn1.running_mean", _np(bn.running_mean)),
            g.init(f"{name}.bn1.running_var", _np(bn.running_var)),
        ], f"{name}.bn1", epsilon=float(bn.eps))
        t = g.node("Relu", [t], f"{name}.relu1")
        t = _conv(g, t, blk.dw_conv1.weight, None, 1, c, f"{name}.dw_conv1")
        a2, s2 = _bn_affine(blk.bn2)  # bn2 folded into pw_conv1
        w1 = blk.pw_conv1.weight.detach().double().cpu() * a2.view(c, 1, 1, 1)
        t = _conv(g, t, w1, s2, 0, 1, f"{name}.pw_conv1_bn2")
        t = g.node("Relu", [t], f"{name}.relu2")
        t = _conv(g, t, blk.dw_conv2.weight, None, 1, c, f"{name}.dw_conv2")
        t = _conv(g, t, blk.pw_conv2.weight, None, 0, 1, f"{name}.pw_conv2")
        return g.node("Add", [h, t], f"{name}.add")

    def pool(h, kernel, name):
        k = list(kernel)
        return g.node("MaxPool", [h], name, kernel_shape=k, strides=k, pads=[0, 0, 0, 0])

    h = block(h, m.dw1, f"{prefix}dw1")
    h = pool(h, m.pool1_kernel, f"{prefix}pool1")
    h = _conv(g, h, m.dw2_conv.weight, m.dw2_conv.bias, 2, 1, f"{prefix}dw2_conv")
    h = block(h, m.dw2, f"{prefix}dw2")
    h = block(h, m.dw3, f"{prefix}dw3")
    h = pool(h, m.pool2_kernel, f"{prefix}pool2")
    h = g.node("Flatten", [h], f"{prefix}flatten", axis=1)
    h = g.node("Gemm", [h, g.init(f"{prefix}fc1.weight", _np(m.fc1.weight)),
                        g.init(f"{prefix}fc1.bias", _np(m.fc1.bias))], f"{prefix}fc1", transB=1)
    if isinstance(m.act, torch.nn.ReLU):
        h = g.node("Relu", [h], f"{prefix}act")
    return g.node("Gemm", [h, g.init(f"{prefix}fc2.weight", _np(m.fc2.weight)),
                           g.init(f"{prefix}fc2.bias", _np(m.fc2.bias))], f"{prefix}fc2", transB=1)


def _fusion_graph(g, outs, fusion):
    if len(outs) == 1 and fusion == "logits":
        return outs[0]
    if fusion == "logits":
        return g.node("Mean", outs, "fused_mean")
    axes0 = g.init("axes0", np.array([0]), np.int64)
    parts = [g.node("Unsqueeze", [g.node("LogSoftmax", [o], "log_softmax", axis=1), axes0],
                    "unsqueeze") for o in outs]
    stacked = g.node("Concat", parts, "stack", axis=0) if len(parts) > 1 else parts[0]
    if g.opset >= 18:
        lse = g.node("ReduceLogSumExp", [stacked, axes0], "logsumexp", keepdims=0)
    else:
        lse = g.node("ReduceLogSumExp", [stacked], "logsumexp", axes=[0], keepdims=0)
    return g.node("Sub", [lse, g.init("log_n_members", np.array(math.log(len(outs))))],
                  "fused_log_mean_proba")


def _min_ir_version(opset):
    from onnx import helper

    irs = [ir for _, ir, ai_onnx, *_ in helper.VERSION_TABLE if ai_onnx == opset]
    return min(irs) if irs else None


def _build_model(modules, input_shape, fusion, opset, classes=None):
    """ONNX ModelProto of the fused modules (plain DwsCNNs: hand-built graph)."""
    onnx = _need("onnx")
    from onnx import TensorProto, helper

    from ._inference import _is_plain_dwscnn

    if not all(_is_plain_dwscnn(m) for m in modules):
        model = _torch_export(modules, input_shape, fusion, opset)
    else:
        g = _Graph(opset)
        outs = [_dwscnn_graph(g, m, INPUT_NAME, f"m{i}." if len(modules) > 1 else "")
                for i, m in enumerate(modules)]
        out = _fusion_graph(g, outs, fusion)
        g.nodes.append(helper.make_node("Identity", [out], [OUTPUT_NAME], name="output"))
        n_classes = int(modules[0].n_classes)
        graph = helper.make_graph(
            g.nodes, "skasc_dwscnn",
            [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", *input_shape])],
            [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", n_classes])],
            initializer=g.inits,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                                  producer_name="skasc")
        ir = _min_ir_version(opset)
        if ir is not None:
            model.ir_version = ir
    _mark_skasc(model)
    # the labels go first and the keys every export has after them: a file
    # cut short inside the metadata then always lacks a required key
    meta = {} if classes is None else {"skasc.classes": json.dumps(np.asarray(classes).tolist())}
    meta.update({"skasc.input_shape": json.dumps(list(input_shape)), "skasc.fusion": fusion,
                 "skasc.n_members": str(len(modules))})
    onnx.helper.set_model_props(model, meta)
    onnx.checker.check_model(model)
    return model


#: Metadata every file written by :func:`export_onnx` has (``skasc.classes``
#: too, unless a bare module was exported).
_REQUIRED_META = ("skasc.input_shape", "skasc.fusion", "skasc.n_members")
_PRODUCER = "skasc"


def _mark_skasc(model):
    """Set the producer fields, which precede the graph and metadata in the file."""
    from . import __version__

    model.producer_name = _PRODUCER
    model.producer_version = __version__


class _Fused(torch.nn.Module):
    def __init__(self, modules, fusion):
        super().__init__()
        self.members = torch.nn.ModuleList(modules)
        self.fusion = fusion

    def forward(self, x):
        from ._inference import _fuse

        return _fuse([m(x) for m in self.members], self.fusion)


def _torch_export(modules, input_shape, fusion, opset):
    """Fallback for modules that are not a plain DwsCNN: torch.onnx.export."""
    import io

    onnx = _need("onnx")
    wrapper = _Fused(modules, fusion).eval()
    x = torch.zeros((2,) + tuple(input_shape))
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kwargs = dict(input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                      opset_version=opset)
        try:
            torch.onnx.export(wrapper, (x,), buf, dynamo=False,
                              dynamic_axes={INPUT_NAME: {0: "N"}, OUTPUT_NAME: {0: "N"}},
                              **kwargs)
        except TypeError:  # a PyTorch without the TorchScript exporter
            batch = torch.export.Dim("N")
            torch.onnx.export(wrapper, (x,), buf, dynamic_shapes=({0: batch},), **kwargs)
    return onnx.load_from_string(buf.getvalue())


def _onnx_model_bytes(modules, input_shape, fusion, opset=17):
    """Serialized (and verified) float model, for FastPredictor's onnxruntime backend."""
    modules = _cpu_copies(modules)
    data = _build_model(modules, input_shape, fusion, opset).SerializeToString()
    _verify(data, modules, fusion, _random_input(input_shape))
    return data


def _random_input(input_shape, n=4):
    return np.random.default_rng(0).normal(size=(n,) + tuple(input_shape)).astype(np.float32)


def _verify(data, modules, fusion, xv):
    """Raise RuntimeError if ONNX Runtime's probabilities differ from eager's by > 1e-4."""
    got = _session(data).run(None, {INPUT_NAME: xv})[0]
    ref = _eager_logits(modules, xv, fusion)
    err = float(np.abs(_softmax(got) - _softmax(ref)).max()) if len(xv) else 0.0
    if not np.isfinite(got).all() or err > FLOAT_TOLERANCE:
        raise RuntimeError(
            f"ONNX Runtime disagrees with PyTorch: max probability difference {err:.3g} "
            f"> {FLOAT_TOLERANCE}")


# ---------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------


def _as_input(X, input_shape, name="X"):
    """Features as float32 (n, C, F, T) from a FeatureSet or an array.

    Raises ValueError, naming ``name``, for a wrong shape, no clips, or
    NaN/inf values (also values that overflow float32): a network returns
    confident probabilities for those.
    """
    from sklearn.utils import assert_all_finite, check_array

    from ._featureset import FeatureSet

    c, f, t = input_shape
    if isinstance(X, FeatureSet):
        x = X.windows()[:, None]
        assert_all_finite(x, input_name=name)
    else:
        # float32 first, so that a float64 beyond float32's range is caught as inf
        x = check_array(X, dtype=np.float32, allow_nd=True, ensure_min_samples=0,
                        ensure_min_features=0, input_name=name)
        if x.ndim == 2 and x.shape[1] == c * f * t:
            x = x.reshape(len(x), c, f, t)
        elif x.ndim == 3 and c == 1:
            x = x[:, None]
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 4 or x.shape[1:] != tuple(input_shape):
        raise ValueError(
            f"{name} must hold features of shape (n, {c}, {f}, {t}), (n, {f}, {t}) or "
            f"(n, {c * f * t}), or be a FeatureSet; got shape {np.shape(X)}")
    if len(x) == 0:
        raise ValueError(f"{name} holds no clips (shape {np.shape(X)}); pass at least one")
    return x


def _check_path(path):
    path = pathlib.Path(os.fspath(path))
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory; give a file path such as model.onnx")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"directory {path.parent} does not exist")
    return path


def _session(model, n_threads=None):
    ort = _need("onnxruntime")
    so = ort.SessionOptions()
    so.intra_op_num_threads = int(n_threads or 1)
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    src = model if isinstance(model, (bytes, str)) else os.fspath(model)
    return ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------


class _CalibrationReader:
    """onnxruntime CalibrationDataReader over an array, in batches."""

    def __init__(self, x, batch_size=32):
        self.x = x
        self.batch_size = batch_size
        self.start = 0

    def get_next(self):
        if self.start >= len(self.x):
            return None
        batch = self.x[self.start:self.start + self.batch_size]
        self.start += self.batch_size
        return {INPUT_NAME: batch}

    def rewind(self):
        self.start = 0


def export_onnx(estimator_or_module, path, *, quantize=None, calibration_X=None, opset=17,
                verify_X=None):
    """Export a fitted classifier (or DwsCNN) to ONNX; optionally int8-quantize it.

    Parameters
    ----------
    estimator_or_module : estimator or torch.nn.Module
        A fitted :class:`~skasc.DwsCNNClassifier`, :class:`~skasc.DistilledStudent`
        or :class:`~skasc.EnsembleTeacher` (exported as one graph computing the
        fused logits), a :class:`~sklearn.pipeline.Pipeline` whose last step is
        one of them (the steps before it -- LogMel, augmentation -- are not
        exported: the model takes log-mel features), or a
        :class:`~skasc.nn.DwsCNN`.
    path : str or path-like
        File to write (its directory must exist).
    quantize : {None, "int8"}, default=None
        ``"int8"``: post-training static quantization with ONNX Runtime
        (QDQ format, per-channel symmetric int8 weights, int8 activations,
        MinMax calibration); needs ``calibration_X``.
    calibration_X : FeatureSet or array-like, default=None
        Features used to calibrate the activation ranges (a few hundred
        representative clips): a FeatureSet, or an array of shape
        (n, C, F, T), (n, F, T) or (n, C*F*T).  Also used, when given, as
        the verification input of the float export.
    opset : int, default=17
        ONNX opset (>= 13).
    verify_X : array-like, default=None
        Inputs for the check against eager PyTorch; default: the first 16
        rows of ``calibration_X`` if given, else 4 random inputs.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If the estimator is not fitted.
    RuntimeError
        If ONNX Runtime's float probabilities differ from eager PyTorch's
        by more than 1e-4.
    """
    if quantize not in _QUANTIZE:
        raise ValueError(f"quantize must be None or 'int8', got {quantize!r}")
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < 13:
        raise ValueError(f"opset must be an integer >= 13, got {opset!r}")
    path = _check_path(path)
    modules, input_shape, fusion, classes = _resolve(estimator_or_module)
    calib = None
    if quantize is not None:
        if calibration_X is None:
            raise ValueError("quantize='int8' needs calibration_X (features to calibrate on)")
    if calibration_X is not None:
        calib = _as_input(calibration_X, input_shape, "calibration_X")
    _need("onnxruntime")
    modules = _cpu_copies(modules)
    model = _build_model(modules, input_shape, fusion, opset, classes)
    data = model.SerializeToString()

    # verify the float graph against eager PyTorch
    if verify_X is not None:
        xv = _as_input(verify_X, input_shape, "verify_X")
    elif calib is not None:
        xv = calib[:16]
    else:
        xv = _random_input(input_shape)
    _verify(data, modules, fusion, xv)

    if quantize is None:
        path.write_bytes(data)
        return path
    _quantize_int8(data, path, calib)
    return path


def _quantize_int8(float_bytes, path, calib):
    _need("onnxruntime")
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as tmp:
        src = pathlib.Path(tmp) / "float.onnx"
        pre = pathlib.Path(tmp) / "float_pre.onnx"
        src.write_bytes(float_bytes)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
            except Exception:  # pre-processing is an optimisation only
                pre = src
            quantize_static(
                str(pre), str(path), _CalibrationReader(calib),
                quant_format=QuantFormat.QDQ,
                # BatchNormalization stays float (ORT has no int8 kernel for
                # it and would try to quantize its 1-D weights per channel)
                op_types_to_quantize=["Conv", "Gemm", "Relu", "MaxPool", "Add", "Flatten"],
                per_channel=True,
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
                extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
            )
    # keep the metadata (labels, input shape) on the quantized file
    onnx = _need("onnx")
    src_model = onnx.load_from_string(float_bytes)
    q = onnx.load(str(path))
    meta = {p.key: p.value for p in src_model.metadata_props}
    meta["skasc.quantization"] = "int8 QDQ per-channel, MinMax calibration"
    del q.metadata_props[:]
    onnx.helper.set_model_props(q, meta)
    _mark_skasc(q)
    onnx.save(q, str(path))


def _check_known_labels(y, classes):
    """Raise if ``y`` holds labels outside ``classes`` (they would count as plain errors)."""
    unseen = np.setdiff1d(np.unique(y), classes)
    if len(unseen):
        raise ValueError(
            f"y contains labels the model was not fitted on: {unseen.tolist()}; "
            f"known classes are {np.asarray(classes).tolist()}"
        )


class OnnxClassifier:
    """Score an exported (float or int8) ONNX model like a skasc classifier.

    The file is read and checked when the classifier is built; there is no
    ``fit`` (the model was trained before it was exported).  Inputs and
    labels are checked as :class:`~skasc.DwsCNNClassifier` checks them.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`export_onnx` (or another ONNX model with
        one float32 input of shape (N, C, F, T)).
    n_threads : int >= 1, default=None
        Worker threads (each runs ONNX Runtime with one thread on chunks of
        clips); None: ``torch.get_num_threads()`` at each call.
    chunk_size : int >= 1, default=None
        Clips per ONNX Runtime call; None: as :class:`~skasc._inference.FastPredictor`.

    Attributes
    ----------
    classes_ : ndarray or None
        Labels stored in the file (None for a bare module export: then
        :meth:`predict` returns class indices).
    input_shape_ : tuple (C, F, T)
    metadata_ : dict
        The model's metadata (``skasc.*`` keys for a file of :func:`export_onnx`).

    Raises
    ------
    sklearn.utils._param_validation.InvalidParameterError
        If a parameter has a wrong type or value (scikit-learn's message).
    OSError
        If the file cannot be read (missing, a directory, no permission).
    ValueError
        If the file is not a usable ONNX model: junk, truncated (also cut
        short inside its metadata), or rejected by ONNX Runtime.  The
        message names the file.

    Notes
    -----
    Parameters are validated against ``_parameter_constraints`` here,
    where they are first used: the class has no ``fit`` to do it in, which
    is also why it is not a scikit-learn estimator (``get_params``,
    ``clone``) and not in scikit-learn's estimator checks.  A pickled
    classifier reads its file again when unpickled, and refuses a file
    whose content changed since it was built.
    """

    _parameter_constraints: dict = {
        "path": [str, os.PathLike],
        "n_threads": [Interval(Integral, 1, None, closed="left"), None],
        "chunk_size": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(self, path, n_threads=None, chunk_size=None):
        validate_parameter_constraints(
            self._parameter_constraints,
            {"path": path, "n_threads": n_threads, "chunk_size": chunk_size},
            caller_name=type(self).__name__)
        onnx = _need("onnx")
        self.path = pathlib.Path(os.fspath(path))
        self.n_threads = n_threads
        self.chunk_size = chunk_size
        data = self.path.read_bytes()  # OSError names the file
        try:
            model = onnx.load_from_string(data)
        except Exception as exc:  # google.protobuf DecodeError and friends
            raise ValueError(self._bad_file(f"it does not parse ({exc})")) from exc
        meta = {p.key: p.value for p in model.metadata_props}
        if model.producer_name == _PRODUCER:
            missing = [k for k in _REQUIRED_META if k not in meta]
            if missing:
                raise ValueError(self._bad_file(f"its skasc metadata lacks {missing}"))
        if len(model.graph.input) != 1 or len(model.graph.output) != 1:
            raise ValueError(self._bad_file(
                f"expected one input and one output, found {len(model.graph.input)} "
                f"and {len(model.graph.output)}"))
        try:
            if "skasc.input_shape" in meta:
                self.input_shape_ = tuple(json.loads(meta["skasc.input_shape"]))
            else:  # read it from the graph input
                dims = model.graph.input[0].type.tensor_type.shape.dim[1:]
                self.input_shape_ = tuple(int(d.dim_value) for d in dims)
            self.classes_ = (np.asarray(json.loads(meta["skasc.classes"]))
                             if "skasc.classes" in meta else None)
        except ValueError as exc:  # json
            raise ValueError(self._bad_file(f"its skasc metadata is unreadable ({exc})")) from exc
        self.metadata_ = meta
        self._digest = hashlib.sha256(data).hexdigest()
        self._runner = None
        self._get_runner(data)  # ONNX Runtime checks the graph now, not at the first use

    def _bad_file(self, why):
        return f"{self.path} is not a usable ONNX model file (corrupt or truncated?): {why}"

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_runner"] = None
        return state

    def _get_runner(self, data=None):
        if self._runner is None:
            from ._inference import OrtRunner

            if data is None:  # unpickled: the file must still hold the same model
                data = self.path.read_bytes()
                if hashlib.sha256(data).hexdigest() != self._digest:
                    raise ValueError(
                        f"{self.path} changed since this OnnxClassifier was built from it; "
                        "build a new OnnxClassifier")
            try:
                self._runner = OrtRunner(data, self.input_shape_, n_threads=self.n_threads,
                                         chunk_size=self.chunk_size)
            except Exception as exc:  # onnxruntime's InvalidGraph, Fail, ...
                raise ValueError(self._bad_file(f"ONNX Runtime rejects it ({exc})")) from exc
        return self._runner

    def _logits(self, x):
        return self._get_runner().logits(x)

    def _labels(self, logits):
        return self.classes_ if self.classes_ is not None else np.arange(logits.shape[1])

    def predict_logits(self, X):
        """Logits, shape (n_clips, n_classes).

        ``X``: a FeatureSet or an array of shape (n, C, F, T), (n, F, T) or
        (n, C*F*T) with at least one clip; NaN or infinite values raise
        ValueError.
        """
        return self._logits(_as_input(X, self.input_shape_))

    def predict_proba(self, X):
        """Class probabilities (softmax of the logits)."""
        return _softmax(self.predict_logits(X).astype(np.float64)).astype(np.float32)

    def predict(self, X):
        """Most probable class label (index when the file has no labels)."""
        logits = self.predict_logits(X)
        return self._labels(logits)[np.argmax(logits, axis=1)]

    def score(self, X, y, sample_weight=None):
        """Accuracy on ``(X, y)``.

        As the torch classifiers: ``X`` and ``y`` (and ``sample_weight``)
        must have the same length, and labels the model never saw raise
        instead of counting as errors (for a file without labels, ``y``
        holds class indices).
        """
        from sklearn.metrics import accuracy_score
        from sklearn.utils.validation import check_consistent_length, column_or_1d

        x = _as_input(X, self.input_shape_)
        y = column_or_1d(y)
        check_consistent_length(x, y, sample_weight)
        logits = self._logits(x)
        labels = self._labels(logits)
        _check_known_labels(y, labels)
        pred = labels[np.argmax(logits, axis=1)]
        return float(accuracy_score(y, pred, sample_weight=sample_weight))


def onnx_predict_logits(path, X, *, n_threads=None):
    """Logits of an exported ONNX model on features ``X``."""
    return OnnxClassifier(path, n_threads=n_threads).predict_logits(X)


def onnx_predict_proba(path, X, *, n_threads=None):
    """Class probabilities of an exported ONNX model on features ``X``.

    ``X``: a FeatureSet or an array of shape (n, C, F, T), (n, F, T) or
    (n, C*F*T); columns follow ``OnnxClassifier(path).classes_``.
    """
    return OnnxClassifier(path, n_threads=n_threads).predict_proba(X)


def quantized_param_bytes(path, *, by_dtype=False):
    """Bytes of the parameters actually stored in an ONNX file.

    Sums the sizes of all initializers (and ``Constant`` node tensors) of
    the model as stored: in an int8 export the weights count 1 byte each,
    the int32 biases 4 bytes, plus the float scales and int8 zero points of
    the quantization.  Compare with
    ``skasc.complexity.complexity_report(...)``'s int8 estimate
    (parameters x 1 byte).

    Parameters
    ----------
    path : str or path-like
    by_dtype : bool, default=False
        Return a dict ``{dtype name: bytes}`` (plus ``"total"``) instead of
        the total.
    """
    onnx = _need("onnx")
    from onnx import numpy_helper

    model = onnx.load(os.fspath(path))
    tensors = list(model.graph.initializer)
    for node in model.graph.node:
        if node.op_type == "Constant":
            tensors += [a.t for a in node.attribute if a.type == onnx.AttributeProto.TENSOR]
    sizes = {}
    for t in tensors:
        arr = numpy_helper.to_array(t)
        sizes[arr.dtype.name] = sizes.get(arr.dtype.name, 0) + int(arr.nbytes)
    total = int(sum(sizes.values()))
    if by_dtype:
        return dict(sorted(sizes.items()), total=total)
    return total
