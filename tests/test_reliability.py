"""Bad input fails clearly, training survives being killed, caches never go stale."""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.pipeline import Pipeline

from skasc import (
    DistilledStudent,
    DwsCNNClassifier,
    FeatureSet,
    LogMel,
    RandomCrop,
    Reassembler,
    SpecAugment,
)
from skasc import MaskAugmentation
from skasc.preprocessing._augmentation import draw_starts

from _draw_reference import apply_masks

SMALL = dict(n_mels=16, n_fft=512, win_length=400, hop_length=200)


@pytest.fixture
def toy(toy_logmels):
    """30 clips of pure noise (no signal: these tests need none)."""
    return toy_logmels(n=30, shift=0.0)


def _fitted(toy):
    return DwsCNNClassifier(hidden=4, max_epochs=1, random_state=0).fit(*toy)


def _wav(path, data, sr=44100):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data, sr, subtype="PCM_24")
    return str(path)


def _nan_audio():
    x = np.zeros((2, 4410), np.float32)
    x[1, 7] = np.nan
    return x


def _inf_audio():
    x = np.zeros((2, 4410), np.float32)
    x[0, 3] = np.inf
    return x


CASES = {
    "nan audio": (lambda tmp, toy: LogMel(**SMALL).fit(_nan_audio()), ValueError, "NaN|nan"),
    "inf audio": (lambda tmp, toy: Reassembler().fit_transform(_inf_audio()), ValueError, "inf"),
    "empty X": (lambda tmp, toy: LogMel(**SMALL).fit(np.zeros((0, 4410), np.float32)), ValueError, "0 sample"),
    "0-length clips": (lambda tmp, toy: LogMel(**SMALL).fit(np.zeros((3, 0), np.float32)), ValueError, "0 feature"),
    "stereo array": (lambda tmp, toy: LogMel(**SMALL).fit(np.zeros((2, 4410, 2), np.float32)), ValueError, "dim|2D|2-D"),
    "stereo file": (lambda tmp, toy: LogMel(**SMALL).fit_transform(np.array(
        [_wav(tmp / "bus-lyon-1-2-0-a.wav", np.zeros((4410, 2)))], dtype=object)), ValueError,
        "bus-lyon-1-2-0-a.wav.*channel"),
    "wrong sample rate": (lambda tmp, toy: LogMel(**SMALL).fit_transform(np.array(
        [_wav(tmp / "bus-lyon-1-2-0-a.wav", np.zeros(4410), sr=16000)], dtype=object)), ValueError,
        "bus-lyon-1-2-0-a.wav.*sample rate"),
    # a plain file is a recording of its own; one snippet claimed by two files is refused
    "one snippet in two folders": (lambda tmp, toy: Reassembler().fit_transform(np.array(
        [_wav(tmp / d / "bus-lyon-1-2-0-a.wav", np.zeros(4410)) for d in ("x", "y")], dtype=object)),
        ValueError, r"x/bus-lyon-1-2-0-a.wav.*y/bus-lyon-1-2-0-a.wav"),
    "too-short clips at predict": (lambda tmp, toy: _fitted(toy).predict(toy[0][:, :, :6]), ValueError,
                                   "expecting 96 features"),
    "clips of different lengths": (lambda tmp, toy: LogMel(**SMALL).fit_transform(np.array(
        [_wav(tmp / "bus-lyon-1-2-0-a.wav", np.zeros(4410)), _wav(tmp / "bus-lyon-1-2-1-a.wav", np.zeros(2205))],
        dtype=object)), ValueError, "different lengths"),
    "X and y lengths differ": (lambda tmp, toy: DwsCNNClassifier(max_epochs=1).fit(toy[0], toy[1][:-2]),
                               ValueError, "different lengths"),
    "single class": (lambda tmp, toy: DwsCNNClassifier(max_epochs=1).fit(toy[0], np.array(["bus"] * 30)),
                     ValueError, "at least 2 classes"),
    "labels never seen, in score": (lambda tmp, toy: _fitted(toy).score(toy[0], np.array(["metro"] * 30)),
                                    ValueError, "not fitted on.*metro"),
    "feature shape mismatch": (lambda tmp, toy: _fitted(toy).predict_proba(np.zeros((2, 12, 8), np.float32)),
                               ValueError, "feature shape"),
    "teacher with other classes": (lambda tmp, toy: DistilledStudent(
        DwsCNNClassifier(hidden=4, max_epochs=1).fit(toy[0][:20], toy[1][:20] == "bus"),
        max_epochs=1).fit(*toy), ValueError, "fitted on classes.*need the same labels"),
    "teacher with other features": (lambda tmp, toy: DistilledStudent(
        DwsCNNClassifier(hidden=4, max_epochs=1).fit(toy[0][:, :4], toy[1]),
        max_epochs=1).fit(*toy), ValueError, "same features"),
    "audio where features are due": (lambda tmp, toy: RandomCrop().fit(Reassembler().fit_transform(
        np.zeros((2, 100), np.float32))), TypeError, "LogMel"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_raises_clear_error(case, tmp_path, toy):
    make_call, error, match = CASES[case]
    with pytest.raises(error, match=match):
        make_call(tmp_path, toy)


def test_bad_input_leaves_user_data_untouched(tmp_path, toy):
    X = _nan_audio()
    before = X.copy()
    with pytest.raises(ValueError):
        LogMel(**SMALL).fit(X)
    np.testing.assert_array_equal(np.isnan(X), np.isnan(before))
    Xf, y = toy
    Xf_before, y_before = Xf.copy(), y.copy()
    Pipeline([("crop", RandomCrop()), ("spec", SpecAugment()),
              ("clf", DwsCNNClassifier(hidden=4, max_epochs=1))]).fit(Xf, y)
    np.testing.assert_array_equal(Xf, Xf_before)  # masks are applied to copies
    np.testing.assert_array_equal(y, y_before)


# -- properties -----------------------------------------------------------------

waveforms = hnp.arrays(
    dtype=st.sampled_from([np.float32, np.float64, np.int16]),
    shape=st.tuples(st.integers(1, 3), st.integers(1, 3000)),
    elements=st.integers(-2000, 2000),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(X=waveforms, hop=st.sampled_from([100, 200, 441]))
def test_logmel_gives_finite_features_of_documented_shape(X, hop):
    X = X.astype(np.float64) / 4000 if X.dtype == np.int16 else X / 4000
    F = LogMel(n_mels=16, n_fft=512, win_length=400, hop_length=hop).fit_transform(X)
    arr = np.asarray(F)
    assert F.feature_shape == (1, 16, 1 + X.shape[1] // hop)
    assert arr.shape == (X.shape[0], 16 * (1 + X.shape[1] // hop))
    assert np.isfinite(arr).all()


recordings = st.lists(st.integers(12, 80), min_size=1, max_size=6)


@settings(max_examples=50, deadline=None)
@given(lengths=recordings, width=st.integers(1, 12), step=st.integers(1, 7), seed=st.integers(0, 2**31))
def test_random_crop_stays_inside_the_recording(lengths, width, step, seed):
    starts = np.cumsum([0] + lengths[:-1])
    stops = starts + np.array(lengths)
    store = np.zeros((sum(lengths), 3), np.float32)
    F = FeatureSet(store, starts, stops, starts, width)
    F = RandomCrop(step=step).fit_transform(F)
    drawn = draw_starts(F, np.arange(len(lengths)), np.random.default_rng(seed))
    assert np.all(drawn >= starts) and np.all(drawn + width <= stops)
    assert np.all((drawn - starts) % step == 0)


@settings(max_examples=50, deadline=None)
@given(bands=st.integers(1, 40), frames=st.integers(1, 60), fw=st.integers(0, 15), tw=st.integers(0, 15),
       nf=st.integers(0, 3), nt=st.integers(0, 3), seed=st.integers(0, 2**31))
def test_spec_augment_masks_never_exceed_their_widths(bands, frames, fw, tw, nf, nt, seed):
    x = np.ones((4, bands, frames), np.float32)
    drawn = apply_masks(x, MaskAugmentation(fw, tw, nf, nt, 0.0), np.random.default_rng(seed))
    for start, width in drawn["freq"]:
        assert np.all(width <= min(fw, bands)) and np.all(start + width <= bands)
    for start, width in drawn["time"]:
        assert np.all(width <= min(tw, frames)) and np.all(start + width <= frames)
    if nt * min(tw, frames) < frames:  # time masks together may blank every frame, so every band
        masked_bands = (x == 0).all(axis=2).sum(axis=1)
        assert np.all(masked_bands <= nf * min(fw, bands))


# -- interrupted training ---------------------------------------------------------

TRAIN_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    import numpy as np, torch
    torch.set_num_threads(1)
    from skorch.callbacks import Callback
    from skasc import DwsCNNClassifier, FeatureSet, RandomCrop, SpecAugment

    ckpt, out, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rng = np.random.default_rng(0)
    store = rng.normal(size=(24 * 40, 8)).astype(np.float32)
    starts = np.repeat(np.arange(24) * 40, 4)
    F = FeatureSet(store, starts, starts + 40, starts + np.tile(np.arange(4) * 10, 24), 10)
    y = np.repeat(np.arange(24) % 3, 4)
    F = SpecAugment(3, 3).fit_transform(RandomCrop().fit_transform(F))

    class KillMidEpoch(Callback):
        def on_batch_end(self, net, **kwargs):
            if len(net.history) == kill_at and len(net.history[-1]["batches"]) == 2:
                os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no except: a real crash

    callbacks = [("kill", KillMidEpoch())] if kill_at else []
    clf = DwsCNNClassifier(hidden=4, max_epochs=5, batch_size=16, random_state=0,
                           checkpoint_dir=ckpt or None, callbacks=callbacks).fit(F, y)
    np.save(out, clf.predict_proba(F))
""")


def test_killed_training_resumes_to_the_same_result(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(TRAIN_SCRIPT)
    ckpt = tmp_path / "ckpt"

    def run(*args):
        return subprocess.run([sys.executable, str(script), *map(str, args)], capture_output=True, text=True,
                              timeout=300)

    killed = run(ckpt, tmp_path / "never.npy", 3)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (tmp_path / "never.npy").exists()
    assert len(list(ckpt.glob("*/checkpoint.pt"))) == 1  # epochs 1-2 were saved before the crash
    resumed = run(ckpt, tmp_path / "resumed.npy", 0)
    assert resumed.returncode == 0, resumed.stderr
    straight = run("", tmp_path / "straight.npy", 0)
    assert straight.returncode == 0, straight.stderr
    np.testing.assert_allclose(np.load(tmp_path / "resumed.npy"), np.load(tmp_path / "straight.npy"), atol=1e-6)


def test_checkpoint_of_another_model_trains_afresh_in_its_own_folder(tmp_path, toy):
    X, y = toy
    DwsCNNClassifier(hidden=4, max_epochs=1, random_state=0, checkpoint_dir=tmp_path).fit(X, y)
    (first,) = tmp_path.glob("*/checkpoint.pt")
    before = first.read_bytes()
    other = DwsCNNClassifier(hidden=6, max_epochs=1, random_state=0, checkpoint_dir=tmp_path).fit(X, y)
    assert other.module_.input_conv.out_channels == 6
    assert len(list(tmp_path.glob("*/checkpoint.pt"))) == 2
    assert first.read_bytes() == before  # the first run's checkpoint is left as it was


def test_finished_checkpoint_is_not_trained_again(tmp_path, toy):
    X, y = toy
    a = DwsCNNClassifier(hidden=4, max_epochs=2, random_state=0, checkpoint_dir=tmp_path).fit(X, y)
    (path,) = tmp_path.glob("*/checkpoint.pt")
    mtime = os.stat(path).st_mtime_ns
    b = DwsCNNClassifier(hidden=4, max_epochs=2, random_state=0, checkpoint_dir=tmp_path).fit(X, y)
    assert os.stat(path).st_mtime_ns == mtime
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


# -- reproducibility and persistence ----------------------------------------------------


def test_same_seed_identical_and_save_load_params_round_trip(tmp_path, toy):
    X, y = toy
    a = DwsCNNClassifier(hidden=4, max_epochs=2, random_state=7).fit(X, y)
    b = DwsCNNClassifier(hidden=4, max_epochs=2, random_state=7).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    a.net_.save_params(f_params=tmp_path / "p.pt")
    c = DwsCNNClassifier(hidden=4, max_epochs=1, random_state=1).fit(X, y)
    assert np.abs(c.predict_proba(X) - a.predict_proba(X)).max() > 1e-4
    c.net_.load_params(f_params=tmp_path / "p.pt")
    np.testing.assert_array_equal(c.predict_proba(X), a.predict_proba(X))
