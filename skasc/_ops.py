"""The maths that training, fast inference and export share, written once.

* :func:`fuse_logits`: how an ensemble's logits are fused (the ONNX graph in
  :mod:`skasc._onnx` mirrors it node by node; a test proves they agree);
* :class:`FusedNetworks`: that fusion as a torch module;
* :func:`softmax`: class probabilities from logits;
* :func:`bn_affine` and :func:`fold_bn_after_pointwise`: an eval-mode
  BatchNorm as a per-channel affine map, and folded into the pointwise
  convolution before it (exact up to rounding: both are linear);
* :func:`is_plain_dwscnn`: whether a module is the network these fast paths
  know.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .nn import DwsCNN

__all__ = ["FUSIONS", "fuse_logits", "FusedNetworks", "softmax", "bn_affine",
           "fold_bn_after_pointwise", "is_plain_dwscnn"]

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


def fold_bn_after_pointwise(weight, bn):
    """Weight and bias of ``bn(conv1x1(x, weight))`` as one convolution (float64).

    ``bn(W x) = (a * W) x + s`` with ``(a, s) = bn_affine(bn)``: exact up to
    rounding.
    """
    scale, shift = bn_affine(bn)
    w = weight.detach().cpu().double() * scale.view(-1, *([1] * (weight.dim() - 1)))
    return w, shift


def is_plain_dwscnn(module):
    """True for a DwsCNN (or subclass) whose forward is DwsCNN's own."""
    return isinstance(module, DwsCNN) and type(module).forward is DwsCNN.forward
