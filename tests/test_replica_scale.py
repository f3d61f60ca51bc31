"""make_tau22(scale=...): the real development set's layout at full size or a
fraction of it, written in parallel and resumably.

The layout is checked on the plan (no audio: the full size costs a few
milliseconds); the writing on a tiny fraction (scale=0.002, 500 clips)."""

import hashlib
import json
import math
import os

import numpy as np
import pytest

from skasc.datasets import (
    CITIES,
    DEVICES,
    FRACTIONS,
    SCENES,
    UNSEEN_DEVICES,
    load_tau22,
    make_tau22,
)
from skasc.datasets._layout import FULL_RECORDINGS, plan_counts, scaled_plan

TINY = 0.002
SPLITS = ("train", "evaluate", "neither")
#: fold1_train / fold1_evaluate clips of the real set
REAL_RATIO = 139620 / 29680


def _recordings(plan):
    """(scene, location, segment, device, split) of every 10-s recording."""
    return [(e["scene"], f"{e['city']}-{e['loc']}", e["seg"], d, split or "neither")
            for e in plan for d, split in e["recordings"]]


def _digest(root):
    out = {}
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            p = os.path.join(dirpath, name)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = hashlib.sha1(fh.read()).hexdigest()
    return out


# ---------------------------------------------------------------------------
# the layout (plans only)
# ---------------------------------------------------------------------------
def test_full_size_has_the_real_sets_counts():
    plan = scaled_plan(1.0, DEVICES, random_state=0)
    counts = plan_counts(plan)
    totals = {s: sum(counts[s].values()) for s in SPLITS}
    assert sum(totals.values()) == 230350
    assert (totals["train"], totals["evaluate"]) == (139620, 29680)
    for d in DEVICES:  # clips per device and split: the table of make_tau22's docstring
        assert tuple(counts[s][d] for s in SPLITS) == tuple(10 * n for n in FULL_RECORDINGS[d])
    assert sum(counts[s]["a"] for s in SPLITS) == 144000  # 40 h
    assert all(sum(counts[s][d] for s in SPLITS) == 10800 for d in ("s1", "s2", "s3", "s4", "s5", "s6"))
    recs = _recordings(plan)
    # the development set's 10 cities; 40 locations of 30 to 40 segments per scene
    assert sorted({loc.split("-")[0] for _, loc, _, _, _ in recs}) == sorted(CITIES[:10])
    segments = {}
    for e in plan:
        segments.setdefault((e["scene"], e["loc"]), []).append(e["seg"])
    assert len(segments) == 400 and len({loc for _, loc in segments}) == 400
    assert all(30 <= len(s) <= 40 for s in segments.values())
    a_per_scene = {scene: sum(1 for r in recs if r[0] == scene and r[3] == "a") for scene in SCENES}
    assert set(a_per_scene.values()) == {1440}
    # every evaluate recording is parallel to a's evaluate recording (b, c: one fewer)
    a_eval = {r[2] for r in recs if r[3] == "a" and r[4] == "evaluate"}
    for d in DEVICES[1:]:
        assert {r[2] for r in recs if r[3] == d and r[4] == "evaluate"} <= a_eval


@pytest.mark.parametrize("scale", [0.01, 0.03, 0.1, 0.25, 1.0])
def test_fractions_scale_every_count(scale):
    counts = plan_counts(scaled_plan(scale, DEVICES, random_state=0))
    # every device and split within one recording of its share (largest remainders)
    for d in DEVICES:
        for s, n in zip(SPLITS, FULL_RECORDINGS[d]):
            assert abs(counts[s][d] / 10 - scale * n) < 1, (d, s)
    totals = {s: sum(counts[s].values()) / 10 for s in SPLITS}
    assert abs(sum(totals.values()) - scale * 23035) <= 0.5
    assert abs(totals["train"] / totals["evaluate"] / REAL_RATIO - 1) < 0.02
    share_a = sum(counts[s]["a"] for s in SPLITS) / sum(map(sum, (counts[s].values() for s in SPLITS)))
    assert abs(share_a - 14400 / 23035) < 0.01


@pytest.mark.parametrize("scale", [1e-6, 0.001, TINY, 0.005, 0.01, 0.03, 0.1, 1.0])
def test_every_scale_keeps_the_structure(scale):
    plan = scaled_plan(scale, DEVICES, random_state=1)
    recs = _recordings(plan)
    by_split = {s: [r for r in recs if r[4] == s] for s in SPLITS}
    # every scene in both splits; every device in the splits it has, s4-s6 never in train
    for s in ("train", "evaluate"):
        assert {r[0] for r in by_split[s]} == set(SCENES), s
    assert {r[3] for r in by_split["train"]} == {"a", "b", "c", "s1", "s2", "s3"}
    assert {r[3] for r in by_split["evaluate"]} == set(DEVICES)
    # no location in two splits
    locs = {s: {r[1] for r in by_split[s]} for s in SPLITS}
    assert not locs["train"] & locs["evaluate"]
    # device a records every segment, and each segment once per device
    segs = {(r[0], r[2]) for r in recs}
    assert segs == {(r[0], r[2]) for r in recs if r[3] == "a"}
    assert len(recs) == len({(r[2], r[3]) for r in recs})
    # a device with at least 10 recordings in a split has some in every scene
    for s in ("train", "evaluate"):
        for d in DEVICES:
            mine = [r for r in by_split[s] if r[3] == d]
            if len(mine) >= len(SCENES):
                assert {r[0] for r in mine} == set(SCENES), (s, d)
    # unique location and segment ids, a location in one scene and one city
    assert len({e["seg"] for e in plan}) == len(plan)
    assert all(len({(e["scene"], e["city"]) for e in plan if e["loc"] == loc}) == 1
               for loc in {e["loc"] for e in plan})


def test_tiny_fraction_counts_are_its_minimums():
    counts = plan_counts(scaled_plan(TINY, DEVICES, random_state=0))
    totals = {s: sum(counts[s].values()) for s in SPLITS}
    assert totals == {"train": 270, "evaluate": 100, "neither": 130}  # the docstring's figures
    # device a only: its evaluate split still has every scene
    plan = scaled_plan(0.001, ("a",), random_state=0)
    assert {e["scene"] for e in plan if ("a", "evaluate") in e["recordings"]} == set(SCENES)


def test_plan_is_seeded():
    def layout(seed):
        return [(e["scene"], e["loc"], e["seg"], tuple(e["recordings"]))
                for e in scaled_plan(0.05, DEVICES, seed)]

    assert layout(3) == layout(3) and layout(3) != layout(4)


# ---------------------------------------------------------------------------
# writing a tiny fraction
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """scale=0.002 written by two workers."""
    return make_tau22(tmp_path_factory.mktemp("tau22-tiny-scale") / "r", scale=TINY, n_jobs=2)


def test_tiny_replica_reads_back_with_the_plans_proportions(tiny):
    data = {s: load_tau22(tiny, s) for s in ("train", "evaluate", "test", "all")}
    counts = plan_counts(scaled_plan(TINY, DEVICES, random_state=0))
    for s in ("train", "evaluate"):
        b = data[s]
        assert {d: int(np.sum(b.device == d)) for d in DEVICES} == counts[s]
        assert set(b.y) == set(SCENES)
    assert len(data["train"].X) / len(data["evaluate"].X) == 2.7
    np.testing.assert_array_equal(data["test"].filename, data["evaluate"].filename)
    assert len(data["all"].X) == 500
    # the clips of neither split are in meta.csv only
    listed = set(data["train"].filename) | set(data["evaluate"].filename)
    neither = [f for f in data["all"].filename if f not in listed]
    assert len(neither) == 130 and len(set(os.listdir(tiny / "audio"))) == 500
    # s4-s6 never in train; no location in both splits
    assert not set(UNSEEN_DEVICES) & set(data["train"].device)
    assert not set(data["train"].identifier) & set(data["evaluate"].identifier)
    # every 10-s recording is whole
    _, per_recording = np.unique(data["all"].recording, return_counts=True)
    assert set(per_recording) == {10}
    info = json.loads((tiny / "skasc_replica.json").read_text())
    assert info["params"] == {"scale": TINY, "devices": list(DEVICES), "random_state": 0}
    assert info["clips"] == {"train": 270, "evaluate": 100, "neither": 130}
    assert not (tiny / "skasc_replica.partial.json").exists()
    assert sorted(os.listdir(tiny / "impulse_responses")) == ["b.wav", "c.wav", "s1.wav", "s2.wav", "s3.wav"]


def test_tiny_replica_subsets(tiny):
    train = load_tau22(tiny, "train")
    subsets = {f: set(load_tau22(tiny, "train", fraction=f).filename) for f in FRACTIONS}
    assert subsets[100] == set(train.filename)
    for small, large in zip(FRACTIONS, FRACTIONS[1:]):
        assert subsets[small] <= subsets[large]
    for f in FRACTIONS:  # whole recordings, every scene
        chosen = np.isin(train.filename, list(subsets[f]))
        assert set(train.y[chosen]) == set(SCENES)
        assert not set(train.recording[chosen]) & set(train.recording[~chosen])


def test_same_bytes_with_one_worker(tiny, tmp_path):
    serial = make_tau22(tmp_path / "serial", scale=TINY, n_jobs=1)
    assert _digest(serial) == _digest(tiny)
    # the fast path: the same call again writes nothing
    before = {p: p.stat().st_mtime_ns for p in serial.rglob("*")}
    assert make_tau22(serial, scale=TINY, n_jobs=2) == serial
    assert {p: p.stat().st_mtime_ns for p in serial.rglob("*")} == before


def test_interrupted_run_resumes(tiny, tmp_path, monkeypatch, capsys):
    from skasc.datasets import _replica

    root = tmp_path / "r"
    write_wav, calls = _replica._write_wav, []

    def interrupted(path, x):
        if len(calls) == 230:
            raise KeyboardInterrupt
        calls.append(path)
        write_wav(path, x)

    monkeypatch.setattr(_replica, "_write_wav", interrupted)
    with pytest.raises(KeyboardInterrupt):
        make_tau22(root, scale=TINY, n_jobs=1)
    monkeypatch.undo()
    assert (root / "skasc_replica.partial.json").is_file() and not (root / "skasc_replica.json").exists()
    assert not (root / "meta.csv").exists()  # the csv files come last
    clips = sorted(os.listdir(root / "audio"))
    assert len(clips) == 230
    # some clips lost, one clip half written under its temporary name, one cut short
    for name in clips[::50]:
        os.remove(root / "audio" / name)
    (root / "audio" / f".{clips[1]}.4242.tmp").write_bytes(b"RIFF half")
    with open(root / "audio" / clips[2], "r+b") as fh:
        fh.truncate(1000)
    kept = {n: os.stat(root / "audio" / n).st_mtime_ns for n in clips if n not in clips[::50] + [clips[2]]}
    # other parameters: refused, nothing touched
    with pytest.raises(FileExistsError, match="unfinished replica made with other parameters"):
        make_tau22(root, scale=TINY, random_state=1)
    with pytest.raises(FileExistsError, match="unfinished replica made with other parameters"):
        make_tau22(root, scale=0.003)
    # the same parameters (any n_jobs): the missing clips are written, the others kept
    assert make_tau22(root, scale=TINY, n_jobs=1, verbose=1) == root
    assert "clip" in capsys.readouterr().err  # the progress bar
    assert {n: os.stat(root / "audio" / n).st_mtime_ns for n in kept} == kept
    assert _digest(root) == _digest(tiny)
    assert not (root / "skasc_replica.partial.json").exists()


def test_scale_parameters_are_checked(tmp_path):
    bad = [
        (dict(scale=0.1, n_cities=2), "n_cities set the miniature layout"),
        (dict(scale=0.1, n_locations=1, n_segments=1), "n_locations, n_segments set the miniature"),
        (dict(scale=0), r"scale must be None or a number in \(0, 1\]"),
        (dict(scale=1.5), "scale must be"),
        (dict(scale=math.nan), "scale must be"),
        (dict(scale=True), "scale must be"),
        (dict(scale="0.1"), "scale must be"),
        (dict(scale=0.1, devices=("b",)), "including 'a'"),
        (dict(scale=0.1, n_jobs=0), "n_jobs must be"),
        (dict(scale=0.1, verbose=-1), "verbose must be"),
    ]
    for kwargs, match in bad:
        with pytest.raises(ValueError, match=match):
            make_tau22(tmp_path / "x", **kwargs)
    assert not (tmp_path / "x").exists()


def test_scale_replaces_a_miniature_only_with_overwrite(tmp_path):
    root = tmp_path / "r"
    make_tau22(root, n_cities=2, n_locations=1, n_segments=1, devices=("a",))
    with pytest.raises(FileExistsError, match="other parameters"):
        make_tau22(root, scale=0.001, devices=("a",))
    make_tau22(root, scale=0.001, devices=("a",), overwrite=True)
    assert len(load_tau22(root, "all").X) == 300
    assert json.loads((root / "skasc_replica.json").read_text())["params"]["scale"] == 0.001
