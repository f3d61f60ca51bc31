"""The pretrained EfficientAT classifier and its weights (skasc.pretrained, _efficientat, _weights).

The reference outputs in ../shared/pretrained/ were computed by the authors'
own network and front end; tests that need them skip where ../shared is
absent.  Nothing here downloads anything: "downloads" read file:// URLs.
"""

import hashlib
import json
import pathlib
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch
from sklearn.pipeline import Pipeline
import librosa

from skasc import AudioSet, PretrainedClassifier, Reassembler, complexity_report
from skasc import _weights
from skasc._efficientat import EfficientATFrontEnd, MobileNetAT, kaldi_mel_banks, parse_model_name
from skasc.pretrained import efficientat_features

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared" / "pretrained"
needs_shared = pytest.mark.skipif(not (SHARED / "reference_outputs.json").is_file(),
                                  reason="../shared/pretrained (reference outputs) not present")
SHIPPED = pathlib.Path(_weights.__file__).with_name("weights") / "mn04_as_mAP_432.pt"


def _tones(n=12, sr=44100, seconds=1.0, seed=0):
    """Two classes of 1-s clips: low and high tones in noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    X = 0.01 * rng.normal(size=(2 * n, len(t)))
    freqs = np.r_[rng.uniform(200, 400, n), rng.uniform(3000, 5000, n)]
    X += 0.1 * np.sin(2 * np.pi * freqs[:, None] * t)
    return X.astype(np.float32), np.repeat(["low", "high"], n)


@pytest.fixture(scope="module")
def mn04():
    net = MobileNetAT(0.4).eval()
    net.load_state_dict(torch.load(SHIPPED, map_location="cpu", weights_only=True), strict=True)
    return net


# -- the network and front end reproduce the authors' outputs ----------------------------


@needs_shared
@pytest.mark.parametrize("signal", ["tones.wav", "noise.wav", "clicks.wav"])
def test_reproduces_the_authors_logits(mn04, signal):
    ref = json.loads((SHARED / "reference_outputs.json").read_text())["outputs"][signal]
    x, sr = sf.read(SHARED / signal, dtype="float32")
    assert sr == 32000
    with torch.no_grad():
        mel = EfficientATFrontEnd()(torch.from_numpy(x)[None])
        logits, embedding = mn04.forward_with_embedding(mel[:, None])
    assert list(mel.shape) == ref["mel_shape"]
    assert float(mel.mean()) == pytest.approx(ref["mel_mean"], abs=1e-5)
    np.testing.assert_allclose(mel[0, :5, 0].numpy(), ref["mel_first_frame_first_5"], atol=1e-4)
    np.testing.assert_allclose(logits[0].numpy(), ref["logits"], atol=1e-3)
    np.testing.assert_allclose(embedding[0, :8].numpy(), ref["embedding_first_8"], atol=1e-3)
    assert torch.topk(logits[0], 5).indices.tolist() == ref["top5"]


def test_shipped_checkpoint_is_the_published_one():
    data = SHIPPED.read_bytes()
    # the release file's SHA-256 (as NOTICE.md states it), and the digest skasc checks
    published = "899a8c6217063f6941793102a2780b3dd788ab11fce468d9cf5f0577c453321c"
    assert hashlib.sha256(data).hexdigest() == published and published in (SHIPPED.parent / "NOTICE.md").read_text()
    assert hashlib.blake2b(data, digest_size=16).hexdigest() == _weights.CHECKPOINTS["mn04_as"][1]
    assert (SHIPPED.parent / "NOTICE.md").read_text().count("MIT") >= 1


def test_published_parameter_count_and_widths():
    assert sum(p.numel() for p in MobileNetAT(0.4).parameters()) == 983_599  # the release's README
    assert [parse_model_name(m) for m in ("mn01_as", "mn10_as", "mn40_as_ext")] == [0.1, 1.0, 4.0]
    with pytest.raises(ValueError, match="model='resnet50'.*mnXY_as"):
        parse_model_name("resnet50")


def test_kaldi_mel_banks_are_triangles_in_mel_with_a_zero_nyquist_column():
    banks = kaldi_mel_banks()
    assert banks.shape == (128, 513) and np.all(banks[:, -1] == 0)
    assert np.all(banks.max(axis=1) > 0)  # no empty band (the lowest are narrower than a bin)
    peaks = banks.argmax(axis=1)
    assert np.all(np.diff(peaks) >= 0)  # ordered by frequency
    # the highest band ends at 15 kHz: no weight above bin 15000 / 31.25 = 480
    assert np.all(banks[:, 481:] == 0)


# -- weights: shipped, local, cached, downloaded ------------------------------------------


def test_local_weights_of_another_width_are_refused_naming_the_file(tmp_path):
    with pytest.raises(ValueError, match=r"mn04_as_mAP_432.pt.*not a checkpoint of model='mn10_as'"):
        PretrainedClassifier("mn10_as", weights=SHIPPED, max_epochs=1).fit(*_tones(4))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt.*not a readable PyTorch checkpoint"):
        PretrainedClassifier(weights=junk, max_epochs=1).fit(*_tones(4))
    with pytest.raises(ValueError, match="weights=.*missing.pt.*no such file"):
        PretrainedClassifier(weights=tmp_path / "missing.pt", max_epochs=1).fit(*_tones(4))


@pytest.fixture
def release(tmp_path, monkeypatch):
    """A fake release folder served as file:// URLs, an empty cache, nothing shipped."""
    folder = tmp_path / "release"
    folder.mkdir()
    monkeypatch.setattr(_weights, "_SHIPPED", tmp_path / "nothing-shipped")
    monkeypatch.setenv("SKASC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SKASC_WEIGHTS_URL", folder.as_uri())
    return folder


def test_download_goes_to_the_cache_checked_and_is_reused(release, tmp_path):
    shutil.copy(SHIPPED, release / "mn04_as_mAP_432.pt")
    path = _weights.resolve_weights("mn04_as")
    assert path == tmp_path / "cache" / "mn04_as_mAP_432.pt"
    assert path.read_bytes() == SHIPPED.read_bytes()
    (release / "mn04_as_mAP_432.pt").unlink()  # a second call does not download
    assert _weights.resolve_weights("mn04_as") == path
    path.write_bytes(path.read_bytes()[:-10])  # a damaged cached copy is refused
    with pytest.raises(ValueError, match="cached checkpoint.*has digest"):
        _weights.resolve_weights("mn04_as")


def test_a_download_with_the_wrong_checksum_leaves_nothing(release, tmp_path):
    (release / "mn04_as_mAP_432.pt").write_bytes(b"tampered")
    with pytest.raises(ValueError, match="downloaded checkpoint.*has digest.*expected 64d05120"):
        _weights.resolve_weights("mn04_as")
    assert not list((tmp_path / "cache").iterdir())


def test_an_unreachable_release_says_how_to_work_offline(release):
    with pytest.raises(OSError, match=r"could not download.*mn04_as_mAP_432.pt.*weights=<path"):
        _weights.resolve_weights("mn04_as")


def test_a_checkpoint_without_published_checksum_is_pinned_at_download(release, tmp_path):
    state = MobileNetAT(0.1).state_dict()
    torch.save(state, release / "mn01_as_mAP_298.pt")
    path = _weights.resolve_weights("mn01_as")
    pin = path.with_name(path.name + ".blake2b")
    assert pin.read_text().strip() == hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()
    torch.save(MobileNetAT(0.1).state_dict(), path)  # replaced afterwards: refused
    with pytest.raises(ValueError, match="cached checkpoint.*has digest"):
        _weights.resolve_weights("mn01_as")


def test_unknown_model_names_are_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match="model='mn07_as' has no published checkpoint.*mn04_as"):
        _weights.resolve_weights("mn07_as")
    # a width without a release is fine with local or no weights
    PretrainedClassifier("mn07_as", weights=False, max_epochs=1, sr=16000).fit(*_tones(2, sr=16000))


# -- fitting ----------------------------------------------------------------------------


def test_head_only_fine_tuning_keeps_the_pretrained_body(mn04):
    X, y = _tones(8)
    clf = PretrainedClassifier(fine_tune="head", max_epochs=3, random_state=0).fit(X, y)
    body, ref = clf.module_.features.state_dict(), mn04.features.state_dict()
    assert all(torch.equal(body[k], ref[k]) for k in ref)  # weights and BN statistics
    assert clf.module_.classifier[5].out_features == 2
    assert torch.equal(clf.module_.classifier[2].weight, mn04.classifier[2].weight) is False
    assert clf.weights_ == str(SHIPPED)
    assert clf.predict(X[[0, -1]]).tolist() == ["low", "high"]


def test_full_fine_tuning_trains_the_body_at_a_smaller_rate(mn04):
    X, y = _tones(6)
    clf = PretrainedClassifier(max_epochs=2, lr=1e-3, body_lr_scale=0.1, random_state=0).fit(X, y)
    groups = clf.net_.optimizer_.param_groups
    assert sorted(g["initial_lr"] for g in groups) == pytest.approx([1e-4, 1e-3])
    changed = [k for k, v in clf.module_.features.state_dict().items()
               if not torch.equal(v, mn04.features.state_dict()[k])]
    assert changed


def test_same_seed_same_model_and_clone_refits():
    X, y = _tones(6)
    a = PretrainedClassifier(max_epochs=2, random_state=3).fit(X, y)
    b = PretrainedClassifier(max_epochs=2, random_state=3).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def test_every_kind_of_row_gives_the_same_clips(tmp_path):
    """Waveforms at any rate, wav files, clip rows and Reassembler's recordings
    reach the network as the same 32-kHz audio."""
    X, y = _tones(3)
    clf = PretrainedClassifier(fine_tune="head", max_epochs=2, random_state=0).fit(X, y)
    ref = clf.predict_logits(X)
    paths = []
    for i, x in enumerate(X):
        paths.append(str(tmp_path / f"c{i}.wav"))
        sf.write(paths[-1], x, 44100, subtype="FLOAT")
    np.testing.assert_allclose(clf.predict_logits(paths), ref, atol=1e-4)
    # one 6-s file cut into clip rows, joined back by Reassembler
    long = tmp_path / "long.wav"
    sf.write(long, X.reshape(-1), 44100, subtype="FLOAT")
    rows = [f"{long}#t={k},{k + 1}" for k in range(len(X))]
    audio = Reassembler().fit_transform(rows)
    assert len(audio.recordings) == 1
    # interior clips see their neighbours' audio at the edges: close, not equal
    logits = clf.predict_logits(audio)
    assert np.argmax(logits, 1).tolist() == np.argmax(ref, 1).tolist()
    pipe = Pipeline([("r", Reassembler().fit(rows)), ("clf", clf)])  # predict: clips as they are
    assert pipe.predict(rows).tolist() == clf.predict(X).tolist()
    # a 32-kHz waveform needs sr=32000: the same clip, resampled once
    clf32 = PretrainedClassifier(fine_tune="head", max_epochs=2, random_state=0, sr=32000)
    X32 = np.stack([librosa.resample(x, orig_sr=44100, target_sr=32000, res_type="soxr_hq") for x in X])
    clf32.fit(X32, y)
    np.testing.assert_allclose(clf32.predict_logits(X32), clf.predict_logits(X), atol=1e-4)


def test_clips_of_another_duration_are_refused():
    X, y = _tones(3)
    clf = PretrainedClassifier(fine_tune="head", max_epochs=1, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="X has 22050 features, but PretrainedClassifier is expecting 44100"):
        clf.predict(X[:, :22050])
    audio = AudioSet([(x[:22050],) for x in X], np.arange(len(X)), np.zeros(len(X)), 44100)
    with pytest.raises(ValueError, match="give 50 frames.*fitted on clips of 100 frames"):
        clf.predict(audio)


def test_pretrained_head_fits_the_checks_toy_data():
    """What scikit-learn's check_classifiers_train asks (> 83 % training
    accuracy on standardised blobs), with the pretrained body (the common
    battery runs without weights, see test_common.EXPECTED_FAILED)."""
    from sklearn.datasets import make_blobs
    from sklearn.preprocessing import StandardScaler

    X, y = make_blobs(n_samples=300, random_state=0, n_features=2, centers=3, cluster_std=0.1)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    # augmentations off, as for the battery's instances: a time mask of up to
    # 20 frames would blank these 4-frame "clips" entirely
    clf = PretrainedClassifier(fine_tune="head", sr=32000, max_epochs=10, mixup_alpha=0,
                               freq_mask_width=0, time_mask_width=0, random_state=0).fit(X, y)
    assert clf.score(X, y) > 0.83


def test_complexity_report_counts_the_network():
    X, y = _tones(3)
    clf = PretrainedClassifier(fine_tune="head", max_epochs=1, random_state=0).fit(X, y)
    report = complexity_report(clf)
    assert report.input_shape == (1, 128, 100)
    assert report.total_params == sum(p.numel() for p in clf.module_.parameters())
    # ~12 M MACs per second of audio, an order of magnitude above the DCASE limit's half
    assert 10e6 < report.total_macs < 15e6
    assert report.within_mac_limit and not report.within_param_limit


def test_efficientat_features_locate_each_clip_in_its_recording():
    x = np.arange(3 * 44100, dtype=np.float32) % 7 / 7 - 0.5
    audio = AudioSet([tuple(np.split(x, 3))], [0, 0, 0], [0, 1, 2], sr=44100)
    fs = efficientat_features(audio)
    assert fs.width == 100 and fs.row_start.tolist() == [0, 100, 200]
    assert len(fs.store) == EfficientATFrontEnd.n_frames(96000)
