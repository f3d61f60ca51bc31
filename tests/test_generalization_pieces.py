"""The DCASE 2024/2025 pieces: Frequency-MixStyle, device impulse response
augmentation (and the replica's impulse responses), data-efficient subsets."""

import json
import os
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy.signal import welch
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import Pipeline
from skorch.callbacks import Callback

from skasc import (
    DeviceImpulseResponse,
    DwsCNNClassifier,
    FeatureSet,
    FreqMixStyle,
    ImpulseResponseAugmentation,
    LogMel,
    MixStyleAugmentation,
    RandomCrop,
    Reassembler,
    SpecAugment,
)
from skasc._audio import apply_impulse_response, read_clip, read_impulse_responses
from skasc._logmel import logmel
from skasc._training import BatchDrawer, training_fingerprint
from skasc.datasets import SCENES, UNSEEN_DEVICES, load_tau22, make_tau22
from skasc.preprocessing._augmentation import draw_batch, draw_starts

from _draw_reference import apply_masks, draw_view
from _draw_reference import starts as reference_starts

SMALL = dict(n_mels=16, n_fft=1024, win_length=882, hop_length=1764)  # 16 x 26 per clip


def _features(n=12, bands=6, frames=20, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, bands, frames)).astype(np.float32)
    X += rng.normal(scale=3, size=(n, bands, 1)).astype(np.float32)  # per-row band offsets
    return X


# -- FreqMixStyle ---------------------------------------------------------------


def test_freq_mix_style_attaches_its_augmentation_and_is_identity_at_predict():
    X = _features()
    step = FreqMixStyle(p=0.7, alpha=0.5, eps=1e-5)
    F = step.fit_transform(X)
    assert F.augmentations == (MixStyleAugmentation(p=0.7, alpha=0.5, eps=1e-5),)
    out = step.transform(X)
    assert not out.augmentations
    np.testing.assert_array_equal(np.asarray(out), X.reshape(len(X), -1))
    # the deterministic view of the training features is untouched too
    np.testing.assert_array_equal(np.asarray(F), X.reshape(len(X), -1))
    assert FreqMixStyle().get_params() == {"p": 0.4, "alpha": 0.3, "eps": 1e-6}


@pytest.mark.parametrize("use_torch", [False, True])
def test_freq_mix_style_with_p1_gives_each_row_the_mixed_statistics(use_torch):
    X = _features()
    F = FreqMixStyle(p=1.0, alpha=0.3).fit_transform(X)
    rows = np.array([3, 0, 7, 5, 1])
    if use_torch:
        x = draw_batch(F, rows, np.random.default_rng(4), torch.as_tensor(F.store)).x.numpy()
    else:
        x = draw_view(F, rows, np.random.default_rng(4))
    # the same numbers, drawn by hand: the batch's coin, then a weight per row and a permutation
    rng = np.random.default_rng(4)
    assert rng.random() < 1.0
    lam = rng.beta(0.3, 0.3, size=5)[:, None]
    perm = rng.permutation(5)
    own = X[rows].astype(np.float64)
    mu, sig = own.mean(axis=2), np.sqrt(own.var(axis=2) + 1e-6)
    mu_mix = lam * mu + (1 - lam) * mu[perm]
    sig_mix = lam * sig + (1 - lam) * sig[perm]
    np.testing.assert_allclose(x.mean(axis=2), mu_mix, atol=2e-5)
    np.testing.assert_allclose(x.std(axis=2), sig_mix * own.std(axis=2) / sig, rtol=2e-5)
    assert not np.allclose(x.mean(axis=2), mu, atol=1e-2)  # the statistics really moved
    # the shape of each band over time is kept: a per-row, per-band affine map
    z_in = (own - mu[..., None]) / own.std(axis=2, keepdims=True)
    z_out = (x - x.mean(axis=2, keepdims=True)) / x.std(axis=2, keepdims=True)
    np.testing.assert_allclose(z_out, z_in, atol=1e-3)


def test_freq_mix_style_p0_leaves_the_batch_unchanged_and_torch_equals_numpy():
    X = _features()
    rows = np.arange(8)
    F0 = FreqMixStyle(p=0.0).fit_transform(X)
    np.testing.assert_array_equal(draw_view(F0, rows, np.random.default_rng(1)), X[rows])
    F = SpecAugment(2, 3).fit_transform(FreqMixStyle(p=1.0).fit_transform(RandomCrop(step=2).fit_transform(
        FeatureSet.from_array(np.concatenate([X, X], axis=2)))))
    for seed in range(3):
        a = draw_view(F, rows, np.random.default_rng([seed, 2]))
        b = draw_batch(F, rows, np.random.default_rng([seed, 2]), torch.as_tensor(F.store)).x.numpy()
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_without_freq_mix_style_nothing_more_is_drawn():
    # the existing crops and masks, and everything drawn after them (mixup),
    # see exactly the generator's numbers of before
    F = SpecAugment(3, 4).fit_transform(RandomCrop(step=1).fit_transform(
        FeatureSet.from_array(_features(frames=40))))
    rows = np.arange(10)
    rng1, rng2 = np.random.default_rng(9), np.random.default_rng(9)
    draw_batch(F, rows, rng1, torch.as_tensor(F.store))  # the library's drawer
    reference_starts(F, rows, rng2)
    apply_masks(np.zeros((len(rows), F.n_bands, F.width), np.float32), F.augmentations[1], rng2)
    assert rng1.random() == rng2.random()


def test_freq_mix_style_is_seeded_and_redrawn_for_every_batch():
    F = FreqMixStyle(p=1.0).fit_transform(_features())
    rows = np.arange(12)
    # the classifier's generator is seeded by (seed, epoch, batch)
    same = [draw_view(F, rows, np.random.default_rng([0, 1, 2])) for _ in range(2)]
    np.testing.assert_array_equal(*same)
    other_batch = draw_view(F, rows, np.random.default_rng([0, 1, 3]))
    other_epoch = draw_view(F, rows, np.random.default_rng([0, 2, 2]))
    assert not np.allclose(same[0], other_batch) and not np.allclose(same[0], other_epoch)
    # p < 1: some batches are restyled, others not
    Fp = FreqMixStyle(p=0.5).fit_transform(_features())
    mixed = [not np.array_equal(draw_view(Fp, rows, np.random.default_rng([0, 0, b])), _features())
             for b in range(40)]
    assert 8 < sum(mixed) < 32


def test_grid_search_over_freq_mix_style_p_in_a_pipeline():
    X = _features(n=24, frames=12)
    y = np.array(["bus", "park", "tram"] * 8)
    X[y == "park", :2] += 3.0
    X[y == "tram", 2:4] += 3.0
    pipe = Pipeline([
        ("mixstyle", FreqMixStyle()),
        ("clf", DwsCNNClassifier(hidden=4, max_epochs=2, random_state=0)),
    ])
    search = GridSearchCV(pipe, {"mixstyle__p": [0.0, 1.0]}, cv=GroupKFold(2))
    search.fit(X, y, groups=np.arange(24) % 6)
    assert list(search.cv_results_["param_mixstyle__p"]) == [0.0, 1.0]
    assert search.best_params_["mixstyle__p"] in (0.0, 1.0)
    assert search.predict(X[:5]).shape == (5,)


class _Recorder(Callback):
    def __init__(self):
        self.batches = []

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        if training:
            self.batches.append(batch[0][:, 0].clone().numpy())


def test_classifier_trains_on_restyled_batches():
    X = _features(n=16)
    y = np.array(["bus", "park"] * 8)
    batches = {}
    for p in (0.0, 1.0):
        rec = _Recorder()
        clf = DwsCNNClassifier(hidden=4, max_epochs=1, batch_size=16, mixup_alpha=0,
                               callbacks=[("rec", rec)], random_state=0)
        clf.fit(FreqMixStyle(p=p).fit_transform(X), y)
        batches[p] = rec.batches[0]
    # the same rows in the same order; p=1 restyles them
    np.testing.assert_array_equal(np.sort(batches[0.0].reshape(16, -1), axis=0),
                                  np.sort(X.reshape(16, -1), axis=0))
    assert not np.allclose(batches[1.0], batches[0.0], atol=1e-3)


# -- device impulse responses ---------------------------------------------------


@pytest.fixture(scope="module")
def rows(tau22_root):
    """Clips of 6 recordings (device a and others) of the train split."""
    data = load_tau22(tau22_root, "train")
    recs = sorted(set(data.recording[data.device == "a"]))[:3] + sorted(
        set(data.recording[data.device != "a"]))[:3]
    keep = np.isin(data.recording, recs)
    return data.X[keep], data.y[keep], data.recording[keep], data.device[keep]


def _irs(tau22_root):
    return os.path.join(tau22_root, "impulse_responses")


def test_replica_hands_out_the_seen_devices_responses_only(tau22_root):
    files = sorted(os.listdir(_irs(tau22_root)))
    assert files == ["b.wav", "c.wav", "s1.wav", "s2.wav", "s3.wav"]
    assert not any(d + ".wav" in files for d in UNSEEN_DEVICES)
    info = json.loads((tau22_root / "skasc_replica.json").read_text())
    assert info["format"] == 2 and info["impulse_responses"] == ["b", "c", "s1", "s2", "s3"]
    # a replica without seen devices besides a gets no folder at all
    root = make_tau22(tau22_root.parent / "only_unseen", n_cities=2, n_locations=1, n_segments=1,
                      devices=("a", "s4", "s5"))
    assert not (root / "impulse_responses").exists()


def test_device_a_convolved_with_s1s_response_sounds_like_s1(tau22_root):
    data = load_tau22(tau22_root, "train")
    s1 = sorted(set(data.recording[data.device == "s1"]))[0]
    a = s1[: -len("-s1")] + "-a"  # the parallel recording of the same segment by a

    def signal(rec):
        order = np.argsort(data.snippet[data.recording == rec])
        return np.concatenate([read_clip(p) for p in data.X[data.recording == rec][order]])

    h, sr = sf.read(os.path.join(_irs(tau22_root), "s1.wav"), dtype="float32")
    assert sr == 44100 and len(h) == 4096

    def log_spectrum(x):
        f, pxx = welch(x, fs=44100, nperseg=4096)
        band = (f > 100) & (f < 16000)
        db = 10 * np.log10(pxx[band])
        return db - db.mean()  # the shape, not the level

    x_a, x_s1 = signal(a), signal(s1)
    converted = apply_impulse_response(x_a, h)
    before = np.sqrt(np.mean((log_spectrum(x_a) - log_spectrum(x_s1)) ** 2))
    after = np.sqrt(np.mean((log_spectrum(converted) - log_spectrum(x_s1)) ** 2))
    assert after < 0.3 * before, (before, after)


def test_variants_are_the_log_mel_of_the_convolved_recordings(tau22_root, rows):
    X, y, rec, dev = rows
    step = DeviceImpulseResponse(_irs(tau22_root), n_variants=2, random_state=0)
    audio = step.fit_transform(Reassembler().fit_transform(X))
    assert step.n_variants_ == 2 and len(step.files_) == 5
    F = LogMel(**SMALL).fit_transform(audio)
    plain = LogMel(**SMALL).fit_transform(Reassembler().fit_transform(X))
    assert F.augmentations == (ImpulseResponseAugmentation(
        p=0.4, n_variants=2, digest=audio.impulse_responses.digest),)
    np.testing.assert_array_equal(np.asarray(F), np.asarray(plain))  # the rows' own windows
    assert len(F.store) == 3 * len(plain.store)  # every recording twice more
    # recompute one variant by hand: the recording, convolved, log-mel
    r = audio.row_recording[0]
    signal = np.concatenate([read_clip(p) for p in audio.recordings[r]])
    _, responses, _ = read_impulse_responses(_irs(tau22_root))
    for k, which in enumerate(audio.impulse_responses.assignment[r]):
        expected = logmel(apply_impulse_response(signal, responses[which])[None], **SMALL)[0].T
        lo = F.rec_start[0] + F.variants[0, k]
        np.testing.assert_allclose(F.store[lo:lo + len(expected)], expected, atol=1e-3)
    # each recording's variants use different responses
    assert all(len(set(a)) == 2 for a in audio.impulse_responses.assignment)


def test_rows_are_drawn_from_variants_with_probability_p(tau22_root, rows):
    X = rows[0]
    audio = Reassembler().fit_transform(X)
    n = len(X)
    for p, low, high in ((0.0, 0, 0), (1.0, n, n), (0.5, 0.3 * n, 0.7 * n)):
        step = DeviceImpulseResponse(_irs(tau22_root), p=p, n_variants=2, random_state=0)
        F = RandomCrop().fit_transform(LogMel(**SMALL).fit_transform(step.fit_transform(audio)))
        rng = np.random.default_rng(3)
        starts = draw_starts(F, np.arange(n), rng)
        outside = (starts < F.rec_start) | (starts >= F.rec_stop)
        assert low <= outside.sum() <= high
        source = F.source_starts(np.arange(n), starts)
        assert np.all(source >= F.rec_start) and np.all(source + F.width <= F.rec_stop)
        # the crops themselves are the numbers drawn without the augmentation
        plain = RandomCrop().fit_transform(LogMel(**SMALL).fit_transform(audio))
        np.testing.assert_array_equal(source, draw_starts(plain, np.arange(n), np.random.default_rng(3)))
        if p:
            # a variant's window holds the convolved audio: other values than the original's
            moved = np.flatnonzero(outside)[:3]
            assert not np.allclose(F.windows(moved, starts[moved]), F.windows(moved, source[moved]))


def test_device_filter_convolves_only_those_devices(tau22_root, rows):
    X, _, _, dev = rows
    step = DeviceImpulseResponse(_irs(tau22_root), p=1.0, n_variants=1, devices=("a",), random_state=0)
    F = LogMel(**SMALL).fit_transform(step.fit_transform(Reassembler().fit_transform(X)))
    moved = draw_starts(F, np.arange(len(X)), np.random.default_rng(0)) != F.row_start
    np.testing.assert_array_equal(moved, dev == "a")
    with pytest.raises(ValueError, match="TAU22 file name|waveforms"):
        DeviceImpulseResponse(_irs(tau22_root), devices=("a",)).fit_transform(
            np.zeros((2, 100), np.float32))


def test_identity_at_predict_and_reproducible_under_random_state(tau22_root, rows):
    X = rows[0]
    step = DeviceImpulseResponse(_irs(tau22_root), n_variants=2, random_state=0)
    assignment = step.fit_transform(X).impulse_responses.assignment
    out = step.transform(X)
    assert out.impulse_responses is None
    np.testing.assert_array_equal(np.asarray(out), np.asarray(Reassembler().fit(X).transform(X)))
    again = DeviceImpulseResponse(_irs(tau22_root), n_variants=2, random_state=0).fit_transform(X)
    np.testing.assert_array_equal(again.impulse_responses.assignment, assignment)
    other = DeviceImpulseResponse(_irs(tau22_root), n_variants=2, random_state=1).fit_transform(X)
    assert not np.array_equal(other.impulse_responses.assignment, assignment)
    # in a Pipeline, predict sees the audio as without the step
    pipe = Pipeline([("reassemble", Reassembler()), ("dir", step), ("logmel", LogMel(**SMALL)),
                     ("crop", RandomCrop())])
    F = pipe.fit_transform(X)
    assert F.variants is not None
    plain = Pipeline([("reassemble", Reassembler()), ("logmel", LogMel(**SMALL))]).fit(X)
    predicted = pipe.transform(X)
    assert predicted.variants is None and not predicted.augmentations
    np.testing.assert_array_equal(np.asarray(predicted), np.asarray(plain.transform(X)))


def test_draws_depend_only_on_seed_epoch_and_batch(tau22_root, rows):
    # what checkpoint resume relies on: epoch e draws the same, whatever ran before
    X, y = rows[0], rows[1]
    pipe = Pipeline([("reassemble", Reassembler()),
                     ("dir", DeviceImpulseResponse(_irs(tau22_root), p=0.5, random_state=0)),
                     ("logmel", LogMel(**SMALL)), ("crop", RandomCrop()), ("specaug", SpecAugment())])
    F = pipe.fit_transform(X)
    items = [(i, 0) for i in range(16)]
    run = BatchDrawer(F, 2, 0.3, seed=5)
    for epoch in range(3):
        run.set_epoch(epoch)
        first = run(items)[0]
    resumed = BatchDrawer(F, 2, 0.3, seed=5)
    resumed.set_epoch(2)
    np.testing.assert_array_equal(resumed(items)[0].numpy(), first.numpy())
    # a checkpoint is bound to the responses and their assignment
    other = pipe.set_params(dir__random_state=1).fit_transform(X)
    y_enc = (y == y[0]).astype(np.int64)
    assert training_fingerprint(F, y_enc, "") != training_fingerprint(other, y_enc, "")


def test_features_cached_and_keyed_on_the_responses(tmp_path, tau22_root, rows):
    X = rows[0][:20]  # two recordings
    irs = tmp_path / "irs"
    irs.mkdir()
    shutil.copy(os.path.join(_irs(tau22_root), "s1.wav"), irs / "dev.wav")
    logmel_step = LogMel(memory=str(tmp_path / "cache"), **SMALL)
    step = DeviceImpulseResponse(irs, p=1.0, random_state=0)

    def variant_store():
        F = logmel_step.fit_transform(step.fit_transform(Reassembler().fit_transform(X)))
        return F.store[len(F.store) // 2:].copy()

    first = variant_store()
    entries = set(os.listdir(tmp_path / "cache" / "joblib"))
    np.testing.assert_array_equal(variant_store(), first)  # served from the cache
    # another response under the same name: recomputed, not served stale
    shutil.copy(os.path.join(_irs(tau22_root), "b.wav"), irs / "dev.wav")
    changed = variant_store()
    assert not np.allclose(changed, first)
    assert set(os.listdir(tmp_path / "cache" / "joblib")) == entries  # same functions, new keys


def test_bad_impulse_response_folders_and_files(tmp_path, tau22_root):
    X = np.zeros((2, 200), np.float32)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        DeviceImpulseResponse(tmp_path / "nowhere").fit(X)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no audio")
    with pytest.raises(ValueError, match="empty.*holds no .wav"):
        DeviceImpulseResponse(tmp_path / "empty").fit(X)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "broken.wav").write_bytes(b"not a wav file at all")
    with pytest.raises(ValueError, match="broken.wav"):
        DeviceImpulseResponse(tmp_path / "junk").fit(X)
    (tmp_path / "rate").mkdir()
    sf.write(tmp_path / "rate" / "dev48k.wav", np.r_[1.0, np.zeros(99)], 48000, subtype="FLOAT")
    with pytest.raises(ValueError, match="dev48k.wav.*48000 Hz.*resample='soxr_hq'"):
        DeviceImpulseResponse(tmp_path / "rate").fit(X)
    step = DeviceImpulseResponse(tmp_path / "rate", resample="soxr_hq").fit(X)
    assert abs(len(step.impulse_responses_[0]) - 92) <= 1  # 100 samples at 48 kHz -> 44.1 kHz
    (tmp_path / "stereo").mkdir()
    sf.write(tmp_path / "stereo" / "two.wav", np.ones((10, 2)), 44100)
    with pytest.raises(ValueError, match="two.wav.*channels"):
        DeviceImpulseResponse(tmp_path / "stereo").fit(X)
    (tmp_path / "silent").mkdir()
    sf.write(tmp_path / "silent" / "zero.wav", np.zeros(10), 44100)
    with pytest.raises(ValueError, match="zero.wav.*only zeros"):
        DeviceImpulseResponse(tmp_path / "silent").fit(X)
    with pytest.raises(TypeError, match="before LogMel"):
        DeviceImpulseResponse(_irs(tau22_root)).fit(FeatureSet.from_array(np.zeros((2, 4, 5))))
    with pytest.raises(ValueError, match="'n_variants' parameter"):
        DeviceImpulseResponse(_irs(tau22_root), n_variants=0).fit(X)


def test_responses_are_normalised_to_unit_energy(tau22_root):
    _, responses, digests = read_impulse_responses(_irs(tau22_root))
    assert len(set(digests)) == 5
    for h in responses:
        assert abs(float(np.sum(h.astype(np.float64) ** 2)) - 1) < 1e-5


# -- data-efficient subsets -----------------------------------------------------


def test_replica_subsets_are_nested_whole_recordings_with_every_scene(tau22_root):
    train = load_tau22(tau22_root, "train")
    subsets = {f: load_tau22(tau22_root, "train", fraction=f) for f in (5, 10, 25, 50, 100)}
    previous = set()
    for f, data in subsets.items():
        files = set(data.filename)
        assert previous <= files, f  # nested
        previous = files
        assert set(data.y) == set(SCENES)  # every scene
        recs, counts = np.unique(data.recording, return_counts=True)
        assert set(counts) == {10}  # whole recordings
        assert set(recs) <= set(train.recording)
        for scene in SCENES:  # about f % of each scene's recordings, at least one
            n = len(set(train.recording[train.y == scene]))
            assert len(set(data.recording[data.y == scene])) == max(1, round(f / 100 * n))
        # rows keep the order of the train split
        order = {fn: k for k, fn in enumerate(train.filename)}
        assert [order[fn] for fn in data.filename] == sorted(order[fn] for fn in data.filename)
        assert data.fraction == f and f"{f} % subset" in data.DESCR
    np.testing.assert_array_equal(subsets[100].filename, train.filename)
    # devices keep their shares within a scene: the 50 % subset holds a and other devices
    assert len(set(subsets[50].device)) > 1


def test_subset_sizes_and_device_shares_follow_the_fraction_on_a_large_split():
    # the rule on file names alone: 10 scenes x 400 recordings, 3/4 of them device a
    from skasc.datasets._replica import _subsets

    names = [f"audio/{scene}-lyon-{1000 + r}-{40000 + 10 * r}-{k}-{'a' if r % 4 else 'b'}.wav"
             for scene in SCENES for r in range(400) for k in range(10)]
    subsets = _subsets(names, random_state=0)
    assert subsets[100] == set(names)
    for f in (5, 10, 25, 50):
        chosen = subsets[f]
        assert len(chosen) == 10 * round(f / 100 * 400) * 10
        share_b = np.mean([n.endswith("-b.wav") for n in chosen])
        assert abs(share_b - 0.25) < 0.02, (f, share_b)
    assert _subsets(names, random_state=0) == subsets  # seeded
    assert _subsets(names, random_state=1)[25] != subsets[25]


def test_fraction_leaves_evaluate_alone_and_is_checked(tau22_root, tmp_path):
    for bad in (20, 0.25, "25", True):
        with pytest.raises(ValueError, match="fraction must be one of"):
            load_tau22(tau22_root, "train", fraction=bad)
    with pytest.raises(ValueError, match="subset='evaluate'"):
        load_tau22(tau22_root, "evaluate", fraction=25)
    # a folder without the subset files: the error names them and where they come from
    bare = tmp_path / "bare"
    shutil.copytree(tau22_root, bare, ignore=shutil.ignore_patterns("audio", "impulse_responses"))
    shutil.rmtree(bare / "split_setup")
    with pytest.raises(FileNotFoundError, match="split25.csv.*split_setup.*dcase2024_task1_baseline"):
        load_tau22(bare, "train", fraction=25)
    # the official files' place and format: root/split_setup/, tab-separated, a filename column
    # (here without the audio/ folder and with an extra column, both accepted)
    (bare / "split_setup").mkdir()
    train = load_tau22(tau22_root, "train")
    chosen = train.filename[train.recording == train.recording[0]]
    (bare / "split_setup" / "split5.csv").write_text(
        "filename\tscene_label\tnote\n" + "".join(f"{fn[6:]}\tx\t-\n" for fn in chosen))
    np.testing.assert_array_equal(load_tau22(bare, "train", fraction=5).filename, chosen)
    evaluate = load_tau22(bare, "evaluate")
    np.testing.assert_array_equal(evaluate.filename, load_tau22(tau22_root, "evaluate").filename)
    # a subset file listing a clip of the evaluate split is refused, naming it
    (bare / "split_setup" / "split10.csv").write_text(f"filename\n{evaluate.filename[0]}\n")
    with pytest.raises(ValueError, match="split10.csv.*not a clip of the train split"):
        load_tau22(bare, "train", fraction=10)


def test_an_older_replica_is_completed_in_place(tmp_path):
    kw = dict(n_cities=2, n_locations=1, n_segments=1, devices=("a", "s1", "s4"), random_state=2)
    root = make_tau22(tmp_path / "old", **kw)
    digests = {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
    # what format 1 wrote: no subsets, no responses
    shutil.rmtree(root / "split_setup")
    shutil.rmtree(root / "impulse_responses")
    info = json.loads((root / "skasc_replica.json").read_text())
    for key in ("impulse_responses", "subsets"):
        del info[key]
    info["format"] = 1
    (root / "skasc_replica.json").write_text(json.dumps(info))
    with pytest.raises(FileNotFoundError, match="call make_tau22 again"):
        load_tau22(root, "train", fraction=25)
    make_tau22(root, **kw)
    assert {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()} == digests
    assert sorted(os.listdir(root / "impulse_responses")) == ["s1.wav"]
