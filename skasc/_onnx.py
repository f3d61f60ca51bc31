"""ONNX graphs of DwsCNN networks, and running them with ONNX Runtime.

Shared by :func:`skasc.export.export_onnx` / :class:`skasc.export.OnnxClassifier`
and the ``"onnxruntime"`` backend of :class:`skasc._inference.FastPredictor`.

The graph of a plain :class:`~skasc.nn.DwsCNN` is written node by node from
the module's layer list (:meth:`~skasc.nn.DwsCNN.layers`; no dependency on
the PyTorch ONNX exporter), with each BatchNorm that follows a convolution
(the second of each DwBlock) folded into it
(:func:`skasc._ops.fold_bn_into_conv`); an ensemble's
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

from ._allocator import settle_thresholds
from ._chunking import auto_chunk, check_batch, n_workers, run_chunked
from ._layers import (BatchNorm, Conv, Flatten, GlobalAvgPool, Linear, MaxPool, ReLU, Residual,
                      Standardize)
from ._ops import (FusedNetworks, fold_bn_into_conv, fuse_logits, inference_steps,
                   is_plain_dwscnn, softmax)
from ._version import __version__

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


def _pads(padding):
    ph, pw = padding
    return [ph, pw, ph, pw]


def _layers_graph(g, layers, x, prefix):
    """Append one node per layer spec (:mod:`skasc._layers`) reading ``x``; return the output name.

    A BatchNorm right after a convolution is folded into its weights (see
    :func:`skasc._ops.inference_steps`).
    """
    for layer, bn in inference_steps(layers):
        name = prefix + layer.name
        if isinstance(layer, Standardize):  # per-band input standardisation
            x = g.node("Sub", [x, g.init(f"{name}.mean", _np(layer.mean))], name)
            x = g.node("Mul", [x, g.init(f"{name}.scale", _np(layer.scale))], name)
        elif isinstance(layer, Conv):
            if bn is None:
                w, b = _np(layer.weight), None if layer.bias is None else _np(layer.bias)
            else:
                w, b = (t.numpy() for t in fold_bn_into_conv(layer.weight, layer.bias, bn.module))
                name += "_" + bn.name.rpartition(".")[2]
            inputs = [x, g.init(name + ".weight", w)]
            if b is not None:
                inputs.append(g.init(name + ".bias", b))
            x = g.node("Conv", inputs, name, kernel_shape=list(w.shape[2:]),
                       pads=_pads(layer.padding), strides=list(layer.stride),
                       dilations=list(layer.dilation), group=layer.groups)
        elif isinstance(layer, BatchNorm):
            bn = layer.module
            c = bn.num_features
            x = g.node("BatchNormalization", [
                x,
                g.init(f"{name}.weight", np.ones(c) if bn.weight is None else _np(bn.weight)),
                g.init(f"{name}.bias", np.zeros(c) if bn.bias is None else _np(bn.bias)),
                g.init(f"{name}.running_mean", _np(bn.running_mean)),
                g.init(f"{name}.running_var", _np(bn.running_var)),
            ], name, epsilon=float(bn.eps))
        elif isinstance(layer, ReLU):
            x = g.node("Relu", [x], name)
        elif isinstance(layer, MaxPool):
            k = list(layer.kernel)
            x = g.node("MaxPool", [x], name, kernel_shape=k, strides=k, pads=[0, 0, 0, 0])
        elif isinstance(layer, GlobalAvgPool):
            x = g.node("GlobalAveragePool", [x], name)
        elif isinstance(layer, Flatten):
            x = g.node("Flatten", [x], name, axis=1)
        elif isinstance(layer, Linear):
            inputs = [x, g.init(f"{name}.weight", _np(layer.weight))]
            if layer.bias is not None:
                inputs.append(g.init(f"{name}.bias", _np(layer.bias)))
            x = g.node("Gemm", inputs, name, transB=1)
        elif isinstance(layer, Residual):
            t = _layers_graph(g, layer.body, x, prefix)
            x = g.node("Add", [x, t], f"{name}.add")
        else:
            raise TypeError(f"no ONNX form for layer {layer!r}")
    return x


def _dwscnn_graph(g, m, x, prefix):
    """Append the nodes of DwsCNN ``m`` (its :meth:`~skasc.nn.DwsCNN.layers`) reading ``x``."""
    return _layers_graph(g, m.layers(), x, prefix)


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
        settle_thresholds()

    def _chunk(self, x):
        return torch.from_numpy(self.session.run(None, {self.input_name: x})[0])

    def logits(self, x):
        """Model output on ``x`` (N, C, F, T), any N."""
        x = check_batch(x, self.input_shape)
        return run_chunked(self._chunk, x, self.chunk_size, n_workers(self.n_threads),
                            torch_workers=False)
