"""The batched log-mel kernel (skasc._logmel) against librosa."""

import warnings

import numpy as np
import pytest
import torch

librosa = pytest.importorskip("librosa")

from skasc._logmel import logmel, mel_filterbank  # noqa: E402

SR = 44100
TOL_DB = 1e-3
DEFAULT = dict(sr=SR, n_fft=4096, win_length=3528, hop_length=882, n_mels=256)
SMALL = dict(sr=SR, n_fft=1024, win_length=1024, hop_length=512, n_mels=64)


# ---------------------------------------------------------------- helpers


def _coloured_noise(rng, n, exponent):
    """Unit-RMS noise with a 1/f**exponent power spectrum."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spec.shape[0], dtype=float)
    f[0] = 1.0
    x = np.fft.irfft(spec / f ** (exponent / 2), n)
    return x / np.sqrt(np.mean(x**2))


def _scene(rng, n, sr=SR):
    """Synthetic 'acoustic scene': coloured noises and tones at -20..-60 dBFS,
    a slow level change and a near-silent stretch."""
    t = np.arange(n) / sr
    x = np.zeros(n)
    for exponent in rng.choice([0.0, 1.0, 2.0], size=2, replace=False):
        x += 10 ** (rng.uniform(-60, -20) / 20) * _coloured_noise(rng, n, exponent)
    for _ in range(3):
        f0 = rng.uniform(40, 16000)
        x += 10 ** (rng.uniform(-60, -20) / 20) * np.sin(2 * np.pi * f0 * t + rng.uniform(0, 6))
    x *= 1 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.1, 0.5) * t)
    a = rng.integers(0, n // 2)
    x[a:a + n // 5] *= 10 ** (rng.uniform(-80, -50) / 20)  # near silence
    return x


def _librosa32(y, sr=SR, n_fft=4096, win_length=3528, hop_length=882, n_mels=256,
               window="hamming", center=True, pad_mode="constant", power=2.0, **kw):
    """librosa's default (float32) pipeline."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # n_fft larger than a short input
        S = librosa.feature.melspectrogram(
            y=np.asarray(y, dtype=np.float32), sr=sr, n_fft=n_fft, hop_length=hop_length,
            win_length=win_length, window=window, center=center, pad_mode=pad_mode,
            power=power, n_mels=n_mels, **kw)
    return librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=None)


def _librosa64(y, sr=SR, n_fft=4096, win_length=3528, hop_length=882, n_mels=256,
               window="hamming", center=True, pad_mode="constant", power=2.0, **kw):
    """librosa's pipeline in float64 (float64 STFT and filterbank)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        D = librosa.stft(np.asarray(y, dtype=np.float64), n_fft=n_fft,
                         hop_length=hop_length, win_length=win_length, window=window,
                         center=center, pad_mode=pad_mode)
        mel = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, dtype=np.float64, **kw)
    S = np.einsum("mf,...ft->...mt", mel, np.abs(D) ** power, optimize=True)
    return librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=None)


def _maxdiff(a, b):
    assert a.shape == b.shape
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


@pytest.fixture(scope="module")
def clips():
    rng = np.random.default_rng(20230)
    return np.stack([_scene(rng, SR) for _ in range(8)]).astype(np.float32)


@pytest.fixture(scope="module")
def recording():
    rng = np.random.default_rng(1)
    return _scene(rng, 10 * SR)  # float64


# ---------------------------------------------------------- agreement


def test_mel_filterbank_is_librosas():
    for kw in (dict(sr=SR, n_fft=4096, n_mels=256),
               dict(sr=22050, n_fft=1024, n_mels=64, fmin=50.0, fmax=8000.0, htk=True)):
        np.testing.assert_array_equal(mel_filterbank(**kw), librosa.filters.mel(**kw))
    assert mel_filterbank(SR, 4096, 256).shape == (256, 2049)


def test_one_second_clips_match_librosa(clips):
    out = logmel(clips)
    assert out.shape == (8, 256, 51) and out.dtype == np.float32
    assert _maxdiff(out, _librosa32(clips)) <= TOL_DB
    assert _maxdiff(out, _librosa64(clips)) <= TOL_DB
    assert out.min() < -60 and out.max() > 0  # the levels cover a wide range


def test_ten_second_recording_matches_librosa(recording):
    out = logmel(recording)  # 1-D float64 -> 2-D
    assert out.shape == (256, 501) and out.dtype == np.float32
    assert _maxdiff(out, _librosa64(recording)) <= TOL_DB
    out32 = logmel(recording.astype(np.float32))
    assert _maxdiff(out32, _librosa32(recording)) <= TOL_DB


def test_other_parameters_match_librosa(clips, recording):
    out = logmel(clips, **SMALL)
    assert out.shape == (8, 64, 1 + SR // 512)
    assert _maxdiff(out, _librosa32(clips, **SMALL)) <= TOL_DB
    assert _maxdiff(out, _librosa64(clips, **SMALL)) <= TOL_DB
    kw = dict(sr=22050, n_fft=2048, win_length=1500, hop_length=300, n_mels=128,
              fmin=30.0, fmax=9000.0, window="hann")
    y = recording[: 3 * 22050]
    assert _maxdiff(logmel(y, **kw), _librosa64(y, **kw)) <= TOL_DB


@pytest.mark.parametrize("pad_mode", ["constant", "reflect", "edge", "symmetric"])
@pytest.mark.parametrize("n", [300, 5000, 30000])
def test_pad_modes_match_librosa(recording, pad_mode, n):
    y = recording[1000:1000 + n]
    out = logmel(y, pad_mode=pad_mode, **SMALL)
    assert _maxdiff(out, _librosa64(y, pad_mode=pad_mode, **SMALL)) <= TOL_DB


def test_not_centred_and_magnitude_match_librosa(clips):
    out = logmel(clips[:2], center=False)
    assert out.shape == (2, 256, 1 + (SR - 4096) // 882)
    assert _maxdiff(out, _librosa64(clips[:2], center=False)) <= TOL_DB
    out = logmel(clips[:2], power=1.0, **SMALL)
    assert _maxdiff(out, _librosa64(clips[:2], power=1.0, **SMALL)) <= TOL_DB


def test_extreme_dynamic_range_is_exact():
    # A full-scale tone over -120 dB noise: float32 FFT rounding alone errs by
    # ~0.04 dB in the quiet bands, so this exercises the float64 fallback.
    rng = np.random.default_rng(3)
    t = np.arange(2 * SR) / SR
    cases = [0.9 * np.sin(2 * np.pi * 100 * t) + 1e-6 * rng.standard_normal(t.size),
             0.9 * np.sin(2 * np.pi * 1000 * t) + 3e-5 * rng.standard_normal(t.size),
             0.3 * _coloured_noise(rng, t.size, 3.0)]
    for y in cases:
        assert _maxdiff(logmel(y), _librosa64(y)) <= TOL_DB
        y32 = y.astype(np.float32)
        assert _maxdiff(logmel(y32), _librosa32(y32)) <= TOL_DB


def test_silence_and_near_silence():
    out = logmel(np.zeros((2, SR), np.float32))
    assert out.shape == (2, 256, 51)
    np.testing.assert_allclose(out, -100.0, atol=1e-4)
    y = 1e-6 * np.random.default_rng(4).standard_normal(SR)  # mel power ~ amin
    assert _maxdiff(logmel(y), _librosa64(y)) <= TOL_DB
    out = logmel(np.zeros(SR), amin=1e-5)
    np.testing.assert_allclose(out, -50.0, atol=1e-4)


@pytest.mark.parametrize("n", [1, 2, 100, 881, 882, 2047, 2048, 3528, 4095, 4096, 4097, 9000])
def test_short_inputs_match_librosa(n):
    y = np.random.default_rng(n).normal(scale=0.1, size=n)
    out = logmel(y)
    assert out.shape == (256, 1 + n // 882)
    assert _maxdiff(out, _librosa64(y)) <= TOL_DB
    assert _maxdiff(out, _librosa32(y)) <= TOL_DB
    out = logmel(y[None], **SMALL)
    assert out.shape == (1, 64, 1 + n // 512)
    assert _maxdiff(out, _librosa64(y[None], **SMALL)) <= TOL_DB


# ------------------------------------------------ cropping and batching


def test_interior_frames_equal_those_of_hop_aligned_crops(recording):
    full = logmel(recording)
    hop, half = 882, 4096 // 2
    for start_frame in (0, 37, 250, 450):
        crop = recording[start_frame * hop:start_frame * hop + SR]
        feats = logmel(crop)
        assert feats.shape == (256, 51)
        # frames whose whole n_fft span lies inside the crop
        inner = [t for t in range(51) if t * hop - half >= 0 and t * hop + half <= SR]
        assert inner == list(range(3, 48))
        d = _maxdiff(feats[:, inner], full[:, [start_frame + t for t in inner]])
        assert d <= TOL_DB


def test_batch_rows_equal_single_calls_and_threads(clips):
    out = logmel(clips, n_threads=1)
    for i in (0, 5):
        np.testing.assert_allclose(logmel(clips[i]), out[i], rtol=0, atol=1e-4)
    before = torch.get_num_threads()
    np.testing.assert_allclose(logmel(clips, n_threads=2), out, rtol=0, atol=1e-4)
    assert torch.get_num_threads() == before


def test_input_types(clips):
    ref = logmel(clips[:2])
    np.testing.assert_array_equal(logmel(torch.from_numpy(clips[:2])), ref)
    np.testing.assert_array_equal(logmel(list(clips[:2])), ref)
    assert _maxdiff(logmel(clips[:2].astype(np.float16)), ref) < 0.5  # fp16 input
    out64 = logmel(clips[:2], dtype=np.float64)
    assert out64.dtype == np.float64 and _maxdiff(out64, ref) < 1e-4
    assert logmel(np.zeros((0, 1000), np.float32)).shape == (0, 256, 2)
    # a window given as an array (not cached) equals the named one
    hann = librosa.filters.get_window("hann", 1024, fftbins=True)
    np.testing.assert_array_equal(logmel(clips[:2], window=hann, **SMALL),
                                  logmel(clips[:2], window="hann", **SMALL))


# ------------------------------------------------------------ validation


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_fft=0), "n_fft"),
    (dict(n_fft=-4), "n_fft"),
    (dict(n_fft=4096.0), "n_fft"),
    (dict(win_length=0), "win_length"),
    (dict(win_length=5000), "win_length"),
    (dict(hop_length=0), "hop_length"),
    (dict(hop_length=-1), "hop_length"),
    (dict(n_mels=0), "n_mels"),
    (dict(n_mels=True), "n_mels"),
    (dict(sr=0), "sr"),
    (dict(sr=-44100), "sr"),
    (dict(fmin=-1.0), "fmin"),
    (dict(fmin=100.0, fmax=50.0), "fmax"),
    (dict(fmin=30000.0), "fmin"),
    (dict(power=0.0), "power"),
    (dict(amin=0.0), "amin"),
    (dict(amin=float("nan")), "amin"),
    (dict(pad_mode="wrap"), "pad_mode"),
    (dict(center="yes"), "center"),
    (dict(dtype=np.int32), "dtype"),
    (dict(window="no-such-window"), "window"),
    (dict(window=np.ones(100)), "window"),
    (dict(n_threads=0), "n_threads"),
])
def test_invalid_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        logmel(np.zeros((1, 8000), np.float32), **kwargs)


@pytest.mark.parametrize("x, match", [
    (np.zeros((1, 8000), np.int16), "floating"),
    (np.zeros((1, 8000), np.complex64), "floating"),
    (np.zeros((2, 1, 8000), np.float32), "1-D"),
    (np.zeros((), np.float32), "1-D"),
    (np.zeros((1, 0), np.float32), "at least one sample"),
    (np.array([[0.0, np.nan, 0.0]]), "finite"),
    (np.array([0.0, np.inf]), "finite"),
])
def test_invalid_input(x, match):
    with pytest.raises(ValueError, match=match):
        logmel(x)


def test_uncentred_needs_n_fft_samples():
    with pytest.raises(ValueError, match="n_fft"):
        logmel(np.zeros(4095), center=False)
    assert logmel(np.zeros(4096), center=False).shape == (256, 1)


def test_mel_filterbank_validation():
    with pytest.raises(ValueError, match="n_mels"):
        mel_filterbank(SR, 4096, 0)
    with pytest.raises(ValueError, match="sr"):
        mel_filterbank(-1, 4096, 64)
    with pytest.raises(ValueError, match="fmax"):
        mel_filterbank(SR, 4096, 64, fmin=500.0, fmax=100.0)
