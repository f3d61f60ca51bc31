"""Tests for skasc.nn: the Table 1 network of the seed paper."""

import pytest
import torch
from torch import nn

from skasc.nn import DwBlock, DwsCNN

# Table 1 of the seed paper at hidden=18 on 1x256x51 (SPEC.md "Network").
TABLE1 = [
    # (submodule, type, params, output shape without batch)
    ("input_conv", nn.Conv2d, 900, (18, 256, 51)),
    ("dw1", DwBlock, 1044, (18, 256, 51)),
    ("pool1", nn.MaxPool2d, 0, (18, 51, 10)),
    ("dw2_conv", nn.Conv2d, 8118, (18, 51, 10)),
    ("dw2", DwBlock, 1044, (18, 51, 10)),
    ("dw3", DwBlock, 1044, (18, 51, 10)),
    ("pool2", nn.MaxPool2d, 0, (18, 5, 2)),
    ("flatten", nn.Flatten, 0, (180,)),
    ("fc1", nn.Linear, 18100, (100,)),
    ("act", nn.ReLU, 0, (100,)),
    ("fc2", nn.Linear, 1010, (10,)),
]


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def output_shapes(net, x):
    shapes = {}
    hooks = [
        getattr(net, name).register_forward_hook(
            lambda m, i, o, name=name: shapes.__setitem__(name, tuple(o.shape[1:]))
        )
        for name, *_ in TABLE1
    ]
    try:
        with torch.no_grad():
            net.eval()(x)
    finally:
        for h in hooks:
            h.remove()
    return shapes


@pytest.fixture(scope="module")
def student():
    torch.manual_seed(0)
    return DwsCNN()


def test_children_follow_table1_order(student):
    assert [name for name, _ in student.named_children()] == [r[0] for r in TABLE1]


@pytest.mark.parametrize("name, typ, params, shape", TABLE1, ids=[r[0] for r in TABLE1])
def test_table1_row(student, name, typ, params, shape):
    layer = getattr(student, name)
    assert type(layer) is typ
    assert n_params(layer) == params
    shapes = output_shapes(student, torch.zeros(1, 1, 256, 51))
    assert shapes[name] == shape


def test_table1_total(student):
    assert n_params(student) == 31_260


def test_teacher_total():
    assert n_params(DwsCNN(hidden=256)) == 2_318_678


def test_layer_hyperparameters(student):
    assert student.input_conv.kernel_size == (7, 7)
    assert student.input_conv.padding == (3, 3)
    assert student.input_conv.bias is not None
    assert student.dw2_conv.kernel_size == (5, 5)
    assert student.dw2_conv.padding == (2, 2)
    assert student.dw2_conv.bias is not None
    assert student.pool1.kernel_size == (5, 5) and student.pool1.stride == (5, 5)
    assert student.pool2.kernel_size == (10, 4) and student.pool2.stride == (10, 4)
    assert student.pool1_kernel == (5, 5) and student.pool2_kernel == (10, 4)
    assert student.flat_features == 180
    assert (student.fc1.in_features, student.fc1.out_features) == (180, 100)
    assert (student.fc2.in_features, student.fc2.out_features) == (100, 10)


def test_dwblock_structure():
    block = DwBlock(18)
    assert n_params(block) == 1044 == 2 * (2 * 18 + 9 * 18 + 18 * 18)
    names = [n for n, _ in block.named_children()]
    assert names == [
        "bn1", "relu1", "dw_conv1", "pw_conv1", "bn2", "relu2", "dw_conv2", "pw_conv2"
    ]
    for dw in (block.dw_conv1, block.dw_conv2):
        assert dw.groups == 18 and dw.kernel_size == (3, 3) and dw.padding == (1, 1)
        assert dw.bias is None
    for pw in (block.pw_conv1, block.pw_conv2):
        assert pw.kernel_size == (1, 1) and pw.bias is None
    assert isinstance(block.bn1, nn.BatchNorm2d) and isinstance(block.relu1, nn.ReLU)


def test_dwblock_residual_identity_when_last_pointwise_zero():
    torch.manual_seed(0)
    block = DwBlock(6).eval()
    x = torch.randn(2, 6, 9, 7)
    with torch.no_grad():
        assert not torch.allclose(block(x), x)
        block.pw_conv2.weight.zero_()
        out = block(x)
    torch.testing.assert_close(out, x, rtol=0, atol=0)


def test_dwblock_residual_adds_input():
    torch.manual_seed(1)
    block = DwBlock(4).eval()
    x = torch.randn(3, 4, 5, 5)
    with torch.no_grad():
        units = block.pw_conv2(block.dw_conv2(block.relu2(block.bn2(
            block.pw_conv1(block.dw_conv1(block.relu1(block.bn1(x))))))))
        torch.testing.assert_close(block(x), x + units)


@pytest.mark.parametrize("train", [False, True])
def test_forward_batch_finite(student, train):
    torch.manual_seed(0)
    x = torch.randn(5, 1, 256, 51)
    student.train(train)
    with torch.no_grad():
        out = student(x)
    student.eval()
    assert out.shape == (5, 10)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_backward_reaches_all_parameters():
    torch.manual_seed(0)
    net = DwsCNN(n_classes=4, hidden=6, input_shape=(1, 32, 16))
    loss = nn.functional.cross_entropy(net(torch.randn(3, 1, 32, 16)), torch.tensor([0, 1, 3]))
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_channels_last_matches(student):
    torch.manual_seed(0)
    x = torch.randn(3, 1, 256, 51)
    net = student.eval()
    with torch.no_grad():
        ref = net(x)
        out = net(x.contiguous(memory_format=torch.channels_last))
        net_cl = DwsCNN().eval()
        net_cl.load_state_dict(net.state_dict())
        net_cl = net_cl.to(memory_format=torch.channels_last)
        out2 = net_cl(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out2, ref, rtol=1e-5, atol=1e-5)


def test_channels_last_multichannel_small():
    torch.manual_seed(0)
    net = DwsCNN(n_classes=5, hidden=8, input_shape=(3, 40, 21)).eval()
    x = torch.randn(4, 3, 40, 21)
    with torch.no_grad():
        torch.testing.assert_close(
            net(x.contiguous(memory_format=torch.channels_last)), net(x),
            rtol=1e-5, atol=1e-5,
        )


@pytest.mark.parametrize(
    "input_shape, pool1, pool2, flat",
    [
        ((1, 1, 10), (1, 5), (1, 2), 18),
        ((1, 8, 8), (5, 5), (1, 1), 18),
        ((1, 1, 1), (1, 1), (1, 1), 18),
        ((1, 64, 26), (5, 5), (10, 4), 18 * 1 * 1),
        ((1, 256, 51), (5, 5), (10, 4), 180),
    ],
)
def test_small_inputs_clamp_pooling(input_shape, pool1, pool2, flat):
    net = DwsCNN(n_classes=3, input_shape=input_shape)
    assert net.pool1_kernel == pool1
    assert net.pool2_kernel == pool2
    assert net.flat_features == flat
    with torch.no_grad():
        out = net.eval()(torch.randn(2, *input_shape))
    assert out.shape == (2, 3)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("n_classes, channels", [(2, 1), (7, 2), (10, 3), (1, 1)])
def test_n_classes_and_input_channels(n_classes, channels):
    net = DwsCNN(n_classes=n_classes, hidden=8, input_shape=(channels, 32, 20))
    assert net.input_conv.in_channels == channels
    assert n_params(net.input_conv) == channels * 8 * 49 + 8
    assert net.fc2.out_features == n_classes
    with torch.no_grad():
        out = net.eval()(torch.randn(3, channels, 32, 20))
    assert out.shape == (3, n_classes)


def test_linear_hidden_width():
    net = DwsCNN(linear_hidden=32)
    assert net.fc1.out_features == 32 and net.fc2.in_features == 32
    assert n_params(net) == 31_260 - 18_100 - 1_010 + (180 * 32 + 32) + (32 * 10 + 10)


@pytest.mark.parametrize("act", [None, "identity", "none", "IDENTITY"])
def test_activation_between_linears_identity(act):
    torch.manual_seed(0)
    net = DwsCNN(hidden=4, input_shape=(1, 16, 16), activation_between_linears=act)
    assert isinstance(net.act, nn.Identity)
    assert n_params(net) == n_params(DwsCNN(hidden=4, input_shape=(1, 16, 16)))
    x = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        net.eval()
        feats = net.pool2(net.dw3(net.dw2(net.dw2_conv(net.pool1(net.dw1(net.input_conv(x)))))))
        expected = net.fc2(net.fc1(net.flatten(feats)))
        torch.testing.assert_close(net(x), expected)


def test_default_activation_is_relu(student):
    assert isinstance(student.act, nn.ReLU)
    assert student.activation_between_linears == "relu"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_classes": 0},
        {"hidden": 0},
        {"hidden": 2.5},
        {"hidden": True},
        {"linear_hidden": -1},
        {"input_shape": (256, 51)},
        {"input_shape": (1, 0, 51)},
        {"input_shape": (1, 256, 51.0)},
        {"input_shape": 5},
        {"activation_between_linears": "tanh-ish"},
    ],
)
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError):
        DwsCNN(**kwargs)


def test_wrong_input_shape_raises(student):
    with pytest.raises(ValueError, match="expects input of shape"):
        student(torch.zeros(2, 1, 128, 51))
    with pytest.raises(ValueError, match="expects input of shape"):
        student(torch.zeros(1, 256, 51))


@pytest.mark.parametrize("bad", [b"\x01\x08\x08", "abc", "1x256x51"])
def test_input_shape_rejects_bytes_and_strings(bad):
    # bytes iterate to ints: b"\x01\x08\x08" must not pass as (1, 8, 8)
    with pytest.raises(ValueError, match="input_shape must be a sequence .* without the batch"):
        DwsCNN(input_shape=bad)


def test_numpy_int_input_shape():
    np = pytest.importorskip("numpy")
    net = DwsCNN(input_shape=np.array([1, 256, 51]))
    assert net.input_shape == (1, 256, 51)
    assert all(type(s) is int for s in net.input_shape)
