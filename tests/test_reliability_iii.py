"""Issue 17 (Reliability III): nothing stored, routed or augmented silently wrong.

One section per rule of the issue:

1. everything stored is keyed on what produced it;
2. classes are matched by label, never by column position;
3. a step that cannot act says so;
4. every error names the user's mistake, in one line, before any work.
"""

import errno
import json
import os
import shutil
import warnings

import joblib
import numpy as np
import pytest
import soundfile as sf
import torch
from sklearn.dummy import DummyClassifier
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

import skasc.reproduce as rep
from skasc import (DeviceImpulseResponse, DwsCNNClassifier, FreqMixStyle, LogMel, RandomCrop,
                   Reassembler, SpecAugment)
from skasc._files import write_atomically
from skasc._validation import check_batch_size, check_labels
from skasc.datasets import load_audio_folder, load_tau22, make_tau22
from skasc.device_specific import DeviceSpecificClassifier
from skasc.metrics import recording_report
from skasc.preprocessing import as_feature_set, row_recording
from skasc.preprocessing._augmentation import draw_batch

SR = 44100
SMALL = dict(n_mels=16, n_fft=512, win_length=400, hop_length=200)


def _noise(seconds, seed=0, sr=SR):
    return np.random.default_rng(seed).normal(scale=0.1, size=int(seconds * sr)).clip(-0.99, 0.99)


def _one_line(exc_info):
    text = str(exc_info.value)
    assert "\n" not in text, text
    return text


def _net(**kw):
    return DwsCNNClassifier(**{**dict(hidden=4, max_epochs=1, batch_size=16, random_state=0), **kw})


@pytest.fixture(scope="module")
def toy():
    rng = np.random.default_rng(0)
    y = np.array(["bus", "park", "tram"])[np.arange(60) % 3]
    X = rng.normal(size=(60, 8, 12)).astype(np.float32)
    for k, label in enumerate(("bus", "park", "tram")):
        X[y == label, 2 * k:2 * k + 2] += 2.5
    devices = np.tile(["a", "b", "c", "s1"], 15)
    return X, y, devices


@pytest.fixture(scope="module")
def device_model(toy):
    X, y, devices = toy
    return DeviceSpecificClassifier(_net(), fine_tune={"max_epochs": 1}).fit(X, y, devices=devices)


# == 1. everything stored is keyed on what produced it =====================================


def test_stored_model_is_reused_only_for_its_fingerprint_and_content(tmp_path, capsys):
    X, y = np.zeros((6, 2)), np.array([0, 1, 1, 0, 1, 1])
    path = tmp_path / "models" / "teacher1-abc.joblib"
    path.parent.mkdir()
    made = []

    def make():
        made.append(1)
        return DummyClassifier(strategy="most_frequent")

    def run(fingerprint):
        capsys.readouterr()
        rep._train_or_load(path, make, X, y, 1, "teacher 1/1", fingerprint)
        return capsys.readouterr().out

    assert "training" in run("fp-full") and len(made) == 1
    assert "already trained" in run("fp-full") and len(made) == 1  # same data: reused
    # another subset or other audio: another fingerprint, retrained and said so
    out = run("fp-subset25")
    assert len(made) == 2 and "trained on other data or settings" in out and "retraining" in out
    # edited in place (a valid model of the right kind): detected, not used
    joblib.dump(DummyClassifier(strategy="constant", constant=0).fit(X, y), path)
    out = run("fp-subset25")
    assert len(made) == 3 and "changed on disk" in out
    assert joblib.load(path).strategy == "most_frequent"
    # a model without a record (an older run): retrained
    (tmp_path / "models" / "teacher1-abc.joblib.json").unlink()
    out = run("fp-subset25")
    assert len(made) == 4 and "no record" in out
    record = json.loads((tmp_path / "models" / "teacher1-abc.joblib.json").read_text())
    assert record["fingerprint"] == "fp-subset25"


@pytest.fixture(scope="module")
def own_replica(tmp_path_factory):
    """A tiny replica this module may change (audio replaced in place)."""
    return make_tau22(tmp_path_factory.mktemp("tau22-own"), n_cities=1, n_locations=2, n_segments=1,
                      devices=("a", "b"), random_state=0)


class _Stop(Exception):
    pass


def test_reproduce_binds_stored_models_to_the_data_they_train_on(own_replica, tmp_path, monkeypatch):
    """A --subset run, or a run after audio was replaced under the same data
    root, never loads the models of an earlier run into the same folder."""
    seen = []

    def first_model(path, make, features, y, verbose, label, fingerprint, **fit_params):
        seen.append((path.name, fingerprint))
        raise _Stop  # the fingerprint is all this test needs: train nothing

    monkeypatch.setattr(rep, "_train_or_load", first_model)
    schedule = rep.replace_schedule(rep.DEMO, teacher="dwscnn", teacher_outputs="cached", n_teachers=1,
                                    teacher_hidden=2, logmel=SMALL)

    def teacher(subset=100):
        with pytest.raises(_Stop):
            rep.reproduce(own_replica, tmp_path / "out", schedule=rep.replace_schedule(schedule, subset=subset),
                          verbose=0)
        return seen[-1]

    full = teacher()
    assert teacher() == full  # the same data: the same stored model
    half = teacher(subset=50)
    assert half[1] != full[1]
    assert half[0] != full[0]  # a subset has its own file: the full run's teacher is kept
    # audio replaced under the same data root (same path, same length, other samples)
    clip = load_tau22(own_replica, "train").X[0]
    sf.write(clip, _noise(1.0, seed=99), SR, subtype="PCM_24")
    replaced = teacher()
    assert replaced[0] == full[0] and replaced[1] != full[1]


def test_pretrained_teachers_fine_tuned_differently_are_stored_apart(own_replica, tmp_path, monkeypatch):
    """--pretrained-fine-tune head and all train different teachers: neither is
    loaded for the other from the same out_dir."""
    seen = []

    def first_model(path, make, features, y, verbose, label, fingerprint, **fit_params):
        seen.append((path.name, fingerprint))
        raise _Stop

    monkeypatch.setattr(rep, "_train_or_load", first_model)
    for fine_tune in ("head", "all", "head"):
        schedule = rep.replace_schedule(rep.DEMO, pretrained_fine_tune=fine_tune, logmel=SMALL)
        with pytest.raises(_Stop):
            rep.reproduce(own_replica, tmp_path / "out", schedule=schedule, verbose=0)
    head, full, head_again = seen
    assert head[0].startswith("teacher-mn04_as-") and head == head_again
    assert head[0] != full[0] and head[1] != full[1]


def test_device_copies_checkpoints_are_keyed_on_their_own_clips(toy, tmp_path, trained_epochs):
    X, y, devices = toy
    model = DeviceSpecificClassifier(_net(checkpoint_dir=tmp_path), fine_tune={"max_epochs": 1})
    model.fit(X, y, devices=devices)
    # the general model and one copy per device, each in its own fingerprinted folder
    assert len(list(tmp_path.glob("*/checkpoint.pt"))) == 1 + 4
    trained_epochs.clear()
    model.fit(X, y, devices=np.repeat(["a", "b", "c", "s1"], 15))  # other clips per device: not resumed
    assert len(trained_epochs) == 4  # the general model resumed (finished), four copies trained
    assert len(list(tmp_path.glob("*/checkpoint.pt"))) == 1 + 4 + 4


# == 2. classes are matched by label, never by column position ==========================


class _Fixed:
    """A fitted 'model' with its own class order."""

    def __init__(self, classes, proba):
        self.classes_ = np.asarray(classes)
        self.proba = np.asarray(proba, np.float32)

    def predict_proba(self, X):
        return np.tile(self.proba, (len(X), 1))


def test_device_models_are_placed_by_label(toy, device_model):
    import copy

    X, _, _ = toy
    model = copy.copy(device_model)
    model.device_estimators_ = dict(device_model.device_estimators_)
    model.device_estimators_["a"] = _Fixed(["tram", "bus", "park"], [0.7, 0.2, 0.1])
    proba = model.predict_proba(X[:2], devices=["a", "a"])
    assert model.classes_.tolist() == ["bus", "park", "tram"]
    np.testing.assert_allclose(proba, [[0.2, 0.1, 0.7]] * 2)
    assert model.predict(X[:1], devices=["a"]).tolist() == ["tram"]
    model.device_estimators_["a"] = _Fixed(["bus", "park", "metro"], [0.2, 0.1, 0.7])
    with pytest.raises(ValueError, match=r"device 'a'.*\['metro'\]") as exc:
        model.predict_proba(X[:2], devices=["a", "a"])
    _one_line(exc)


def test_prefit_general_model_of_other_classes_is_refused_naming_them(toy, trained_epochs):
    X, y, devices = toy
    other = _net().fit(X[y != "tram"], y[y != "tram"])
    trained_epochs.clear()
    with pytest.raises(ValueError, match=r"fitted on classes \['bus', 'park'\].*\['tram'\]") as exc:
        DeviceSpecificClassifier(other).fit(X, y, devices=devices)
    assert "warm_start" not in _one_line(exc)  # a parameter the user never set
    assert trained_epochs == []


# == 3. a step that cannot act says so ==================================================


@pytest.mark.parametrize("step", [FreqMixStyle(p=1.0), RandomCrop(), SpecAugment()])
def test_feature_augmentation_before_logmel_is_refused(step):
    X = _noise(0.2, seed=1)[None].repeat(3, 0).astype(np.float32)
    pipe = Pipeline([("aug", step), ("logmel", LogMel(**SMALL))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # RandomCrop: nothing to crop either
        with pytest.raises(TypeError, match="holds features.*go after LogMel") as exc:
            pipe.fit_transform(X)
    _one_line(exc)
    # and Reassembler -> augmentation: the audio has nothing for it to act on
    with pytest.raises(TypeError, match="holds audio, not features"):
        Pipeline([("r", Reassembler()), ("aug", step)]).fit_transform(X, r__groups=[0, 0, 1])


def test_freq_mixstyle_before_random_crop_acts_on_the_cropped_rows():
    """Order in the Pipeline does not matter: the classifier applies the
    crops, then the masks, then Freq-MixStyle, to every batch."""
    X = np.stack([_noise(1.0, seed=s) for s in range(4)]).astype(np.float32)
    front = [("r", Reassembler()), ("logmel", LogMel(**SMALL))]
    before = Pipeline(front + [("fms", FreqMixStyle(p=1.0)), ("crop", RandomCrop())])
    after = Pipeline(front + [("crop", RandomCrop()), ("fms", FreqMixStyle(p=1.0))])
    groups = [0, 0, 1, 1]
    batches = []
    for pipe in (before, after):
        F = pipe.fit_transform(X, r__groups=groups)
        rng = np.random.default_rng(0)
        rows = np.arange(len(F))
        batch = draw_batch(F, rows, rng, torch.as_tensor(F.store))
        batches.append((F.windows(rows, batch.starts), batch.x.numpy()))
    np.testing.assert_array_equal(batches[0][1], batches[1][1])
    assert not np.allclose(batches[0][1], batches[0][0])  # it acted


def test_random_crop_with_nothing_to_crop_says_so():
    with pytest.warns(UserWarning, match="RandomCrop has nothing to crop"):
        RandomCrop().fit_transform(np.zeros((3, 4, 12), np.float32))


@pytest.fixture(scope="module")
def dir_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dir")
    irs = folder / "irs"
    irs.mkdir()
    sf.write(irs / "s1.wav", np.array([1.0, 0.5, 0.25]), SR, subtype="FLOAT")
    paths = []
    for device in ("a", "b"):
        p = folder / f"park-lyon-1-1-0-{device}.wav"
        sf.write(p, _noise(0.1), SR, subtype="PCM_16")
        paths.append(str(p))
    return irs, np.array(paths, dtype=object)


@pytest.mark.parametrize("devices, match", [
    (("A",), r"names no device of X.*\['a', 'b'\].*case-sensitive: 'A' is not 'a'"),
    (("s9",), r"names no device of X"),
    ((), r"names no device"),
])
def test_dir_devices_naming_no_device_present_are_refused(dir_data, devices, match):
    irs, X = dir_data
    with pytest.raises(ValueError, match=match) as exc:
        DeviceImpulseResponse(irs, devices=devices, random_state=0).fit_transform(X)
    _one_line(exc)


def test_dir_devices_partly_absent_warn_and_convolve_the_others(dir_data):
    irs, X = dir_data
    with pytest.warns(UserWarning, match=r"no recording of device\(s\) \['s9'\]"):
        audio = DeviceImpulseResponse(irs, devices=("a", "s9"), random_state=0).fit_transform(X)
    assert audio.impulse_responses.assignment[:, 0].tolist() == [0, -1]


def test_recording_changed_on_disk_is_refused_through_reassembler_too(tmp_path):
    folder = tmp_path / "data" / "dog"
    folder.mkdir(parents=True)
    path = folder / "bark.wav"
    sf.write(path, _noise(3.0), SR, subtype="PCM_16")
    rows = load_audio_folder(tmp_path / "data").X
    sf.write(path, _noise(1.5, seed=1), SR, subtype="PCM_16")  # replaced by a shorter file
    with pytest.raises(ValueError, match="starts after the end"):
        LogMel(**SMALL).fit_transform(rows)
    with pytest.raises(ValueError, match=r"clip 2-3 s of audio file .*bark.wav.* starts after the end") as exc:
        Pipeline([("r", Reassembler()), ("logmel", LogMel(**SMALL))]).fit_transform(rows)
    _one_line(exc)


def test_folder_loader_follows_symlinked_subfolders_and_names_loops(tmp_path):
    elsewhere = tmp_path / "elsewhere" / "takes"
    elsewhere.mkdir(parents=True)
    sf.write(elsewhere / "b.wav", _noise(1.0), SR, subtype="PCM_16")
    root = tmp_path / "data"
    (root / "dog").mkdir(parents=True)
    sf.write(root / "dog" / "a.wav", _noise(1.0), SR, subtype="PCM_16")
    os.symlink(elsewhere, root / "dog" / "more")  # a symlinked subfolder of a class
    data = load_audio_folder(root)
    assert sorted(data.filename.tolist()) == ["dog/a.wav", "dog/more/b.wav"]
    os.symlink(root / "dog", root / "dog" / "loop")  # back to an enclosing folder
    with pytest.raises(ValueError, match=r"loop.*again \(through a symbolic link\)") as exc:
        load_audio_folder(root)
    _one_line(exc)


@pytest.mark.parametrize("clip_seconds", [1 / 3, 2 / 3, 0.1])
def test_clips_of_lengths_not_exact_in_decimal_group_into_their_recording(tmp_path, clip_seconds):
    folder = tmp_path / "dog"
    folder.mkdir()
    sf.write(folder / "a.wav", _noise(2.0), SR, subtype="PCM_16")
    data = load_audio_folder(tmp_path, clip_seconds=clip_seconds)
    assert Reassembler().fit(data.X).n_recordings_ == 1
    # and far into a long file: the rows of clip k keep position k
    from skasc._rows import clip_fragment

    rows = [clip_fragment("a.wav", k * clip_seconds, (k + 1) * clip_seconds) for k in range(0, 30000, 997)]
    found = [row_recording(r) for r in rows]
    assert len({g for g, _ in found}) == 1
    assert [k for _, k in found] == list(range(0, 30000, 997))
    # off the phase-0 grid: not joined with its clips, but on a grid of its own phase
    off, off_next = row_recording("a.wav#t=0.5,1.5"), row_recording("a.wav#t=1.5,2.5")
    assert off[0] != row_recording("a.wav#t=0,1")[0]
    assert off[0] == off_next[0] and off_next[1] == off[1] + 1


# == 4. every error names the user's mistake, in one line, before any work =================


def _tau22_copy(root, tmp_path):
    copy = tmp_path / "tau22"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("audio", "impulse_responses"))
    return copy


@pytest.mark.parametrize("csv, subset, fraction", [
    ("evaluation_setup/fold1_train.csv", "train", None),
    ("evaluation_setup/fold1_evaluate.csv", "evaluate", None),
    ("meta.csv", "train", None),
    ("split_setup/split25.csv", "train", 25),
])
def test_header_only_csv_is_refused_naming_it(own_replica, tmp_path, csv, subset, fraction):
    root = _tau22_copy(own_replica, tmp_path)
    path = root / csv
    path.write_text(path.read_text().splitlines()[0] + "\n")
    with pytest.raises(ValueError, match=f"{path.name} lists no clips") as exc:
        load_tau22(root, subset, fraction=fraction)
    _one_line(exc)


@pytest.mark.parametrize("make", [
    lambda X: LogMel(**SMALL).fit_transform(X),
    lambda X: Reassembler().fit_transform(X),
    lambda X: DeviceImpulseResponse("unused").fit(X),
])
def test_bytes_paths_and_a_single_path_are_refused_in_one_line(make):
    with pytest.raises(TypeError, match=r"bytes paths \(b'a.wav' at row 0\).*decode") as exc:
        make(np.array([b"a.wav", b"b.wav"]))
    _one_line(exc)
    with pytest.raises(TypeError, match=r"bytes paths"):
        make([b"a.wav"])
    with pytest.raises(TypeError, match=r"single path 'a.wav'.*pass \[path\]") as exc:
        make("a.wav")
    _one_line(exc)
    with pytest.raises(TypeError, match=r"mixes file paths with other rows: row 1 is None"):
        make(["a.wav", None])


def test_classifier_given_a_path_is_told_to_compute_features():
    with pytest.raises(TypeError, match=r"single path \('a.wav'\), not features.*LogMel"):
        as_feature_set("a.wav")
    with pytest.raises(TypeError, match=r"paths \(b'a.wav'\), not features"):
        _net().fit([b"a.wav", b"b.wav"], ["x", "y"])


@pytest.mark.parametrize("y, match", [
    (["bus", None, "park"], r"no label at row 1 \(None\)"),
    ([1.0, np.nan, 2.0], r"no label at row 1 \(nan\)"),
    (np.array(["bus", np.nan, "park"], dtype=object), r"no label at row 1 \(nan\)"),
    (np.array([b"bus", b"park"]), r"holds bytes \(b'bus' at row 0\)"),
    (["bus", 3, "park"], r"mixes labels of different kinds: 'bus' \(row 0, a str\) and 3"),
    (np.array(["bus", 3], dtype=object), r"mixes labels of different kinds"),
])
def test_missing_bytes_or_mixed_labels_are_refused_naming_the_row(y, match):
    with pytest.raises(ValueError, match=match) as exc:
        check_labels(y)
    _one_line(exc)


def test_device_specific_refuses_missing_labels_before_training(toy, trained_epochs):
    X, y, devices = toy
    y = y.astype(object)
    y[5] = None
    with pytest.raises(ValueError, match=r"no label at row 5"):
        DeviceSpecificClassifier(_net()).fit(X, y, devices=devices)
    assert trained_epochs == []


def test_batch_size_helper_refuses_zero_naming_it():
    assert check_batch_size(8) == 8
    for bad in (0, -1, 2.5, True, "8"):
        with pytest.raises(ValueError, match=r"batch_size must be an integer >= 1") as exc:
            check_batch_size(bad)
        _one_line(exc)


@pytest.mark.parametrize("groups, positions, match", [
    ([0, 0, 0], [0, np.nan, 1], r"positions must be whole numbers.*row 1 is nan"),
    ([0, 0, 0], [0, 0.5, 1], r"positions must be whole numbers.*row 1 is 0.5"),
    ([0, 0, 0], [0, np.inf, 1], r"row 1 is inf"),
    (["r", None, "r"], None, r"groups has no recording at row 1"),
    ([0.0, np.nan, 0.0], None, r"groups has no recording at row 1"),
])
def test_reassembler_refuses_nan_or_fractional_positions(groups, positions, match):
    X = np.zeros((3, 100), np.float32)
    with pytest.raises(ValueError, match=match) as exc:
        Reassembler().fit_transform(X, groups=groups, positions=positions)
    _one_line(exc)
    # whole numbers given as floats are fine
    audio = Reassembler().fit_transform(X, groups=[0, 0, 0], positions=[0.0, 1.0, 2.0])
    assert len(audio.recordings) == 1


def test_device_with_a_single_class_is_named_and_left_to_the_general_model(toy, trained_epochs):
    X, y, devices = toy
    devices = devices.copy()
    devices[y == "bus"] = "s9"
    model = DeviceSpecificClassifier(_net(), fine_tune={"max_epochs": 1})
    with pytest.warns(UserWarning, match=r"device\(s\) 's9' \(20 clip\(s\), all 'bus'\) have training "
                                         r"clips of one class only.*the general model serves them"):
        model.fit(X, y, devices=devices)
    assert sorted(model.device_estimators_) == ["a", "b", "c", "s1"]  # no copy for s9
    assert len(trained_epochs) == 1 + 4  # the general model and the four copies, nothing for s9
    proba = model.predict_proba(X[:3], devices=["s9"] * 3)
    np.testing.assert_array_equal(proba, model.general_estimator_.predict_proba(X[:3]))


@pytest.mark.parametrize("devices, meant", [(["A", "b"], "'A'.*'a'"), (["a", " b"], "' b'.*'b'")])
def test_device_names_differing_in_case_or_spaces_are_refused(toy, device_model, devices, meant):
    X, _, _ = toy
    with pytest.raises(ValueError, match=f"devices holds {meant}.*must match exactly") as exc:
        device_model.predict(X[:2], devices=devices)
    _one_line(exc)
    assert device_model.predict(X[:2], devices=["s4", "a"]).shape == (2,)  # unseen: general model


def test_device_names_differing_in_type_are_refused(toy):
    X, y, _ = toy
    model = DeviceSpecificClassifier(_net(), fine_tune={"max_epochs": 1})
    model.fit(X, y, devices=np.tile([1, 2, 3, 4], 15))
    with pytest.raises(ValueError, match=r"devices holds '1.0'.*looks like '1'"):
        model.predict_proba(X[:2], devices=[1.0, 2.0])
    assert model.predict(X[:2], devices=[1, 2]).shape == (2,)


@pytest.mark.parametrize("fine_tune, match", [
    ({"hidden": 8}, r"changes the network's architecture \(hidden 4 -> 8\)"),
    ({"linear_hidden": 7}, r"linear_hidden 100 -> 7"),
    ({"warm_start": False}, r"fine_tune sets 'warm_start'"),
])
def test_fine_tune_changing_the_architecture_is_refused_before_training(toy, trained_epochs, fine_tune, match):
    X, y, devices = toy
    with pytest.raises(ValueError, match=match) as exc:
        DeviceSpecificClassifier(_net(), fine_tune=fine_tune).fit(X, y, devices=devices)
    _one_line(exc)
    assert trained_epochs == []


def test_grid_search_without_metadata_routing_is_refused(toy, trained_epochs):
    import sklearn

    X, y, devices = toy
    model = DeviceSpecificClassifier(_net(), fine_tune={"max_epochs": 1})
    search = GridSearchCV(model, {"min_clips": [1, 100]}, cv=2, error_score="raise")
    with pytest.raises(ValueError, match=r"devices= for fit only.*enable_metadata_routing") as exc:
        search.fit(X, y, devices=devices)
    _one_line(exc)
    assert trained_epochs == []
    # default error_score: every fit fails at once with that message, no all-NaN result
    with pytest.raises(ValueError, match="devices= for fit only"):
        GridSearchCV(model, {"min_clips": [1, 100]}, cv=2).fit(X, y, devices=devices)
    # with routing, as the message says: real scores
    with sklearn.config_context(enable_metadata_routing=True):
        routed = model.set_fit_request(devices=True).set_score_request(devices=True)
        search = GridSearchCV(routed, {"min_clips": [1, 100]}, cv=2).fit(X, y, devices=devices)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


def test_full_disk_is_named_with_the_file(tmp_path, monkeypatch, capsys):
    target = tmp_path / "model.pt"
    # what torch.save says on a full disk ("unexpected pos ..."): /dev/full is always full
    with pytest.raises(OSError, match=r"cannot save .*model.pt.*full disk") as exc:
        write_atomically(target, lambda tmp: torch.save(torch.zeros(10_000), "/dev/full"))
    _one_line(exc)
    with pytest.raises(OSError, match=r"cannot save .*model.pt.*no space left") as exc:
        write_atomically(target, lambda tmp: joblib.dump(list(range(10_000)), "/dev/full"))
    assert exc.value.errno == errno.ENOSPC
    assert not target.exists() and list(tmp_path.iterdir()) == []  # no half file left
    # through reproduce's model store
    real_dump = joblib.dump
    monkeypatch.setattr(rep.joblib, "dump", lambda obj, path: real_dump(obj, "/dev/full"))
    path = tmp_path / "teacher1-x.joblib"
    with pytest.raises(OSError, match=r"teacher1-x.joblib.*no space left"):
        rep._train_or_load(path, lambda: DummyClassifier(), np.zeros((4, 1)), [0, 1, 0, 1], 0, "t", "fp")
    # and the command line: one line, exit 1
    from skasc import cli
    from skasc._files import write_error

    def full(*a, **k):
        raise write_error(path, OSError(errno.ENOSPC, "No space left on device"))

    monkeypatch.setattr(cli, "reproduce", full)
    capsys.readouterr()
    assert cli.main(["reproduce", "--out-dir", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "teacher1-x.joblib" in err[0] and "Traceback" not in err[0]


def test_onnx_classifier_given_file_paths_is_told_to_compute_features(tmp_path, toy):
    pytest.importorskip("onnxruntime")
    from skasc.export import OnnxClassifier, export_onnx

    X, y, _ = toy
    clf = OnnxClassifier(export_onnx(_net().fit(X, y), tmp_path / "m.onnx"))
    for paths in (["a.wav", "b.wav"], np.array(["a.wav"], dtype=object), "a.wav"):
        with pytest.raises(TypeError, match=r"holds audio \('a.wav'\).*log-mel features of shape "
                                            r"\(n, 1, 8, 12\)") as exc:
            clf.predict(paths)
        _one_line(exc)
    with pytest.raises(ValueError, match="no label at row 0"):
        clf.score(X[:2], [None, "bus"])


def test_export_of_nan_weights_is_refused_naming_the_weight(tmp_path, toy):
    pytest.importorskip("onnxruntime")
    from skasc.export import export_onnx

    X, y, _ = toy
    clf = _net().fit(X, y)
    with torch.no_grad():
        next(clf.module_.parameters()).fill_(float("nan"))
    with pytest.raises(ValueError, match=r"the network's \S+ holds NaN or infinite values") as exc:
        export_onnx(clf, tmp_path / "m.onnx")
    _one_line(exc)
    assert not (tmp_path / "m.onnx").exists()


def test_callable_reduce_returning_no_probabilities_is_refused():
    y = ["dog", "dog", "cat", "cat"]
    proba = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.3, 0.7]])
    files = ["a", "a", "b", "b"]

    def mean_log(p):
        return np.log(p).mean(axis=0)

    with pytest.raises(ValueError, match=r"reduce=mean_log returned scores that are not probabilities"
                                         r" for recording 'a'") as exc:
        recording_report(y, proba, files, labels=["cat", "dog"], reduce=mean_log)
    _one_line(exc)
    # non-negative scores are normalised: the sum of the clips is their mean
    by_sum = recording_report(y, proba, files, labels=["cat", "dog"], reduce=lambda p: p.sum(axis=0))
    by_mean = recording_report(y, proba, files, labels=["cat", "dog"], reduce="mean")
    assert by_sum["recordings"] == pytest.approx(by_mean["recordings"])
