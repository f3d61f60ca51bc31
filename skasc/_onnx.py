"""ONNX graphs of DwsCNN networks, and running them with ONNX Runtime.

Shared by :func:`skasc.export.export_onnx` / :class:`skasc.export.OnnxClassifier`
and the ``"onnxruntime"`` backend of :class:`skasc._inference.FastPredictor`.

The graph of a plain :class:`~skasc.nn.DwsCNN` is written node by node from
the module's weights (no dependency on the PyTorch ONNX exporter), with the
second BatchNorm of each DwBlock folded into the pointwise convolution
before it (:func:`skasc._ops.fold_bn_after_pointwise`); an ensemble's
outputs are fused by nodes that mirror :func:`skasc._ops.fuse_logits`.
Other modules go through :func:`torch.onnx.export`.  Needs the optional
packages ``onnx`` and ``onnxruntime`` (imported when first used).
"""

from __future__ import annotations

import copy
import io
import json
import math
import os
import warnings

import numpy as np
import torch

from ._chunking import auto_chunk, check_batch, n_workers, prime_malloc, run_chunked
from ._ops import FusedNetworks, fold_bn_after_pointwise, fuse_logits, is_plain_dwscnn, softmax

INPUT_NAME = "logmel"


OUTPUT_NAME = "logits"


#: Largest disagreement in probability tolerated between ONNX Runtime and eager.
FLOAT_TOLERANCE = 1e-4


def need_package(module):
    try:
        return __import__(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"skasc.export needs the optional package {module!r} "
            f"(pip install onnx onnxruntime)") from exc


def cpu_copies(modules):
    out = []
    for m in modules:
        dev = next((p.device for p in m.parameters()), torch.device("cpu"))
        out.append((copy.deepcopy(m).cpu() if dev.type != "cpu" else m).eval())
    return out


def eager_logits(modules, x, fusion):
    """Reference: what EnsembleTeacher / the classifier compute, in float32."""
    with torch.inference_mode():
        xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        return fuse_logits([m(xt).float() for m in modules], fusion).numpy()


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
        w1, s2 = fold_bn_after_pointwise(blk.pw_conv1.weight, blk.bn2)
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


def build_model(modules, input_shape, fusion, opset, classes=None):
    """ONNX ModelProto of the fused modules (plain DwsCNNs: hand-built graph)."""
    onnx = need_package("onnx")
    from onnx import TensorProto, helper

    if not all(is_plain_dwscnn(m) for m in modules):
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
    mark_skasc(model)
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
REQUIRED_META = ("skasc.input_shape", "skasc.fusion", "skasc.n_members")


PRODUCER = "skasc"


def mark_skasc(model):
    """Set the producer fields, which precede the graph and metadata in the file."""
    from . import __version__

    model.producer_name = PRODUCER
    model.producer_version = __version__


def _torch_export(modules, input_shape, fusion, opset):
    """Fallback for modules that are not a plain DwsCNN: torch.onnx.export."""
    onnx = need_package("onnx")
    wrapper = FusedNetworks(modules, fusion).eval()
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


def onnx_model_bytes(modules, input_shape, fusion, opset=17):
    """Serialized (and verified) float model, for FastPredictor's onnxruntime backend."""
    modules = cpu_copies(modules)
    data = build_model(modules, input_shape, fusion, opset).SerializeToString()
    verify_against_eager(data, modules, fusion, random_input(input_shape))
    return data


def random_input(input_shape, n=4):
    return np.random.default_rng(0).normal(size=(n,) + tuple(input_shape)).astype(np.float32)


def verify_against_eager(data, modules, fusion, xv):
    """Raise RuntimeError if ONNX Runtime's probabilities differ from eager's by > 1e-4."""
    got = ort_session(data).run(None, {INPUT_NAME: xv})[0]
    ref = eager_logits(modules, xv, fusion)
    err = float(np.abs(softmax(got) - softmax(ref)).max()) if len(xv) else 0.0
    if not np.isfinite(got).all() or err > FLOAT_TOLERANCE:
        raise RuntimeError(
            f"ONNX Runtime disagrees with PyTorch: max probability difference {err:.3g} "
            f"> {FLOAT_TOLERANCE}")


def ort_session(model, n_threads=None):
    ort = need_package("onnxruntime")
    so = ort.SessionOptions()
    so.intra_op_num_threads = int(n_threads or 1)
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    src = model if isinstance(model, (bytes, str)) else os.fspath(model)
    return ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])


class OrtRunner:
    """Run a serialized ONNX model with ONNX Runtime, chunked, on worker threads.

    One session with one intra-op thread, shared by ``n_threads`` Python
    worker threads (``InferenceSession.run`` is thread-safe and releases
    the GIL), each running chunks of ``chunk_size`` clips.

    Parameters
    ----------
    model : bytes or str
        Serialized model or a path.
    input_shape : tuple (C, F, T)
    n_threads : int, default=None
        None: the caller's ``torch.get_num_threads()`` at each call.
    chunk_size : int, default=None
        None: sized as for FastPredictor assuming 18 channels (at least 2).
    optimization : {"extended", "all", "basic"}, default="extended"
        ONNX Runtime graph optimization level.
    """

    def __init__(self, model, input_shape, n_threads=None, chunk_size=None,
                 optimization="extended"):
        import onnxruntime as ort

        levels = {"basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                  "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                  "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
        self.input_shape = tuple(int(s) for s in input_shape)
        self.n_threads = n_threads
        _, f, t = self.input_shape
        self.chunk_size = int(chunk_size) if chunk_size else max(2, auto_chunk(4 * 18 * f * t))
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = levels[optimization]
        so.log_severity_level = 3
        self.session = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        prime_malloc()

    def _chunk(self, x):
        return torch.from_numpy(self.session.run(None, {self.input_name: x})[0])

    def logits(self, x):
        """Model output on ``x`` (N, C, F, T), any N."""
        x = check_batch(x, self.input_shape)
        return run_chunked(self._chunk, x, self.chunk_size, n_workers(self.n_threads),
                            torch_workers=False)
