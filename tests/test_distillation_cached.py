"""DistilledStudent with the teacher's outputs computed once (teacher_outputs="cached")."""

import numpy as np
import pytest
import torch
from sklearn.utils._param_validation import InvalidParameterError

import skasc._training as training
from skasc import (
    DistilledStudent,
    DwsCNNClassifier,
    FeatureSet,
    FreqMixStyle,
    ImpulseResponseAugmentation,
    MaskAugmentation,
    RandomCrop,
    SpecAugment,
)
from skasc._training import (
    BatchDrawer,
    TeacherOutputs,
    compute_teacher_outputs,
    teacher_positions,
)
from skasc.preprocessing._augmentation import draw_batch, draw_starts

from _draw_reference import apply_masks, draw_view
from _draw_reference import starts as reference_starts


def _recordings(n_rec=12, frames=40, width=10, bands=8, seed=0):
    """Rows of 4 clips per recording, classes that light up their own bands."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n_rec) % 3
    store = rng.normal(size=(n_rec, frames, bands)).astype(np.float32)
    for k in range(3):
        store[labels == k, :, 2 * k:2 * k + 2] += 2.0
    starts = np.repeat(np.arange(n_rec) * frames, 4)
    fs = FeatureSet(store.reshape(-1, bands), starts, starts + frames,
                    starts + np.tile(np.arange(4) * 10, n_rec), width)
    return fs, np.repeat(labels, 4)


@pytest.fixture(scope="module")
def data():
    fs, y = _recordings()
    teacher = DwsCNNClassifier(hidden=6, max_epochs=4, batch_size=16, random_state=0).fit(fs, y)
    return fs, y, teacher


def _student(teacher, **kw):
    return DistilledStudent(teacher, **{**dict(hidden=4, max_epochs=2, batch_size=16, random_state=0), **kw})


def test_positions_cover_every_drawable_crop_start():
    fs, _ = _recordings(n_rec=2, frames=40, width=10)
    crop = RandomCrop().fit_transform(fs)
    # step 1: every start a crop can draw, 0..30 in each 40-frame recording
    np.testing.assert_array_equal(teacher_positions(crop, 1), np.r_[0:31, 40:71])
    # step 7: every 7th, plus each recording's last start and each row's own
    np.testing.assert_array_equal(teacher_positions(crop, 7),
                                  [0, 7, 10, 14, 20, 21, 28, 30, 40, 47, 50, 54, 60, 61, 68, 70])
    # a crop on a grid of 5 frames: multiples of the grid only
    grid = RandomCrop(step=5).fit_transform(fs)
    np.testing.assert_array_equal(teacher_positions(grid, 7), [0, 10, 20, 30, 40, 50, 60, 70])
    # no crop: the rows' own windows only
    np.testing.assert_array_equal(teacher_positions(fs, 1), fs.row_start)


def test_cached_outputs_are_the_teachers_and_interpolate_between_positions(data):
    fs, _, teacher = data
    crop = RandomCrop().fit_transform(fs)
    pos = teacher_positions(crop, 4)
    logits = compute_teacher_outputs(teacher, crop, pos, chunk=7)
    expected = teacher.decision_function(fs.windows(starts=pos))
    np.testing.assert_allclose(logits.numpy(), expected, atol=1e-5)
    cached = TeacherOutputs(pos, logits)
    torch.testing.assert_close(cached.at(pos[[3, 0, 5]]), logits[[3, 0, 5]])
    # between two cached starts, 1/4 of the way from the first
    a, b = pos[1], pos[2]
    assert b - a == 4
    torch.testing.assert_close(cached.at([a + 1])[0], 0.75 * logits[1] + 0.25 * logits[2])


def test_batches_carry_the_teacher_probabilities_of_the_drawn_crops_mixed_like_the_labels(data):
    fs, y, teacher = data
    X = SpecAugment(2, 2).fit_transform(RandomCrop().fit_transform(fs))
    pos = teacher_positions(X, 1)
    cached = TeacherOutputs(pos, compute_teacher_outputs(teacher, X, pos))
    T = 2.0
    drawer = BatchDrawer(X, 3, mixup_alpha=0.5, seed=5, teacher_outputs=cached, temperature=T)
    drawer.set_epoch(3)
    rows = np.arange(0, 48, 3)
    x, (target, teacher_probs) = drawer(list(zip(rows, y[rows])))
    # the same draws, in the drawer's order: crops, masks, then mixup
    rng = np.random.default_rng([5, 3, 0])
    starts = reference_starts(X, rows, rng)
    for aug in X.augmentations:
        if isinstance(aug, MaskAugmentation):
            apply_masks(np.zeros((len(rows), fs.n_bands, fs.width), np.float32), aug, rng)
    lam = rng.beta(0.5, 0.5)
    perm = rng.permutation(len(rows))
    p = torch.softmax(torch.as_tensor(teacher.decision_function(fs.windows(starts=starts))) / T, 1)
    torch.testing.assert_close(teacher_probs, lam * p + (1 - lam) * p[perm], atol=1e-5, rtol=1e-5)
    onehot = torch.nn.functional.one_hot(torch.as_tensor(y[rows]), 3).float()
    torch.testing.assert_close(target, lam * onehot + (1 - lam) * onehot[perm])
    assert not np.all(starts == X.row_start[rows])  # real crops were drawn


def test_without_masks_and_mixup_cached_training_equals_online(data):
    fs, y, teacher = data
    X = RandomCrop().fit_transform(fs)
    kw = dict(mixup_alpha=0, max_epochs=3)
    cached = _student(teacher, teacher_outputs="cached", teacher_step=1, **kw).fit(X, y)
    online = _student(teacher, teacher_outputs="online", **kw).fit(X, y)
    np.testing.assert_allclose(cached.predict_proba(fs), online.predict_proba(fs), atol=1e-4)
    assert np.abs(cached.net_.history[:, "train_loss"][0] - online.net_.history[:, "train_loss"][0]) < 1e-5


def test_teacher_runs_once_per_fit_in_cached_mode_and_every_batch_online(data, monkeypatch):
    fs, y, teacher = data
    X = RandomCrop().fit_transform(fs)
    passes, forwards = [], []
    real = training.compute_teacher_outputs
    monkeypatch.setattr("skasc._teachers.compute_teacher_outputs",
                        lambda *a, **k: passes.append(1) or real(*a, **k))
    original_forward = training.FusedTeacher.forward
    monkeypatch.setattr(training.FusedTeacher, "forward",
                        lambda self, x: forwards.append(1) or original_forward(self, x))
    _student(teacher, max_epochs=3).fit(X, y)
    assert (len(passes), len(forwards)) == (1, 0)
    _student(teacher, max_epochs=3, teacher_outputs="online").fit(X, y)
    assert (len(passes), len(forwards)) == (1, 9)  # 48 rows / 16: 3 batches x 3 epochs


def test_cached_outputs_live_beside_the_checkpoint_and_are_reused(data, tmp_path, monkeypatch):
    fs, y, teacher = data
    X = RandomCrop().fit_transform(fs)
    passes = []
    real = training.compute_teacher_outputs
    monkeypatch.setattr("skasc._teachers.compute_teacher_outputs",
                        lambda *a, **k: passes.append(1) or real(*a, **k))

    class StopAt2(training.Callback):
        def on_epoch_begin(self, net, **kwargs):
            if len(net.history) == 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _student(teacher, max_epochs=3, checkpoint_dir=tmp_path, callbacks=[StopAt2()]).fit(X, y)
    (saved,) = tmp_path.glob("*/teacher_outputs.pt")
    resumed = _student(teacher, max_epochs=3, checkpoint_dir=tmp_path).fit(X, y)
    assert len(passes) == 1  # the resumed fit read them
    straight = _student(teacher, max_epochs=3).fit(X, y)  # no checkpoint_dir: its own pass
    np.testing.assert_allclose(resumed.predict_proba(fs), straight.predict_proba(fs), atol=1e-6)
    # another teacher: another fingerprint, another folder, its own outputs
    other = DwsCNNClassifier(hidden=6, max_epochs=2, batch_size=16, random_state=1).fit(fs, y)
    _student(other, max_epochs=1, checkpoint_dir=tmp_path).fit(X, y)
    assert len(passes) == 3 and len(list(tmp_path.glob("*/teacher_outputs.pt"))) == 2
    # a file that does not hold these positions is computed again, not used
    saved.write_bytes(b"garbage")
    passes.clear()
    _student(teacher, max_epochs=4, checkpoint_dir=tmp_path).fit(X, y)
    assert passes == [1]


@pytest.mark.parametrize("param, value", [("teacher_outputs", "sometimes"), ("teacher_step", 0)])
def test_bad_cached_mode_parameters_are_refused(data, param, value):
    fs, y, teacher = data
    with pytest.raises(InvalidParameterError, match=f"'{param}' parameter of DistilledStudent"):
        _student(teacher, **{param: value}).fit(fs, y)


def test_default_mode_is_cached_at_every_crop_position():
    student = DistilledStudent()
    assert (student.teacher_outputs, student.teacher_step) == ("cached", 1)


def test_draw_batch_equals_the_featuresets_own_draw():
    fs, _ = _recordings()
    X = FreqMixStyle(p=1.0).fit_transform(SpecAugment(3, 4).fit_transform(RandomCrop().fit_transform(fs)))
    store = torch.as_tensor(X.store)
    rows = np.array([5, 0, 17, 33, 2, 40])
    for seed in range(3):
        batch = draw_batch(X, rows, np.random.default_rng([seed, 1]), store)
        x, starts = batch.x.unsqueeze(1), batch.starts
        assert x.shape == (6, 1, 8, 10) and x.is_contiguous()
        np.testing.assert_allclose(x[:, 0].numpy(), draw_view(X, rows, np.random.default_rng([seed, 1])), atol=1e-5)
        np.testing.assert_array_equal(starts, draw_starts(X, rows, np.random.default_rng([seed, 1])))


def test_a_window_of_an_impulse_response_variant_gets_the_clean_windows_teacher_output(data):
    fs, y, teacher = data
    # every recording followed in the store by one "convolved" copy (here: scaled by 3)
    n_rec, frames = 12, 40
    clean = fs.store.reshape(n_rec, frames, -1)
    store = np.concatenate([clean, 3 * clean], axis=1).reshape(-1, fs.n_bands)
    rec = np.repeat(np.arange(n_rec), 4)
    start = rec * 2 * frames
    variants = np.full((len(rec), 1), frames)  # the copy starts `frames` after the recording
    X = FeatureSet(store, start, start + frames, start + (fs.row_start - rec * frames), 10,
                   (ImpulseResponseAugmentation(p=1.0, n_variants=1),), variants=variants)
    X = RandomCrop().fit_transform(X)
    pos = teacher_positions(X, 1)
    assert pos.max() < start.max() + frames  # positions in the clean recordings only
    cached = TeacherOutputs(pos, compute_teacher_outputs(teacher, X, pos))
    drawer = BatchDrawer(X, 3, mixup_alpha=0, seed=0, teacher_outputs=cached, temperature=1.0)
    rows = np.arange(0, 48, 4)
    x, (_, probs) = drawer(list(zip(rows, y[rows])))
    starts = draw_starts(X, rows, np.random.default_rng([0, 0, 0]))
    assert np.all(starts >= X.rec_stop[rows])  # every row drew its variant (p=1)
    expected = teacher.predict_proba(X.windows(rows, X.source_starts(rows, starts)))
    np.testing.assert_allclose(probs.numpy(), expected, atol=1e-5)
