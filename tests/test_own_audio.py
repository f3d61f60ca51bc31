"""Your own audio: any folder, any length, any sample rate (issue 13).

load_audio_folder (class subfolders, CSV or table), the clip rows
``<file>#t=<start>,<end>`` through Reassembler / LogMel / cross-validation /
pickles, the length policy, resampling with soxr, lazy reading of long
files, recording-level prediction and the two-level metrics.
"""

import builtins
import os
import pickle
import warnings

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch
from sklearn.model_selection import GroupKFold, StratifiedGroupKFold, cross_validate
from sklearn.pipeline import Pipeline

import skasc.preprocessing._logmel as prep
from skasc import (
    DistilledStudent,
    DwsCNNClassifier,
    EnsembleTeacher,
    LogMel,
    RandomCrop,
    Reassembler,
    aggregate_proba,
    predict_recordings,
    recording_labels,
)
from skasc._audio import read_segment
from skasc._rows import clip_fragment, split_fragment
from skasc.datasets import load_audio_folder
from skasc.metrics import device_report, format_device_report, macro_accuracy, recording_report
from skasc.recordings import recording_ids

SR = 44100
SMALL = dict(n_mels=32, n_fft=2048, win_length=1764, hop_length=1764)  # 32 x 26 per 1-s clip


def _noise(seconds, sr, seed=0, scale=0.1):
    return np.random.default_rng(seed).normal(scale=scale, size=int(round(seconds * sr)))


def _write(path, seconds, sr=SR, seed=0, x=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    sf.write(path, _noise(seconds, sr, seed) if x is None else x, sr, subtype="PCM_16")
    return str(path)


def _librosa_logmel(y, sr=SR, n_fft=2048, win_length=1764, hop_length=1764, n_mels=32):
    """librosa's log-mel in float64: what LogMel's features must equal."""
    D = librosa.stft(np.asarray(y, np.float64), n_fft=n_fft, hop_length=hop_length,
                     win_length=win_length, window="hamming", center=True, pad_mode="constant")
    mel = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, dtype=np.float64)
    return librosa.power_to_db(mel @ np.abs(D) ** 2, ref=1.0, amin=1e-10, top_db=None)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Two classes in subfolders, files of 0.5-3.2 s at 16, 44.1 and 48 kHz."""
    root = tmp_path_factory.mktemp("own")
    specs = [("hiss", "a.wav", 3.0, 16000), ("hiss", "b.wav", 2.0, 48000), ("hiss", "deep/c.wav", 2.0, SR),
             ("hum", "a.wav", 3.2, SR), ("hum", "b.wav", 0.5, 16000), ("hum", "d.wav", 2.0, 48000)]
    for k, (label, name, seconds, rate) in enumerate(specs):
        _write(root / label / name, seconds, rate, seed=k)
    (root / "hum" / "README.txt").write_text("not audio")
    _write(root / "hum" / ".hidden.wav", 1.0, SR)  # hidden: skipped
    return root


# ---------------------------------------------------------------------------
# the loader
# ---------------------------------------------------------------------------


def test_class_subfolders_give_one_row_per_clip(folder):
    data = load_audio_folder(folder)
    rel = [os.path.relpath(x, folder) for x in data.X]
    assert rel == ["hiss/a.wav#t=0,1", "hiss/a.wav#t=1,2", "hiss/a.wav#t=2,3",
                   "hiss/b.wav#t=0,1", "hiss/b.wav#t=1,2",
                   "hiss/deep/c.wav#t=0,1", "hiss/deep/c.wav#t=1,2",
                   "hum/a.wav#t=0,1", "hum/a.wav#t=1,2", "hum/a.wav#t=2,3", "hum/a.wav#t=3,4",
                   "hum/b.wav#t=0,1",
                   "hum/d.wav#t=0,1", "hum/d.wav#t=1,2"]
    assert data.X.dtype == object
    assert data.y.tolist() == ["hiss"] * 7 + ["hum"] * 7
    assert data.target_names.tolist() == ["hiss", "hum"]
    assert data.position.tolist() == [0, 1, 2, 0, 1, 0, 1, 0, 1, 2, 3, 0, 0, 1]
    assert data.groups is data.recording
    assert data.groups[0] == str(folder / "hiss" / "a.wav")
    assert data.filename[5] == "hiss/deep/c.wav"
    assert data.file_sr.tolist() == [16000] * 3 + [48000] * 2 + [SR] * 6 + [16000] + [48000] * 2
    # the 3.2-s tail and the 0.5-s file are zero-padded clips (short="pad", the default)
    assert np.flatnonzero(data.padded).tolist() == [10, 11]
    assert data.needs_resampling == {str(folder / "hiss" / "a.wav"): 16000,
                                     str(folder / "hiss" / "b.wav"): 48000,
                                     str(folder / "hum" / "b.wav"): 16000,
                                     str(folder / "hum" / "d.wav"): 48000}
    assert data.sr == SR and data.clip_seconds == 1.0 and data.dropped == {}
    assert "14 clips of 1 s from 6 audio files" in data.DESCR


def test_loading_reads_headers_only(folder, monkeypatch):
    def no_audio(*args, **kwargs):
        raise AssertionError("audio was read while loading")

    monkeypatch.setattr(sf, "read", no_audio)
    monkeypatch.setattr(sf.SoundFile, "read", no_audio)
    assert len(load_audio_folder(folder).X) == 14


def test_csv_with_extra_columns_and_relative_paths(folder, tmp_path):
    csv = tmp_path / "labels.csv"
    csv.write_text("filename;label;fold;device;group\n"
                   f"{folder}/hum/a.wav;engine;1;phone;s1\n"
                   "rel/x.wav;bird;2;mic;s2\n")
    _write(tmp_path / "rel" / "x.wav", 1.5, 16000)
    data = load_audio_folder(csv, clip_seconds=0.5)
    assert [os.path.basename(x) for x in data.X] == [
        "a.wav#t=0,0.5", "a.wav#t=0.5,1", "a.wav#t=1,1.5", "a.wav#t=1.5,2", "a.wav#t=2,2.5",
        "a.wav#t=2.5,3", "a.wav#t=3,3.5", "x.wav#t=0,0.5", "x.wav#t=0.5,1", "x.wav#t=1,1.5"]
    assert data.y.tolist() == ["engine"] * 7 + ["bird"] * 3
    assert data.fold.tolist() == ["1"] * 7 + ["2"] * 3
    assert data.device.tolist() == ["phone"] * 7 + ["mic"] * 3
    assert data.group.tolist() == ["s1"] * 7 + ["s2"] * 3
    assert data.extra_columns == ["fold", "device", "group"]
    assert data.groups[-1] == str(tmp_path / "rel" / "x.wav")  # relative to the CSV's folder
    assert data.filename[-1] == "rel/x.wav"
    assert data.target_names.tolist() == ["bird", "engine"]


def test_table_and_unlabelled_folder(folder, tmp_path):
    table = {"path": ["hum/a.wav", "hiss/b.wav"], "cls": ["hum", "hiss"], "session": [3, 4]}
    data = load_audio_folder(table, path_column="path", label_column="cls", root=folder)
    assert data.y.tolist() == ["hum"] * 4 + ["hiss"] * 2
    assert data.session.tolist() == [3] * 4 + [4] * 2
    flat = tmp_path / "flat"
    _write(flat / "one.flac", 2.0)
    unlabelled = load_audio_folder(flat)
    assert unlabelled.y is None and unlabelled.target_names.tolist() == []
    assert len(unlabelled.X) == 2


def test_lengths_policy(tmp_path):
    long, tiny = _write(tmp_path / "c" / "long.wav", 2.5), _write(tmp_path / "c" / "tiny.wav", 0.4)
    pad = load_audio_folder(tmp_path)
    assert [x.rsplit("/", 1)[1] for x in pad.X] == [
        "long.wav#t=0,1", "long.wav#t=1,2", "long.wav#t=2,3", "tiny.wav#t=0,1"]
    assert pad.padded.tolist() == [False, False, True, True]
    # the padded clip: the file's last 0.5 s, then zeros
    x = read_segment(long, 2, 3, sr=SR)
    np.testing.assert_allclose(x[:SR // 2], sf.read(long, dtype="float32")[0][2 * SR:], atol=0)
    assert not x[SR // 2:].any()

    with pytest.warns(UserWarning, match=r"1 audio file\(s\) shorter than one clip.*tiny\.wav.*0\.4 s"):
        drop = load_audio_folder(tmp_path, short="drop")
    assert [x.rsplit("/", 1)[1] for x in drop.X] == ["long.wav#t=0,1", "long.wav#t=1,2"]
    assert drop.dropped == {tiny: pytest.approx(0.4)} and not drop.padded.any()

    with pytest.raises(ValueError, match=r"long\.wav.*2\.5 s long, not a whole number of 1-s clips"):
        load_audio_folder(tmp_path, short="error")
    os.remove(long)
    with pytest.raises(ValueError, match=r"tiny\.wav.*0\.4 s long, shorter than one clip"):
        load_audio_folder(tmp_path, short="error")
    with pytest.warns(UserWarning, match="tiny"), pytest.raises(ValueError, match="no clips left"):
        load_audio_folder(tmp_path, short="drop")
    with pytest.raises(Exception, match="'short' parameter"):
        load_audio_folder(tmp_path, short="trim")


def test_bad_input_names_the_file_column_or_folder(folder, tmp_path):
    empty = tmp_path / "empty"
    (empty / "dog").mkdir(parents=True)
    (empty / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match=rf"folder {str(empty)!r} holds no audio files"):
        load_audio_folder(empty)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_audio_folder(tmp_path / "nowhere")

    csv = tmp_path / "meta.csv"
    csv.write_text(f"filename,scene\n{folder}/hum/a.wav,x\n")
    with pytest.raises(ValueError, match=r"unknown label column 'label'.*\['filename', 'scene'\]"):
        load_audio_folder(csv)
    with pytest.raises(ValueError, match=r"unknown path column 'path'"):
        load_audio_folder(csv, path_column="path", label_column="scene")
    assert len(load_audio_folder(csv, label_column="scene").X) == 4

    bad = tmp_path / "bad" / "cls"
    bad.mkdir(parents=True)
    (bad / "junk.wav").write_bytes(b"definitely not audio")
    with pytest.raises(ValueError, match=r"junk\.wav.*not a readable audio file"):
        load_audio_folder(tmp_path / "bad")
    csv.write_text(f"filename,label\n{folder}/hum/a.wav,x\n{bad}/junk.wav,y\n")
    with pytest.raises(ValueError, match=r"junk\.wav.*not a readable.*meta\.csv, data row 2"):
        load_audio_folder(csv)
    csv.write_text("filename,label\nmissing.wav,x\n")
    with pytest.raises(FileNotFoundError, match=r"missing\.wav.*not found.*data row 1"):
        load_audio_folder(csv)
    csv.write_text(f"filename,label\n{folder}/hum/a.wav,\n")
    with pytest.raises(ValueError, match=r"data row 1 .*hum/a\.wav.* has no label"):
        load_audio_folder(csv)
    csv.write_text(f"filename,label,position\n{folder}/hum/a.wav,x,3\n")
    with pytest.raises(ValueError, match="column 'position'.*rename it"):
        load_audio_folder(csv)

    truncated = tmp_path / "trunc" / "cls" / "t.wav"
    _write(truncated, 2.0)
    truncated.write_bytes(truncated.read_bytes()[:-5000])
    with pytest.raises(ValueError, match=r"t\.wav.*truncated"):
        load_audio_folder(tmp_path / "trunc")


# ---------------------------------------------------------------------------
# the rows: parsing, Reassembler, NumPy, pickles, cross-validation
# ---------------------------------------------------------------------------


def test_rows_parse_the_last_fragment_and_paths_with_hashes(tmp_path):
    assert split_fragment("/d/a#t=1,2.wav#t=3,4") == ("/d/a#t=1,2.wav", 3.0, 4.0)
    assert split_fragment("/d/a.wav#t=npt:0.5,1.5") == ("/d/a.wav", 0.5, 1.5)
    assert split_fragment("/d/a#b.wav") == ("/d/a#b.wav", None, None)
    with pytest.raises(ValueError, match=r"'/d/a\.wav#t=4,3'.*empty"):
        split_fragment("/d/a.wav#t=4,3")
    odd = _write(tmp_path / "cls" / "odd #1 #t=9,9.wav", 2.0, seed=3)
    data = load_audio_folder(tmp_path)
    assert data.X.tolist() == [clip_fragment(odd, 0, 1), clip_fragment(odd, 1, 2)]
    np.testing.assert_array_equal(read_segment(*split_fragment(data.X[1])),
                                  sf.read(odd, dtype="float32")[0][SR:])
    audio = Reassembler().fit_transform(data.X)
    assert audio.recordings == [tuple(data.X)]


def test_reassembler_joins_the_clips_of_each_file(folder):
    data = load_audio_folder(folder)
    order = np.random.default_rng(0).permutation(len(data.X))
    for X in (data.X[order], data.X[order].astype(str)):  # object or NumPy string rows
        audio = Reassembler().fit_transform(X)
        assert len(audio) == len(X) and len(audio.recordings) == 6
        for i in range(len(X)):  # each row finds its own clip, in playing order
            assert audio.recordings[audio.row_recording[i]][audio.row_piece[i]] == X[i]
            assert audio.recordings[audio.row_recording[i]][0].endswith("#t=0,1")
    # a held-out middle clip splits its file in two recordings, as for TAU22
    keep = np.flatnonzero(data.X != data.X[1])
    assert len(Reassembler().fit_transform(data.X[keep]).recordings) == 7
    # rows and the AudioSet made of them survive pickling
    audio = Reassembler().fit_transform(data.X)
    again = pickle.loads(pickle.dumps((data.X, audio)))
    assert again[0].tolist() == data.X.tolist() and again[1].recordings == audio.recordings
    assert audio.shape == (14, SR)  # known without reading or resampling


def test_plain_paths_that_are_no_tau22_name_are_their_own_recordings(tmp_path):
    # the row grammar's one answer: Reassembler, recording_ids and the
    # grouped splits all take a whole file for a recording of its own
    rows = np.array([str(tmp_path / "dog.wav"), str(tmp_path / "cat.wav"), str(tmp_path / "dog.wav")], dtype=object)
    audio = Reassembler().fit_transform(rows)
    assert audio.row_recording.tolist() == [0, 1, 0]
    assert recording_ids(rows).tolist() == [rows[0], rows[1], rows[0]]


def test_grouped_cross_validation_never_splits_a_file(folder):
    data = load_audio_folder(folder)
    for cv in (GroupKFold(n_splits=3), StratifiedGroupKFold(n_splits=2)):
        n = 0
        for train, test in cv.split(data.X, data.y, groups=data.groups):
            assert not set(data.groups[train]) & set(data.groups[test])
            assert sorted(np.concatenate([train, test]).tolist()) == list(range(len(data.X)))
            n += 1
        assert n == cv.get_n_splits()


# ---------------------------------------------------------------------------
# sample rates: soxr resampling, equal to librosa's log-mel of the resampled signal
# ---------------------------------------------------------------------------


def test_other_rates_are_refused_without_resample_naming_the_file(folder):
    data = load_audio_folder(folder)
    with pytest.raises(ValueError, match=r"hiss/a\.wav' has sample rate 16000 Hz; expected 44100 Hz"
                                         r".*resample='soxr_hq'"):
        LogMel(**SMALL).fit_transform(Reassembler().fit_transform(data.X))


def test_resampled_features_equal_librosa_on_the_resampled_signal(folder):
    data = load_audio_folder(folder)
    rows = np.flatnonzero(np.isin(data.filename, ["hiss/a.wav", "hiss/b.wav", "hiss/deep/c.wav"]))
    X = data.X[rows]
    F = LogMel(**SMALL, resample="soxr_hq").fit_transform(Reassembler().fit_transform(X))
    assert F.resampled == {str(folder / "hiss" / "a.wav"): 16000, str(folder / "hiss" / "b.wav"): 48000}
    for name in ("hiss/a.wav", "hiss/b.wav", "hiss/deep/c.wav"):
        x, rate = sf.read(folder / name, dtype="float32")
        y = librosa.resample(x, orig_sr=rate, target_sr=SR, res_type="soxr_hq")
        expected = _librosa_logmel(y)
        first = rows.tolist().index(int(np.flatnonzero(data.filename == name)[0]))
        got = F.store[F.rec_start[first]:F.rec_stop[first]].T
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=1e-3)
    # at predict time a clip is read and resampled alone
    one = LogMel(**SMALL, resample="soxr_hq").fit(X).transform(X[[1]])  # hiss/a.wav#t=1,2
    x, _ = sf.read(folder / "hiss" / "a.wav", dtype="float32", start=16000, stop=32000)
    y = librosa.resample(x, orig_sr=16000, target_sr=SR, res_type="soxr_hq")
    np.testing.assert_allclose(np.asarray(one).reshape(32, 26), _librosa_logmel(y), atol=1e-3)
    assert one.resampled == {str(folder / "hiss" / "a.wav"): 16000}


def test_cache_is_keyed_on_the_resampler_and_the_clip(folder, tmp_path, monkeypatch):
    data = load_audio_folder(folder)
    X = data.X[:3]  # hiss/a.wav, 16 kHz
    calls = []
    real = prep.logmel
    monkeypatch.setattr(prep, "logmel", lambda *a, **k: calls.append(1) or real(*a, **k))
    mem = str(tmp_path / "cache")
    first = LogMel(**SMALL, resample="soxr_hq", memory=mem).fit_transform(Reassembler().fit_transform(X))
    again = LogMel(**SMALL, resample="soxr_hq", memory=mem).fit_transform(Reassembler().fit_transform(X))
    assert len(calls) == 1 and again.resampled == first.resampled
    np.testing.assert_array_equal(first.store, again.store)
    other = LogMel(**SMALL, resample="soxr_lq", memory=mem).fit_transform(Reassembler().fit_transform(X))
    assert len(calls) == 2 and not np.array_equal(other.store, first.store)
    # clips of one file alone: each its own entry, never another clip's features
    cached = np.asarray(LogMel(**SMALL, resample="soxr_hq", memory=mem).fit(X).transform(X))
    fresh = np.asarray(LogMel(**SMALL, resample="soxr_hq").fit(X).transform(X))
    np.testing.assert_array_equal(cached, fresh)
    assert not np.allclose(cached[0], cached[1])


# ---------------------------------------------------------------------------
# a 1-hour file is never loaded whole
# ---------------------------------------------------------------------------


def test_one_hour_file_is_read_lazily(tmp_path, monkeypatch):
    rate = 1000  # a 1-hour file, quick to write: 3.6 M samples
    x = np.zeros(3600 * rate, dtype=np.float32)
    x[1800 * rate:1801 * rate] = 0.5 * np.sin(2 * np.pi * 100 * np.arange(rate) / rate)
    path = str(tmp_path / "long" / "hour.wav")
    os.makedirs(os.path.dirname(path))
    sf.write(path, x, rate, subtype="PCM_16")

    frames_read, opened = [], []
    real_read, real_open = sf.SoundFile.read, builtins.open

    def spy_read(self, frames=-1, *args, **kwargs):
        out = real_read(self, frames, *args, **kwargs)
        frames_read.append(len(out))
        return out

    class SpyFile:
        def __init__(self, fh):
            self.fh = fh

        def read(self, n=-1):
            data = self.fh.read(n)
            opened.append(len(data))
            return data

        def __getattr__(self, name):
            return getattr(self.fh, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

    def spy_open(file, *args, **kwargs):
        fh = real_open(file, *args, **kwargs)
        return SpyFile(fh) if os.fspath(file) == path else fh

    monkeypatch.setattr(sf.SoundFile, "read", spy_read)
    monkeypatch.setattr(builtins, "open", spy_open)
    data = load_audio_folder(tmp_path, sr=rate)
    assert len(data.X) == 3600 and data.X[1800] == f"{path}#t=1800,1801"
    assert frames_read == [] and sum(opened) <= 1 << 16  # headers only

    params = dict(sr=rate, n_fft=128, win_length=128, hop_length=64, n_mels=8)
    for memory in (None, str(tmp_path / "cache")):
        frames_read.clear()
        opened.clear()
        F = LogMel(**params, memory=memory).fit(data.X).transform(data.X[[1799, 1800]])
        assert frames_read == [rate, rate]  # one clip each, nothing more
        assert sum(opened) <= 2 << 16
        feats = np.asarray(F).reshape(2, 8, -1)
        assert feats[1].max() > feats[0].max() + 50  # the tone is in second 1800, not 1799


# ---------------------------------------------------------------------------
# recording-level prediction
# ---------------------------------------------------------------------------


def test_reductions_equal_hand_computations():
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.2, 0.5, 0.3],
                      [0.5, 0.5, 0.0], [0.1, 0.1, 0.8]])
    recs = np.array(["f2", "f1", "f1", "f3", "f3"])
    ids, mean = aggregate_proba(proba, recs)
    assert ids.tolist() == ["f2", "f1", "f3"]  # order of first appearance
    np.testing.assert_allclose(mean, [proba[0], proba[1:3].mean(0), proba[3:].mean(0)])
    _, geo = aggregate_proba(proba, recs, reduce="geometric")
    g = np.exp(np.log(np.maximum(proba[3:], 1e-12)).mean(0))
    np.testing.assert_allclose(geo[2], g / g.sum())
    np.testing.assert_allclose(geo[1], np.sqrt(proba[1] * proba[2]) / np.sqrt(proba[1] * proba[2]).sum())
    _, mx = aggregate_proba(proba, recs, reduce="max")
    np.testing.assert_allclose(mx[2], [0.5, 0.5, 0.8] / np.float64(1.8))
    _, vote = aggregate_proba(proba, recs, reduce="vote")
    np.testing.assert_allclose(vote, [[1, 0, 0], [0, 1, 0], [0.5, 0, 0.5]])
    _, median = aggregate_proba(proba, recs, reduce=lambda p: np.median(p, axis=0))
    np.testing.assert_allclose(median[1], np.median(proba[1:3], axis=0))
    ids, labels = recording_labels(["b", "a", "a", "c", "c"], recs)
    assert labels.tolist() == ["b", "a", "c"]
    with pytest.raises(ValueError, match=r"recording 'f3' have different labels \['c', 'd'\]"):
        recording_labels(["b", "a", "a", "c", "d"], recs)
    with pytest.raises(ValueError, match="one id per clip"):
        aggregate_proba(proba, recs[:4])
    with pytest.raises(Exception, match="'reduce' parameter"):
        aggregate_proba(proba, recs, reduce="median")


class _Fixed:
    """A fitted 'estimator' with fixed probabilities (ties in recording 'b')."""

    classes_ = np.array(["x", "y", "z"])

    def predict_proba(self, X):
        return np.array([[0.6, 0.4, 0.0], [0.0, 0.55, 0.45], [0.3, 0.3, 0.4]])[: len(X)]


def test_vote_ties_go_to_the_highest_mean_probability():
    res = predict_recordings(_Fixed(), ["b.wav#t=0,1", "b.wav#t=1,2"], reduce="vote")
    # one vote each for x and y; y has the higher mean probability (0.475 > 0.3)
    assert res.y_pred.tolist() == ["y"] and res.proba.tolist() == [[0.5, 0.5, 0.0]]


@pytest.fixture(scope="module")
def fitted(folder):
    """A tiny pipeline fitted on the folder, with its front end and features."""
    torch.set_num_threads(1)
    data = load_audio_folder(folder)
    pipe = Pipeline([
        ("reassemble", Reassembler()),
        ("logmel", LogMel(**SMALL, resample="soxr_hq")),
        ("crop", RandomCrop()),
        ("clf", DwsCNNClassifier(hidden=4, max_epochs=2, batch_size=8, random_state=0)),
    ])
    pipe.fit(data.X, data.y)
    front = Pipeline(pipe.steps[:-1])
    return data, pipe, front, front.fit_transform(data.X), front.transform(data.X)


def test_predict_recordings_equals_the_hand_computed_mean(fitted):
    data, pipe, *_ = fitted
    res = predict_recordings(pipe, data.X)
    proba = pipe.predict_proba(data.X)
    files = list(dict.fromkeys(data.groups.tolist()))
    assert res.recording.tolist() == files
    expected = np.stack([proba[data.groups == f].mean(axis=0) for f in files])
    np.testing.assert_allclose(res.proba, expected, rtol=1e-6)
    assert res.y_pred.tolist() == pipe.classes_[expected.argmax(1)].tolist()
    assert res.n_clips.tolist() == [3, 2, 2, 4, 1, 2]
    assert res.recording[res.index].tolist() == data.groups.tolist()
    assert res.classes.tolist() == ["hiss", "hum"]
    np.testing.assert_array_equal(recording_ids(data.X), data.groups)
    # the per-clip path is unchanged
    np.testing.assert_array_equal(pipe.predict(data.X), pipe.classes_[proba.argmax(1)])


def test_every_classifier_and_onnx_give_recording_predictions(fitted, tmp_path):
    pytest.importorskip("onnxruntime")
    from skasc.export import OnnxClassifier, export_onnx

    data, pipe, front, F_train, F_test = fitted
    clf = pipe.named_steps["clf"]
    teacher = EnsembleTeacher([DwsCNNClassifier(hidden=4, max_epochs=1, random_state=s) for s in (0, 1)])
    teacher.fit(F_train, data.y)
    student = DistilledStudent(teacher=teacher, hidden=4, max_epochs=1, random_state=0).fit(F_train, data.y)
    onnx = OnnxClassifier(export_onnx(clf, tmp_path / "clf.onnx"))
    for model in (clf, teacher, student, onnx):
        res = predict_recordings(model, F_test, data.groups)
        proba = model.predict_proba(F_test)
        expected = np.stack([proba[data.groups == f].mean(0) for f in res.recording])
        np.testing.assert_allclose(res.proba, expected, rtol=1e-5)
        assert res.classes.tolist() == ["hiss", "hum"]
    # the exported model decides the files as the pipeline does
    np.testing.assert_allclose(predict_recordings(onnx, F_test, data.groups).proba,
                               predict_recordings(pipe, data.X).proba, atol=1e-4)
    with pytest.raises(ValueError, match="X holds no file paths; pass recordings"):
        predict_recordings(onnx, F_test)
    with pytest.raises(TypeError, match="predict_proba"):
        predict_recordings(front, data.X)


def test_grouped_cross_validation_of_a_pipeline(fitted):
    data, pipe, *_ = fitted
    cv = GroupKFold(n_splits=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # tiny folds
        out = cross_validate(pipe, data.X, data.y, groups=data.groups, cv=cv,
                             return_indices=True, error_score="raise")
    for train, test in zip(out["indices"]["train"], out["indices"]["test"]):
        assert not set(data.groups[train]) & set(data.groups[test])
    assert len(out["test_score"]) == 2


# ---------------------------------------------------------------------------
# metrics at both levels
# ---------------------------------------------------------------------------


def test_recording_report_and_device_report_give_both_levels():
    y = np.array(["cat", "cat", "cat", "dog", "dog", "dog"])
    proba = np.array([[0.9, 0.1], [0.4, 0.6], [0.45, 0.55], [0.6, 0.4], [0.2, 0.8], [0.3, 0.7]])
    files = np.array(["f1", "f1", "f1", "f2", "f2", "f3"])
    rep = recording_report(y, proba, files)
    pred = np.where(proba[:, 0] > 0.5, "cat", "dog")
    assert rep["clips"]["accuracy"] == pytest.approx(macro_accuracy(y, pred))
    # f1 mean (0.583, 0.417): cat, right; f2 mean (0.4, 0.6): dog; f3: dog
    assert rep["recordings"] == {"accuracy": 1.0, "n": 3, "log_loss": pytest.approx(
        -np.mean(np.log([0.5833333333, 0.6, 0.7])))}
    # votes: f1 dog (2 of 3), f2 tied and decided by the mean (dog), f3 dog: cat 0/1, dog 2/2
    assert recording_report(y, proba, files, reduce="vote")["recordings"]["accuracy"] == 0.5
    dev = device_report(y, pred, ["a"] * 6, proba=proba, labels=["cat", "dog"], recordings=files)
    assert dev["recordings"] == rep["recordings"]
    table = format_device_report(dev)
    assert "by file" in table.splitlines()[0] and "3 files" in table
    # without proba: majority votes of y_pred, a tie (f2) going to the first label (cat)
    votes = device_report(y, pred, ["a"] * 6, recordings=files)
    assert votes["recordings"]["accuracy"] == 0.25 and votes["recordings"]["log_loss"] is None
