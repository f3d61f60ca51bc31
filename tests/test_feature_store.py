"""LogMel(feature_store=...): features on disk, content-keyed, resumable, never held whole."""

import os
import pickle

import numpy as np
import pytest
import soundfile as sf
import torch

import skasc.preprocessing._feature_store as feature_store
from skasc import DeviceImpulseResponse, DwsCNNClassifier, LogMel, RandomCrop, Reassembler, SpecAugment
from skasc._disk_store import DiskStore
from skasc._training import BatchDrawer

SR = 8000
SMALL = dict(sr=SR, n_fft=256, win_length=200, hop_length=80, n_mels=16)


def _write_recordings(folder, n_rec=12, clips=4, seed=0):
    """TAU22-named 1-s clips of ``n_rec`` recordings, 8 kHz."""
    rng = np.random.default_rng(seed)
    rows, y = [], []
    for r in range(n_rec):
        scene = ("park", "bus", "tram")[r % 3]
        tone = np.sin(2 * np.pi * (300 + 400 * (r % 3)) * np.arange(clips * SR) / SR)
        signal = 0.1 * tone + 0.02 * rng.normal(size=clips * SR)
        for k in range(clips):
            path = folder / f"{scene}-lyon-{1000 + r}-{40000 + r}-{k}-a.wav"
            sf.write(path, signal[k * SR:(k + 1) * SR], SR, subtype="PCM_24")
            rows.append(str(path))
            y.append(scene)
    return np.array(rows, dtype=object), np.array(y)


@pytest.fixture
def clips(tmp_path):
    folder = tmp_path / "audio"
    folder.mkdir()
    return _write_recordings(folder)


def _count_computed(monkeypatch):
    computed = []
    real = feature_store.write_feature_store

    def counting(folder, dtype, chunks, key, run, n_bands, check_finite):
        def counted(mode, todo):
            for chunk, results in zip(todo, run(mode, todo)):
                if mode == "compute":
                    computed.extend(chunk.tolist())
                yield results
        return real(folder, dtype, chunks, key, counted, n_bands, check_finite)

    import skasc.preprocessing._logmel as logmel_step

    monkeypatch.setattr(logmel_step, "write_feature_store", counting)
    return computed


def test_the_disk_store_holds_exactly_the_in_memory_features(clips, tmp_path):
    X, _ = clips
    audio = Reassembler(sr=SR).fit_transform(X)
    memory = LogMel(**SMALL).fit_transform(audio)
    disk = LogMel(**SMALL, feature_store=tmp_path / "store").fit_transform(audio)
    assert isinstance(disk.store, DiskStore) and disk.store.shape == memory.store.shape
    np.testing.assert_array_equal(np.asarray(disk), np.asarray(memory))
    np.testing.assert_array_equal(disk.windows(starts=disk.rec_start + 3), memory.windows(starts=memory.rec_start + 3))
    for a, b in zip(disk.band_statistics(), memory.band_statistics()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    # float16 on disk: half the bytes, within float16's rounding of the values
    half = LogMel(**SMALL, feature_store=tmp_path / "store", store_dtype="float16").fit_transform(audio)
    assert os.path.getsize(half.store.path) * 2 == os.path.getsize(disk.store.path)
    err = np.abs(np.asarray(half) - np.asarray(memory))
    assert 0 < err.max() <= np.abs(np.asarray(memory)).max() * 2**-11
    with pytest.raises(TypeError, match="not read into memory as a whole"):
        np.asarray(disk.store)
    # written by two workers: the same store
    parallel = LogMel(**SMALL, n_jobs=2, feature_store=tmp_path / "store2").fit_transform(audio)
    np.testing.assert_array_equal(np.asarray(parallel), np.asarray(memory))


def test_training_and_prediction_read_batches_from_disk(clips, tmp_path):
    X, y = clips
    audio = Reassembler(sr=SR).fit_transform(X)
    disk = LogMel(**SMALL, feature_store=tmp_path / "store").fit_transform(audio)
    memory = LogMel(**SMALL).fit_transform(audio)
    view = SpecAugment(2, 2).fit_transform(RandomCrop().fit_transform(disk))
    drawer = BatchDrawer(view, 3, mixup_alpha=0.3, seed=1)
    assert drawer.store is None  # no tensor of the whole store
    mem_drawer = BatchDrawer(SpecAugment(2, 2).fit_transform(RandomCrop().fit_transform(memory)), 3,
                             mixup_alpha=0.3, seed=1)
    items = list(zip(range(0, 48, 3), np.arange(16) % 3))
    torch.testing.assert_close(drawer(items)[0], mem_drawer(items)[0])  # the same draws, the same windows
    clf = DwsCNNClassifier(hidden=4, max_epochs=2, random_state=0).fit(view, y)
    assert clf.predict_proba(disk).shape == (len(X), 3)
    # a pickled FeatureSet (e.g. sent to a worker) carries the path, not the frames
    blob = pickle.dumps(disk)
    assert len(blob) < disk.store.shape[0] * disk.store.shape[1]
    np.testing.assert_array_equal(np.asarray(pickle.loads(blob)[:5]), np.asarray(disk[:5]))


def test_a_store_is_reused_resumed_and_recomputed_from_the_first_changed_chunk(clips, tmp_path, monkeypatch):
    X, _ = clips
    audio = Reassembler(sr=SR).fit_transform(X)
    folder = tmp_path / "store"
    computed = _count_computed(monkeypatch)
    first = LogMel(**SMALL, feature_store=folder).fit_transform(audio)
    assert sorted(computed) == list(range(12))
    computed.clear()
    again = LogMel(**SMALL, feature_store=folder).fit_transform(audio)
    assert computed == []  # finished and unchanged: reused
    np.testing.assert_array_equal(np.asarray(again), np.asarray(first))
    other = LogMel(**{**SMALL, "n_mels": 8}, feature_store=folder).fit_transform(audio)
    assert sorted(computed) == list(range(12)) and other.store.shape[1] == 8  # other parameters: computed
    assert len([p for p in folder.iterdir() if p.is_dir()]) == 2
    computed.clear()

    # rewritten in place (same name, same length): recomputed, never served stale
    path = X[4 * 9]  # a clip of recording 9
    data, _ = sf.read(path)
    sf.write(path, data[::-1], SR, subtype="PCM_24")
    changed = LogMel(**SMALL, feature_store=folder).fit_transform(audio)
    assert computed and 9 in computed
    np.testing.assert_array_equal(np.asarray(changed), np.asarray(LogMel(**SMALL).fit_transform(audio)))
    # features made from the store before it was computed again refuse to read it
    with pytest.raises(ValueError, match="changed since these features were made"):
        np.asarray(first)


def test_an_interrupted_store_resumes_and_is_never_read_half_written(tmp_path, monkeypatch):
    (tmp_path / "audio").mkdir()
    X, _ = _write_recordings(tmp_path / "audio", n_rec=40, clips=2)  # two chunks of 20 recordings
    audio = Reassembler(sr=SR).fit_transform(X)
    folder = tmp_path / "store"
    real = feature_store.write_feature_store

    import skasc.preprocessing._logmel as logmel_step

    def interrupted(folder_, dtype, chunks, key, run, n_bands, check_finite):
        def stop_after_first(mode, todo):
            for k, results in enumerate(run(mode, todo)):
                if mode == "compute" and k == 1:
                    raise KeyboardInterrupt
                yield results
        return real(folder_, dtype, chunks, key, stop_after_first, n_bands, check_finite)

    monkeypatch.setattr(logmel_step, "write_feature_store", interrupted)
    with pytest.raises(KeyboardInterrupt):
        LogMel(**SMALL, feature_store=folder).fit_transform(audio)
    (store_dir,) = [p for p in folder.iterdir()]
    assert not (store_dir / "index.json").exists()  # not finished: never taken for a store
    with open(store_dir / "features.float32", "ab") as f:
        f.write(b"\0" * 1000)  # a tail of frames no record covers, as a crash mid-chunk leaves
    monkeypatch.setattr(logmel_step, "write_feature_store", real)
    computed = _count_computed(monkeypatch)
    resumed = LogMel(**SMALL, feature_store=folder).fit_transform(audio)
    assert sorted(computed) == list(range(20, 40))  # the first chunk kept, the second computed
    np.testing.assert_array_equal(np.asarray(resumed), np.asarray(LogMel(**SMALL).fit_transform(audio)))
    assert (store_dir / "index.json").exists()


def test_impulse_response_variants_go_to_the_disk_store_too(clips, tmp_path):
    X, y = clips
    irs = tmp_path / "irs"
    irs.mkdir()
    for k, h in enumerate(([1.0, 0.5, 0.25], [1.0, -0.3])):
        sf.write(irs / f"d{k}.wav", np.array(h), SR, subtype="FLOAT")
    audio = DeviceImpulseResponse(irs, n_variants=2, sr=SR, random_state=0).fit_transform(
        Reassembler(sr=SR).fit_transform(X))
    memory = LogMel(**SMALL).fit_transform(audio)
    disk = LogMel(**SMALL, feature_store=tmp_path / "store").fit_transform(audio)
    assert disk.augmentations == memory.augmentations
    rows = np.arange(len(X))
    for k in range(2):  # every variant window holds the same frames as in memory
        np.testing.assert_array_equal(disk.windows(rows, disk.row_start + disk.variants[:, k]),
                                      memory.windows(rows, memory.row_start + memory.variants[:, k]))


def test_two_fits_computing_the_same_store_at_once_take_turns(clips, tmp_path, monkeypatch):
    # e.g. two grid-search candidates transforming the same fold in parallel
    from concurrent.futures import ThreadPoolExecutor

    X, _ = clips
    audio = Reassembler(sr=SR).fit_transform(X)
    computed = _count_computed(monkeypatch)
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: LogMel(**SMALL, feature_store=tmp_path / "store").fit_transform(audio),
                                range(2)))
    expected = np.asarray(LogMel(**SMALL).fit_transform(audio))
    for features in results:
        np.testing.assert_array_equal(np.asarray(features), expected)
    assert sorted(computed) == list(range(12))  # computed once: the second found it written
