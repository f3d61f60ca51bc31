"""Model complexity (parameters, MACs, parameter memory) as DCASE 2023 Task 1 counts it.

The DCASE 2023 Task 1 challenge limits a submission to 30 million
multiply-accumulate operations (MACs) per inference of one 1-s example and to
128 KB of parameter memory.  Its official PyTorch tool (NeSsi,
``get_torch_size``) reads both numbers from
``torchinfo.summary(model, input_size=(1, C, F, T))``: ``total_params`` and
``total_mult_adds``.

This module counts with that same call (on a zero batch of one example, on
the module's own device, in eval mode, silently) and adds what torchinfo does
not give: Table 1's rows (composite blocks such as ``DwBlock`` rolled up from
their layers), the parameter memory per numeric format and the limit checks.
torchinfo's rules, for reference:

* parameters: every parameter of the model, counted once (pruning masks
  ``*_orig`` / ``*_mask`` are honoured);
* MACs, summed over the *leaf* modules executed by one forward pass of a
  batch of one example, for each parameter tensor of the layer named
  ``weight`` or ``bias``:

  - convolutions (class name containing ``"Conv"``):
    ``n_params * N * prod(output spatial size)``;
  - any other layer (Linear, BatchNorm, ...): ``N * n_params``;
  - other parameters whose name contains ``weight``/``bias`` (RNN cells):
    ``N * output_size[1] * n_params``;

  with ``N = 1``; parameter-free layers (ReLU, MaxPool, Flatten) count 0.
  BatchNorm therefore counts ``2 * C`` MACs, as in the challenge's numbers.

For the seed paper's network at ``hidden=18`` on 1x256x51 this gives 31,260
parameters and 29,591,778 MACs (the paper's "29.6 MMAC").

The parameter-memory limit
--------------------------
The challenge states "128 KB" and the paper reads it as "maximum is 32K [params]
when using float32".  The challenge's own code (NeSsi's ``MAX_PARAMS = 128e3``
and the organisers' baselines' ``MAX_PARAMS_MEMORY = 128_000``, used as
``allowed_bits = MAX_PARAMS_MEMORY / params * 8``) uses the decimal reading,
so :data:`PARAM_MEMORY_LIMIT_BYTES` is **128,000 bytes** (32,000 float32,
64,000 float16 or 128,000 int8 parameters).  Pass
``param_limit_bytes=131_072`` to :func:`complexity_report` for the binary
(128 KiB) reading; no width of the seed network falls between the two
(hidden=18 needs 125,040 float32 bytes, hidden=19 needs 134,096).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torchinfo
from torch import nn

from ._complexity_render import render_markdown, render_text
from ._networks import held_networks
from .nn import check_input_shape

__all__ = [
    "MAC_LIMIT",
    "PARAM_MEMORY_LIMIT_BYTES",
    "BYTES_PER_PARAM",
    "LayerComplexity",
    "ComplexityReport",
    "complexity_report",
    "count_params_macs",
]

#: DCASE 2023 Task 1 limit on multiply-accumulate operations per inference.
MAC_LIMIT = 30_000_000
#: DCASE 2023 Task 1 limit on parameter memory, in bytes ("128 KB", decimal,
#: as in the challenge's official complexity code).
PARAM_MEMORY_LIMIT_BYTES = 128_000
#: Bytes per parameter for the numeric formats reported.
BYTES_PER_PARAM = {"float32": 4, "float16": 2, "int8": 1}

_DTYPE_ALIASES = {
    "float32": "float32",
    "float": "float32",
    "fp32": "float32",
    "single": "float32",
    "float16": "float16",
    "half": "float16",
    "fp16": "float16",
    "int8": "int8",
    "qint8": "int8",
}


def _dtype_key(dtype):
    """Normalise a dtype spec ('float32', torch.float16, np.int8, ...) to a key."""
    if isinstance(dtype, str):
        name = dtype
    elif isinstance(dtype, torch.dtype):
        name = str(dtype)
    else:
        try:
            name = np.dtype(dtype).name
        except TypeError:
            name = str(dtype)
    name = name.lower().removeprefix("torch.")
    if name not in _DTYPE_ALIASES:
        raise ValueError(
            f"dtype must be one of {sorted(BYTES_PER_PARAM)} (or an alias such as "
            f"'fp16', torch.float16, numpy.int8), got {dtype!r}."
        )
    return _DTYPE_ALIASES[name]


# --------------------------------------------------------------------------
# counting
# --------------------------------------------------------------------------


def _example_input(module, input_shape):
    """A zero batch of one example, in the module's dtype and on its device."""
    ref = next(module.parameters(), None)
    if ref is None:
        ref = next(module.buffers(), None)
    dtype = ref.dtype if ref is not None and ref.is_floating_point() else torch.float32
    device = ref.device if ref is not None else torch.device("cpu")
    return torch.zeros((1, *input_shape), dtype=dtype, device=device)


@dataclass(frozen=True)
class LayerComplexity:
    """One row of a :class:`ComplexityReport`.

    Attributes
    ----------
    name : str
        Qualified submodule name (e.g. ``"dw1"`` or ``"dw1.pw_conv1"``).
    type : str
        Class name of the layer (e.g. ``"Conv2d"``, ``"DwBlock"``).
    output_shape : tuple of int
        Output shape of the layer for one example, without the batch
        dimension (``(18, 256, 51)``, ``(180,)``).
    params : int
        Parameters of the layer, including its children (0 when the layer is
        executed again after its first call: its parameters count once).
    macs : int
        Multiply-accumulates of the layer (sum over its leaf layers).
    depth : int
        Nesting depth: 1 for children of the model, 2 for their children...
        (0 only for a model that is itself a single leaf layer).
    is_leaf : bool
        Whether the layer has no child modules.

    Examples
    --------
    >>> from skasc import complexity_report
    >>> from skasc.nn import DwsCNN
    >>> complexity_report(DwsCNN()).rows[0]
    LayerComplexity(name='input_conv', type='Conv2d', output_shape=(18, 256, 51), params=900, macs=11750400, depth=1, is_leaf=True)
    """

    name: str
    type: str
    output_shape: tuple
    params: int
    macs: int
    depth: int
    is_leaf: bool


def _trace(module, input_shape):
    """Count ``module`` with torchinfo; return (layers, total_params, total_macs)."""
    x = _example_input(module, input_shape)
    training = [(m, m.training) for m in module.modules()]
    try:
        # input_data on the module's own device, not input_size: given only a
        # size, torchinfo moves the module to CUDA whenever CUDA is available.
        stats = torchinfo.summary(module, input_data=x, verbose=0, mode="eval")
    except RuntimeError as exc:  # torchinfo wraps the forward pass's error
        cause = exc.__cause__ or exc
        raise ValueError(
            f"Could not run {type(module).__name__} on an input of shape "
            f"{tuple(x.shape)} (input_shape={input_shape}): {cause}"
        ) from cause
    finally:
        # torchinfo restores the root's mode only, which would flatten a
        # mix of train/eval submodules.
        for m, mode in training:
            m.training = mode

    names = {}
    for name, sub in module.named_modules():
        names.setdefault(id(sub), name)
    infos = stats.summary_list
    root_is_leaf = infos[0].depth == 0 and infos[0].is_leaf_layer
    layers = tuple(
        LayerComplexity(
            name=names.get(info.layer_id) or type(info.module).__name__,
            type=type(info.module).__name__,
            output_shape=tuple(info.output_size[1:]),
            # torchinfo counts a reused layer's parameters at its first call
            params=0 if info.is_recursive else int(info.num_params),
            # a composite row (e.g. a DwBlock) sums the MACs of its leaves
            macs=int(
                info.macs
                if info.is_leaf_layer
                else sum(c.macs for c in info.children if c.is_leaf_layer)
            ),
            depth=int(info.depth),
            is_leaf=bool(info.is_leaf_layer),
        )
        for info in infos
        if info.depth > 0 or root_is_leaf
    )
    return layers, int(stats.total_params), int(stats.total_mult_adds)


def count_params_macs(module, input_shape):
    """Count parameters and MACs of a torch module as the DCASE tool does.

    ``torchinfo.summary(module, input_size=(1, *input_shape))``'s
    ``total_params`` and ``total_mult_adds``, counted on the module's own
    device without printing anything.

    Parameters
    ----------
    module : torch.nn.Module
        The network. It is run once, in eval mode and without gradients, on a
        zero input of shape ``(1, *input_shape)`` on its own device; the
        train/eval state of each submodule is restored afterwards.
    input_shape : tuple of int (C, F, T)
        Shape of one example, without the batch dimension.

    Returns
    -------
    params : int
        Total number of parameters (each counted once).
    macs : int
        Multiply-accumulate operations for one example.

    Examples
    --------
    >>> from skasc.nn import DwsCNN
    >>> from skasc.complexity import count_params_macs
    >>> count_params_macs(DwsCNN(hidden=18), (1, 256, 51))
    (31260, 29591778)
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}.")
    _, params, macs = _trace(module, check_input_shape(input_shape))
    return params, macs


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------


class ComplexityReport:
    """Parameters, MACs and parameter memory of a model, per layer and in total.

    Built by :func:`complexity_report`; not meant to be instantiated directly.

    Parameters
    ----------
    layers : sequence of LayerComplexity
        Every layer, in execution order, with its depth (a container that is
        never called itself, e.g. a ``ModuleList``, comes before its first
        layer).
    total_params : int
        Total number of parameters.
    total_macs : int
        Total multiply-accumulates for one example.
    input_shape : tuple of int or None
        ``(C, F, T)`` the counts refer to (None for an ensemble whose members
        use different shapes).
    model_name : str
        Name shown in the header.
    param_limit_bytes : int, default=PARAM_MEMORY_LIMIT_BYTES
        Parameter-memory limit (128,000 bytes).
    mac_limit : int, default=MAC_LIMIT
        MAC limit (30,000,000).
    members : list of ComplexityReport, optional
        Per-member reports when the report sums an ensemble.
    per_model : dict of str to ComplexityReport, optional
        For a model that deploys one of several networks per input (e.g. a
        :class:`~skasc.device_specific.DeviceSpecificClassifier`: one per
        device), the report of each; this report is then the largest's.

    Attributes
    ----------
    layers : tuple of LayerComplexity
        All rows, including the children of composite layers (e.g. the
        BatchNorm/convolutions inside a ``DwBlock``).
    rows : tuple of LayerComplexity
        The top-level rows only, which read like Table 1 of the paper.
    total_params, total_macs : int
        Totals (sums over the members for an ensemble).
    param_bytes : dict
        Parameter memory in bytes for ``"float32"``, ``"float16"``, ``"int8"``
        (``total_params`` times 4, 2, 1).
    within_mac_limit : bool
        ``total_macs <= mac_limit``.
    within_param_limit : bool
        Whether the float32 parameter memory fits ``param_limit_bytes``
        (use :meth:`fits_limits` for another format).
    members : list of ComplexityReport
        Empty unless the report sums an ensemble.
    per_model : dict of str to ComplexityReport
        Empty unless the model deploys one network per device (the limits
        apply to each; this report is the largest's).

    Examples
    --------
    >>> from skasc.nn import DwsCNN
    >>> from skasc.complexity import complexity_report
    >>> report = complexity_report(DwsCNN(hidden=18))
    >>> report.total_params, report.total_macs
    (31260, 29591778)
    >>> report.param_bytes
    {'float32': 125040, 'float16': 62520, 'int8': 31260}
    >>> report.fits_limits("float32")
    True
    >>> [(r.name, r.params) for r in report.rows][:3]
    [('input_conv', 900), ('dw1', 1044), ('pool1', 0)]
    """

    def __init__(
        self,
        layers,
        total_params,
        total_macs,
        input_shape,
        model_name,
        param_limit_bytes=PARAM_MEMORY_LIMIT_BYTES,
        mac_limit=MAC_LIMIT,
        members=None,
        per_model=None,
    ):
        self.layers = tuple(layers)
        self.total_params = int(total_params)
        self.total_macs = int(total_macs)
        self.input_shape = None if input_shape is None else tuple(input_shape)
        self.model_name = str(model_name)
        self.param_limit_bytes = int(param_limit_bytes)
        self.mac_limit = int(mac_limit)
        self.members = list(members or [])
        self.per_model = dict(per_model or {})

    # -- derived quantities ------------------------------------------------
    @property
    def rows(self):
        """Top-level rows (the Table 1 view)."""
        if not self.layers:
            return ()
        top = min(layer.depth for layer in self.layers)
        return tuple(layer for layer in self.layers if layer.depth == top)

    @property
    def param_bytes(self):
        """Parameter memory in bytes per numeric format."""
        return {k: self.total_params * b for k, b in BYTES_PER_PARAM.items()}

    @property
    def within_mac_limit(self):
        """Whether the MACs are within the challenge limit."""
        return self.total_macs <= self.mac_limit

    @property
    def within_param_limit(self):
        """Whether the float32 parameter memory is within the challenge limit."""
        return self.param_bytes["float32"] <= self.param_limit_bytes

    def max_params(self, dtype="float32"):
        """Largest parameter count allowed by the memory limit in ``dtype``.

        Parameters
        ----------
        dtype : str or dtype, default="float32"
            ``"float32"``, ``"float16"`` or ``"int8"`` (or an alias).

        Returns
        -------
        int
            ``param_limit_bytes // bytes_per_param`` (32,000 for float32).
        """
        return self.param_limit_bytes // BYTES_PER_PARAM[_dtype_key(dtype)]

    def fits_limits(self, dtype="float32"):
        """Whether the model meets both DCASE 2023 Task 1 limits.

        Parameters
        ----------
        dtype : str or dtype, default="float32"
            Numeric format of the stored parameters: ``"float32"``,
            ``"float16"`` or ``"int8"`` (aliases such as ``"fp16"``,
            ``torch.float16`` or ``numpy.int8`` are accepted).

        Returns
        -------
        bool
            ``total_macs <= mac_limit`` and
            ``total_params * bytes(dtype) <= param_limit_bytes``.
        """
        key = _dtype_key(dtype)
        return self.within_mac_limit and self.param_bytes[key] <= self.param_limit_bytes

    # -- output ------------------------------------------------------------
    def to_dict(self):
        """JSON-serialisable dictionary of the report.

        Returns
        -------
        dict
            Keys ``model``, ``input_shape``, ``layers`` (list of dicts),
            ``total_params``, ``total_macs``, ``param_bytes``, ``limits``,
            ``within_mac_limit``, ``within_param_limit`` (per format),
            ``fits_limits`` (per format), ``members`` and ``per_model``.
        """
        return {
            "model": self.model_name,
            "input_shape": None if self.input_shape is None else list(self.input_shape),
            "layers": [
                {**asdict(layer), "output_shape": list(layer.output_shape)}
                for layer in self.layers
            ],
            "total_params": self.total_params,
            "total_macs": self.total_macs,
            "param_bytes": self.param_bytes,
            "limits": {
                "param_memory_bytes": self.param_limit_bytes,
                "macs": self.mac_limit,
            },
            "within_mac_limit": self.within_mac_limit,
            "within_param_limit": {
                k: v <= self.param_limit_bytes for k, v in self.param_bytes.items()
            },
            "fits_limits": {k: self.fits_limits(k) for k in BYTES_PER_PARAM},
            "members": [m.to_dict() for m in self.members],
            "per_model": {name: r.to_dict() for name, r in self.per_model.items()},
        }

    def to_json(self, **kwargs):
        """The report as a JSON string (``kwargs`` go to :func:`json.dumps`)."""
        return json.dumps(self.to_dict(), **kwargs)

    def to_string(self, show_children=False):
        """Aligned text table like the paper's Table 1, with totals and limits.

        Parameters
        ----------
        show_children : bool, default=False
            Also list the layers inside composite layers (indented), e.g.
            the BatchNorm and convolutions of each ``DwBlock``.

        Returns
        -------
        str
        """
        return render_text(self, show_children)

    def __str__(self):
        return self.to_string()

    def __repr__(self):
        return (
            f"ComplexityReport(model={self.model_name!r}, input_shape={self.input_shape}, "
            f"total_params={self.total_params}, total_macs={self.total_macs})"
        )

    def to_markdown(self, show_children=False):
        """The report as a Markdown table with totals and limit verdicts.

        Parameters
        ----------
        show_children : bool, default=False
            Also list the layers inside composite layers.

        Returns
        -------
        str
        """
        return render_markdown(self, show_children)


# --------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------


def _module_report(module, input_shape, name, limits):
    if input_shape is None:
        input_shape = getattr(module, "input_shape", None)
        if input_shape is None:
            raise ValueError(
                f"input_shape is required: {type(module).__name__} has no "
                "`input_shape` attribute; pass input_shape=(C, F, T)."
            )
    input_shape = check_input_shape(input_shape)
    layers, params, macs = _trace(module, input_shape)
    return ComplexityReport(layers, params, macs, input_shape, name, **limits)


def _held_report(held, input_shape, limits):
    """Report of the networks a model holds (see :func:`skasc._networks.held_networks`)."""
    if held.module is not None:
        shape = input_shape if input_shape is not None else held.input_shape
        if shape is None:
            raise ValueError(
                f"{held.name} has no `input_shape_` attribute nor a module `input_shape`; "
                "pass input_shape=(C, F, T)."
            )
        return _module_report(held.module, shape, held.name, limits)
    reports = [_held_report(m, input_shape, limits) for m in held.members]
    layers = []
    for i, rep in enumerate(reports):
        prefix = f"estimators_[{i}]"
        out_shape = rep.rows[-1].output_shape if rep.rows else ()
        layers.append(
            LayerComplexity(
                name=prefix,
                type=rep.model_name,
                output_shape=out_shape,
                params=rep.total_params,
                macs=rep.total_macs,
                depth=1,
                is_leaf=False,
            )
        )
        base = min((layer.depth for layer in rep.layers), default=1)
        layers.extend(
            LayerComplexity(
                name=f"{prefix}.{layer.name}",
                type=layer.type,
                output_shape=layer.output_shape,
                params=layer.params,
                macs=layer.macs,
                depth=2 + layer.depth - base,
                is_leaf=layer.is_leaf,
            )
            for layer in rep.layers
        )
    shapes = {r.input_shape for r in reports}
    return ComplexityReport(
        layers,
        sum(r.total_params for r in reports),
        sum(r.total_macs for r in reports),
        shapes.pop() if len(shapes) == 1 else None,
        held.name,
        members=reports,
        **limits,
    )


def complexity_report(
    estimator_or_module,
    input_shape=None,
    *,
    param_limit_bytes=PARAM_MEMORY_LIMIT_BYTES,
    mac_limit=MAC_LIMIT,
):
    """Per-layer and total complexity of a model, as the DCASE 2023 Task 1 tool counts it.

    The counts equal torchinfo's ``total_params`` and ``total_mult_adds`` for
    ``summary(module, input_size=(1, C, F, T))`` (the challenge's official
    PyTorch complexity tool); see the module docstring for the rules.

    Parameters
    ----------
    estimator_or_module : torch.nn.Module, estimator or Pipeline
        One of

        * a torch ``nn.Module``;
        * a fitted skasc classifier: an estimator whose fitted attributes
          ``module_`` (the torch network) and ``input_shape_`` (``(C, F, T)``)
          are set by ``fit``;
        * a fitted scikit-learn ``Pipeline`` whose last step is such a
          classifier (earlier steps, e.g. feature extraction, are not
          counted);
        * an ensemble exposing ``estimators_``, a list of fitted classifiers
          (e.g. the teacher ensemble): the report **sums** the parameters and
          MACs of all members, since averaging their outputs requires running
          and storing every member; per-member reports are in ``members``.
    input_shape : tuple of int (C, F, T), optional
        Shape of one example without the batch dimension.  Defaults to the
        estimator's ``input_shape_`` or the module's ``input_shape``
        attribute; required for a module without that attribute.
    param_limit_bytes : int, default=128_000
        Parameter-memory limit in bytes.  The challenge's "128 KB" is read as
        128,000 bytes, like its official code (32,000 float32 parameters);
        pass ``131_072`` for 128 KiB.
    mac_limit : int, default=30_000_000
        MAC limit.

    Returns
    -------
    ComplexityReport
        Per-layer rows, totals, parameter memory per format and limit checks.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If the estimator (or the Pipeline's last step) is not fitted.
    ValueError
        If ``input_shape`` is not three positive integers, is missing for a
        module without an ``input_shape`` attribute, or the module cannot
        run on it.
    TypeError
        If the object is neither a module nor a (fitted) estimator exposing
        ``module_`` or ``estimators_``.

    Examples
    --------
    >>> from skasc.nn import DwsCNN
    >>> from skasc.complexity import complexity_report
    >>> report = complexity_report(DwsCNN(hidden=18))  # input_shape from the module
    >>> report.total_params, report.total_macs
    (31260, 29591778)
    >>> report.within_mac_limit, report.within_param_limit
    (True, True)
    >>> print(report)
    Complexity of DwsCNN, input (C, F, T) = (1, 256, 51)
    Layer       Type       Output shape   Params        MACs
    ----------  ---------  -------------  ------  ----------
    input_conv  Conv2d     (18, 256, 51)     900  11,750,400
    dw1         DwBlock    (18, 256, 51)   1,044  12,690,504
    pool1       MaxPool2d  (18, 51, 10)        -           -
    dw2_conv    Conv2d     (18, 51, 10)    8,118   4,140,180
    dw2         DwBlock    (18, 51, 10)    1,044     495,792
    dw3         DwBlock    (18, 51, 10)    1,044     495,792
    pool2       MaxPool2d  (18, 5, 2)          -           -
    flatten     Flatten    180                 -           -
    fc1         Linear     100            18,100      18,100
    act         ReLU       100                 -           -
    fc2         Linear     10              1,010       1,010
    ----------  ---------  -------------  ------  ----------
    Total                                 31,260  29,591,778
    <BLANKLINE>
    Parameter memory: 125,040 B (float32), 62,520 B (float16), 31,260 B (int8)
    DCASE 2023 Task 1 limits:
      MACs                        29,591,778 / 30,000,000 max  PASS
      parameter memory (float32)   125,040 B /  128,000 B max  PASS
      parameter memory (float16)    62,520 B /  128,000 B max  PASS
      parameter memory (int8)       31,260 B /  128,000 B max  PASS
    >>> complexity_report(DwsCNN(hidden=256)).total_params
    2318678
    """
    limits = {"param_limit_bytes": int(param_limit_bytes), "mac_limit": int(mac_limit)}
    obj = estimator_or_module
    if isinstance(obj, nn.Module):
        return _module_report(obj, input_shape, type(obj).__name__, limits)
    if input_shape is not None:
        input_shape = check_input_shape(input_shape)
    if hasattr(obj, "device_estimators_") and hasattr(obj, "general_estimator_"):
        # one network per device is deployed, not their sum: report each, and the largest
        models = {"general": obj.general_estimator_, **obj.device_estimators_}
        per_model = {name: _held_report(held_networks(m), input_shape, limits)
                     for name, m in models.items()}
        largest = max(per_model.values(), key=lambda r: (r.total_macs, r.total_params))
        return ComplexityReport(largest.layers, largest.total_params, largest.total_macs,
                                largest.input_shape, f"{type(obj).__name__} (largest model)",
                                members=largest.members, per_model=per_model, **limits)
    return _held_report(held_networks(obj), input_shape, limits)
