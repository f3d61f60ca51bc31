"""Issue 9 (Reliability II), audio and data files: integer PCM, overflow,
empty mel bands, content-keyed cache, truncated / unreadable files, split
files with duplicated rows, and the front end's parameter tables."""

import builtins
import os

import numpy as np
import pytest
import soundfile as sf
from sklearn.pipeline import Pipeline
from sklearn.utils._param_validation import InvalidParameterError

import skasc._audio as audio_mod
import skasc.preprocessing._logmel as prep
from skasc import LogMel, RandomCrop, Reassembler, SpecAugment
from skasc._audio import read_clip
from skasc.datasets import load_tau22

SR = 44100
SMALL = dict(n_mels=16, n_fft=512, win_length=400, hop_length=200)


def _paths(*paths):
    return np.array([str(p) for p in paths], dtype=object)


def _noise(n=SR, scale=0.1, seed=0):
    return np.random.default_rng(seed).normal(scale=scale, size=n).clip(-0.99, 0.99)


# -- integer PCM arrays ---------------------------------------------------------------


@pytest.mark.parametrize("dtype, subtype", [
    (np.int16, "PCM_16"), (np.int32, "PCM_32"), (np.uint8, "PCM_U8"),
])
def test_integer_pcm_array_gives_the_features_of_its_file(tmp_path, dtype, subtype):
    x = _noise()
    path = tmp_path / "park-paris-1-10-0-a.wav"
    sf.write(path, x, SR, subtype=subtype)
    from_file = sf.read(path, dtype="float64")[0]
    # the integer samples the file holds
    info = np.iinfo(dtype)
    half = 2.0 ** (info.bits - 1)
    offset = half if info.min == 0 else 0.0
    pcm = np.round(from_file * half + offset).astype(dtype)[None]
    before = pcm.copy()

    by_path = np.asarray(LogMel(**SMALL).fit_transform(_paths(path)))
    by_int = np.asarray(LogMel(**SMALL).fit_transform(pcm))
    by_float = np.asarray(LogMel(**SMALL).fit_transform(from_file[None].astype(np.float32)))
    np.testing.assert_allclose(by_int, by_path, atol=1e-3)
    np.testing.assert_allclose(by_float, by_path, atol=1e-3)
    np.testing.assert_array_equal(pcm, before)  # the user's array is not touched
    # through the whole front end too
    pipe = Pipeline([("reassemble", Reassembler()), ("logmel", LogMel(**SMALL))])
    np.testing.assert_allclose(np.asarray(pipe.fit_transform(pcm)), by_path, atol=1e-3)


def test_integer_pcm_scaling_of_every_integer_type():
    for dtype in (np.int8, np.int16, np.int32, np.uint8):
        info = np.iinfo(dtype)
        X = np.array([[info.min, info.max, (info.min + info.max + 1) // 2]], dtype=dtype)
        out = audio_mod.validate_waveforms(X)
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, [[-1.0, 1.0 - 2.0 ** (1 - info.bits), 0.0]], atol=1e-7)
    # no PCM sample type (a list of Python ints is int64): refused, saying how to convert
    for X in (np.zeros((1, 10), np.int64), np.zeros((1, 10), np.uint16), [[0, 1, -1]]):
        with pytest.raises(ValueError, match=r"not a PCM sample type.*\[-1, 1\]"):
            LogMel(**SMALL).fit(X)


# -- overflow -------------------------------------------------------------------------


def test_audio_overflowing_to_inf_is_refused_naming_the_row():
    X = np.zeros((3, 4410), np.float32)
    X[1] = 1e30 * _noise(4410)  # finite float32 samples, infinite power
    assert np.isfinite(X).all()
    with pytest.raises(ValueError, match=r"row 1 of X.*not finite") as info:
        LogMel(**SMALL).fit_transform(X)
    assert "[-1, 1]" in str(info.value)
    with pytest.raises(ValueError, match=r"row 1 of X"):
        Pipeline([("reassemble", Reassembler()), ("logmel", LogMel(**SMALL))]).fit_transform(
            X, reassemble__groups=[0, 0, 1])


def test_file_overflowing_to_inf_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "park-paris-1-10-0-a.wav"
    sf.write(path, 1e30 * _noise(4410), SR, subtype="FLOAT")
    with pytest.raises(ValueError, match=r"park-paris-1-10-0-a\.wav.*not finite"):
        LogMel(**SMALL).fit_transform(_paths(path))


# -- empty mel bands ------------------------------------------------------------------


def test_too_many_mel_bands_for_n_fft_are_refused():
    X = _noise(8000)[None].astype(np.float32)
    with pytest.raises(ValueError, match=r"n_mels=2000.*n_fft=4096.*empty"):
        LogMel(n_mels=2000).fit(X)
    with pytest.raises(ValueError, match="empty"):
        LogMel(n_mels=2000).fit_transform(X)


def test_fmax_above_nyquist_is_refused():
    X = _noise(8000)[None].astype(np.float32)
    with pytest.raises(ValueError, match=r"fmax=30000.*Nyquist.*22050"):
        LogMel(fmax=30000).fit(X)
    with pytest.raises(ValueError, match=r"fmax=10000.*Nyquist.*8000"):
        LogMel(sr=16000, fmax=10000, **SMALL).fit(X)
    assert LogMel(fmax=22050).fit(X).transform(X).shape == (1, 256 * 10)


def test_default_and_small_settings_have_no_empty_band():
    X = _noise(8000)[None].astype(np.float32)
    for params in ({}, SMALL, dict(n_fft=64, win_length=64, hop_length=16, n_mels=8)):
        F = np.asarray(LogMel(**params).fit_transform(X)).reshape(1, params.get("n_mels", 256), -1)
        assert (F.std(axis=2) > 0).all()


# -- cache keyed on the content ---------------------------------------------------------


def test_cache_is_not_stale_after_same_size_same_mtime_rewrite(tmp_path, monkeypatch):
    paths = []
    for k in range(3):
        p = tmp_path / f"park-paris-1-10-{k}-a.wav"
        sf.write(p, _noise(seed=k), SR, subtype="PCM_24")
        paths.append(p)
    X = _paths(*paths)
    calls = []
    real = prep.logmel
    monkeypatch.setattr(prep, "logmel", lambda *a, **k: calls.append(1) or real(*a, **k))
    mem = str(tmp_path / "cache")
    first = np.asarray(LogMel(**SMALL, memory=mem).fit_transform(X))
    assert len(calls) == 3
    st = os.stat(paths[1])
    sf.write(paths[1], _noise(seed=99), SR, subtype="PCM_24")  # same size, other samples
    os.utime(paths[1], ns=(st.st_atime_ns, st.st_mtime_ns))
    after = os.stat(paths[1])
    assert (after.st_size, after.st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    again = np.asarray(LogMel(**SMALL, memory=mem).fit_transform(X))
    assert len(calls) == 4  # only the rewritten file is recomputed
    fresh = np.asarray(LogMel(**SMALL).fit_transform(X))
    np.testing.assert_array_equal(again, fresh)
    assert not np.allclose(again[1], first[1])
    np.testing.assert_array_equal(again[[0, 2]], first[[0, 2]])


# -- files ----------------------------------------------------------------------------


def _truncated(tmp_path, cut=3000):
    path = tmp_path / "park-paris-1-10-1-a.wav"
    sf.write(path, _noise(), SR, subtype="PCM_24")
    data = path.read_bytes()
    path.write_bytes(data[:-cut])
    return path


def test_truncated_wav_is_refused_naming_the_file(tmp_path):
    path = _truncated(tmp_path)
    with pytest.raises(ValueError, match=r"park-paris-1-10-1-a\.wav.*truncated.*44100.*43100"):
        read_clip(path)
    good = tmp_path / "park-paris-1-10-0-a.wav"
    sf.write(good, _noise(), SR, subtype="PCM_24")
    with pytest.raises(ValueError, match=r"park-paris-1-10-1-a\.wav.*truncated"):
        LogMel(**SMALL).fit_transform(Reassembler().fit_transform(_paths(good, path)))
    with pytest.raises(ValueError, match=r"park-paris-1-10-1-a\.wav.*truncated"):
        LogMel(**SMALL, memory=str(tmp_path / "cache")).fit_transform(_paths(good, path))


def test_wav_of_odd_length_is_named_in_the_length_error(tmp_path):
    a, b, c = (tmp_path / f"park-paris-1-10-{k}-a.wav" for k in range(3))
    sf.write(a, _noise(), SR, subtype="PCM_24")
    sf.write(b, _noise(SR - 900), SR, subtype="PCM_24")  # complete file, shorter clip
    sf.write(c, _noise(), SR, subtype="PCM_24")
    with pytest.raises(ValueError, match=r"different lengths.*park-paris-1-10-1-a\.wav"):
        LogMel(**SMALL).fit_transform(_paths(a, b, c))


def test_permission_denied_names_the_file(tmp_path, monkeypatch):
    path = tmp_path / "park-paris-1-10-0-a.wav"
    sf.write(path, _noise(4410), SR, subtype="PCM_24")
    real_open = builtins.open

    def denied(file, *args, **kwargs):
        if os.fspath(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", denied)
    with pytest.raises(PermissionError, match=r"park-paris-1-10-0-a\.wav.*permission denied"):
        read_clip(path)
    for memory in (None, str(tmp_path / "cache")):
        with pytest.raises(PermissionError, match=r"park-paris-1-10-0-a\.wav.*permission denied"):
            LogMel(**SMALL, memory=memory).fit_transform(_paths(path))


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_names_the_file(tmp_path):
    path = tmp_path / "park-paris-1-10-0-a.wav"
    sf.write(path, _noise(4410), SR, subtype="PCM_24")
    path.chmod(0)
    try:
        with pytest.raises(PermissionError, match=r"park-paris-1-10-0-a\.wav.*permission denied"):
            read_clip(path)
    finally:
        path.chmod(0o644)


def _mini_meta(root, names):
    (root / "evaluation_setup").mkdir(parents=True)
    rows = [f"{n}\t{n.split('/')[1].split('-')[0]}\tparis-1\ta" for n in names]
    (root / "meta.csv").write_text("filename\tscene_label\tidentifier\tsource_label\n"
                                   + "".join(r + "\n" for r in rows))
    return [r.split("\t")[:2] for r in rows]


def test_split_file_with_duplicated_rows_is_refused(tmp_path):
    names = [f"audio/park-paris-1-10-{k}-a.wav" for k in range(4)]
    rows = _mini_meta(tmp_path, names)
    setup = rows + [rows[2]]  # row 3 listed again as data row 5
    for subset in ("train", "evaluate"):
        (tmp_path / "evaluation_setup" / f"fold1_{subset}.csv").write_text(
            "filename\tscene_label\n" + "".join("\t".join(r) + "\n" for r in setup))
    (tmp_path / "evaluation_setup" / "fold1_test.csv").write_text(
        "filename\n" + "".join(r[0] + "\n" for r in setup))
    for subset in ("train", "evaluate", "test"):
        with pytest.raises(ValueError, match=rf"fold1_{subset}\.csv.*park-paris-1-10-2-a\.wav"
                                             r".*more than once.*data rows 3 and 5"):
            load_tau22(tmp_path, subset)
    assert len(load_tau22(tmp_path, "all").X) == 4


# -- parameter tables ---------------------------------------------------------------------
# (scikit-learn's check_param_validation runs on every estimator in test_common.py)


@pytest.mark.parametrize("est, match", [
    (Reassembler(sr=0), "'sr' parameter of Reassembler"),
    (LogMel(n_mels=0), "'n_mels' parameter of LogMel"),
    (LogMel(memory=3), "'memory' parameter of LogMel"),
    (LogMel(n_jobs=1.5), "'n_jobs' parameter of LogMel"),
    (LogMel(fmax=-1.0), "'fmax' parameter of LogMel"),
    (RandomCrop(p=2.0), "'p' parameter of RandomCrop"),
    (SpecAugment(mask_value=float("nan")), "'mask_value' parameter of SpecAugment"),
    (SpecAugment(mask_value=float("inf")), "'mask_value' parameter of SpecAugment"),
])
def test_bad_parameters_raise_sklearns_error(est, match):
    X = np.zeros((2, 6, 20), np.float32) if isinstance(est, (RandomCrop, SpecAugment)) \
        else np.zeros((2, 4410), np.float32)
    with pytest.raises(InvalidParameterError, match=match):
        est.fit(X)


def test_cross_parameter_checks_name_the_parameters():
    X = np.zeros((1, 4410), np.float32)
    with pytest.raises(ValueError, match=r"win_length=8192.*n_fft=4096"):
        LogMel(win_length=8192).fit(X)
    with pytest.raises(ValueError, match=r"fmax must be > fmin, got fmin=200.0, fmax=100.0"):
        LogMel(fmin=200, fmax=100).fit(X)
    with pytest.raises(ValueError, match=r"fmin must be < sr / 2 = 22050.0, got 30000.0"):
        LogMel(fmin=30000).fit(X)
