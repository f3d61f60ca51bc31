"""skasc.metrics: hand-checkable cases, sklearn agreement, aggregation, errors."""

import json
import math

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, log_loss

from skasc.metrics import (
    DEVICE_GROUPS,
    dcase_log_loss,
    device_report,
    format_device_report,
    macro_accuracy,
)

# --------------------------------------------------------------------------
# macro_accuracy


def test_macro_accuracy_known_confusion():
    # confusion (rows true, cols pred) over [airport, bus, park]:
    #   airport: 3 right, 1 -> bus         recall 3/4
    #   bus:     1 right, 1 -> park        recall 1/2
    #   park:    3 right                   recall 1
    y_true = ["airport"] * 4 + ["bus"] * 2 + ["park"] * 3
    y_pred = ["airport"] * 3 + ["bus"] + ["bus", "park"] + ["park"] * 3
    expected = (3 / 4 + 1 / 2 + 1) / 3
    assert macro_accuracy(y_true, y_pred) == pytest.approx(0.75)
    # differs from the plain accuracy 7/9
    assert not math.isclose(expected, 7 / 9)
    assert macro_accuracy(y_true, y_pred) == pytest.approx(balanced_accuracy_score(y_true, y_pred))


def test_macro_accuracy_perfect_and_all_wrong():
    y = [0, 1, 2, 0]
    assert macro_accuracy(y, y) == 1.0
    assert macro_accuracy(y, [1, 2, 0, 1]) == 0.0


def test_macro_accuracy_class_missing_from_y_true_does_not_count():
    # "bus" is predicted but absent from y_true: averaged over airport, park only
    y_true = ["airport", "airport", "park", "park"]
    y_pred = ["airport", "bus", "park", "park"]
    labels = ["airport", "bus", "park"]
    assert macro_accuracy(y_true, y_pred, labels=labels) == pytest.approx((0.5 + 1.0) / 2)


def test_macro_accuracy_matches_sklearn_random():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 10, 500)
    y_pred = np.where(rng.random(500) < 0.4, y_true, rng.integers(0, 10, 500))
    assert macro_accuracy(y_true, y_pred) == pytest.approx(balanced_accuracy_score(y_true, y_pred))


# --------------------------------------------------------------------------
# dcase_log_loss


def test_log_loss_uniform_is_log_n():
    y = ["a", "b", "c", "a"]
    proba = np.full((4, 3), 1 / 3)
    assert dcase_log_loss(y, proba, labels=["a", "b", "c"]) == pytest.approx(math.log(3))


def test_log_loss_hand_computed():
    y = ["bus", "park", "park"]
    proba = [[0.8, 0.2], [0.1, 0.9], [0.4, 0.6]]
    expected = -(math.log(0.8) + math.log(0.9) + math.log(0.6)) / 3
    assert dcase_log_loss(y, proba, labels=["bus", "park"]) == pytest.approx(expected)
    # macro: bus alone -log 0.8; park: mean of -log 0.9, -log 0.6
    macro = (-math.log(0.8) + -(math.log(0.9) + math.log(0.6)) / 2) / 2
    assert dcase_log_loss(y, proba, labels=["bus", "park"], average="macro") == pytest.approx(macro)


def test_log_loss_matches_sklearn_and_column_order():
    rng = np.random.default_rng(1)
    labels = np.array(["airport", "bus", "metro", "park"])
    y = rng.choice(labels, 200)
    logits = rng.normal(size=(200, 4))
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    ours = dcase_log_loss(y, proba, labels=labels)
    assert ours == pytest.approx(log_loss(y, proba, labels=labels))
    # same numbers with the columns (and labels) permuted
    perm = [2, 0, 3, 1]
    assert dcase_log_loss(y, proba[:, perm], labels=labels[perm]) == pytest.approx(ours)
    # default labels: sorted unique of y_true
    assert dcase_log_loss(y, proba) == pytest.approx(ours)


def test_log_loss_subset_missing_classes_uses_labels():
    # one class only in y_true: sklearn needs labels; we pass them through
    y = ["bus", "bus"]
    proba = [[0.5, 0.25, 0.25], [0.25, 0.5, 0.25]]
    expected = -(math.log(0.5) + math.log(0.25)) / 2
    assert dcase_log_loss(y, proba, labels=["bus", "metro", "park"]) == pytest.approx(expected)


def test_log_loss_float32_softmax_renormalised_without_warning():
    import warnings

    rng = np.random.default_rng(2)
    z = rng.normal(size=(50, 10)).astype(np.float32)
    proba = (np.exp(z) / np.exp(z).sum(1, keepdims=True)).astype(np.float32)
    y = rng.integers(0, 10, 50)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = dcase_log_loss(y, proba, labels=np.arange(10))
    p64 = proba.astype(np.float64)
    p64 /= p64.sum(1, keepdims=True)
    assert value == pytest.approx(log_loss(y, p64, labels=np.arange(10)), rel=1e-6)


# --------------------------------------------------------------------------
# device_report


def _toy():
    """Two classes on three devices, hand-checkable."""
    y_true = np.array(["bus", "park"] * 2 + ["bus", "park"] * 2 + ["bus", "park"] * 2)
    devices = np.array(["a"] * 4 + ["s2"] * 4 + ["s5"] * 4)
    y_pred = y_true.copy()
    y_pred[5] = "bus"  # s2: park wrong once -> bus 1, park 1/2 -> 0.75
    y_pred[8] = "park"  # s5: bus wrong once
    y_pred[9] = "bus"  # s5: park wrong once -> 0.5 / 0.5 -> 0.5
    return y_true, y_pred, devices


def test_device_report_devices_and_groups():
    y_true, y_pred, devices = _toy()
    rep = device_report(y_true, y_pred, devices)
    assert list(rep["devices"]) == ["a", "s2", "s5"]
    assert rep["devices"]["a"]["accuracy"] == 1.0
    assert rep["devices"]["s2"]["accuracy"] == 0.75
    assert rep["devices"]["s5"]["accuracy"] == 0.5
    assert {k: v["n"] for k, v in rep["devices"].items()} == {"a": 4, "s2": 4, "s5": 4}
    assert list(rep["groups"]) == ["real", "seen", "unseen"]
    assert rep["groups"]["real"]["accuracy"] == 1.0
    assert rep["groups"]["seen"]["devices"] == ["s2"]
    assert rep["groups"]["unseen"]["accuracy"] == 0.5
    # overall: bus 5/6, park 4/6
    assert rep["overall"]["accuracy"] == pytest.approx((5 / 6 + 4 / 6) / 2)
    assert rep["overall"]["n"] == 12
    assert rep["classes"]["bus"] == {"accuracy": pytest.approx(5 / 6), "log_loss": None, "n": 6}
    assert rep["overall"]["log_loss"] is None
    assert rep["labels"] == ["bus", "park"]


def test_device_report_group_is_mean_of_devices():
    # group "real" with unequal device sizes: mean of device values, not pooled
    y_true = np.array(["x", "y"] * 2 + ["x", "y"] * 4 + ["x", "y"] * 2)
    devices = np.array(["a"] * 4 + ["b"] * 8 + ["c"] * 4)
    y_pred = y_true.copy()
    y_pred[4:12] = np.where(y_true[4:12] == "x", "y", "x")  # device b all wrong
    rep = device_report(y_true, y_pred, devices)
    assert [rep["devices"][d]["accuracy"] for d in "abc"] == [1.0, 0.0, 1.0]
    assert rep["groups"]["real"]["accuracy"] == pytest.approx(2 / 3)
    assert rep["overall"]["accuracy"] == pytest.approx(0.5)  # pooled over clips
    assert rep["groups"]["real"]["n"] == 16


def test_device_report_log_loss_per_device_and_class():
    y_true, y_pred, devices = _toy()
    rng = np.random.default_rng(3)
    p = rng.uniform(0.05, 0.95, len(y_true))
    proba = np.stack([p, 1 - p], axis=1)  # columns bus, park
    rep = device_report(y_true, y_pred, devices, proba=proba, labels=["bus", "park"])
    assert rep["overall"]["log_loss"] == pytest.approx(log_loss(y_true, proba, labels=["bus", "park"]))
    for dev in ("a", "s2", "s5"):
        rows = devices == dev
        assert rep["devices"][dev]["log_loss"] == pytest.approx(
            log_loss(y_true[rows], proba[rows], labels=["bus", "park"]))
    park = y_true == "park"
    assert rep["classes"]["park"]["log_loss"] == pytest.approx(-np.mean(np.log(1 - p[park])))
    assert rep["groups"]["unseen"]["log_loss"] == rep["devices"]["s5"]["log_loss"]
    # JSON-serialisable
    json.dumps(rep)


def test_device_report_all_nine_devices_order_and_unknown_device():
    devs = ["s6", "s1", "c", "a", "b", "s4", "s3", "s2", "s5", "zz"]
    y = ["p", "q"] * 5
    rep = device_report(y, y, devs)
    assert list(rep["devices"]) == ["a", "b", "c", "s1", "s2", "s3", "s4", "s5", "s6", "zz"]
    assert {g: v["devices"] for g, v in rep["groups"].items()} == {
        k: list(v) for k, v in DEVICE_GROUPS.items()}


def test_format_device_report_text_and_markdown():
    y_true, y_pred, devices = _toy()
    proba = np.where((y_pred == "bus")[:, None], [[0.9, 0.1]], [[0.2, 0.8]])
    rep = device_report(y_true, y_pred, devices, proba=proba, labels=["bus", "park"])
    text = format_device_report(rep)
    lines = text.splitlines()
    assert lines[0].split() == ["all", "real", "seen", "unseen", "a", "s2", "s5"]
    assert lines[2].split()[:3] == ["accuracy", "(%)", "75.0"]
    # aligned: the accuracy, log-loss and clips rows have equal lengths
    assert len({len(lines[2]), len(lines[3]), len(lines[4])}) == 1
    assert "park" in text and "83.3" in text
    md = format_device_report(rep, markdown=True)
    assert md.splitlines()[1].startswith("| --- | ---:")
    assert all(line.startswith("|") for line in md.splitlines() if line)
    with pytest.raises(TypeError, match="device_report"):
        format_device_report({"foo": 1})


# --------------------------------------------------------------------------
# errors


@pytest.mark.parametrize("fn", [macro_accuracy, lambda a, b: device_report(a, b, ["a"] * len(b))])
def test_length_mismatch(fn):
    with pytest.raises(ValueError, match="inconsistent numbers of clips"):
        fn(["a", "b", "a"], ["a", "b"])


def test_empty_inputs():
    with pytest.raises(ValueError, match="empty"):
        macro_accuracy([], [])


def test_unknown_labels():
    with pytest.raises(ValueError, match=r"y_pred contains labels not in labels: \['tram'\]"):
        macro_accuracy(["bus", "park"], ["bus", "tram"], labels=["bus", "park"])
    with pytest.raises(ValueError, match=r"y_true contains labels not in labels: \['tram'\]"):
        dcase_log_loss(["bus", "tram"], [[0.5, 0.5]] * 2, labels=["bus", "park"])
    with pytest.raises(ValueError, match="y_true contains labels not in labels"):
        device_report(["bus", "tram"], ["bus", "bus"], ["a", "a"], labels=["bus", "park"])


def test_devices_length_mismatch():
    with pytest.raises(ValueError, match="devices has 1"):
        device_report(["bus", "park"], ["bus", "park"], ["a"])


@pytest.mark.parametrize(
    "proba, match",
    [
        ([[0.5, 0.5]], "proba has 1 rows"),
        ([[0.5, 0.3, 0.2]] * 2, "3 columns but there are 2 labels"),
        ([[2.0, -1.0]] * 2, r"probabilities in \[0, 1\]"),
        ([[0.5, 0.2]] * 2, "sum to 1"),
        ([[np.nan, 0.5]] * 2, "NaN"),
        ([0.5, 0.5], "2-D"),
    ],
)
def test_bad_proba(proba, match):
    with pytest.raises(ValueError, match=match):
        dcase_log_loss(["bus", "park"], proba, labels=["bus", "park"])


def test_proba_needs_labels_when_width_differs():
    with pytest.raises(ValueError, match="pass labels"):
        device_report(["bus", "bus"], ["bus", "bus"], ["a", "a"], proba=[[0.5, 0.5]] * 2)


def test_bad_average_and_duplicate_labels():
    with pytest.raises(ValueError, match="average"):
        dcase_log_loss(["a"], [[1.0]], labels=["a"], average="weighted")
    with pytest.raises(ValueError, match="duplicates"):
        macro_accuracy(["a"], ["a"], labels=["a", "a"])
