"""PyTorch modules of the depthwise-separable CNN (DCASE 2023 Task 1).

This module implements the network of Table 1 of the seed technical report
("Low-Complexity Acoustic Scene Classification Based on Depthwise Separable
CNN", DCASE 2023 Task 1) exactly:

==========  ===========================  =========  ================
part        layer (submodule name)       params     output shape
==========  ===========================  =========  ================
Input       Conv 7x7 (``input_conv``)    900        (18, 256, 51)
DW1         DwBlock (``dw1``)            1,044      (18, 256, 51)
            MaxPool 5x5 (``pool1``)      --         (18, 51, 10)
DW2         Conv 5x5 (``dw2_conv``)      8,118      (18, 51, 10)
            DwBlock (``dw2``)            1,044      (18, 51, 10)
DW3         DwBlock (``dw3``)            1,044      (18, 51, 10)
            MaxPool 10x4 (``pool2``)     --         (18, 5, 2)
Output      Flatten (``flatten``)        --         180
            Linear (``fc1``)             18,100     100
            activation (``act``)         --         100
            Linear (``fc2``)             1,010      10
==========  ===========================  =========  ================

Total: 31,260 parameters at ``hidden=18`` (2,318,678 at ``hidden=256``, the
paper's teacher size).

The order of the layers is written once, in :attr:`DwsCNN.LAYERS` (and
:attr:`DwBlock.LAYERS` inside a block): :meth:`DwsCNN.layers` turns it into
the layer specs of :mod:`skasc._layers`, which the network's ``forward``,
the fast CPU predictor and the ONNX export all walk.
"""

from __future__ import annotations

from numbers import Integral

import torch
from torch import nn

from ._layers import Residual, Standardize, describe, run_layers

__all__ = ["DwBlock", "DwsCNN"]

#: Kernel (= stride) of the first max-pooling layer in Table 1.
POOL1_KERNEL = (5, 5)
#: Kernel (= stride) of the second max-pooling layer in Table 1.
POOL2_KERNEL = (10, 4)

_ACTIVATIONS = {
    "relu": nn.ReLU,
    "identity": nn.Identity,
    "none": nn.Identity,
}


def _check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def check_input_shape(input_shape):
    """Validate the shape ``(C, F, T)`` of one example; return it as a tuple of ints.

    Shared by the network and :mod:`skasc.complexity`.
    """
    shape = None
    # str and bytes iterate too (b"\x01\x08\x08" would read as (1, 8, 8))
    if not isinstance(input_shape, (str, bytes)):
        try:
            shape = tuple(input_shape)
        except TypeError:
            pass
    if shape is None or len(shape) != 3 or not all(
        isinstance(s, Integral) and not isinstance(s, bool) and s >= 1 for s in shape
    ):
        raise ValueError(
            "input_shape must be a sequence (C, F, T) of 3 positive integers "
            "(channels, frequency bands, time frames) without the batch "
            f"dimension, got {input_shape!r}."
        )
    return tuple(int(s) for s in shape)


def _clamp_kernel(kernel, size):
    """Clamp a pooling kernel to the feature-map size, dimension by dimension."""
    return tuple(min(k, s) for k, s in zip(kernel, size))


def _pooled(size, kernel):
    """Output size of a max-pooling with ``stride == kernel`` and no padding."""
    return tuple(s // k for s, k in zip(size, kernel))


def _describe(name, module):
    """The layer spec of a submodule: a :class:`DwBlock` is a residual block."""
    if isinstance(module, DwBlock) and type(module).forward is DwBlock.forward:
        return Residual(name, module)
    return describe(name, module)


class DwBlock(nn.Module):
    """Residual depthwise-separable block of the seed paper (its Figure 1).

    Two units of BatchNorm -> ReLU -> depthwise 3x3 convolution -> pointwise
    1x1 convolution (both convolutions without bias), with a residual
    connection adding the block's input to the output of the second unit::

        y = x + pw_conv2(dw_conv2(relu2(bn2(pw_conv1(dw_conv1(relu1(bn1(x))))))))

    The block keeps the number of channels and the spatial size.  It has
    ``2 * (2*C + 9*C + C*C)`` parameters, i.e. 1,044 at ``C = 18``.

    Parameters
    ----------
    channels : int
        Number of input (and output) channels ``C``.

    Attributes
    ----------
    LAYERS : tuple of str
        Class attribute: the submodules of the two units, in the order
        ``forward`` applies them before adding the residual.
    bn1, bn2 : torch.nn.BatchNorm2d
        Batch normalisations opening each unit.
    relu1, relu2 : torch.nn.ReLU
        Activations after each batch normalisation.
    dw_conv1, dw_conv2 : torch.nn.Conv2d
        Depthwise 3x3 convolutions (``groups=channels``, padding 1, no bias).
    pw_conv1, pw_conv2 : torch.nn.Conv2d
        Pointwise 1x1 convolutions (no bias).

    Examples
    --------
    >>> import torch
    >>> from skasc.nn import DwBlock
    >>> block = DwBlock(18)
    >>> sum(p.numel() for p in block.parameters())
    1044
    >>> block(torch.zeros(2, 18, 51, 10)).shape
    torch.Size([2, 18, 51, 10])
    """

    #: The two units, in order (see :meth:`layers`).
    LAYERS = ("bn1", "relu1", "dw_conv1", "pw_conv1", "bn2", "relu2", "dw_conv2", "pw_conv2")

    def __init__(self, channels):
        super().__init__()
        channels = _check_positive_int(channels, "channels")
        self.channels = channels
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu1 = nn.ReLU()
        self.dw_conv1 = nn.Conv2d(
            channels, channels, 3, padding=1, groups=channels, bias=False
        )
        self.pw_conv1 = nn.Conv2d(channels, channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu2 = nn.ReLU()
        self.dw_conv2 = nn.Conv2d(
            channels, channels, 3, padding=1, groups=channels, bias=False
        )
        self.pw_conv2 = nn.Conv2d(channels, channels, 1, bias=False)

    def forward(self, x):
        """Apply the two units and add the residual.

        Parameters
        ----------
        x : torch.Tensor of shape (N, channels, F, T)
            Input feature maps.

        Returns
        -------
        torch.Tensor of shape (N, channels, F, T)
            ``x`` plus the output of the two units.
        """
        return x + run_layers(self.layers(), x)

    def layers(self, prefix=""):
        """The two units as layer specs (:mod:`skasc._layers`), in the order of :attr:`LAYERS`.

        Parameters
        ----------
        prefix : str, default=""
            Put before each submodule name (``"dw1."`` inside a network).

        Returns
        -------
        list of skasc._layers.Layer
        """
        return [_describe(prefix + name, getattr(self, name)) for name in self.LAYERS]

    def extra_repr(self):
        return f"channels={self.channels}"


class DwsCNN(nn.Module):
    """Depthwise-separable CNN of the seed paper's Table 1.

    Layout (submodule names in brackets)::

        Conv 7x7, in->hidden, padding 3, bias  [input_conv]
        DwBlock(hidden)                        [dw1]
        MaxPool 5x5                            [pool1]
        Conv 5x5, hidden->hidden, padding 2    [dw2_conv]
        DwBlock(hidden)                        [dw2]
        DwBlock(hidden)                        [dw3]
        MaxPool 10x4                           [pool2]
        Flatten                                [flatten]
        Linear(flat, linear_hidden)            [fc1]
        activation                             [act]
        Linear(linear_hidden, n_classes)       [fc2]

    On a 1x256x51 log-mel input with ``hidden=18`` and 10 classes this gives
    exactly the paper's rows (900, 1,044, 8,118, 1,044, 1,044, 18,100 and 1,010
    parameters; 31,260 in total) and, counted as the DCASE challenge's PyTorch
    tool does (torchinfo ``total_mult_adds``), 29,591,778 multiply-accumulates
    (see :func:`skasc.complexity.complexity_report`).

    Parameters
    ----------
    n_classes : int, default=10
        Number of output logits.
    hidden : int, default=18
        Number of channels of every convolutional layer (18 for the paper's
        student, 256 for its teachers).
    input_shape : tuple of int (C, F, T), default=(1, 256, 51)
        Shape of one input example: channels, frequency bands, time frames.
        ``C`` sets the input channels of ``input_conv`` and ``(F, T)`` sets
        the pooling kernels (see Notes) and the input size of ``fc1``, so the
        network follows the data it is built for.
    linear_hidden : int, default=100
        Width of the hidden Linear layer (100 in the paper).
    activation_between_linears : {"relu", "identity"} or None, default="relu"
        Activation placed between ``fc1`` and ``fc2``.  ``"identity"`` (or
        ``None`` / ``"none"``) keeps the two Linear layers purely linear.

    Attributes
    ----------
    LAYERS : tuple of str
        Class attribute: the names of the submodules in the order of the
        forward pass (see :meth:`layers`).  A subclass adding a layer
        creates it in ``__init__`` and names it here, in its place; the
        forward pass, the fast CPU predictor and the ONNX export follow.
    input_shape : tuple of int
        The validated ``(C, F, T)``.
    pool1_kernel, pool2_kernel : tuple of int
        The pooling kernels actually used (after clamping, see Notes).
    flat_features : int
        Number of features entering ``fc1`` (180 at 1x256x51, ``hidden=18``).
    input_conv, dw1, pool1, dw2_conv, dw2, dw3, pool2, flatten, fc1, act, fc2 : torch.nn.Module
        The layers, in the order of Table 1.

    Notes
    -----
    **Activation between the Linear layers.**  The paper lists two Linear
    layers (18,100 and 1,010 parameters) and does not say whether there is a
    non-linearity between them; it changes neither the parameter count nor
    the torchinfo MAC count.  We default to ReLU: without it the two layers
    compose into a single rank-100 linear map, so ``fc1`` would add parameters
    but no modelling capacity, and ReLU is the activation used everywhere else
    in the network.  ``activation_between_linears="identity"`` gives the
    purely linear reading.

    **Pooling on small inputs.**  Both max-pooling layers use
    ``stride = kernel`` and no padding.  Each kernel dimension is clamped to
    the feature-map size it is applied to (``min(k, dim)``), so that small
    inputs, e.g. the 1x1x10 toy features of scikit-learn's estimator checks
    or 1x8x8 examples, still give a feature map of at least 1x1 instead of an
    error.  At 1x256x51 no clamping happens (256x51 -> 51x10 -> 5x2), so the
    layout is exactly Table 1.

    The forward pass accepts contiguous and ``torch.channels_last`` inputs
    and gives the same result for both.

    Examples
    --------
    >>> import torch
    >>> from skasc.nn import DwsCNN
    >>> net = DwsCNN()  # the paper's student, hidden=18 on 1x256x51
    >>> sum(p.numel() for p in net.parameters())
    31260
    >>> net.eval()(torch.zeros(4, 1, 256, 51)).shape
    torch.Size([4, 10])
    >>> teacher = DwsCNN(hidden=256)
    >>> sum(p.numel() for p in teacher.parameters())
    2318678
    >>> tiny = DwsCNN(n_classes=3, input_shape=(1, 1, 10))
    >>> tiny.pool1_kernel, tiny.pool2_kernel, tiny.flat_features
    ((1, 5), (1, 2), 18)
    """

    #: The forward pass, in the order of Table 1 (see :meth:`layers`).
    LAYERS = ("input_conv", "dw1", "pool1", "dw2_conv", "dw2", "dw3", "pool2", "flatten",
              "fc1", "act", "fc2")

    def __init__(
        self,
        n_classes=10,
        hidden=18,
        input_shape=(1, 256, 51),
        linear_hidden=100,
        activation_between_linears="relu",
    ):
        super().__init__()
        self.n_classes = _check_positive_int(n_classes, "n_classes")
        self.hidden = _check_positive_int(hidden, "hidden")
        self.input_shape = check_input_shape(input_shape)
        self.linear_hidden = _check_positive_int(linear_hidden, "linear_hidden")
        act_key = (
            "identity"
            if activation_between_linears is None
            else str(activation_between_linears).lower()
        )
        if act_key not in _ACTIVATIONS:
            raise ValueError(
                "activation_between_linears must be 'relu', 'identity' or None, "
                f"got {activation_between_linears!r}."
            )
        self.activation_between_linears = activation_between_linears

        in_channels, n_freq, n_time = self.input_shape
        size = (n_freq, n_time)  # convolutions keep the spatial size
        self.pool1_kernel = _clamp_kernel(POOL1_KERNEL, size)
        size = _pooled(size, self.pool1_kernel)
        self.pool2_kernel = _clamp_kernel(POOL2_KERNEL, size)
        size = _pooled(size, self.pool2_kernel)
        self.flat_features = self.hidden * size[0] * size[1]

        h = self.hidden
        # Input
        self.input_conv = nn.Conv2d(in_channels, h, 7, padding=3, bias=True)
        # DW1
        self.dw1 = DwBlock(h)
        self.pool1 = nn.MaxPool2d(self.pool1_kernel)
        # DW2
        self.dw2_conv = nn.Conv2d(h, h, 5, padding=2, bias=True)
        self.dw2 = DwBlock(h)
        # DW3
        self.dw3 = DwBlock(h)
        self.pool2 = nn.MaxPool2d(self.pool2_kernel)
        # Output
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(self.flat_features, self.linear_hidden)
        self.act = _ACTIVATIONS[act_key]()
        self.fc2 = nn.Linear(self.linear_hidden, self.n_classes)
        # Per-band input standardisation, fitted from the training data by
        # the classifiers.  Buffers, not parameters: they add no parameter
        # and no MAC to the Table 1 counts (a deployed model folds them into
        # its feature extraction); identity until set.
        self.register_buffer("input_mean", torch.zeros(1, in_channels, n_freq, 1))
        self.register_buffer("input_scale", torch.ones(1, in_channels, n_freq, 1))

    def set_input_normalization(self, mean, std):
        """Standardise each input band: ``x -> (x - mean) / std`` before ``input_conv``.

        ``mean`` and ``std`` have one value per band (shape ``(F,)``) or one in
        all; a zero ``std`` is treated as 1.
        """
        c, f = self.input_shape[0], self.input_shape[1]
        mean = torch.as_tensor(mean, dtype=torch.float32).reshape(-1)
        std = torch.as_tensor(std, dtype=torch.float32).reshape(-1)
        std = torch.where(std > 0, std, torch.ones_like(std))
        self.input_mean.copy_(mean.expand(f).reshape(1, 1, f, 1).expand(1, c, f, 1))
        self.input_scale.copy_((1.0 / std).expand(f).reshape(1, 1, f, 1).expand(1, c, f, 1))
        return self

    def forward(self, x):
        """Compute the class logits.

        Parameters
        ----------
        x : torch.Tensor of shape (N, C, F, T)
            Float input features with ``(C, F, T) == self.input_shape``;
            contiguous or ``torch.channels_last``.

        Returns
        -------
        torch.Tensor of shape (N, n_classes)
            Unnormalised class scores (logits).
        """
        if x.dim() != 4 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"DwsCNN expects input of shape (N, {', '.join(map(str, self.input_shape))})"
                f" (N, C, F, T), got {tuple(x.shape)}."
            )
        return run_layers(self.layers(), x)

    def layers(self):
        """The forward pass as an ordered list of layer specs (:mod:`skasc._layers`).

        The per-band input standardisation, then the submodules named in
        :attr:`LAYERS`, each described by its kind (a :class:`DwBlock` as a
        residual block whose body is its :meth:`DwBlock.layers`).  The
        network's ``forward`` applies this list; the fast CPU predictor
        (:class:`skasc._inference.FastPredictor`) and the ONNX export
        (:func:`skasc.export.export_onnx`) are built from it.

        Returns
        -------
        list of skasc._layers.Layer

        Examples
        --------
        >>> from skasc.nn import DwsCNN
        >>> DwsCNN().layers()[:4]
        [Standardize('standardize'), Conv('input_conv'), Residual('dw1'), MaxPool('pool1')]
        >>> DwsCNN().layers()[2].body[:3]
        [BatchNorm('dw1.bn1'), ReLU('dw1.relu1'), Conv('dw1.dw_conv1')]
        """
        return [Standardize("standardize", self.input_mean, self.input_scale)] + [
            _describe(name, getattr(self, name)) for name in self.LAYERS]

    def extra_repr(self):
        return (
            f"n_classes={self.n_classes}, hidden={self.hidden}, "
            f"input_shape={self.input_shape}, linear_hidden={self.linear_hidden}, "
            f"activation_between_linears={self.activation_between_linears!r}"
        )
