"""The maths that training, fast inference and export share, written once.

* :func:`fuse_logits`: how an ensemble's logits are fused (the ONNX graph in
  :mod:`skasc._onnx` mirrors it node by node; a test proves they agree);
* :class:`FusedNetworks`: that fusion as a torch module;
* :func:`softmax`: class probabilities from logits;
* :func:`bn_affine` and :func:`fold_bn_into_conv`: an eval-mode
  BatchNorm as a per-channel affine map, and folded into the convolution
  before it (exact up to rounding: both are linear);
* :func:`inference_steps`: which BatchNorm of a layer list the fast paths
  fold into which convolution (the fast CPU predictor and the ONNX graph
  walk a network's :meth:`~skasc.nn.DwsCNN.layers` through it);
* :func:`is_plain_dwscnn`: whether a module is a network these fast paths
  know.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ._layers import BatchNorm, Conv, Identity, all_known
from .nn import DwsCNN

__all__ = ["FUSIONS", "fuse_logits", "FusedNetworks", "softmax", "bn_affine",
           "fold_bn_into_conv", "inference_steps", "is_plain_dwscnn"]

#: How several networks' outputs are fused.
FUSIONS = ("logits", "proba")


def fuse_logits(outs, fusion="logits"):
    """Fuse a list of (n, K) logits tensors into one (n, K) tensor.

    ``"logits"`` averages the logits; ``"proba"`` averages the probabilities
    and returns their log (the logits of the averaged distribution).

    Examples
    --------
    >>> import torch
    >>> from skasc._ops import fuse_logits
    >>> a, b = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 0.0]])
    >>> fuse_logits([a, b]).tolist()
    [[1.0, 0.0]]
    >>> fuse_logits([a, b], "proba").softmax(1).sum().item()
    1.0
    """
    if fusion not in FUSIONS:
        raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
    if len(outs) == 1 and fusion == "logits":
        return outs[0]
    stacked = torch.stack(list(outs))
    if fusion == "logits":
        return stacked.mean(0)
    return torch.logsumexp(F.log_softmax(stacked, dim=2), dim=0) - math.log(len(outs))


class FusedNetworks(torch.nn.Module):
    """Several networks run on the same input, their logits fused by :func:`fuse_logits`.

    Parameters
    ----------
    modules : sequence of torch.nn.Module
    fusion : {"logits", "proba"}, default="logits"
    """

    def __init__(self, modules, fusion="logits"):
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
        self.members = torch.nn.ModuleList(modules)
        self.fusion = fusion

    def forward(self, x):
        return fuse_logits([m(x) for m in self.members], self.fusion)


def softmax(logits):
    """Row-wise softmax of (n, K) logits as a float numpy array.

    Examples
    --------
    >>> from skasc._ops import softmax
    >>> softmax([[0.0, 0.0], [1000.0, 0.0]]).tolist()
    [[0.5, 0.5], [1.0, 0.0]]
    """
    z = torch.as_tensor(np.asarray(logits))
    if not z.is_floating_point():
        z = z.double()
    return torch.softmax(z, dim=1).numpy()


def bn_affine(bn):
    """Per-channel (scale, shift) of an eval-mode BatchNorm2d, in float64 on the CPU."""
    var = bn.running_var.detach().cpu().double()
    mean = bn.running_mean.detach().cpu().double()
    scale = 1.0 / torch.sqrt(var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight.detach().cpu().double()
    shift = -mean * scale
    if bn.bias is not None:
        shift = shift + bn.bias.detach().cpu().double()
    return scale, shift


def fold_bn_into_conv(weight, bias, bn):
    """Weight and bias of ``bn(conv(x, weight) + bias)`` as one convolution (float64).

    ``bn(W x + b) = (a * W) x + (a * b + s)`` with ``(a, s) = bn_affine(bn)``
    (``a`` scaling each output channel): exact up to rounding.  ``bias`` may
    be None.
    """
    scale, shift = bn_affine(bn)
    w = weight.detach().cpu().double() * scale.view(-1, *([1] * (weight.dim() - 1)))
    if bias is not None:
        shift = bias.detach().cpu().double() * scale + shift
    return w, shift


def inference_steps(layers):
    """Walk a layer list as the fast paths run it: yield ``(layer, bn)`` pairs.

    A BatchNorm right after a convolution comes as the ``bn`` of that
    convolution, to be folded into it (:func:`fold_bn_into_conv`); every
    other layer comes with ``bn=None``.  Identities (dropout at inference)
    are left out.  Residual bodies are not entered: walk ``layer.body``.

    Examples
    --------
    >>> from skasc._ops import inference_steps
    >>> from skasc.nn import DwBlock
    >>> [(layer.name, bn and bn.name) for layer, bn in inference_steps(DwBlock(4).layers())]
    [('bn1', None), ('relu1', None), ('dw_conv1', None), ('pw_conv1', 'bn2'),
     ('relu2', None), ('dw_conv2', None), ('pw_conv2', None)]
    """
    pending = None
    for layer in layers:
        if isinstance(layer, Identity):
            continue
        if isinstance(layer, BatchNorm) and isinstance(pending, Conv):
            yield pending, layer
            pending = None
            continue
        if pending is not None:
            yield pending, None
        pending = layer
    if pending is not None:
        yield pending, None


def is_plain_dwscnn(module):
    """True for a DwsCNN (or subclass) that the fast CPU predictor and the ONNX builder reproduce.

    That is, its ``forward`` is DwsCNN's own (which applies
    :meth:`~skasc.nn.DwsCNN.layers`) and every layer of that list is of a
    kind they know (none :class:`~skasc._layers.Opaque`).  A subclass that
    only adds known layers to :attr:`~skasc.nn.DwsCNN.LAYERS` stays plain.
    """
    return (isinstance(module, DwsCNN) and type(module).forward is DwsCNN.forward
            and all_known(module.layers()))
