"""A DwsCNN's layer list folded into plain CPU operators (:mod:`skasc._inference`'s fast path).

:class:`FoldedDwsCNN` walks a network's :meth:`~skasc.nn.DwsCNN.layers`
(through :func:`skasc._ops.inference_steps`) once and turns it into a list of
small ops that compute the same logits (to float32 rounding) faster:

* **Folding.**  A BatchNorm right after a convolution (the second of each
  :class:`~skasc.nn.DwBlock`, after ``pw_conv1``) is folded into its
  weights and a bias.  Any other BatchNorm (the first of each block: its
  input is the block input, which also feeds the residual) stays a
  per-channel ``x * a + b`` -- one ``addcmul`` pass, cheaper than
  ``batch_norm`` -- and the ReLU after it runs in place.
* **Fused oneDNN kernels** (when this PyTorch has them, see
  :class:`skasc._inference.FastPredictor`): pre-packed weights, a ReLU fused
  into the convolution before it, a residual block's last convolution
  accumulating into the block input in place (+30-45 % over the same folded
  network on ``F.conv2d``, which sends the 1x1 convolutions of small batches
  to a slow path).
* Max-pooling as two strided ``amax`` reductions (2x ``max_pool2d`` on
  channels-last maps).
* The layers up to the first max-pooling (the full-resolution stage) can
  run on slices of a batch, whose maps stay in cache, and the rest on the
  whole batch (``forward(split=...)``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._layers import (BatchNorm, Conv, Flatten, GlobalAvgPool, Linear, MaxPool, ReLU, Residual,
                      Standardize)
from ._ops import bn_affine, fold_bn_into_conv, inference_steps

__all__ = ["FoldedDwsCNN"]

#: The memory format of every feature map of the folded network.
_CL = torch.channels_last


def _t(x):
    """Detached float32 contiguous CPU copy."""
    return x.detach().to("cpu", torch.float32).contiguous().clone()


def _max_pool(x, kernel):
    """max_pool2d(x, kernel) (stride = kernel, no padding) on a channels-last map.

    Two strided ``amax`` reductions over a view; the result is exactly
    ``F.max_pool2d`` (a maximum has no rounding) and about twice as fast on
    channels-last maps.
    """
    kh, kw = kernel
    n, c, h, w = x.shape
    oh, ow = h // kh, w // kw
    v = x.permute(0, 2, 3, 1)[:, : oh * kh, : ow * kw]  # (n, H, W, C) view
    v = v.unflatten(1, (oh, kh)).amax(2)
    v = v.unflatten(2, (ow, kw)).amax(3)
    return v.permute(0, 3, 1, 2)


# -- the folded network ------------------------------------------------------
# Each op of a folded network is called as ``op(h, packed)``: ``packed`` is the
# dict of oneDNN pre-packed weights when the fused kernels are in use, else
# None.  Ops may write in place into the tensor they get only where the
# folding found it to be an intermediate of ours ("owned"), never the
# caller's input nor a residual block's input, which the addition still needs.


class _Affine:
    """``h * scale + shift`` per channel (an unfoldable BatchNorm, the input standardisation).

    One ``addcmul`` pass, cheaper than ``batch_norm``; a ReLU after it runs
    in place on its output.
    """

    def __init__(self, scale, shift, channels_last=False):
        self.scale, self.shift, self.relu = scale, shift, False
        self.channels_last = channels_last

    def __call__(self, h, packed):
        h = torch.addcmul(self.shift, h, self.scale)
        if self.channels_last:
            h = h.contiguous(memory_format=_CL)
        return h.relu_() if self.relu else h


class _Conv:
    """A convolution (with the BatchNorm after it folded in), then a ReLU if ``relu``."""

    def __init__(self, key, weight, bias, layer, in_shape):
        self.key = key  # of its pre-packed weight
        self.w, self.b = weight, bias
        self.padding, self.stride = list(layer.padding), list(layer.stride)
        self.dilation, self.groups = list(layer.dilation), layer.groups
        self.in_shape = list(in_shape)  # (C, H, W) of one clip, for the pre-packing
        self.relu = False

    def out_shape(self):
        size = [(s + 2 * p - d * (k - 1) - 1) // st + 1 for s, p, d, k, st in zip(
            self.in_shape[1:], self.padding, self.dilation, self.w.shape[2:], self.stride)]
        return (int(self.w.shape[0]), *size)

    def __call__(self, h, packed):
        if packed is None:
            h = F.conv2d(h, self.w, self.b, self.stride, self.padding, self.dilation, self.groups)
            return h.relu_() if self.relu else h
        return torch.ops.mkldnn._convolution_pointwise(
            h, packed[self.key], self.b, self.padding, self.stride, self.dilation, self.groups,
            "relu" if self.relu else "none", [], "")


class _Linear:
    """A linear layer, then a ReLU if ``relu``."""

    def __init__(self, weight, bias):
        self.w, self.b, self.relu = weight, bias, False

    def __call__(self, h, packed):
        h = torch.mm(h, self.w.t()) if self.b is None else torch.addmm(self.b, h, self.w.t())
        return h.relu_() if self.relu else h


class _ReLU:
    """A ReLU that follows no op it could be fused into."""

    def __init__(self, inplace):
        self.inplace = inplace

    def __call__(self, h, packed):
        return h.relu_() if self.inplace else torch.relu(h)


class _MaxPool:
    def __init__(self, kernel):
        self.kernel = tuple(kernel)

    def __call__(self, h, packed):
        return _max_pool(h, self.kernel)


def _global_avg_pool(h, packed):
    return h.mean((2, 3), keepdim=True)


def _flatten(h, packed):
    return torch.flatten(h, 1)


class _Residual:
    """``h + body(h)``.

    A body ending in a convolution adds it to ``h`` in the convolution
    itself (fused kernels: in place into ``h`` when ``h`` is ours).
    """

    def __init__(self, body, last, body_owned, into_input):
        self.body, self.last = body, last
        self.body_owned, self.into_input = body_owned, into_input

    def __call__(self, h, packed):
        t = h
        for op in self.body:
            t = op(t, packed)
        last = self.last
        if last is None:
            return t.add_(h) if self.body_owned else t + h
        if packed is not None and self.into_input:
            # h += conv(t), in place (h is our own intermediate, unused after)
            return torch.ops.mkldnn._convolution_pointwise_.binary(
                h, t, packed[last.key], last.b, last.padding, last.stride, last.dilation,
                last.groups, "add", None, None, [], None)
        return last(t, packed).add_(h)


def _fold(layers, shape, owned, shapes):
    """The folded ops of a layer list (:mod:`skasc._layers`) applied to maps of ``shape``.

    ``shape`` is one clip's ``(C, H, W)`` (or ``(F,)`` after a flatten) and
    ``owned`` whether the input is an intermediate of ours.  Each op's
    output shape is appended to ``shapes``.  Returns ``(ops, shape, owned)``
    after the last op.  Raises for a layer it does not know.
    """
    ops = []
    for layer, bn in inference_steps(layers):
        prev = ops[-1] if ops else None
        if isinstance(layer, ReLU) and isinstance(prev, (_Affine, _Conv, _Linear)) and not prev.relu:
            prev.relu = True  # fused into the op before it
            continue
        if isinstance(layer, Standardize):
            # kept as an affine map on the (small) input: folding it into the
            # first convolution would not be exact, as that convolution
            # zero-pads the *standardised* map
            scale64 = layer.scale.detach().cpu().double()
            # (the output is made channels-last explicitly, as the ops after it expect)
            op = _Affine(scale64.float().contiguous(),
                         (-layer.mean.detach().cpu().double() * scale64).float().contiguous(),
                         channels_last=True)
        elif isinstance(layer, BatchNorm):
            # not after a convolution (e.g. a block's input, which the
            # residual also needs): an affine map
            a, s = bn_affine(layer.module)
            c = len(a)
            op = _Affine(a.float().view(1, c, 1, 1).contiguous(),
                         s.float().view(1, c, 1, 1).contiguous())
        elif isinstance(layer, Conv):
            if bn is None:
                w, b = _t(layer.weight), None if layer.bias is None else _t(layer.bias)
            else:
                w, b = (t.float().contiguous()
                        for t in fold_bn_into_conv(layer.weight, layer.bias, bn.module))
            op = _Conv(layer.name, w, b, layer, shape)
            shape = op.out_shape()
        elif isinstance(layer, ReLU):
            op = _ReLU(inplace=owned)
        elif isinstance(layer, MaxPool):
            op = _MaxPool(layer.kernel)
            shape = (shape[0], *(s // k for s, k in zip(shape[1:], layer.kernel)))
        elif isinstance(layer, GlobalAvgPool):
            op, shape = _global_avg_pool, (shape[0], 1, 1)
        elif isinstance(layer, Flatten):
            op, shape = _flatten, (math.prod(shape),)
        elif isinstance(layer, Linear):
            op = _Linear(_t(layer.weight), None if layer.bias is None else _t(layer.bias))
            shape = (int(layer.weight.shape[0]),)
        elif isinstance(layer, Residual):
            body, out, body_owned = _fold(layer.body, shape, False, shapes)
            if tuple(out) != tuple(shape):
                raise ValueError(f"{layer.name}: the body maps {shape} to {out}")
            last = body.pop() if body and isinstance(body[-1], _Conv) and not body[-1].relu else None
            op = _Residual(body, last, body_owned, into_input=owned)
        else:
            raise TypeError(f"cannot fold layer {layer!r}")
        ops.append(op)
        # a flatten may be a view of its input; every other op's output is new
        owned = owned if op is _flatten else True
        shapes.append(tuple(shape))
    return ops, shape, owned


def _convs(ops):
    """The convolution ops, also those inside residual blocks."""
    for op in ops:
        if isinstance(op, _Conv):
            yield op
        elif isinstance(op, _Residual):
            yield from _convs(op.body)
            if op.last is not None:
                yield op.last


class FoldedDwsCNN:
    """The layer list of one DwsCNN, folded into plain ops, plus a functional forward.

    Built from the network's :meth:`~skasc.nn.DwsCNN.layers`.  Holds only
    plain float32 tensors (picklable); the oneDNN pre-packed weights are
    built on demand by :meth:`prepare` and never pickled.
    """

    def __init__(self, module):
        self.input_shape = tuple(module.input_shape)
        shapes = []
        ops, _, _ = _fold(module.layers(), self.input_shape, False, shapes)
        # the full-resolution stage: up to the first pooling (see forward)
        cut = next((i + 1 for i, op in enumerate(ops) if isinstance(op, _MaxPool)), len(ops))
        self.stage1_ops, self.stage2_ops = ops[:cut], ops[cut:]
        self._act_bytes = 4 * max(math.prod(s) for s in shapes)
        self._packed = None

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_packed"] = None
        return state

    @property
    def act_bytes(self):
        """Bytes of one clip's largest (full-resolution) feature map."""
        return self._act_bytes

    # -- forward ------------------------------------------------------------
    def forward(self, x, fused=False, split=None):
        """Logits of ``x`` (n, C, F, T), a float32 channels-last tensor.

        With ``split`` the full-resolution stage (the layers up to the first
        max-pooling) runs on slices of ``split`` clips, whose feature maps
        stay in cache, and the rest on all ``n`` clips at once, where larger
        batches amortise the per-operator overhead.
        """
        if fused and self._packed is None:
            raise RuntimeError("call prepare() before forward(fused=True)")
        packed = self._packed if fused else None
        if split and split < len(x):
            h = torch.cat([self._stage1(x[s:s + split], packed)
                           for s in range(0, len(x), split)])
            if h.dim() == 4:
                h = h.contiguous(memory_format=_CL)
        else:
            h = self._stage1(x, packed)
        return self._stage2(h, packed)

    def _stage1(self, x, packed):
        for op in self.stage1_ops:
            x = op(x, packed)
        return x

    def _stage2(self, h, packed):
        for op in self.stage2_ops:
            h = op(h, packed)
        return h

    def prepare(self, chunk):
        """Pre-pack the convolution weights for oneDNN (not picklable)."""
        reorder = torch.ops.mkldnn._reorder_convolution_weight
        self._packed = {
            op.key: reorder(op.w, op.padding, op.stride, op.dilation, op.groups,
                            [chunk, *op.in_shape])
            for op in _convs(self.stage1_ops + self.stage2_ops)}
