"""Tests for skasc.complexity: DCASE 2023 Task 1 parameter / MAC counting."""

import json

import numpy as np
import pytest
import torch
import torchinfo
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from torch import nn

from skasc.complexity import (
    BYTES_PER_PARAM,
    MAC_LIMIT,
    PARAM_MEMORY_LIMIT_BYTES,
    LayerComplexity,
    complexity_report,
    count_params_macs,
)
from skasc.nn import DwsCNN

# Table 1 at hidden=18 on 1x256x51: (name, type, output shape, params, MACs).
TABLE1 = [
    ("input_conv", "Conv2d", (18, 256, 51), 900, 11_750_400),
    ("dw1", "DwBlock", (18, 256, 51), 1_044, 12_690_504),
    ("pool1", "MaxPool2d", (18, 51, 10), 0, 0),
    ("dw2_conv", "Conv2d", (18, 51, 10), 8_118, 4_140_180),
    ("dw2", "DwBlock", (18, 51, 10), 1_044, 495_792),
    ("dw3", "DwBlock", (18, 51, 10), 1_044, 495_792),
    ("pool2", "MaxPool2d", (18, 5, 2), 0, 0),
    ("flatten", "Flatten", (180,), 0, 0),
    ("fc1", "Linear", (100,), 18_100, 18_100),
    ("act", "ReLU", (100,), 0, 0),
    ("fc2", "Linear", (10,), 1_010, 1_010),
]


@pytest.fixture(scope="module")
def student_report():
    return complexity_report(DwsCNN(hidden=18))


# ---------------------------------------------------------------------------
# the paper's figures
# ---------------------------------------------------------------------------


def test_student_totals(student_report):
    assert student_report.total_params == 31_260
    assert student_report.total_macs == 29_591_778
    assert student_report.input_shape == (1, 256, 51)
    assert count_params_macs(DwsCNN(hidden=18), (1, 256, 51)) == (31_260, 29_591_778)


def test_student_rows(student_report):
    rows = [(r.name, r.type, r.output_shape, r.params, r.macs) for r in student_report.rows]
    assert rows == TABLE1
    assert sum(r.params for r in student_report.rows) == student_report.total_params
    assert sum(r.macs for r in student_report.rows) == student_report.total_macs


def test_children_rows(student_report):
    children = [layer for layer in student_report.layers if layer.name.startswith("dw1.")]
    assert [c.name for c in children] == [
        "dw1.bn1", "dw1.relu1", "dw1.dw_conv1", "dw1.pw_conv1",
        "dw1.bn2", "dw1.relu2", "dw1.dw_conv2", "dw1.pw_conv2",
    ]
    assert all(c.depth == 2 and c.is_leaf for c in children)
    by_name = {c.name: c for c in children}
    assert by_name["dw1.bn1"].macs == 36  # BatchNorm counted: 2 * C
    assert by_name["dw1.dw_conv1"].macs == 162 * 256 * 51
    assert by_name["dw1.pw_conv1"].macs == 324 * 256 * 51
    assert sum(c.params for c in children) == 1_044
    assert sum(c.macs for c in children) == 12_690_504
    leaves = [layer for layer in student_report.layers if layer.is_leaf]
    assert sum(layer.macs for layer in leaves) == student_report.total_macs
    assert sum(layer.params for layer in leaves) == student_report.total_params


def test_teacher_totals():
    report = complexity_report(DwsCNN(hidden=256))
    assert report.total_params == 2_318_678
    assert report.total_macs == 2_912_923_222
    assert not report.within_mac_limit and not report.within_param_limit


# ---------------------------------------------------------------------------
# parity with torchinfo (the DCASE tool)
# ---------------------------------------------------------------------------


def _torchinfo_totals(model, input_shape):
    # the DCASE tool's call, as NeSsi / the 2024 baseline make it
    stats = torchinfo.summary(model, input_size=(1, *input_shape), verbose=0, device="cpu")
    return stats.total_params, stats.total_mult_adds


def test_counts_with_torchinfo_quietly(monkeypatch, capsys):
    net = DwsCNN(hidden=4, input_shape=(1, 16, 16))
    expected = _torchinfo_totals(net, (1, 16, 16))
    calls = []
    real = torchinfo.summary

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(torchinfo, "summary", spy)
    assert count_params_macs(net, (1, 16, 16)) == expected
    assert len(calls) == 1 and calls[0]["verbose"] == 0
    assert capsys.readouterr().out == ""


def test_counting_never_moves_the_module(monkeypatch):
    # torchinfo given only input_size moves the model to CUDA when it is
    # available; counting must run where the module lives and leave it there.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    net = DwsCNN(hidden=4, input_shape=(1, 16, 16))
    assert count_params_macs(net, (1, 16, 16))[0] == sum(p.numel() for p in net.parameters())
    assert all(p.device.type == "cpu" for p in net.parameters())


@pytest.mark.parametrize("input_shape", [(1, 256, 51), (1, 64, 26)])
@pytest.mark.parametrize("hidden", [8, 18, 32, 64, 256])
def test_matches_torchinfo_dwscnn(hidden, input_shape):
    net = DwsCNN(hidden=hidden, input_shape=input_shape)
    expected = _torchinfo_totals(net, input_shape)
    assert count_params_macs(net, input_shape) == expected
    report = complexity_report(net)
    assert (report.total_params, report.total_macs) == expected


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_classes": 3, "hidden": 12, "input_shape": (2, 40, 21)},
        {"hidden": 18, "input_shape": (1, 1, 10), "activation_between_linears": None},
        {"hidden": 5, "input_shape": (3, 8, 8), "linear_hidden": 7},
    ],
)
def test_matches_torchinfo_variants(kwargs):
    net = DwsCNN(**kwargs)
    assert count_params_macs(net, net.input_shape) == _torchinfo_totals(net, net.input_shape)


class _Generic(nn.Module):
    """Odd corners: a parameter owned by the root, a reused layer, 1-d conv."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))
        self.conv = nn.Conv2d(2, 4, 3, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.shared = nn.Conv2d(4, 4, 1)
        self.pool = nn.AdaptiveAvgPool2d((3, 1))
        self.conv1d = nn.Conv1d(4, 6, 2)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.GELU(), nn.Linear(5, 2))

    def forward(self, x):
        x = torch.relu(self.bn(self.conv(x))) * self.scale
        x = self.shared(self.shared(x))  # called twice: params once, MACs twice
        x = self.pool(x).squeeze(-1)
        return self.head(self.conv1d(x))


def test_matches_torchinfo_generic_module():
    torch.manual_seed(0)
    model = _Generic()
    params, macs = count_params_macs(model, (2, 17, 12))
    assert (params, macs) == _torchinfo_totals(model, (2, 17, 12))
    assert params == sum(p.numel() for p in model.parameters())


def test_matches_torchinfo_pruned():
    from torch.nn.utils import prune

    net = DwsCNN(hidden=8, input_shape=(1, 32, 20))
    prune.l1_unstructured(net.fc1, "weight", amount=0.5)
    prune.l1_unstructured(net.dw2_conv, "weight", amount=0.25)
    params, macs = count_params_macs(net, (1, 32, 20))
    assert (params, macs) == _torchinfo_totals(net, (1, 32, 20))
    assert params < sum(p.numel() for p in net.parameters())


class _WithList(nn.Module):
    """Layers in a ModuleList, which is never called itself."""

    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([nn.Conv2d(2, 2, 3, padding=1) for _ in range(2)])
        self.seq = nn.Sequential(nn.Conv2d(2, 3, 1), nn.BatchNorm2d(3))

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return self.seq(x)


def test_uncalled_container_rolls_up():
    report = complexity_report(_WithList(), input_shape=(2, 6, 6))
    rows = [(r.name, r.output_shape, r.params, r.macs) for r in report.rows]
    assert rows == [("blocks", (), 76, 2 * 38 * 36), ("seq", (3, 6, 6), 15, 9 * 36 + 6)]
    assert (report.total_params, report.total_macs) == _torchinfo_totals(_WithList(), (2, 6, 6))
    line = next(x for x in str(report).splitlines() if x.startswith("blocks"))
    assert line.split() == ["blocks", "ModuleList", "-", "76", "2,736"]
    assert [r.depth for r in report.layers if r.name.startswith("blocks.")] == [2, 2]


def test_leaf_module_root():
    report = complexity_report(nn.Conv2d(1, 3, 3, padding=1), input_shape=(1, 5, 4))
    assert [r.name for r in report.rows] == ["Conv2d"]
    assert report.total_params == 30
    assert report.total_macs == 30 * 5 * 4


def test_counting_restores_state_and_removes_hooks():
    net = DwsCNN(hidden=4, input_shape=(1, 16, 16))
    net.train()
    net.dw1.eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    complexity_report(net)
    assert net.training and not net.dw1.training and net.dw2.training
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN stats untouched


# ---------------------------------------------------------------------------
# memory and limits
# ---------------------------------------------------------------------------


def test_param_bytes(student_report):
    assert student_report.param_bytes == {"float32": 125_040, "float16": 62_520, "int8": 31_260}
    assert BYTES_PER_PARAM == {"float32": 4, "float16": 2, "int8": 1}


def test_limit_constants(student_report):
    assert MAC_LIMIT == 30_000_000
    assert PARAM_MEMORY_LIMIT_BYTES == 128_000
    assert student_report.max_params("float32") == 32_000
    assert student_report.max_params("fp16") == 64_000
    assert student_report.max_params(torch.int8) == 128_000


def test_hidden18_fits(student_report):
    assert student_report.within_mac_limit
    assert student_report.within_param_limit
    for dtype in ("float32", "float16", "int8", torch.float16, np.float32, "half"):
        assert student_report.fits_limits(dtype)


def test_hidden17_fits():
    report = complexity_report(DwsCNN(hidden=17))
    assert (report.total_params, report.total_macs) == (29_058, 27_252_518)
    assert report.fits_limits("float32")


@pytest.mark.parametrize(
    "hidden, params, macs", [(19, 33_524, 32_012_842), (20, 35_850, 34_515_710)]
)
def test_hidden19_20_exceed(hidden, params, macs):
    report = complexity_report(DwsCNN(hidden=hidden))
    assert (report.total_params, report.total_macs) == (params, macs)
    assert not report.within_mac_limit  # > 30 M MACs
    assert not report.within_param_limit  # float32 bytes > 128,000 (and > 131,072)
    assert report.param_bytes["float32"] > 131_072
    assert report.param_bytes["float16"] <= PARAM_MEMORY_LIMIT_BYTES  # memory ok at fp16 ...
    for dtype in BYTES_PER_PARAM:
        assert not report.fits_limits(dtype)  # ... but the MACs never fit


def test_custom_limits():
    report = complexity_report(DwsCNN(hidden=18), param_limit_bytes=131_072, mac_limit=29_000_000)
    assert report.param_limit_bytes == 131_072
    assert report.max_params() == 32_768
    assert report.within_param_limit and not report.within_mac_limit
    assert not report.fits_limits()
    assert report.to_dict()["limits"] == {"param_memory_bytes": 131_072, "macs": 29_000_000}


def test_bad_dtype(student_report):
    with pytest.raises(ValueError, match="dtype"):
        student_report.fits_limits("int4")


# ---------------------------------------------------------------------------
# output formats
# ---------------------------------------------------------------------------


def test_str_contains_rows(student_report):
    text = str(student_report)
    for name, typ, *_ in TABLE1:
        assert name in text and typ in text
    for s in ("(18, 256, 51)", "(18, 51, 10)", "(18, 5, 2)", "18,100", "1,010", "8,118",
              "31,260", "29,591,778", "11,750,400", "125,040", "128,000", "30,000,000"):
        assert s in text
    assert text.count("PASS") == 4 and "FAIL" not in text
    lines = text.splitlines()
    row = next(line for line in lines if line.startswith("dw2_conv"))
    assert row.split() == ["dw2_conv", "Conv2d", "(18,", "51,", "10)", "8,118", "4,140,180"]
    assert "dw1.pw_conv1" not in text
    assert "dw1.pw_conv1" in student_report.to_string(show_children=True)


def test_str_fail_lines():
    text = str(complexity_report(DwsCNN(hidden=20)))
    assert text.count("FAIL") == 2  # MACs and float32 memory
    assert text.count("PASS") == 2  # float16 and int8 memory


def test_markdown(student_report):
    md = student_report.to_markdown()
    assert "| input_conv | Conv2d | (18, 256, 51) | 900 | 11,750,400 |" in md
    assert "| pool1 | MaxPool2d | (18, 51, 10) | - | - |" in md
    assert "**31,260**" in md and "**29,591,778**" in md
    assert "| MACs | 29,591,778 | 30,000,000 | PASS |" in md
    assert "dw1.bn1" in student_report.to_markdown(show_children=True)


def test_to_dict_json(student_report):
    d = student_report.to_dict()
    d2 = json.loads(json.dumps(d))
    assert d2 == d
    assert d["total_params"] == 31_260 and d["total_macs"] == 29_591_778
    assert d["input_shape"] == [1, 256, 51]
    assert d["param_bytes"] == {"float32": 125_040, "float16": 62_520, "int8": 31_260}
    assert d["within_mac_limit"] is True
    assert d["fits_limits"] == {"float32": True, "float16": True, "int8": True}
    top = [layer for layer in d["layers"] if layer["depth"] == 1]
    assert [(x["name"], x["params"], x["macs"]) for x in top] == [
        (n, p, m) for n, _, _, p, m in TABLE1
    ]
    assert json.loads(student_report.to_json())["model"] == "DwsCNN"


def test_repr(student_report):
    assert repr(student_report) == (
        "ComplexityReport(model='DwsCNN', input_shape=(1, 256, 51), total_params=31260, "
        "total_macs=29591778)")
    assert student_report.rows[0] == LayerComplexity(
        name="input_conv", type="Conv2d", output_shape=(18, 256, 51), params=900,
        macs=11_750_400, depth=1, is_leaf=True)


# ---------------------------------------------------------------------------
# inputs: modules, estimators, pipelines, ensembles, errors
# ---------------------------------------------------------------------------


class TinyNetClassifier(ClassifierMixin, BaseEstimator):
    """Stand-in for a skasc neural classifier: sets module_ / input_shape_ in fit."""

    def __init__(self, hidden=4):
        self.hidden = hidden

    def fit(self, X, y):
        X = np.asarray(X, dtype=np.float32)
        self.classes_ = np.unique(y)
        self.input_shape_ = tuple(X.shape[1:])
        self.module_ = DwsCNN(
            n_classes=len(self.classes_), hidden=self.hidden, input_shape=self.input_shape_
        )
        return self


class ToMaps(TransformerMixin, BaseEstimator):
    """Reshape flat features (n, C*F*T) to (n, C, F, T)."""

    def __init__(self, shape=(1, 8, 6)):
        self.shape = shape

    def fit(self, X, y=None):
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def transform(self, X):
        return np.asarray(X, dtype=np.float32).reshape(-1, *self.shape)


class TinyEnsemble(ClassifierMixin, BaseEstimator):
    """Stand-in for EnsembleTeacher: a list of fitted members in estimators_."""

    def __init__(self, hiddens=(4, 6)):
        self.hiddens = hiddens

    def fit(self, X, y):
        self.estimators_ = [TinyNetClassifier(h).fit(X, y) for h in self.hiddens]
        return self


@pytest.fixture(scope="module")
def toy_data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(12, 1, 8, 6)).astype(np.float32), np.arange(12) % 3


def test_fitted_estimator(toy_data):
    X, y = toy_data
    clf = TinyNetClassifier(hidden=5).fit(X, y)
    report = complexity_report(clf)
    assert report.input_shape == (1, 8, 6)
    assert (report.total_params, report.total_macs) == count_params_macs(clf.module_, (1, 8, 6))
    assert "TinyNetClassifier" in report.model_name


def test_unfitted_estimator_raises():
    with pytest.raises(NotFittedError):
        complexity_report(TinyNetClassifier())


def test_pipeline_last_step(toy_data):
    X, y = toy_data
    pipe = make_pipeline(ToMaps((1, 8, 6)), TinyNetClassifier(hidden=6)).fit(X.reshape(12, -1), y)
    report = complexity_report(pipe)
    net = pipe[-1].module_
    assert (report.total_params, report.total_macs) == count_params_macs(net, (1, 8, 6))
    assert [r.name for r in report.rows][:2] == ["input_conv", "dw1"]


def test_pipeline_unfitted_last_step_raises():
    pipe = Pipeline([("maps", ToMaps()), ("net", TinyNetClassifier())])
    with pytest.raises(NotFittedError, match="'net'.*not fitted"):
        complexity_report(pipe)


def test_pipeline_last_step_without_module_raises(toy_data):
    X, y = toy_data
    pipe = make_pipeline(LogisticRegression(max_iter=50)).fit(X.reshape(12, -1), y)
    with pytest.raises(TypeError, match="module_"):
        complexity_report(pipe)


def test_pipeline_passthrough_last_step_raises(toy_data):
    pipe = Pipeline([("maps", ToMaps()), ("net", "passthrough")])
    with pytest.raises(TypeError, match="last step"):
        complexity_report(pipe)


def test_ensemble_sums_members(toy_data):
    X, y = toy_data
    ens = TinyEnsemble(hiddens=(4, 6, 18)).fit(X, y)
    report = complexity_report(ens)
    singles = [count_params_macs(m.module_, (1, 8, 6)) for m in ens.estimators_]
    assert report.total_params == sum(p for p, _ in singles)
    assert report.total_macs == sum(m for _, m in singles)
    assert len(report.members) == 3
    assert [r.name for r in report.rows] == ["estimators_[0]", "estimators_[1]", "estimators_[2]"]
    assert report.input_shape == (1, 8, 6)
    assert "estimators_[2].dw1" in report.to_string(show_children=True)
    json.dumps(report.to_dict())


def test_unfitted_ensemble_raises():
    with pytest.raises(NotFittedError):
        complexity_report(TinyEnsemble())


def test_fitted_non_neural_estimator_raises(toy_data):
    X, y = toy_data
    lr = LogisticRegression(max_iter=50).fit(X.reshape(12, -1), y)
    with pytest.raises(TypeError, match="module_"):
        complexity_report(lr)


def test_non_estimator_raises():
    with pytest.raises(TypeError):
        complexity_report("DwsCNN")


@pytest.mark.parametrize(
    "bad", [(256, 51), (1, 0, 51), (1, 256, 51, 1), (1, 256.0, 51), "1x256x51", 7, (True, 2, 3)]
)
def test_bad_input_shape(bad):
    with pytest.raises(ValueError, match="input_shape"):
        complexity_report(DwsCNN(hidden=4), input_shape=bad)
    with pytest.raises(ValueError, match="input_shape"):
        count_params_macs(DwsCNN(hidden=4), bad)


def test_module_without_input_shape_raises():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
    with pytest.raises(ValueError, match="input_shape is required"):
        complexity_report(model)
    assert complexity_report(model, input_shape=(1, 5, 5)).total_macs == 20 * 9


def test_input_shape_incompatible_with_module_raises():
    with pytest.raises(ValueError, match="Could not run"):
        complexity_report(DwsCNN(hidden=4), input_shape=(1, 64, 26))


def test_count_params_macs_requires_module():
    with pytest.raises(TypeError):
        count_params_macs(TinyNetClassifier(), (1, 8, 6))
