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

Requires the optional packages ``onnx`` and ``onnxruntime``.  See
:class:`OnnxClassifier` and :func:`export_onnx` for examples.
"""

from __future__ import annotations

import json
import os
import pathlib
import tempfile
import warnings
from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import Interval, validate_parameter_constraints

from ._files import write_atomically
from ._hashing import digest
from ._networks import held_networks
from ._onnx import (
    INPUT_NAME,
    PRODUCER,
    REQUIRED_META,
    OrtRunner,
    build_model,
    cpu_copies,
    mark_skasc,
    need_package,
    random_input,
    verify_against_eager,
)
from ._predict import SceneClassifierMixin, unflatten_rows

__all__ = [
    "export_onnx",
    "onnx_predict_proba",
    "onnx_predict_logits",
    "OnnxClassifier",
    "quantized_param_bytes",
]

_QUANTIZE = (None, "int8")


# ---------------------------------------------------------------------------
# graph building
# ---------------------------------------------------------------------------


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
    _refuse_audio(X, input_shape, name)
    if isinstance(X, FeatureSet):
        x = X.windows()[:, None]
        assert_all_finite(x, input_name=name)
    else:
        # float32 first, so that a float64 beyond float32's range is caught as inf
        x = check_array(X, dtype=np.float32, allow_nd=True, ensure_min_samples=0,
                        ensure_min_features=0, input_name=name)
        # a 2-D array: flattened clips, the contract's one meaning (skasc._predict)
        x = unflatten_rows(x, (c, f, t))
        if x.ndim == 3 and c == 1:
            x = x[:, None]
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 4 or x.shape[1:] != tuple(input_shape):
        raise ValueError(
            f"{name} must hold features of shape (n, {c}, {f}, {t}), (n, {f}, {t}) or "
            f"(n, {c * f * t}), or be a FeatureSet; got shape {np.shape(X)}")
    if len(x) == 0:
        raise ValueError(f"{name} holds no clips (shape {np.shape(X)}); pass at least one")
    return x


def _refuse_audio(X, input_shape, name):
    """Refuse file paths or audio in one line: the model takes features."""
    from ._featureset import AudioSet

    if isinstance(X, (str, bytes, os.PathLike)):
        first = X
    elif isinstance(X, AudioSet):
        first = "an AudioSet"
    elif isinstance(X, (list, tuple)) and X:
        first = X[0]
    elif isinstance(X, np.ndarray) and X.ndim == 1 and X.size:
        first = X.flat[0]
    else:
        return
    if isinstance(first, (str, bytes, os.PathLike)):
        c, f, t = input_shape
        raise TypeError(
            f"{name} holds audio ({first!r:.80}), but an ONNX model takes log-mel features of"
            f" shape (n, {c}, {f}, {t}): compute them first with the front end it was trained"
            " with, e.g. pipeline[:-1].transform(paths) (only the network is exported)"
        )


def _check_finite_weights(modules):
    """Refuse a network whose weights or buffers hold NaN or inf: its export
    would fail the check against PyTorch with a message about ONNX."""
    import torch

    for i, module in enumerate(modules):
        for name, tensor in [*module.named_parameters(), *module.named_buffers()]:
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                where = f"network {i}'s " if len(modules) > 1 else "the network's "
                raise ValueError(
                    f"cannot export: {where}{name} holds NaN or infinite values (training"
                    " diverged, or the weights were edited); nothing was written"
                )


def _check_path(path):
    path = pathlib.Path(os.fspath(path))
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory; give a file path such as model.onnx")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"directory {path.parent} does not exist")
    return path


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
    ValueError
        If the network's weights or buffers hold NaN or inf (nothing is
        written).
    RuntimeError
        If ONNX Runtime's float probabilities differ from eager PyTorch's
        by more than 1e-4.
    OSError
        If the file cannot be written (a full disk is named as such, with
        the path); the file is written whole or not at all.

    See Also
    --------
    OnnxClassifier : predicts and scores with the written file.

    Examples
    --------
    An int8 export of the paper's network, calibrated on a few inputs; the
    weights take one byte each:

    >>> import numpy as np, tempfile, pathlib
    >>> from skasc.nn import DwsCNN
    >>> from skasc.export import export_onnx, quantized_param_bytes
    >>> calibration = np.random.default_rng(0).normal(size=(8, 1, 256, 51)).astype("float32")
    >>> path = export_onnx(DwsCNN().eval(), pathlib.Path(tempfile.mkdtemp()) / "student.onnx",
    ...                    quantize="int8", calibration_X=calibration)
    >>> path.name
    'student.onnx'
    """
    if quantize not in _QUANTIZE:
        raise ValueError(f"quantize must be None or 'int8', got {quantize!r}")
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < 13:
        raise ValueError(f"opset must be an integer >= 13, got {opset!r}")
    path = _check_path(path)
    held = held_networks(estimator_or_module)
    if held.input_shape is None:
        raise TypeError(
            f"cannot export {held.name}: its input shape is unknown; export a fitted skasc "
            "classifier or a module with an `input_shape` attribute (C, F, T) such as DwsCNN")
    modules, input_shape, fusion, classes = held.modules, held.input_shape, held.fusion, held.classes
    _check_finite_weights(modules)
    calib = None
    if quantize is not None:
        if calibration_X is None:
            raise ValueError("quantize='int8' needs calibration_X (features to calibrate on)")
    if calibration_X is not None:
        calib = _as_input(calibration_X, input_shape, "calibration_X")
    need_package("onnxruntime")
    modules = cpu_copies(modules)
    model = build_model(modules, input_shape, fusion, opset, classes)
    data = model.SerializeToString()

    # verify the float graph against eager PyTorch
    if verify_X is not None:
        xv = _as_input(verify_X, input_shape, "verify_X")
    elif calib is not None:
        xv = calib[:16]
    else:
        xv = random_input(input_shape)
    verify_against_eager(data, modules, fusion, xv)

    if quantize is None:
        return write_atomically(path, lambda tmp: tmp.write_bytes(data))
    _quantize_int8(data, path, calib)
    return path


def _quantize_int8(float_bytes, path, calib):
    need_package("onnxruntime")
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
                str(pre), str(pathlib.Path(tmp) / "int8.onnx"), _CalibrationReader(calib),
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
        onnx = need_package("onnx")
        # quantized beside the float model, then saved atomically: a failed
        # write never leaves a half file at path
        q = onnx.load(str(pathlib.Path(tmp) / "int8.onnx"))
    # keep the metadata (labels, input shape) on the quantized file
    src_model = onnx.load_from_string(float_bytes)
    meta = {p.key: p.value for p in src_model.metadata_props}
    meta["skasc.quantization"] = "int8 QDQ per-channel, MinMax calibration"
    del q.metadata_props[:]
    onnx.helper.set_model_props(q, meta)
    mark_skasc(q)
    write_atomically(path, lambda tmp: onnx.save(q, str(tmp)))


class OnnxClassifier(SceneClassifierMixin):
    """Score an exported (float or int8) ONNX model like a skasc classifier.

    The file is read and checked when the classifier is built; there is no
    ``fit`` (the model was trained before it was exported).  Inputs and
    labels are checked as :class:`~skasc.DwsCNNClassifier` checks them, and
    ``predict``, ``predict_proba``, ``predict_log_proba``,
    ``decision_function`` (one column for two classes) and ``score`` follow
    the same contract (:class:`~skasc._predict.SceneClassifierMixin`).

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

    See Also
    --------
    export_onnx : writes the file.

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
    >>> onnx_clf = OnnxClassifier(export_onnx(clf, pathlib.Path(tempfile.mkdtemp()) / "m.onnx"))
    >>> onnx_clf.input_shape_, onnx_clf.classes_.tolist()
    ((1, 8, 12), ['bus', 'park'])
    >>> bool((onnx_clf.predict(X) == clf.predict(X)).all())
    True
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
        onnx = need_package("onnx")
        self.path = pathlib.Path(os.fspath(path))
        self.n_threads = n_threads
        self.chunk_size = chunk_size
        data = self.path.read_bytes()  # OSError names the file
        try:
            model = onnx.load_from_string(data)
        except Exception as exc:  # google.protobuf DecodeError and friends
            raise ValueError(self._bad_file(f"it does not parse ({exc})")) from exc
        meta = {p.key: p.value for p in model.metadata_props}
        if model.producer_name == PRODUCER:
            missing = [k for k in REQUIRED_META if k not in meta]
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
        self._digest = digest(data)  # to know the file again when unpickled
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
            if data is None:  # unpickled: the file must still hold the same model
                data = self.path.read_bytes()
                if digest(data) != self._digest:
                    raise ValueError(
                        f"{self.path} changed since this OnnxClassifier was built from it; "
                        "build a new OnnxClassifier")
            try:
                self._runner = OrtRunner(data, self.input_shape_, n_threads=self.n_threads,
                                         chunk_size=self.chunk_size)
            except Exception as exc:  # onnxruntime's InvalidGraph, Fail, ...
                raise ValueError(self._bad_file(f"ONNX Runtime rejects it ({exc})")) from exc
        return self._runner

    # -- the skasc prediction contract (skasc._predict.SceneClassifierMixin) --
    def _fitted_classes(self):
        # built from a trained model: always fitted; a bare module's file
        # has no labels, its columns are class indices
        return self.classes_

    def _labels(self, n_columns):
        return self.classes_ if self.classes_ is not None else np.arange(n_columns)

    def predict_logits(self, X):
        """Logits of each clip, one column per class.

        :meth:`decision_function` gives the same scores in scikit-learn's
        shape (one column for two classes); :meth:`predict`,
        :meth:`predict_proba`, :meth:`predict_log_proba` and :meth:`score`
        follow from them as for the torch classifiers.

        Parameters
        ----------
        X : FeatureSet or array-like of shape (n_clips, C, F, T), (n_clips, F, T) or (n_clips, C*F*T)
            Features of at least one clip (a 2-D array: each clip's
            features flattened, as the FeatureSet's array view); NaN or
            infinite values raise ValueError.

        Returns
        -------
        logits : ndarray of shape (n_clips, n_classes), float32
            Columns follow :attr:`classes_` (class indices when the file has
            no labels).
        """
        return self._get_runner().logits(_as_input(X, self.input_shape_))


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
    onnx = need_package("onnx")
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
