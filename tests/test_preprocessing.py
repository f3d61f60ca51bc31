"""Front-end transformers on real (generated TAU22) audio and on hand-made features."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import Pipeline
from skorch.callbacks import Callback

import skasc.preprocessing._logmel as prep
import skasc.preprocessing._recording_audio as recording_audio
from skasc import (
    AudioSet,
    DwsCNNClassifier,
    FeatureSet,
    LogMel,
    RandomCrop,
    Reassembler,
    SpecAugment,
)
from skasc._audio import read_clip
from skasc._logmel import logmel
from skasc.preprocessing._augmentation import draw_batch, draw_starts
from skasc.datasets import load_tau22

from _draw_reference import draw_view

SMALL = dict(n_mels=32, n_fft=2048, win_length=1764, hop_length=1764)  # 32 x 26 per clip


@pytest.fixture(scope="module")
def train(tau22_root):
    data = load_tau22(tau22_root, "train")
    keep = np.isin(data.recording, np.unique(data.recording)[:12])  # 12 recordings, 120 clips
    return data.X[keep], data.y[keep], data.recording[keep]


# -- Reassembler --------------------------------------------------------------


def test_reassembler_groups_clips_by_recording_in_snippet_order(train):
    X, y, rec = train
    order = np.random.default_rng(0).permutation(len(X))  # shuffled rows
    audio = Reassembler().fit_transform(X[order])
    assert isinstance(audio, AudioSet) and len(audio) == len(X)
    assert len(audio.recordings) == len(np.unique(rec))
    for i, path in enumerate(X[order]):
        pieces = audio.recordings[audio.row_recording[i]]
        assert len(pieces) == 10
        assert pieces[audio.row_piece[i]] == path  # the row still is its own clip
        snippets = [int(p.rsplit("-", 2)[-2]) for p in pieces]
        assert snippets == list(range(10))


def test_reassembler_transform_keeps_clips_alone(train):
    X = train[0]
    r = Reassembler().fit(X)
    audio = r.transform(X)
    assert len(audio.recordings) == len(X)
    assert all(len(p) == 1 for p in audio.recordings)


def test_reassembler_explicit_groups_and_gaps():
    rng = np.random.default_rng(0)
    X = rng.normal(scale=0.1, size=(6, 50)).astype(np.float32)
    audio = Reassembler().fit_transform(
        X, groups=["a", "a", "a", "b", "b", "a"], positions=[0, 1, 3, 0, 1, 2]
    )
    # group a has positions 0,1,2,3 (rows 0,1,5,2) -> one run; b -> one run
    assert len(audio.recordings) == 2
    rec_a = audio.recordings[audio.row_recording[0]]
    np.testing.assert_array_equal(np.concatenate(rec_a), np.concatenate(X[[0, 1, 5, 2]]))
    gapped = Reassembler().fit_transform(X[:3], groups=["a"] * 3, positions=[0, 1, 3])
    assert len(gapped.recordings) == 2  # a missing position splits the recording


def test_reassembler_bad_input(tmp_path):
    # a plain path that is no TAU22 name is a whole file: its own recording
    # (the row grammar's one answer, as recording_ids gives it)
    audio = Reassembler().fit_transform(np.array(["audio/x.wav", "audio/y.wav", "audio/x.wav"], dtype=object))
    assert audio.row_recording.tolist() == [0, 1, 0] and len(audio.recordings) == 2
    # one TAU22 snippet in two folders: which file is the recording's is refused
    rows = ["a/bus-milan-1003-40030-0-b.wav", "b/bus-milan-1003-40030-0-b.wav"]
    with pytest.raises(ValueError, match=r"rows 0 and 1 of X are both clip 0 of recording.*pass groups"):
        Reassembler().fit_transform(rows)
    # ... but two snippets of it in two folders are one recording
    rows = ["a/bus-milan-1003-40030-0-b.wav", "b/bus-milan-1003-40030-1-b.wav"]
    assert len(Reassembler().fit_transform(rows).recordings) == 1
    with pytest.raises(ValueError, match="one entry per row"):
        Reassembler().fit_transform(np.zeros((3, 10), np.float32), groups=["a", "b"])


# -- LogMel -------------------------------------------------------------------


def test_logmel_paper_shape_and_clip_features_equal_kernel(train):
    X = train[0][:3]
    F = LogMel().fit(X).transform(X)
    assert F.feature_shape == (1, 256, 51)
    arr = np.asarray(F).reshape(3, 256, 51)
    for i, path in enumerate(X):
        expected = logmel(read_clip(path)[None])[0]
        np.testing.assert_allclose(arr[i], expected, atol=1e-4)


def test_logmel_computes_each_recording_once(train, monkeypatch):
    X, _, rec = train
    calls = {"read": 0, "logmel": 0}
    real_read, real_logmel = recording_audio.read_clip, prep.logmel

    def counting_read(*a, **k):
        calls["read"] += 1
        return real_read(*a, **k)

    def counting_logmel(*a, **k):
        calls["logmel"] += 1
        return real_logmel(*a, **k)

    monkeypatch.setattr(recording_audio, "read_clip", counting_read)
    monkeypatch.setattr(prep, "logmel", counting_logmel)
    F = LogMel(**SMALL).fit_transform(Reassembler().fit_transform(X))
    assert calls == {"read": len(X), "logmel": len(np.unique(rec))}
    # ten rows share one recording: the store holds each recording once
    assert len(F.store) == len(np.unique(rec)) * (1 + 441000 // 1764)
    assert F.feature_shape == (1, 32, 26)


def test_logmel_recording_windows_match_clip_features_inside(train):
    X = train[0]
    F = LogMel(**SMALL).fit_transform(Reassembler().fit_transform(X))
    clip = LogMel(**SMALL).fit(X).transform(X)
    a, b = np.asarray(F).reshape(len(X), 32, 26), np.asarray(clip).reshape(len(X), 32, 26)
    # away from the window edges, a window of the recording equals the clip's own log-mel
    np.testing.assert_allclose(a[:, :, 2:-2], b[:, :, 2:-2], atol=1e-3)


def test_logmel_parallel_equals_serial_and_progress_bar(train, capsys):
    X = train[0][:40]
    audio = Reassembler().fit_transform(X)
    serial = LogMel(**SMALL).fit_transform(audio)
    parallel = LogMel(**SMALL, n_jobs=2, verbose=1).fit_transform(audio)
    np.testing.assert_array_equal(np.asarray(serial), np.asarray(parallel))
    np.testing.assert_array_equal(serial.store, parallel.store)
    assert "LogMel" in capsys.readouterr().err


def test_logmel_memory_cache_reuses_and_invalidates(tmp_path, monkeypatch):
    import soundfile as sf

    rng = np.random.default_rng(1)
    paths = []
    for k in range(10):
        p = tmp_path / f"park-paris-1-10-{k}-a.wav"
        sf.write(p, rng.normal(scale=0.05, size=44100), 44100, subtype="PCM_24")
        paths.append(str(p))
    X = np.array(paths, dtype=object)
    calls = []
    real = prep.logmel
    monkeypatch.setattr(prep, "logmel", lambda *a, **k: calls.append(1) or real(*a, **k))
    mem = tmp_path / "cache"
    first = LogMel(**SMALL, memory=str(mem)).fit_transform(Reassembler().fit_transform(X))
    again = LogMel(**SMALL, memory=str(mem)).fit_transform(Reassembler().fit_transform(X))
    assert len(calls) == 1  # second pass served from the cache
    np.testing.assert_array_equal(first.store, again.store)
    LogMel(**{**SMALL, "n_mels": 16}, memory=str(mem)).fit_transform(Reassembler().fit_transform(X))
    assert len(calls) == 2  # a changed parameter is recomputed
    sf.write(paths[3], rng.normal(scale=0.3, size=44100), 44100, subtype="PCM_24")
    changed = LogMel(**SMALL, memory=str(mem)).fit_transform(Reassembler().fit_transform(X))
    assert len(calls) == 3  # a changed file is recomputed, never served stale
    assert not np.allclose(changed.store, first.store)


def test_logmel_errors_name_the_file(tmp_path):
    missing = np.array([str(tmp_path / "bus-lyon-1-2-0-a.wav")], dtype=object)
    with pytest.raises(FileNotFoundError, match="bus-lyon-1-2-0-a.wav"):
        LogMel().fit_transform(missing)
    with pytest.raises(ValueError, match="win_length"):
        LogMel(win_length=8192).fit(np.zeros((1, 100), np.float32))


# -- augmentation steps and the per-epoch re-draw -----------------------------


def _encoded_features(n_rec=6, frames=60, bands=12, width=10):
    """Recordings whose cell (t, f) holds 1 + global frame index: any window
    the network receives tells which recording and which start it came from,
    and masked cells show up as exact zeros."""
    store = np.repeat(np.arange(1, n_rec * frames + 1, dtype=np.float32)[:, None], bands, axis=1)
    starts = np.arange(n_rec) * frames
    return FeatureSet(store, starts, starts + frames, starts + 5, width)


class _Recorder(Callback):
    def __init__(self):
        self.batches = []

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        if training:
            self.batches.append((len(net.history), batch[0].clone()))


def _decode(x, frames=60):
    """(recording, start frame, masked freq rows, masked time cols) of one window."""
    x = x[0].numpy()
    t = np.arange(x.shape[1])
    nz = x != 0
    start = int(np.median((x - 1 - t)[nz]))
    return start // frames, start, np.flatnonzero(~nz.any(1)), np.flatnonzero(~nz.any(0))


def test_network_sees_new_crop_and_masks_each_epoch_and_own_window_at_predict():
    F = _encoded_features()
    y = np.array(["a", "b"] * 3)
    rec = _Recorder()
    clf = DwsCNNClassifier(hidden=4, max_epochs=2, batch_size=6, mixup_alpha=0,
                           callbacks=[("rec", rec)], random_state=0)
    pipe = Pipeline([("crop", RandomCrop()), ("specaug", SpecAugment(4, 4)), ("clf", clf)]).fit(F, y)

    seen = {1: {}, 2: {}}
    for epoch, xb in rec.batches:
        for x in xb:
            r, start, fmask, tmask = _decode(x)
            seen[epoch][r] = (start, tuple(fmask), tuple(tmask))
            assert F.rec_start[r] <= start <= F.rec_stop[r] - F.width  # inside its recording
            assert len(fmask) <= 4 and len(tmask) <= 4
    assert set(seen[1]) == set(seen[2]) == set(range(6))
    # for each row, epoch 2 differs from epoch 1 in its crop or masks; crops differ for most
    assert all(seen[1][r] != seen[2][r] for r in range(6))
    assert sum(seen[1][r][0] != seen[2][r][0] for r in range(6)) >= 4
    assert any(seen[1][r][1] or seen[1][r][2] for r in range(6))  # masks really applied

    received = []
    hook = pipe[-1].module_.register_forward_hook(lambda m, i, o: received.append(i[0].clone()))
    pipe.predict(F)
    hook.remove()
    x = torch.cat(received)[:, 0].numpy()
    np.testing.assert_array_equal(x, F.windows())  # the rows' own windows, no masks
    np.testing.assert_array_equal(x[:, 0, 0], F.row_start + 1)


def test_draws_are_reproducible_and_stay_inside_recordings():
    F = _encoded_features().with_augmentation(RandomCrop()._augmentation())
    a = draw_view(F, np.arange(6), np.random.default_rng(3))
    b = draw_view(F, np.arange(6), np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    for _ in range(50):
        starts = draw_starts(F, np.arange(6), np.random.default_rng(_))
        assert np.all(starts >= F.rec_start) and np.all(starts + F.width <= F.rec_stop)
    grid = _encoded_features().with_augmentation(RandomCrop(step=5)._augmentation())
    starts = draw_starts(grid, np.arange(6), np.random.default_rng(0))
    assert np.all((starts - grid.rec_start) % 5 == 0)


def test_transform_is_identity_and_params_are_tunable():
    X = np.random.default_rng(0).normal(size=(8, 6, 20)).astype(np.float32)
    for step in (RandomCrop(step=2, p=0.5), SpecAugment(3, 2, n_freq_masks=2)):
        out = step.fit(X).transform(X)
        np.testing.assert_array_equal(np.asarray(out), X.reshape(8, -1))
        assert not out.augmentations
        assert clone(step).get_params() == step.get_params()
    with pytest.raises(ValueError, match="'p' parameter of RandomCrop must be a float in the range"):
        RandomCrop(p=2.0).fit(X)
    with pytest.raises(ValueError, match="freq_mask_width"):
        SpecAugment(freq_mask_width=-1).fit(X)


def test_grid_search_tunes_augmentation_params_with_groups(train):
    X, y, rec = train
    pipe = Pipeline([
        ("reassemble", Reassembler()),
        ("logmel", LogMel(**SMALL)),
        ("crop", RandomCrop()),
        ("specaug", SpecAugment()),
        ("clf", DwsCNNClassifier(hidden=4, max_epochs=2, random_state=0)),
    ])
    search = GridSearchCV(pipe, {"crop__p": [0.0, 1.0], "specaug__freq_mask_width": [2, 8]},
                          cv=GroupKFold(2)).fit(X, y, groups=rec)
    assert set(search.best_params_) == {"crop__p", "specaug__freq_mask_width"}
    assert search.predict(X[:5]).shape == (5,)


def test_torch_draw_equals_numpy_draw():
    # the classifier draws batches with torch (on the training device); the
    # numpy view is the public one: both must give the same numbers
    F = _encoded_features()
    F = SpecAugment(5, 4, n_freq_masks=2).fit_transform(RandomCrop(step=3, p=0.7).fit_transform(F))
    store = torch.as_tensor(F.store)
    for seed in range(5):
        rows = np.random.default_rng(seed).permutation(6)[:4]
        a = draw_view(F, rows, np.random.default_rng([seed, 1]))
        b = draw_batch(F, rows, np.random.default_rng([seed, 1]), store).x.numpy()
        np.testing.assert_array_equal(a, b)
