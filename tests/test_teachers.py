"""Any fitted classifier as a teacher (skasc._teachers, DistilledStudent, EnsembleTeacher).

The student's rows are 1-s clips of 3-s recordings at 16 kHz, so that the
teacher windows cut from a recording can be checked sample by sample.
"""

import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression

from skasc import (
    DistilledStudent,
    DwsCNNClassifier,
    EnsembleTeacher,
    LogMel,
    PretrainedClassifier,
    RandomCrop,
    Reassembler,
)
from skasc._ops import fuse_logits
from skasc._teachers import OnDemandTeacherOutputs, column_order, teacher_logits_at
from skasc.preprocessing._augmentation import draw_starts
from skasc._training import TeacherOutputs, precomputed_teacher_outputs, teacher_positions

SR, HOP = 16000, 320
LABELS = np.array(["bus", "park", "tram"])


@pytest.fixture(scope="module")
def audio():
    """12 recordings of 3 clips (36 rows); each class a band of noise."""
    rng = np.random.default_rng(0)
    clips, y, groups, positions = [], [], [], []
    t = np.arange(SR) / SR
    for r in range(12):
        label = LABELS[r % 3]
        f = {"bus": 300, "park": 1500, "tram": 5000}[label]
        for k in range(3):
            clips.append(0.05 * rng.normal(size=SR) + 0.2 * np.sin(2 * np.pi * (f + 30 * r) * t + k))
            y.append(label), groups.append(r), positions.append(k)
    return np.asarray(clips, np.float32), np.array(y), np.array(groups), np.array(positions)


@pytest.fixture(scope="module")
def student_features(audio):
    X, y, groups, positions = audio
    wav = Reassembler(sr=SR).fit_transform(X, groups=groups, positions=positions)
    fs = LogMel(sr=SR, n_fft=512, win_length=400, hop_length=HOP, n_mels=16).fit_transform(wav)
    return RandomCrop().fit_transform(fs), y


@pytest.fixture(scope="module")
def pretrained(audio):
    X, y, _, _ = audio
    return PretrainedClassifier(fine_tune="head", sr=SR, max_epochs=2, random_state=0).fit(X, y)


def _window(X, groups, rec, offset):
    signal = np.concatenate(X[groups == rec])
    out = np.zeros(SR, np.float32)
    piece = signal[offset * HOP:offset * HOP + SR]
    out[:len(piece)] = piece
    return out


def test_audio_teacher_is_given_the_audio_of_the_students_windows(audio, student_features, pretrained):
    X, _, groups, _ = audio
    fs, _ = student_features
    positions = teacher_positions(fs, 10)
    got = teacher_logits_at(pretrained, fs, positions, pretrained.classes_).numpy()
    rows = np.searchsorted(np.unique(fs.rec_start), positions, side="right") - 1
    first_rows = np.unique(fs.rec_start, return_index=True)[1]
    recs = fs.audio_link.audio.row_recording[first_rows[rows]]
    # the recording each window lies in, and where: its own samples, cut by hand
    windows = np.stack([
        _window(X, groups, groups[np.flatnonzero(fs.audio_link.audio.row_recording == r)[0]],
                int(p - fs.rec_start[first_rows[i]]))
        for p, r, i in zip(positions, recs, rows)])
    np.testing.assert_allclose(got, pretrained.predict_logits(windows), atol=1e-5)
    assert len(positions) > len(fs) // 3  # crop positions, not only the clips' own windows


class _Reversed(ClassifierMixin, BaseEstimator):
    """A fitted classifier whose columns come in reverse label order."""

    def __init__(self, inner):
        self.inner = inner

    def fit(self, X, y):
        return self

    def __sklearn_is_fitted__(self):  # fitted when its inner classifier is
        return hasattr(self.inner, "classes_")

    @property
    def classes_(self):
        return self.inner.classes_[::-1]

    def predict_proba(self, X):
        return self.inner.predict_proba(X)[:, ::-1]

    def predict(self, X):
        return self.inner.predict(X)


def test_teacher_columns_are_matched_by_label(student_features):
    fs, y = student_features
    lr = LogisticRegression(max_iter=500).fit(np.asarray(fs), y)
    positions = teacher_positions(fs, 25)
    direct = teacher_logits_at(lr, fs, positions, LABELS)
    np.testing.assert_array_equal(teacher_logits_at(_Reversed(lr), fs, positions, LABELS), direct)
    np.testing.assert_allclose(direct.numpy(), np.log(lr.predict_proba(
        np.asarray(fs.__class__(fs.store, positions, positions + fs.width, positions, fs.width)))),
        rtol=1e-5)
    a = DistilledStudent(lr, hidden=4, max_epochs=2, teacher_step=25, random_state=0).fit(fs, y)
    b = DistilledStudent(_Reversed(lr), hidden=4, max_epochs=2, teacher_step=25,
                         random_state=0).fit(fs, y)
    np.testing.assert_array_equal(a.predict_proba(fs), b.predict_proba(fs))


def test_teacher_with_other_labels_is_refused_naming_them(student_features):
    fs, y = student_features
    lr = LogisticRegression(max_iter=200).fit(np.asarray(fs), np.where(y == "park", "garden", y))
    with pytest.raises(ValueError, match=r"lacks \['park'\]; it has \['garden'\], which y does not"):
        DistilledStudent(lr, hidden=4, max_epochs=1).fit(fs, y)
    assert column_order(["b", "a", "c"], ["a", "b", "c"]).tolist() == [1, 0, 2]
    members = [FrozenEstimator(lr), FrozenEstimator(LogisticRegression().fit(np.asarray(fs), y))]
    with pytest.raises(ValueError, match=r"estimators\[0\] was fitted on classes.*garden"):
        EnsembleTeacher(members).fit(fs, y)


def test_audio_teacher_at_another_rate_is_refused_before_training(student_features):
    fs, y = student_features
    teacher = PretrainedClassifier(fine_tune="head", max_epochs=1)  # sr=44100
    with pytest.raises(ValueError, match=r"reads audio at \{'sr': 44100\} Hz, but the student's audio "
                                         r"is at 16000 Hz"):
        DistilledStudent(teacher, hidden=4, max_epochs=1).fit(fs, y)
    assert not hasattr(teacher, "module_")


def test_audio_teacher_needs_features_that_link_to_their_audio(student_features, pretrained):
    fs, y = student_features
    with pytest.raises(ValueError, match="features without their audio.*LogMel"):
        DistilledStudent(pretrained, hidden=4, max_epochs=1).fit(np.asarray(fs.windows()), y)


def test_unfitted_audio_teacher_is_fitted_on_the_students_audio(student_features):
    fs, y = student_features
    teacher = PretrainedClassifier(fine_tune="head", sr=SR, max_epochs=1, random_state=0)
    student = DistilledStudent(teacher, hidden=4, max_epochs=1, teacher_step=25,
                               random_state=0).fit(fs, y)
    assert student.teacher_ is not teacher and student.teacher_.classes_.tolist() == LABELS.tolist()
    # fitted on the recordings (crops of them), not on waveform rows
    assert not hasattr(student.teacher_, "n_features_in_")
    assert student.teacher_.input_shape_ == (1, 128, 100)  # 1 s at 32 kHz


def test_online_audio_teacher_gives_the_cached_outputs_per_batch(student_features, pretrained):
    fs, y = student_features
    starts = draw_starts(fs, np.arange(8), np.random.default_rng(1))
    online = OnDemandTeacherOutputs(pretrained, fs, LABELS).at(starts)
    np.testing.assert_allclose(online.numpy(), teacher_logits_at(pretrained, fs, starts, LABELS).numpy())
    DistilledStudent(pretrained, hidden=4, max_epochs=1, teacher_outputs="online",
                     random_state=0).fit(fs, y)


def _window_audio(audio, fs, starts):
    """The 1-s waveforms at store frames ``starts``, cut from the fixture's own clips."""
    clips, _, groups, _ = audio
    out = []
    for s in starts:
        row = int(np.searchsorted(fs.rec_start, s, side="right") - 1)
        recording = np.concatenate(clips[groups == groups[row]])
        offset = (int(s) - int(fs.rec_start[row])) * HOP
        out.append(recording[offset:offset + SR])
    return np.asarray(out, np.float32)


def test_online_audio_teacher_hears_the_mixup_mixture(audio, student_features, pretrained):
    """Function matching: the soft target is the teacher's output for the mixed
    audio, not the mix of its outputs for the two windows."""
    from skasc._training import BatchDrawer
    from skasc.preprocessing._augmentation import draw_batch
    from skasc.preprocessing._mixup import MixupAugmentation

    fs, y = student_features
    rows = np.arange(0, 36, 3)
    labels = np.searchsorted(LABELS, y[rows])
    drawer = BatchDrawer(fs, 3, mixup_alpha=0.5, seed=7, temperature=2.0,
                         teacher_outputs=OnDemandTeacherOutputs(pretrained, fs, LABELS))
    drawer.set_epoch(1)
    x, (target, soft) = drawer(list(zip(rows, labels)))
    # the same random numbers, drawn again by hand
    rng = np.random.default_rng([7, 1, 0])
    batch = draw_batch(fs, rows, rng, torch.as_tensor(fs.store))
    lam, perm = MixupAugmentation(0.5).sample(rng, len(rows))
    assert 0.0 < lam < 1.0 and (perm != np.arange(len(rows))).any()
    clean = _window_audio(audio, fs, batch.starts)
    mixed = lam * clean + (1.0 - lam) * clean[perm]
    expected = torch.softmax(torch.from_numpy(pretrained.predict_logits(mixed)) / 2.0, 1)
    np.testing.assert_allclose(soft.numpy(), expected.numpy(), rtol=1e-4, atol=1e-5)
    two = torch.softmax(torch.from_numpy(pretrained.predict_logits(clean)) / 2.0, 1)
    assert not np.allclose(soft.numpy(), (lam * two + (1 - lam) * two[perm]).numpy(), atol=1e-3)
    # the student's input and labels are mixed with the same lam and partners
    np.testing.assert_allclose(x[:, 0].numpy(), (lam * batch.x + (1 - lam) * batch.x[perm]).numpy(),
                               rtol=1e-6, atol=1e-6)
    onehot = np.eye(3)[labels]
    np.testing.assert_allclose(target.numpy(), lam * onehot + (1 - lam) * onehot[perm], atol=1e-6)


class _ReversedAudio(_Reversed):
    """An audio teacher whose columns come in reverse label order."""

    _input_kind = "audio"


def test_mixture_targets_are_matched_by_label(student_features, pretrained):
    fs, _ = student_features
    starts = draw_starts(fs, np.arange(8), np.random.default_rng(3))
    mix = (0.3, np.random.default_rng(4).permutation(8))
    direct = OnDemandTeacherOutputs(pretrained, fs, LABELS).at(starts, mix=mix)
    reversed_ = OnDemandTeacherOutputs(_ReversedAudio(pretrained), fs, LABELS)
    assert reversed_.hears_mixture
    np.testing.assert_allclose(reversed_.at(starts, mix=mix).softmax(1).numpy(), direct.softmax(1).numpy(),
                               rtol=1e-5, atol=1e-6)


def test_checkpoints_of_an_online_audio_teacher_are_bound_to_the_mixtures(pretrained):
    marker = b"online audio teacher: hears mixup mixtures"
    parts = {}
    for mode in ("online", "cached"):
        student = DistilledStudent(pretrained, teacher_outputs=mode)
        student.teacher_ = pretrained
        parts[mode] = b"".join(a.tobytes() for a in student._fingerprint_arrays())
    assert marker in parts["online"] and marker not in parts["cached"]


def test_mixture_is_refused_for_a_teacher_that_reads_features(student_features):
    fs, y = student_features
    teacher = DwsCNNClassifier(hidden=4, max_epochs=1, random_state=0).fit(fs, y)
    with pytest.raises(ValueError, match="reads audio can hear a mixup"):
        teacher_logits_at(teacher, fs, fs.row_start[:4], LABELS, mix=(0.5, np.arange(4)))
    lr = LogisticRegression(max_iter=200).fit(np.asarray(fs), y)
    assert not OnDemandTeacherOutputs(lr, fs, LABELS).hears_mixture


def test_ensemble_of_different_kinds_fuses_label_matched_scores(student_features, pretrained):
    fs, y = student_features
    lr = LogisticRegression(max_iter=500).fit(np.asarray(fs), y)
    ens = EnsembleTeacher([FrozenEstimator(pretrained), FrozenEstimator(_Reversed(lr))],
                          fusion="proba").fit(fs, y)
    audio_windows = pretrained.predict_logits(fs.audio_link.audio)
    expected = fuse_logits([torch.from_numpy(audio_windows),
                            torch.from_numpy(np.log(lr.predict_proba(np.asarray(fs))))], "proba")
    np.testing.assert_allclose(ens.predict_logits(fs), expected.numpy(), rtol=1e-5, atol=1e-5)
    assert ens.score(fs, y) > 0.5
    DistilledStudent(ens, hidden=4, max_epochs=1, teacher_step=25, random_state=0).fit(fs, y)


# -- precomputed teacher outputs ------------------------------------------------------------


def _every_position_logits(teacher, fs, step):
    """(n_rows, P, C): the teacher's logits at starts 0, step, ... of each row's recording."""
    n_pos = (fs.rec_stop[0] - fs.rec_start[0] - fs.width) // step + 1
    starts = fs.rec_start[:, None] + step * np.arange(n_pos)
    flat = starts.reshape(-1)
    windows = fs.__class__(fs.store, flat, flat + fs.width, flat, fs.width)
    return teacher.predict_logits(windows).reshape(len(fs), n_pos, -1)


def test_precomputed_logits_train_the_same_student_as_cached_ones(student_features, tmp_path):
    fs, y = student_features
    teacher = DwsCNNClassifier(hidden=4, max_epochs=2, random_state=0).fit(fs, y)
    kw = dict(hidden=4, max_epochs=2, random_state=0)
    cached = DistilledStudent(teacher, teacher_step=1, **kw).fit(fs, y)
    logits = _every_position_logits(teacher, fs, 1)
    given = DistilledStudent(teacher_outputs=logits, teacher_step=1, **kw).fit(fs, y)
    np.testing.assert_array_equal(given.predict_proba(fs), cached.predict_proba(fs))
    assert given.teacher_ is None
    # a .npz naming its columns, in another order: matched by label
    path = tmp_path / "teacher.npz"
    np.savez(path, logits=logits[..., ::-1], classes=LABELS[::-1])
    from_file = DistilledStudent(teacher_outputs=str(path), teacher_step=1, **kw).fit(fs, y)
    np.testing.assert_array_equal(from_file.predict_proba(fs), cached.predict_proba(fs))


def test_precomputed_per_clip_logits_hold_at_the_clips_and_their_recordings_ends(student_features):
    fs, _ = student_features
    per_clip = np.random.default_rng(0).normal(size=(len(fs), 3)).astype(np.float32)
    outputs = precomputed_teacher_outputs(per_clip, fs)
    np.testing.assert_array_equal(outputs.at(fs.row_start).numpy(), per_clip)
    last = fs.rec_stop - fs.width  # the last clip's window ends the recording
    mid = (fs.row_start[0] + fs.row_start[1]) // 2
    expected = per_clip[0] + (per_clip[1] - per_clip[0]) * (mid - fs.row_start[0]) / (
        fs.row_start[1] - fs.row_start[0])
    np.testing.assert_allclose(outputs.at([mid]).numpy()[0], expected, rtol=1e-5)
    assert np.all(last >= fs.row_start)


@pytest.mark.parametrize("value, match", [
    (np.zeros((5, 3)), "teacher_outputs has 5 rows, X has 36 clips"),
    (np.zeros((36, 2)), "2 columns, y has 3 classes.*sorted labels"),
    (np.full((36, 3), np.nan), "not finite"),
    (np.zeros((36, 7, 3)), "7 positions per clip at teacher_step=1.*expected 101"),
])
def test_bad_precomputed_logits_are_refused_naming_the_problem(student_features, value, match):
    fs, y = student_features
    with pytest.raises(ValueError, match=match):
        DistilledStudent(teacher_outputs=value, hidden=4, max_epochs=1).fit(fs, y)


def test_precomputed_logits_and_a_teacher_together_are_refused(student_features, tmp_path):
    fs, y = student_features
    with pytest.raises(ValueError, match="pass one of them"):
        DistilledStudent(DwsCNNClassifier(), teacher_outputs=np.zeros((36, 3))).fit(fs, y)
    with pytest.raises(ValueError, match="missing.npy.*no such file"):
        DistilledStudent(teacher_outputs=str(tmp_path / "missing.npy")).fit(fs, y)


def test_teacher_outputs_edited_in_place_are_detected(tmp_path):
    outputs = TeacherOutputs(np.arange(4), torch.ones(4, 3))
    path = tmp_path / "teacher_outputs.pt"
    outputs.save(path)
    assert TeacherOutputs.load(path, np.arange(4), 3, "cpu") is not None
    state = torch.load(path, weights_only=True)
    state["logits"][2, 1] = 5.0  # same shape, other numbers
    torch.save(state, path)
    assert TeacherOutputs.load(path, np.arange(4), 3, "cpu") is None
