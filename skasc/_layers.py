"""The vocabulary in which a network describes its forward pass.

A :class:`~skasc.nn.DwsCNN` lists its forward pass once, as a sequence of
the layer specs below (:meth:`~skasc.nn.DwsCNN.layers`), built from its own
submodules.  Three things walk that one list:

* the network's own ``forward`` (each spec called on the running tensor:
  the submodule's ``__call__``, so hooks and torchinfo see every layer);
* the fast CPU predictor (:mod:`skasc._inference`), which folds each
  BatchNorm into the convolution before it and fuses activations;
* the ONNX graph builder (:mod:`skasc._onnx`), one node per spec.

Adding a layer to the network is therefore one edit of that list.  A
submodule of a kind not described here becomes an :class:`Opaque` spec: the
network still runs it, but the fast paths do not know it and leave such a
network to eager PyTorch and :func:`torch.onnx.export`.

A spec holds the submodule, not copies of its weights: building the list
costs a few microseconds, so ``forward`` can build it at every call and a
replaced submodule is seen at once.
"""

from __future__ import annotations

from torch import nn

__all__ = ["Layer", "Standardize", "Conv", "BatchNorm", "ReLU", "Identity", "MaxPool",
           "GlobalAvgPool", "Flatten", "Linear", "Residual", "Opaque", "describe",
           "run_layers", "all_known"]


class Layer:
    """One step of a forward pass: the submodule ``module``, called ``name``.

    Calling the spec applies the step (``module(x)``).  ``name`` is the
    dotted path of the submodule in the network (``"dw1.bn2"``), used for
    the names of ONNX nodes and pre-packed weights.
    """

    __slots__ = ("name", "module")

    def __init__(self, name, module):
        self.name = name
        self.module = module

    def __call__(self, x):
        return self.module(x)

    def __repr__(self):
        return f"{type(self).__name__}({self.name!r})"


class Standardize(Layer):
    """``(x - mean) * scale``, with per-band buffers (no submodule)."""

    __slots__ = ("mean", "scale")

    def __init__(self, name, mean, scale):
        super().__init__(name, None)
        self.mean = mean
        self.scale = scale

    def __call__(self, x):
        return (x - self.mean) * self.scale


class Conv(Layer):
    """A :class:`torch.nn.Conv2d` with zero padding given as numbers."""

    __slots__ = ()

    @property
    def weight(self):
        return self.module.weight

    @property
    def bias(self):
        return self.module.bias

    @property
    def padding(self):
        return tuple(self.module.padding)

    @property
    def stride(self):
        return tuple(self.module.stride)

    @property
    def dilation(self):
        return tuple(self.module.dilation)

    @property
    def groups(self):
        return int(self.module.groups)


class BatchNorm(Layer):
    """A :class:`torch.nn.BatchNorm2d` with running statistics (an affine map at inference)."""

    __slots__ = ()


class ReLU(Layer):
    """A :class:`torch.nn.ReLU`."""

    __slots__ = ()


class Identity(Layer):
    """Identity at inference: :class:`torch.nn.Identity` and dropout layers."""

    __slots__ = ()


class MaxPool(Layer):
    """A :class:`torch.nn.MaxPool2d` with ``stride == kernel`` and no padding."""

    __slots__ = ()

    @property
    def kernel(self):
        return _pair(self.module.kernel_size)


class GlobalAvgPool(Layer):
    """An :class:`torch.nn.AdaptiveAvgPool2d` to 1x1 (the mean over the map)."""

    __slots__ = ()


class Flatten(Layer):
    """A :class:`torch.nn.Flatten` of all but the batch dimension."""

    __slots__ = ()


class Linear(Layer):
    """A :class:`torch.nn.Linear`."""

    __slots__ = ()

    @property
    def weight(self):
        return self.module.weight

    @property
    def bias(self):
        return self.module.bias


class Residual(Layer):
    """``x + body(x)``: a block whose ``forward`` adds its input to its layers' output.

    ``module`` has a method ``layers(prefix)`` listing the body, and its
    ``forward`` is ``x + run_layers(module.layers(), x)``.
    """

    __slots__ = ()

    @property
    def body(self):
        return self.module.layers(prefix=self.name + ".")


class Opaque(Layer):
    """Any other submodule: run as it is; the fast paths do not know it."""

    __slots__ = ()


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _conv_kind(m):
    # string padding ("same") and other padding modes are left to eager
    return Conv if m.padding_mode == "zeros" and not isinstance(m.padding, str) else Opaque


def _bn_kind(m):
    return BatchNorm if m.track_running_stats and m.running_mean is not None else Opaque


def _pool_kind(m):
    k = _pair(m.kernel_size)
    plain = (_pair(m.stride) == k and _pair(m.padding) == (0, 0)
             and _pair(m.dilation) == (1, 1) and not m.ceil_mode and not m.return_indices)
    return MaxPool if plain else Opaque


def _gap_kind(m):
    return GlobalAvgPool if _pair(m.output_size) == (1, 1) else Opaque


def _flatten_kind(m):
    return Flatten if m.start_dim == 1 and m.end_dim == -1 else Opaque


#: torch module class -> spec class, or a function of the module choosing one.
_KINDS = {
    nn.Conv2d: _conv_kind,
    nn.BatchNorm2d: _bn_kind,
    nn.ReLU: ReLU,
    nn.Identity: Identity,
    nn.Dropout: Identity,
    nn.Dropout2d: Identity,
    nn.MaxPool2d: _pool_kind,
    nn.AdaptiveAvgPool2d: _gap_kind,
    nn.Flatten: _flatten_kind,
    nn.Linear: Linear,
}


def describe(name, module):
    """The spec of the torch layer ``module`` (an :class:`Opaque` one if unknown).

    A subclass of a known layer counts as that layer only while it keeps
    the layer's ``forward``.

    Examples
    --------
    >>> from torch import nn
    >>> from skasc._layers import describe
    >>> describe("fc1", nn.Linear(3, 2)), describe("act", nn.GELU())
    (Linear('fc1'), Opaque('act'))
    """
    cls = type(module)
    kind = _KINDS.get(cls)
    if kind is None:
        base = next((b for b in cls.__mro__[1:] if b in _KINDS), None)
        if base is None or cls.forward is not base.forward:
            return Opaque(name, module)
        kind = _KINDS[base]
    if not isinstance(kind, type):
        kind = kind(module)
    return kind(name, module)


def run_layers(layers, x):
    """Apply ``layers`` in order to ``x`` (the eager forward pass)."""
    for layer in layers:
        x = layer(x)
    return x


def all_known(layers):
    """Whether the fast paths know every layer (no :class:`Opaque`, also inside residuals)."""
    return all(not isinstance(layer, Opaque)
               and (not isinstance(layer, Residual) or all_known(layer.body))
               for layer in layers)
