"""Tests of skasc.datasets (load_tau22, make_tau22) and skasc._audio."""

import csv
import hashlib
import os
import re
import time

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from skasc._audio import read_clip, validate_waveforms
from skasc._rows import parse_clip_name
from skasc.datasets import (
    CITIES,
    DEVICES,
    SCENES,
    UNSEEN_DEVICES,
    load_tau22,
    make_tau22,
    tau22_recording_groups,
)

SR = 44100
META_HEADER = "filename\tscene_label\tidentifier\tsource_label"
TRAIN_DEVICES = ("b", "c", "s1", "s2", "s3")


# ---------------------------------------------------------------------------
# fixtures and helpers
# ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def replica(tau22_root):
    """One small replica with every device: 2 cities x 2 locations x 1 segment
    (conftest's shared ``tau22_root``)."""
    return tau22_root


@pytest.fixture(scope="session")
def replica_data(replica):
    return {s: load_tau22(replica, s) for s in ("train", "evaluate", "test", "all")}


def _tsv(path):
    with open(path, newline="") as fh:
        return list(csv.reader(fh, delimiter="\t"))


def _snapshot(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st_ = os.stat(p)
            out[os.path.relpath(p, root)] = (st_.st_size, st_.st_mtime_ns)
    return out


def _digest(root):
    h = {}
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            p = os.path.join(dirpath, name)
            with open(p, "rb") as fh:
                h[os.path.relpath(p, root)] = hashlib.sha1(fh.read()).hexdigest()
    return h


def _mini(root, clips, *, setup=None, meta_rows=None):
    """Hand-made TAU22 folder: clips maps file name -> (waveform or None, sr)."""
    os.makedirs(os.path.join(root, "audio"), exist_ok=True)
    os.makedirs(os.path.join(root, "evaluation_setup"), exist_ok=True)
    rows = []
    for fn, (x, sr) in clips.items():
        if x is not None:
            sf.write(os.path.join(root, fn), x, sr, subtype="PCM_24")
        f = parse_clip_name(fn)
        rows.append([fn, f["scene"], f["location"], f["device"]])
    rows = rows if meta_rows is None else meta_rows
    with open(os.path.join(root, "meta.csv"), "w") as fh:
        fh.write(META_HEADER + "\n" + "".join("\t".join(r) + "\n" for r in rows))
    setup = setup if setup is not None else [r[:2] for r in rows]
    for subset in ("train", "evaluate"):
        with open(os.path.join(root, "evaluation_setup", f"fold1_{subset}.csv"), "w") as fh:
            fh.write("filename\tscene_label\n" + "".join("\t".join(r) + "\n" for r in setup))
    with open(os.path.join(root, "evaluation_setup", "fold1_test.csv"), "w") as fh:
        fh.write("filename\n" + "".join(r[0] + "\n" for r in setup))
    return root


def _tone(n=SR, channels=1):
    x = 0.1 * np.sin(2 * np.pi * 440 * np.arange(n) / SR)
    return x if channels == 1 else np.stack([x] * channels, axis=1)


GOOD = "audio/park-paris-1001-40010-3-b.wav"


# ---------------------------------------------------------------------------
# parse_clip_name / tau22_recording_groups
# ---------------------------------------------------------------------------
def test_parse_clip_name_example():
    f = parse_clip_name("audio/street_pedestrian-lisbon-1000-40000-7-s4.wav")
    assert f == {
        "scene": "street_pedestrian",
        "city": "lisbon",
        "location": "lisbon-1000",
        "segment": "40000",
        "snippet": 7,
        "device": "s4",
        "recording": "street_pedestrian-lisbon-1000-40000-s4",
    }


@settings(max_examples=60, deadline=None)
@given(
    scene=st.sampled_from(SCENES),
    city=st.sampled_from(CITIES),
    loc=st.integers(0, 10**6),
    seg=st.integers(0, 10**7),
    snippet=st.integers(0, 9),
    device=st.sampled_from(DEVICES),
    folder=st.sampled_from(["", "audio/", "/data/TAU/audio/"]),
)
def test_parse_clip_name_round_trip(scene, city, loc, seg, snippet, device, folder):
    name = f"{folder}{scene}-{city}-{loc}-{seg}-{snippet}-{device}.wav"
    f = parse_clip_name(name)
    assert (f["scene"], f["city"], f["device"], f["snippet"]) == (scene, city, device, snippet)
    assert f["location"] == f"{city}-{loc}" and f["segment"] == str(seg)
    base = os.path.basename(name)
    assert f"{f['scene']}-{f['location']}-{f['segment']}-{f['snippet']}-{f['device']}.wav" == base
    assert f["recording"] == base.replace(f"-{snippet}-{device}.wav", f"-{device}")
    assert tau22_recording_groups([name]).tolist() == [f["recording"]]


@pytest.mark.parametrize(
    "name",
    [
        "audio/airport-lisbon-1000-40000-a.wav",  # no snippet
        "audio/airport-lisbon-1000-40000-10-a.wav",  # snippet > 9
        "audio/airport-lisbon-x-40000-0-a.wav",  # non-numeric location
        "audio/airport-lisbon-1000-40000-0-a.flac",
        "audio/Airport-lisbon-1000-40000-0-a.wav",
        "audio/metro-station-lisbon-1000-40000-0-a.wav",  # hyphen in scene
        "",
    ],
)
def test_parse_clip_name_rejects(name):
    with pytest.raises(ValueError, match="cannot parse clip name") as exc:
        parse_clip_name(name)
    assert repr(name) in str(exc.value)
    with pytest.raises(ValueError, match="cannot parse"):
        tau22_recording_groups([GOOD, name])


# ---------------------------------------------------------------------------
# read_clip / validate_waveforms
# ---------------------------------------------------------------------------
def test_read_clip_ok(tmp_path):
    p = tmp_path / "x.wav"
    sf.write(p, _tone(), SR, subtype="PCM_24")
    before = _snapshot(tmp_path)
    x = read_clip(p, sr=SR, n_samples=SR)
    assert x.dtype == np.float32 and x.shape == (SR,)
    np.testing.assert_allclose(x, _tone(), atol=1e-6)
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize(
    "kind, exc, match",
    [
        ("missing", FileNotFoundError, "not found"),
        ("text", ValueError, "not a readable audio file"),
        ("rate", ValueError, "sample rate 22050 Hz; expected 44100"),
        ("stereo", ValueError, "2 channels"),
        ("length", ValueError, "44099 samples; expected 44100"),
        ("nan", ValueError, "NaN/inf"),
    ],
)
def test_read_clip_errors_name_the_file(tmp_path, kind, exc, match):
    p = tmp_path / f"bad_{kind}.wav"
    if kind == "text":
        p.write_text("this is not audio")
    elif kind == "rate":
        sf.write(p, _tone(22050), 22050, subtype="PCM_24")
    elif kind == "stereo":
        sf.write(p, _tone(channels=2), SR, subtype="PCM_24")
    elif kind == "length":
        sf.write(p, _tone(SR - 1), SR, subtype="PCM_24")
    elif kind == "nan":
        x = _tone()
        x[100] = np.nan
        sf.write(p, x, SR, subtype="FLOAT")
    with pytest.raises(exc, match=match) as info:
        read_clip(p, sr=SR, n_samples=SR)
    assert str(p) in str(info.value)


def test_validate_waveforms():
    X = np.zeros((3, 100), dtype=np.float32)
    assert validate_waveforms(X) is X  # no copy
    out = validate_waveforms(np.ones((2, 5)))
    assert out.dtype == np.float32 and out.shape == (2, 5)
    with pytest.raises(ValueError, match="1-D"):
        validate_waveforms(np.zeros(100))
    bad = np.zeros((4, 10))
    bad[2, 3] = np.inf
    with pytest.raises(ValueError, match="row 2"):
        validate_waveforms(bad, name="clips")
    with pytest.raises(ValueError, match="0 samples"):
        validate_waveforms(np.zeros((3, 0)))
    with pytest.raises(ValueError, match="0 clips"):
        validate_waveforms(np.zeros((0, 10)))
    with pytest.raises(ValueError, match="2-D"):
        validate_waveforms(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError):
        validate_waveforms([np.zeros(3), np.zeros(4)])


# ---------------------------------------------------------------------------
# make_tau22: layout and formats
# ---------------------------------------------------------------------------
def test_replica_layout_and_csv_format(replica):
    assert sorted(os.listdir(replica)) == [
        "audio", "evaluation_setup", "impulse_responses", "meta.csv", "skasc_replica.json", "split_setup"]
    assert sorted(os.listdir(replica / "evaluation_setup")) == [
        "fold1_evaluate.csv", "fold1_test.csv", "fold1_train.csv"
    ]
    raw = (replica / "meta.csv").read_text()
    assert raw.startswith(META_HEADER + "\n") and "\r" not in raw and raw.endswith("\n")
    meta = _tsv(replica / "meta.csv")
    assert all(len(r) == 4 for r in meta)
    train = _tsv(replica / "evaluation_setup" / "fold1_train.csv")
    evaluate = _tsv(replica / "evaluation_setup" / "fold1_evaluate.csv")
    test = _tsv(replica / "evaluation_setup" / "fold1_test.csv")
    assert train[0] == evaluate[0] == ["filename", "scene_label"] and test[0] == ["filename"]
    assert all(len(r) == 2 for r in train + evaluate) and all(len(r) == 1 for r in test)
    # test lists the evaluate clips, without labels (as in the real development set)
    assert [r[0] for r in test[1:]] == [r[0] for r in evaluate[1:]]
    files = {r[0] for r in meta[1:]}
    tr, ev = {r[0] for r in train[1:]}, {r[0] for r in evaluate[1:]}
    assert tr | ev == files and not tr & ev
    assert {"audio/" + n for n in os.listdir(replica / "audio")} == files
    labels = {r[0]: r[1] for r in meta[1:]}
    assert all(labels[f] == y for f, y in train[1:] + evaluate[1:])
    for fn, scene, ident, device in meta[1:]:
        f = parse_clip_name(fn)
        assert fn.startswith("audio/")
        assert (f["scene"], f["location"], f["device"]) == (scene, ident, device)
        assert f["city"] in CITIES
    assert {r[1] for r in meta[1:]} == set(SCENES)
    # every 10-s recording has its 10 snippets
    groups = tau22_recording_groups(sorted(files))
    _, counts = np.unique(groups, return_counts=True)
    assert set(counts) == {10}
    for rec in np.unique(groups)[:20]:
        assert sorted(parse_clip_name(f)["snippet"] for f, g in zip(sorted(files), groups) if g == rec) == list(range(10))


def test_replica_size_and_devices(replica_data):
    d = replica_data
    # 10 scenes x 4 locations x 1 segment recorded by a, plus 13 parallel
    # recordings per scene (5 train devices, 8 evaluate devices)
    assert len(d["all"].X) == 10 * 10 * (4 + 13)
    for split in ("train", "evaluate"):
        b = d[split]
        for scene in SCENES:
            devs = set(b.device[b.y == scene])
            if split == "train":
                assert devs == {"a", *TRAIN_DEVICES}
            else:
                assert devs == set(DEVICES)
    assert not set(UNSEEN_DEVICES) & set(d["train"].device)
    # device a records every segment
    segs = {(r.rsplit("-", 1)[0]) for r in d["all"].recording}
    segs_a = {(r.rsplit("-", 1)[0]) for r in d["all"].recording[d["all"].device == "a"]}
    assert segs == segs_a


def test_replica_split_by_location(replica_data):
    tr, ev = replica_data["train"], replica_data["evaluate"]
    assert not set(tr.identifier) & set(ev.identifier)
    for scene in SCENES:
        n_tr = len(set(tr.identifier[tr.y == scene]))
        n_ev = len(set(ev.identifier[ev.y == scene]))
        assert (n_tr, n_ev) == (3, 1)  # round(0.3 * 4) = 1 evaluate location
    # location ids are unique over the replica
    all_ = replica_data["all"]
    assert len(set(all_.identifier)) == 10 * 4


def test_replica_wav_format(replica, replica_data):
    for p in replica_data["all"].X:
        info = sf.info(p)
        assert (info.samplerate, info.channels, info.frames) == (SR, 1, SR)
        assert (info.format, info.subtype) == ("WAV", "PCM_24")
    x = read_clip(replica_data["all"].X[0], n_samples=SR)
    assert 0 < np.abs(x).max() < 0.9


def test_replica_snippets_are_continuous(replica_data):
    b = replica_data["all"]
    rng = np.random.default_rng(0)
    recs = np.unique(b.recording)
    true_jumps, inner, random_jumps = [], [], []
    for rec in rng.choice(recs, size=25, replace=False):
        idx = np.flatnonzero(b.recording == rec)
        idx = idx[np.argsort(b.snippet[idx])]
        clips = [read_clip(b.X[i], n_samples=SR) for i in idx]
        for k in range(9):
            true_jumps.append(abs(clips[k][-1] - clips[k + 1][0]))
            inner.append(np.median(np.abs(np.diff(clips[k]))))
            other = read_clip(b.X[rng.integers(len(b.X))], n_samples=SR)
            random_jumps.append(abs(clips[k][-1] - other[0]))
    # the step across a snippet boundary is like any step inside a clip, and
    # much smaller than the step to the start of an unrelated clip
    assert np.median(true_jumps) < 2 * np.median(inner)
    assert np.median(random_jumps) > 4 * np.median(true_jumps)


def _recording_spectra(paths, recordings):
    """Mean log power (dB) per recording in 40 log-spaced bands."""
    edges = np.geomspace(50, 20000, 41)
    f = np.fft.rfftfreq(4096, 1 / SR)
    bands = [(f >= lo) & (f < hi) for lo, hi in zip(edges[:-1], edges[1:])]
    clips = {}
    for p, r in zip(paths, recordings):
        clips.setdefault(r, []).append(read_clip(p, n_samples=SR))
    out = {}
    for r, xs in clips.items():
        x = np.concatenate(xs)
        frames = x[: len(x) // 4096 * 4096].reshape(-1, 4096) * np.hanning(4096)
        power = (np.abs(np.fft.rfft(frames, axis=1)) ** 2).mean(0)
        out[r] = np.array([10 * np.log10(power[m].mean() + 1e-20) for m in bands])
    return out


def test_replica_scenes_differ_on_new_locations(replica_data):
    tr, ev = replica_data["train"], replica_data["evaluate"]
    m_tr, m_ev = tr.device == "a", ev.device == "a"
    s_tr = _recording_spectra(tr.X[m_tr], tr.recording[m_tr])
    s_ev = _recording_spectra(ev.X[m_ev], ev.recording[m_ev])

    def scene(rec):
        return rec.split("-")[0]

    centroids = {}
    for rec, s in s_tr.items():
        centroids.setdefault(scene(rec), []).append(s)
    names = sorted(centroids)
    C = np.array([np.mean(centroids[k], axis=0) for k in names])
    pred = [names[np.argmin(((C - s) ** 2).sum(1))] for s in s_ev.values()]
    acc = np.mean([p == scene(r) for p, r in zip(pred, s_ev)])
    assert len(s_ev) == 10
    assert acc >= 0.5, acc  # chance is 0.1


def test_replica_devices_colour_parallel_recordings(replica_data):
    b = replica_data["all"]
    spectra = _recording_spectra(b.X, b.recording)
    diffs = {}  # device -> list of (device - a) curves over parallel segments
    for rec, s in spectra.items():
        seg, dev = rec.rsplit("-", 1)
        if dev != "a":
            diffs.setdefault(dev, []).append(s - spectra[seg + "-a"])
    assert sorted(diffs) == sorted(set(DEVICES) - {"a"})
    curves = {}
    for dev, ds in diffs.items():
        ds = np.array(ds)
        assert len(ds) >= 10
        # a clear, consistent colouring: large on average, same across segments
        assert np.abs(ds.mean(0)).mean() > 2.0, dev
        half = len(ds) // 2
        assert np.corrcoef(ds[:half].mean(0), ds[half:].mean(0))[0, 1] > 0.8, dev
        curves[dev] = ds.mean(0)
    devs = sorted(curves)
    for i, d1 in enumerate(devs):
        for d2 in devs[i + 1 :]:
            assert np.abs(curves[d1] - curves[d2]).max() > 3.0, (d1, d2)


def test_make_tau22_reproducible(tmp_path):
    kw = dict(n_cities=2, n_locations=1, n_segments=1, devices=("a", "s5"))
    r1 = make_tau22(tmp_path / "r1", random_state=3, **kw)
    r2 = make_tau22(tmp_path / "r2", random_state=3, **kw)
    d1, d2 = _digest(r1), _digest(r2)
    # csv files, marker, subset files, clips
    assert len(d1) == 4 + 1 + 5 + 10 * 10 * 3 and d1 == d2
    # another seed (overwriting the replica r2): different audio in every common file
    with pytest.raises(FileExistsError, match="other parameters"):
        make_tau22(r2, random_state=4, **kw)
    make_tau22(r2, random_state=4, overwrite=True, **kw)
    d3 = _digest(r2)
    wavs = [k for k in d1 if k.endswith(".wav") and k in d3]
    assert wavs and all(d1[k] != d3[k] for k in wavs)
    assert len(d3) == len(d1)


def test_make_tau22_existing_root(tmp_path, replica):
    # the fast path: same parameters -> nothing is written
    before = _snapshot(replica)
    t = time.perf_counter()
    assert make_tau22(replica, n_cities=2, n_locations=2, n_segments=1, random_state=0) == replica
    assert time.perf_counter() - t < 2
    assert _snapshot(replica) == before
    # a user's non-empty folder -> refuse, untouched
    user = tmp_path / "user"
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        make_tau22(user, n_cities=2, n_locations=1, n_segments=1, devices=("a",))
    assert os.listdir(user) == ["notes.txt"]
    # overwrite=True writes the replica, leaving unrelated files alone
    make_tau22(user, n_cities=2, n_locations=1, n_segments=1, devices=("a",), overwrite=True)
    assert (user / "notes.txt").read_text() == "mine"
    assert len(load_tau22(user, "all").X) == 10 * 2 * 10
    # an incomplete replica (a clip deleted) is not taken for a complete one
    os.remove(load_tau22(user, "all").X[0])
    with pytest.raises(FileExistsError, match="incomplete"):
        make_tau22(user, n_cities=2, n_locations=1, n_segments=1, devices=("a",))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_cities=1, n_locations=1), "at least 2"),
        (dict(n_cities=13), "at most 12"),
        (dict(n_segments=0), "positive integer"),
        (dict(devices=("b", "c")), "including 'a'"),
        (dict(devices=("a", "zz")), "distinct names"),
        (dict(random_state=-1), "non-negative"),
    ],
)
def test_make_tau22_bad_parameters(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_tau22(tmp_path / "x", **kwargs)
    assert not (tmp_path / "x").exists()


# ---------------------------------------------------------------------------
# load_tau22
# ---------------------------------------------------------------------------
def test_load_tau22_fields_aligned(replica, replica_data):
    meta = _tsv(replica / "meta.csv")[1:]
    csv_order = {
        "all": [r[0] for r in meta],
        "train": [r[0] for r in _tsv(replica / "evaluation_setup" / "fold1_train.csv")[1:]],
        "evaluate": [r[0] for r in _tsv(replica / "evaluation_setup" / "fold1_evaluate.csv")[1:]],
        "test": [r[0] for r in _tsv(replica / "evaluation_setup" / "fold1_test.csv")[1:]],
    }
    labels = {r[0]: r[1] for r in meta}
    for subset, b in replica_data.items():
        n = len(csv_order[subset])
        assert b.X.dtype == object and b.X.shape == (n,)
        for key in ("y", "filename", "device", "city", "identifier", "recording", "snippet"):
            assert getattr(b, key).shape == (n,), key
        assert b.filename.tolist() == csv_order[subset]
        assert b.snippet.dtype.kind == "i"
        assert b.target_names.tolist() == sorted(SCENES)
        assert b.root == str(replica)
        for i in range(0, n, 7):
            f = parse_clip_name(b.filename[i])
            assert b.X[i] == os.path.join(str(replica), b.filename[i])
            assert os.path.isabs(b.X[i])
            assert b.y[i] == labels[b.filename[i]] == f["scene"]
            assert (b.device[i], b.city[i], b.identifier[i], b.recording[i], b.snippet[i]) == (
                f["device"], f["city"], f["location"], f["recording"], f["snippet"]
            )
    assert replica_data["test"].y.tolist() == replica_data["evaluate"].y.tolist()
    np.testing.assert_array_equal(
        tau22_recording_groups(replica_data["train"].X), replica_data["train"].recording
    )


def test_load_tau22_audio_and_read_only(replica, replica_data):
    before = _snapshot(replica)
    b = load_tau22(replica, "evaluate", return_audio=True, check_audio=True)
    assert b.X.dtype == np.float32 and b.X.shape == (len(replica_data["evaluate"].X), SR)
    for i in (0, len(b.X) // 2, len(b.X) - 1):
        np.testing.assert_array_equal(b.X[i], read_clip(replica_data["evaluate"].X[i]))
    load_tau22(replica, "train", check_audio=True)
    load_tau22(replica, "all")
    assert _snapshot(replica) == before


def test_load_tau22_bad_subset_and_root(tmp_path, replica):
    with pytest.raises(ValueError, match="valid subsets are.*train.*evaluate.*test.*all"):
        load_tau22(replica, "validation")
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        load_tau22(missing)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="meta.csv not found; expected TAU22 layout"):
        load_tau22(empty)
    with pytest.raises(FileNotFoundError, match="fold2_train.csv not found"):
        load_tau22(replica, "train", fold=2)


def test_load_tau22_missing_audio(tmp_path):
    root = _mini(tmp_path / "d", {GOOD: (None, SR)})
    assert len(load_tau22(root, "train").X) == 1  # file list only: no stat
    with pytest.raises(FileNotFoundError, match="park-paris-1001-40010-3-b.wav"):
        load_tau22(root, "train", check_audio=True)
    with pytest.raises(FileNotFoundError, match="park-paris-1001-40010-3-b.wav"):
        load_tau22(root, "evaluate", return_audio=True)


@pytest.mark.parametrize(
    "x, sr, match",
    [
        (_tone(), 22050, "sample rate 22050"),
        (_tone(channels=2), SR, "2 channels"),
        (_tone(SR // 2), SR, "22050 samples; expected 44100"),
    ],
    ids=["rate", "stereo", "length"],
)
def test_load_tau22_bad_audio(tmp_path, x, sr, match):
    root = _mini(tmp_path / "d", {GOOD: (x, sr)})
    before = _snapshot(root)
    with pytest.raises(ValueError, match=match) as info:
        load_tau22(root, "train", check_audio=True)
    assert "park-paris-1001-40010-3-b.wav" in str(info.value)
    assert _snapshot(root) == before


def test_load_tau22_metadata_errors(tmp_path):
    good = {GOOD: (None, SR)}
    # unparsable name in meta.csv
    bad_name = "audio/park-paris-1001-3-b.wav"
    root = _mini(tmp_path / "a", good, meta_rows=[[bad_name, "park", "paris-1001", "b"]],
                 setup=[[bad_name, "park"]])
    with pytest.raises(ValueError, match="park-paris-1001-3-b.wav"):
        load_tau22(root)
    # split file lists a clip that is not in meta.csv
    other = "audio/park-paris-1001-40010-4-b.wav"
    root = _mini(tmp_path / "b", good, setup=[[GOOD, "park"], [other, "park"]])
    with pytest.raises(ValueError, match="park-paris-1001-40010-4-b.wav.*not listed in .*meta.csv"):
        load_tau22(root, "evaluate")
    # label in the split file disagrees with meta.csv
    root = _mini(tmp_path / "c", good, setup=[[GOOD, "bus"]])
    with pytest.raises(ValueError, match="label 'bus' of .*park-paris-1001-40010-3-b.wav"):
        load_tau22(root, "train")
    # meta.csv disagrees with the file name
    root = _mini(tmp_path / "d", good, meta_rows=[[GOOD, "park", "paris-1001", "c"]])
    with pytest.raises(ValueError, match="source_label 'c' of .*park-paris-1001-40010-3-b.wav"):
        load_tau22(root, "all")
    # malformed header (comma-separated instead of tab-separated)
    root = _mini(tmp_path / "e", good)
    (root / "meta.csv").write_text("filename,scene_label,identifier,source_label\n")
    with pytest.raises(ValueError, match="malformed header in .*meta.csv"):
        load_tau22(root)
    root = _mini(tmp_path / "f", good)
    (root / "evaluation_setup" / "fold1_train.csv").write_text("file\tlabel\n")
    with pytest.raises(ValueError, match="malformed header in .*fold1_train.csv"):
        load_tau22(root, "train")
    # a row with a missing field
    root = _mini(tmp_path / "g", good, meta_rows=[[GOOD, "park", "paris-1001"]])
    with pytest.raises(ValueError, match="malformed row in .*meta.csv"):
        load_tau22(root)
