"""One description of the network: ``DwsCNN.layers()``.

The eager forward pass, the fast CPU predictor (its folded network) and the
ONNX graph are all built from :meth:`skasc.nn.DwsCNN.layers`, itself read
from :attr:`~skasc.nn.DwsCNN.LAYERS`.  Each network below is DwsCNN with
layers added by one edit of that list (plus creating the layers): all three
paths must follow, i.e. agree with each other *and* differ from the network
without the added layers.
"""

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from skasc import _layers
from skasc._inference import FastPredictor
from skasc._ops import is_plain_dwscnn
from skasc.nn import DwBlock, DwsCNN

# pool1 5x5 then pool2 10x4: 100x40 -> 20x8 -> 2x2 (a global pooling is not a no-op)
SHAPE = (1, 100, 40)
HIDDEN = 5


def _after(name, *added):
    i = DwsCNN.LAYERS.index(name) + 1
    return DwsCNN.LAYERS[:i] + added + DwsCNN.LAYERS[i:]


class ExtraBnRelu(DwsCNN):
    """BatchNorm + ReLU after the last block: the BatchNorm follows no convolution."""

    LAYERS = _after("dw3", "extra_bn", "extra_relu")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.extra_bn = nn.BatchNorm2d(self.hidden)
        self.extra_relu = nn.ReLU()


class ExtraConvBlock(DwsCNN):
    """A 3x1 convolution with bias, its BatchNorm (folded into it), ReLU and dropout."""

    LAYERS = _after("dw2_conv", "extra_conv", "extra_bn", "extra_relu", "extra_drop")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        h = self.hidden
        self.extra_conv = nn.Conv2d(h, h, (3, 1), padding=(1, 0), bias=True)
        self.extra_bn = nn.BatchNorm2d(h)
        self.extra_relu = nn.ReLU()
        self.extra_drop = nn.Dropout(0.3)


class ReorderedBlock(DwBlock):
    """A block whose body starts with a ReLU on the block input (which the
    residual still needs) and ends with a BatchNorm (folded into ``pw_conv2``)."""

    LAYERS = ("relu1", "dw_conv1", "pw_conv1", "bn2", "relu2", "dw_conv2", "pw_conv2", "bn1")


class ReluLastBlock(DwBlock):
    """A block whose body ends with a ReLU (no convolution to add the residual into)."""

    LAYERS = DwBlock.LAYERS + ("relu1",)


class ExtraBlocks(DwsCNN):
    """Three more residual blocks after ``dw3``."""

    LAYERS = _after("dw3", "dw4", "dw5", "dw6")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dw4 = DwBlock(self.hidden)
        self.dw5 = ReorderedBlock(self.hidden)
        self.dw6 = ReluLastBlock(self.hidden)


class GlobalPooling(DwsCNN):
    """The second max-pooling replaced by a global average pooling (``fc1`` resized)."""

    LAYERS = tuple("gap" if n == "pool2" else n for n in DwsCNN.LAYERS)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Linear(self.hidden, self.linear_hidden)


NETWORKS = [ExtraBnRelu, ExtraConvBlock, ExtraBlocks, GlobalPooling]
ADDED = {ExtraBnRelu: ["extra_bn", "extra_relu"],
         ExtraConvBlock: ["extra_conv", "extra_relu"],  # extra_bn folds into extra_conv
         ExtraBlocks: ["dw4.add", "dw5.add", "dw6.add"],
         GlobalPooling: ["gap"]}


def _build(cls, seed=0):
    """A network with random weights and BatchNorm statistics, as after training."""
    torch.manual_seed(seed)
    net = cls(n_classes=4, hidden=HIDDEN, input_shape=SHAPE)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.3)
            elif isinstance(m, nn.Conv2d) and m.bias is not None:
                m.bias.normal_(0, 0.3)
    net.set_input_normalization(torch.randn(SHAPE[1]), torch.rand(SHAPE[1]) + 0.5)
    return net.eval()


def _eager(net, x):
    with torch.inference_mode():
        return net(torch.from_numpy(x)).numpy()


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).normal(size=(7,) + SHAPE).astype(np.float32)


@pytest.fixture(scope="module")
def plain_uses_fused_kernels():
    return FastPredictor(_build(DwsCNN), SHAPE).uses_fused_kernels


def test_the_paper_network_as_a_layer_list():
    layers = DwsCNN().layers()
    assert [type(layer).__name__ for layer in layers] == [
        "Standardize", "Conv", "Residual", "MaxPool", "Conv", "Residual", "Residual",
        "MaxPool", "Flatten", "Linear", "ReLU", "Linear"]
    assert [layer.name for layer in layers[1:]] == list(DwsCNN.LAYERS)
    assert [layer.name for layer in layers[2].body] == [f"dw1.{n}" for n in DwBlock.LAYERS]
    assert type(DwsCNN(activation_between_linears=None).layers()[-2]) is _layers.Identity


@pytest.mark.parametrize("cls", NETWORKS, ids=lambda c: c.__name__)
def test_eager_forward_follows_the_list(cls, x):
    net = _build(cls)
    assert is_plain_dwscnn(net)  # the fast paths below build from the list
    got = _eager(net, x)
    net.LAYERS = DwsCNN.LAYERS  # the same modules in the paper's order
    if cls is GlobalPooling:  # fc1 does not fit the 2x2 map of pool2
        with pytest.raises(RuntimeError):
            _eager(net, x)
    else:
        assert np.abs(got - _eager(net, x)).max() > 1e-3


def test_a_blocks_forward_follows_its_list():
    torch.manual_seed(0)
    block = _build(ExtraBlocks).dw5  # a ReorderedBlock with BatchNorm statistics
    h = torch.randn(3, HIDDEN, 6, 5)
    with torch.inference_mode():
        units = block.bn1(block.pw_conv2(block.dw_conv2(block.relu2(block.bn2(
            block.pw_conv1(block.dw_conv1(block.relu1(h))))))))
        got = block(h)
        torch.testing.assert_close(got, h + units)
        block.LAYERS = DwBlock.LAYERS
        assert not torch.allclose(got, block(h))


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("cls", NETWORKS, ids=lambda c: c.__name__)
def test_fast_predictor_follows_the_list(cls, fused, x, plain_uses_fused_kernels):
    net = _build(cls)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback to running the module as it is
        fast = FastPredictor(net, SHAPE, n_threads=1, chunk_size=3, fused_kernels=fused)
    assert fast._folded is not None
    assert fast.uses_fused_kernels == (fused and plain_uses_fused_kernels)
    ref = _eager(net, x)
    np.testing.assert_allclose(fast.logits(x), ref, rtol=1e-4, atol=1e-4)
    # the folded network alone, on all clips and on slices of the full-resolution stage
    folded = fast._folded[0]
    xt = torch.from_numpy(x).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        for split in (None, 2):
            got = folded.forward(xt, fused=fast.uses_fused_kernels, split=split).numpy()
            np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("cls", NETWORKS, ids=lambda c: c.__name__)
def test_onnx_graph_follows_the_list(cls, x):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from skasc._onnx import build_model

    net = _build(cls)
    model = build_model([net], SHAPE, "logits", 17)
    names = [n.name for n in model.graph.node]
    for added in ADDED[cls]:  # its own nodes, not a torch.onnx.export of the module
        assert any(n.startswith(added) for n in names), (added, names)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, {"logmel": x})[0]
    np.testing.assert_allclose(got, _eager(net, x), rtol=1e-4, atol=1e-4)


class WithGelu(DwsCNN):
    """A layer of a kind the fast paths do not know."""

    LAYERS = _after("fc1", "gelu")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.gelu = nn.GELU()


def test_an_unknown_layer_is_left_to_eager(x):
    net = _build(WithGelu)
    assert isinstance(net.layers()[-3], _layers.Opaque)
    assert not is_plain_dwscnn(net)
    fast = FastPredictor(net, SHAPE)
    assert fast._folded is None  # runs the module as it is
    np.testing.assert_allclose(fast.logits(x), _eager(net, x), rtol=1e-5, atol=1e-5)


class WeightStandardizedConv(nn.Conv2d):
    def forward(self, x):
        w = self.weight - self.weight.mean((1, 2, 3), keepdim=True)
        return self._conv_forward(x, w, self.bias)


@pytest.mark.parametrize("module, kind", [
    (nn.Conv2d(2, 2, 3, padding=1), _layers.Conv),
    (nn.Conv2d(2, 2, 3, padding="same"), _layers.Opaque),
    (nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect"), _layers.Opaque),
    (WeightStandardizedConv(2, 2, 3), _layers.Opaque),  # its own forward
    (nn.MaxPool2d(2), _layers.MaxPool),
    (nn.MaxPool2d(3, stride=2), _layers.Opaque),
    (nn.MaxPool2d(2, ceil_mode=True), _layers.Opaque),
    (nn.AdaptiveAvgPool2d((1, 1)), _layers.GlobalAvgPool),
    (nn.AdaptiveAvgPool2d(2), _layers.Opaque),
    (nn.BatchNorm2d(2), _layers.BatchNorm),
    (nn.BatchNorm2d(2, track_running_stats=False), _layers.Opaque),
    (nn.Dropout(0.5), _layers.Identity),
    (nn.Flatten(), _layers.Flatten),
    (nn.Flatten(2), _layers.Opaque),
    (nn.Tanh(), _layers.Opaque),
])
def test_describe(module, kind):
    assert type(_layers.describe("x", module)) is kind


def test_a_block_with_its_own_forward_is_opaque():
    class Scaled(DwBlock):
        def forward(self, x):
            return 2 * super().forward(x)

    net = _build(DwsCNN)
    net.dw2 = Scaled(HIDDEN).eval()
    assert isinstance(net.layers()[5], _layers.Opaque) and not is_plain_dwscnn(net)
