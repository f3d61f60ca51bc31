"""The paper end to end: features, four teachers, fused ensemble, distilled
student and the same student without distillation, evaluated as Table 2.

Used by ``skasc reproduce`` (see :mod:`skasc.cli`).  Every trained model is
saved in ``out_dir/models`` under a name that encodes its configuration, and
every model in training checkpoints each epoch to ``out_dir/checkpoints``, so
an interrupted run started again with the same arguments loads what is
already trained, resumes the model it was training at its last finished
epoch, and continues with the rest.  A model is saved in ``out_dir/models``
only once it has trained all its epochs: Ctrl-C (KeyboardInterrupt) while
one trains propagates out of :func:`reproduce` and saves nothing as finished.

A stored model is reused only if it was trained on the very same data: next
to ``<model>.joblib``, ``<model>.joblib.json`` records the fingerprint of its
training features and labels (:func:`data_fingerprint`), of its schedule and
of the models it learned from (a student's teachers, a device-specific
model's general student), and the digest of the file's content.  Another
subset, audio replaced under the same data root, a retrained teacher, a model
file edited in place or a model without a record is retrained, and the log
says which.  Arguments are checked (:func:`check_inputs`) before anything is
trained or written.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from numbers import Integral, Real
from pathlib import Path

import joblib
import numpy as np
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline

from ._audio import read_impulse_responses
from ._files import write_atomically
from ._hashing import digest, file_digest
from ._training import check_device, training_fingerprint
from ._weights import CHECKPOINTS, resolve_weights
from .classifiers import DistilledStudent, DwsCNNClassifier, EnsembleTeacher
from .complexity import complexity_report
from .datasets import FRACTIONS, load_tau22, make_tau22
from .device_specific import DeviceSpecificClassifier
from .metrics import device_report, format_device_report
from .preprocessing import DeviceImpulseResponse, FreqMixStyle, LogMel, RandomCrop, Reassembler, SpecAugment
from .pretrained import PretrainedClassifier
from ._table import format_table

__all__ = ["Schedule", "PAPER", "DEMO", "reproduce", "check_inputs", "data_fingerprint"]


@dataclass(frozen=True)
class Schedule:
    """Everything a run trains with."""

    name: str
    logmel: dict = field(default_factory=dict)
    spec_augment: dict = field(default_factory=dict)
    teacher_hidden: int = 256
    n_teachers: int = 4
    teacher_epochs: int = 200
    student_hidden: int = 18
    student_epochs: int = 600
    batch_size: int = 64
    lr: float = 0.01
    temperature: float = 2.0
    soft_weight: float = 0.5
    #: the distilled student's ``teacher_outputs``: "cached" (the teachers'
    #: outputs computed once) or "online" (the teachers run on every batch)
    teacher_outputs: str = "cached"
    #: with cached outputs, the grid (frames) of crop positions they are computed at
    teacher_step: int = 1
    #: percentage of the training split used (the DCASE 2024 nested subsets:
    #: 5, 10, 25, 50 or 100; see ``load_tau22(..., fraction=...)``)
    subset: int = 100
    #: the distilled student's teacher: "dwscnn" (the paper's ensemble of
    #: ``n_teachers`` DwsCNNs trained from scratch) or "pretrained" (an
    #: AudioSet-pretrained EfficientAT MobileNet, fine-tuned on the data)
    teacher: str = "dwscnn"
    #: with ``teacher="pretrained"``: the EfficientAT model, its fine-tuning
    #: epochs and what they train ("all": the whole network; "head": the
    #: new head alone, the body as pretrained)
    pretrained_model: str = "mn04_as"
    pretrained_epochs: int = 10
    pretrained_fine_tune: str = "all"

    def __post_init__(self):
        for name in ("teacher_hidden", "n_teachers", "teacher_epochs", "student_hidden",
                     "student_epochs", "batch_size", "teacher_step", "pretrained_epochs"):
            value = getattr(self, name)
            if not isinstance(value, Integral) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Schedule.{name} must be an integer >= 1, got {value!r}")
        if not (isinstance(self.lr, Real) and not isinstance(self.lr, bool)
                and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"Schedule.lr must be a finite number > 0, got {self.lr!r}")
        if self.subset not in FRACTIONS:
            raise ValueError(f"Schedule.subset must be one of {FRACTIONS}, got {self.subset!r}")
        if self.teacher_outputs not in ("cached", "online"):
            raise ValueError(f"Schedule.teacher_outputs must be 'cached' or 'online', "
                             f"got {self.teacher_outputs!r}")
        if self.teacher not in ("dwscnn", "pretrained"):
            raise ValueError(f"Schedule.teacher must be 'dwscnn' or 'pretrained', got {self.teacher!r}")
        if self.pretrained_fine_tune not in ("all", "head"):
            raise ValueError(f"Schedule.pretrained_fine_tune must be 'all' or 'head', "
                             f"got {self.pretrained_fine_tune!r}")
        if self.pretrained_model not in CHECKPOINTS:
            raise ValueError(f"Schedule.pretrained_model must be one of {list(CHECKPOINTS)}, "
                             f"got {self.pretrained_model!r}")

    def key(self, *extra, fields=None):
        """Short digest of the named fields (all by default) and ``extra``."""
        d = asdict(self)
        d = {k: d[k] for k in (fields or d) if k != "name"}
        return digest(json.dumps([d, extra], sort_keys=True, default=str))[:10]


#: The paper's schedule: 256x51 log-mel, four hidden=256 teachers 200 epochs,
#: hidden=18 student 600 epochs, Adam lr 0.01, batch 64.
PAPER = Schedule("paper")

#: The paper's features and student, the rest scaled down to finish in under
#: 10 minutes on a 2-core CPU: 256x51 log-mel (20-ms hop) with the paper's
#: SpecAugment, the paper's hidden=18 student (31,260 parameters, 29,591,778
#: MACs) for 5 epochs, distilled from AudioSet-pretrained mn04_as with its
#: head fine-tuned 10 epochs, which hears every batch's mixup mixtures
#: (``teacher_outputs="online"``).  Measured on the built-in replica (seeds 0
#: and 1), that student beat the plain one by 2.6 and 7.3 points where the
#: distilled student of two hidden=20 DwsCNN teachers trained 10 epochs
#: from scratch gained 0.0 and 1.5, in half the time (1.5 against 3.2
#: minutes).  ``teacher="dwscnn"`` trains those teachers instead; their
#: outputs are then computed once (``"cached"``) on a 10-frame grid of crop
#: positions: with 5 epochs, a pass over every position would cost more
#: teacher work than running them on every batch.
DEMO = Schedule(
    "demo",
    teacher="pretrained",
    pretrained_fine_tune="head",
    teacher_outputs="online",
    teacher_hidden=20,
    n_teachers=2,
    teacher_epochs=10,
    student_epochs=5,
    teacher_step=10,
)


def _scaled_down(schedule):
    """What ``schedule`` trains smaller or shorter than :data:`PAPER`, as text."""
    teacher_fields = ("n_teachers", "teacher_hidden", "teacher_epochs")
    if schedule.teacher == "pretrained":  # the paper's teachers are not trained at all
        teacher_fields = ()
    changed = [f"{name} {getattr(schedule, name)} (paper: {getattr(PAPER, name)})"
               for name in (*teacher_fields, "student_hidden", "student_epochs")
               if getattr(schedule, name) != getattr(PAPER, name)]
    if schedule.teacher == "pretrained":
        what = "its head fine-tuned" if schedule.pretrained_fine_tune == "head" else "fine-tuned"
        changed.insert(0, f"teacher: {schedule.pretrained_model} pretrained on AudioSet, {what} "
                          f"{schedule.pretrained_epochs} epochs (paper: {PAPER.n_teachers} DwsCNNs of "
                          f"hidden={PAPER.teacher_hidden} trained {PAPER.teacher_epochs} epochs)")
    if schedule.logmel != PAPER.logmel:
        changed.append(f"log-mel {schedule.logmel} (paper: 256 bands x 51 frames)")
    return "; ".join(changed)


def _log(verbose, *msg):
    if verbose:
        print(*msg, flush=True)


def _front_end(schedule, out, store_dtype=None):
    """The front end; ``store_dtype`` set: features in a disk store under ``out``
    (bounded memory, for the full development set), else in memory with a
    per-recording cache under ``out``."""
    if store_dtype is None:
        logmel = LogMel(memory=str(out / "feature-cache"), **schedule.logmel)
    else:
        logmel = LogMel(feature_store=str(out / "feature-store"), store_dtype=store_dtype, **schedule.logmel)
    return [
        ("reassemble", Reassembler()),
        ("logmel", logmel),
        ("crop", RandomCrop()),
        ("specaug", SpecAugment(**schedule.spec_augment)),
    ]


def _distilled_student(teacher, schedule, random_state, checkpoint_dir, params):
    return DistilledStudent(teacher, hidden=schedule.student_hidden, max_epochs=schedule.student_epochs,
                            temperature=schedule.temperature, soft_weight=schedule.soft_weight,
                            teacher_outputs=schedule.teacher_outputs, teacher_step=schedule.teacher_step,
                            random_state=random_state, checkpoint_dir=checkpoint_dir, **params)


def _digest(*parts):
    """Short digest of JSON-able ``parts``."""
    return digest(json.dumps(parts, sort_keys=True, default=str))


def data_fingerprint(features, y, *about):
    """Digest of what a model trains on: the features as the classifiers
    see them, the labels, and ``about`` (JSON-able).

    The features come from the content-keyed LogMel cache, so audio
    replaced under the same path, another ``subset``, other features or
    attached augmentations (crops, masks, impulse responses, Freq-MixStyle)
    all give another fingerprint; the file list's paths, sizes and times
    play no part.
    """
    classes, y_enc = np.unique(np.asarray(y), return_inverse=True)
    return training_fingerprint(features, y_enc, json.dumps([classes.tolist(), about], default=str))


def _record_path(path):
    return path.with_name(path.name + ".json")


def _reuse_problem(path, fingerprint):
    """Why the model stored at ``path`` may not be reused for ``fingerprint``
    (None: it may; "" : there is none)."""
    if not path.exists():
        return ""
    try:
        record = json.loads(_record_path(path).read_text())
        stored, content = record["fingerprint"], record["content"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"{path} has no record of what it was trained on (saved by an older skasc)"
    if stored != fingerprint:
        return (f"{path} was trained on other data or settings (another --subset, audio"
                " changed under the data root, other features, or a retrained model it"
                " learned from)")
    if file_digest(path) != content:
        return f"{path} changed on disk since it was saved (its content digest differs)"
    return None


def _train_or_load(path, make, features, y, verbose, label, fingerprint, **fit_params):
    """The model at ``path`` if it was trained on exactly ``fingerprint``
    (and the file is as saved), else a new one, trained and saved with a
    record of its fingerprint and content (``path`` + ``.json``)."""
    problem = _reuse_problem(path, fingerprint)
    if problem is None:
        _log(verbose, f"[skasc] {label}: loading {path} (already trained)")
        return joblib.load(path)
    _log(verbose, f"[skasc] {label}: " + (f"{problem}: retraining" if problem else "training"))
    t0 = time.perf_counter()
    # fit returns only after all epochs (Ctrl-C raises out of it), so only a
    # finished model reaches the file
    model = make().fit(features, y, **fit_params)
    # the model first, then its record: a crash in between leaves a record
    # whose content digest no longer matches, so the model is retrained
    write_atomically(path, lambda tmp: joblib.dump(model, tmp))
    record = json.dumps({"fingerprint": fingerprint, "content": file_digest(path), "model": label})
    write_atomically(_record_path(path), lambda tmp: tmp.write_text(record))
    _log(verbose, f"[skasc] {label}: done in {time.perf_counter() - t0:.0f} s -> {path}")
    return model


def _check_out_dir(out_dir):
    """Refuse an ``out_dir`` that cannot be created or written, before any work."""
    out = Path(out_dir).expanduser()
    if out.exists():
        if not out.is_dir():
            raise NotADirectoryError(f"out_dir {str(out_dir)!r} is a file, not a folder")
        if not os.access(out, os.W_OK | os.X_OK):
            raise PermissionError(f"out_dir {str(out_dir)!r} is not writable")
        return
    parent = next(p for p in out.absolute().parents if p.exists())
    if not parent.is_dir():
        raise NotADirectoryError(
            f"out_dir {str(out_dir)!r} cannot be created: {str(parent)!r} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"out_dir {str(out_dir)!r} cannot be created: {str(parent)!r} is not writable")


def check_inputs(data_root=None, out_dir="skasc-output", *, subset=100, dcase2024=False, ir_dir=None):
    """Check what :func:`reproduce` is given, before it trains or writes anything.

    Parameters
    ----------
    data_root, out_dir, dcase2024, ir_dir
        As for :func:`reproduce`.
    subset : int, default=100
        The schedule's ``subset``.

    Returns
    -------
    data : tuple of two Bunch, or None
        The train and evaluate splits of ``data_root`` (None without it).

    Raises
    ------
    FileNotFoundError, NotADirectoryError, PermissionError, ValueError
        One line naming the argument and the file: an ``out_dir`` that is
        (or lies under) a file or is not writable, a ``data_root`` without
        the TAU22 layout (or whose split files list no clips, or that lacks
        the ``subset``'s list), an ``ir_dir`` without ``dcase2024`` or
        holding no usable impulse response.
    """
    _check_out_dir(out_dir)
    data = None
    if data_root is not None:
        data = (load_tau22(data_root, "train", fraction=None if subset == 100 else subset),
                load_tau22(data_root, "evaluate"))
    if ir_dir is not None:
        if not dcase2024:
            raise ValueError("ir_dir (--ir-dir) is used only by the DCASE 2024 recipe: pass dcase2024=True "
                             "(--dcase2024) too, or leave it out")
        read_impulse_responses(ir_dir)  # every file is read and checked; errors name it
    return data


def reproduce(data_root=None, out_dir="skasc-output", *, schedule=None, device="cpu",
              random_state=0, n_jobs=None, verbose=1, overwrite=False, compile="auto",
              dcase2024=False, ir_dir=None, store_dtype=None):
    """Run the paper's recipe and write its Table 2 and per-device results.

    Parameters
    ----------
    data_root : path or None
        A TAU Urban Acoustic Scenes 2022 Mobile development folder.  None:
        generate the built-in replica (in ``out_dir/tau22-replica``).
    out_dir : path, default="skasc-output"
        Where models, feature cache and results go.
    schedule : Schedule or None
        None: :data:`PAPER` for real data, :data:`DEMO` for the replica.
    device : str, default="cpu"
    random_state : int, default=0
        Teachers use seeds ``random_state + k``; both students use
        ``random_state``.
    n_jobs : int or None
        Feature extraction workers.
    verbose : int, default=1
    overwrite : bool, default=False
        Passed to :func:`~skasc.datasets.make_tau22` when the replica is
        generated (``data_root=None``): rewrite ``out_dir/tau22-replica`` if
        it was made with other parameters or is incomplete.
    compile : bool or "auto", default="auto"
        The students' ``compile`` (see :class:`~skasc.DwsCNNClassifier`):
        ``"auto"`` compiles the paper schedule's 600-epoch runs, not the
        demo's few epochs.
    dcase2024 : bool, default=False
        Also train the later DCASE recipe on top of the distilled student
        (a second table): the student with Freq-MixStyle and device impulse
        response augmentation (the DCASE 2024 Task 1 additions), and its
        copies fine-tuned per training device (the DCASE 2025 baseline),
        reported overall and per device group (real a-c, seen s1-s3, unseen
        s4-s6).  Combine with ``schedule.subset`` for the data-efficient
        setting (DCASE 2025 trains on the 25 % subset).
    store_dtype : {"float32", "float16"} or None, default=None
        None: the features are held in memory (cached per recording in
        ``out_dir/feature-cache``).  Set: they are written to a disk store
        (``out_dir/feature-store``, see :class:`~skasc.LogMel`'s
        ``feature_store``) of that type and read batch by batch, so that
        the full development set's data path fits a machine whose memory
        does not hold its features.
    ir_dir : path or None
        Impulse responses for the DIR augmentation; None: the replica's
        (``tau22-replica/impulse_responses``, the seen devices only) when
        the data is the built-in replica, and no DIR on real data (the
        development set ships none).

    Raises
    ------
    FileNotFoundError, NotADirectoryError, PermissionError, ValueError
        Before anything is trained or written, as :func:`check_inputs`.
    OSError
        If a model or result cannot be saved, naming the file (a full disk
        says so).
    KeyboardInterrupt
        On Ctrl-C.  The model in training is not saved as finished; its
        checkpoint keeps the last finished epoch, from which the same call
        resumes.

    Returns
    -------
    results : dict
        What is written to ``results.json``.
    """
    # everything that can be checked is, before anything is trained or written
    check_device(device)
    schedule = schedule or (DEMO if data_root is None else PAPER)
    data = check_inputs(data_root, out_dir, subset=schedule.subset, dcase2024=dcase2024, ir_dir=ir_dir)
    if schedule.teacher == "pretrained":  # shipped, cached or downloaded, and intact
        resolve_weights(schedule.pretrained_model)
    out = Path(out_dir)
    (out / "models").mkdir(parents=True, exist_ok=True)
    if data_root is None:
        root = make_tau22(out / "tau22-replica", random_state=random_state, overwrite=overwrite)
        _log(verbose, f"[skasc] built-in generated TAU22 replica at {root}; "
                      f"schedule '{schedule.name}' (pass --data-root for the real data and the "
                      "paper's schedule)")
        data = (load_tau22(root, "train", fraction=None if schedule.subset == 100 else schedule.subset),
                load_tau22(root, "evaluate"))
    else:
        root = Path(data_root)
        _log(verbose, f"[skasc] TAU22 at {root}; schedule '{schedule.name}'")
    scaled = _scaled_down(schedule)
    if scaled:
        _log(verbose, f"[skasc] scaled down from the paper: {scaled}")
    train, test = data
    _log(verbose, f"[skasc] {len(train.X)} training clips"
                  + ("" if schedule.subset == 100 else f" (the {schedule.subset} % subset)")
                  + f", {len(test.X)} evaluation clips (the full evaluate split)")

    steps = _front_end(schedule, out, store_dtype)
    front = Pipeline(steps)
    _log(verbose, "[skasc] log-mel features " + ("(cached per recording)" if store_dtype is None
                                                 else f"(in a {store_dtype} disk store)"))
    front.set_params(logmel__verbose=verbose, logmel__n_jobs=n_jobs)
    features = front.fit_transform(train.X)
    test_features = front.transform(test.X)
    # a teacher's file name depends only on what trains it, so changing the
    # student's schedule reuses the teachers already in out_dir; each stored
    # model is also bound to the data it was trained on (see _train_or_load)
    teacher_fields = ["logmel", "spec_augment", "teacher_hidden", "teacher_epochs", "batch_size", "lr",
                      "subset"]
    teacher_key = schedule.key(str(root), random_state, fields=teacher_fields)
    key = schedule.key(str(root), random_state)
    data_fp = data_fingerprint(features, train.y)
    common = dict(batch_size=schedule.batch_size, lr=schedule.lr, device=device,
                  verbose=max(0, verbose - 1))
    students = dict(common, compile=compile)

    if schedule.teacher == "pretrained":
        return _finish(out, schedule, key, root, data_root, train, test, features, test_features,
                       data_fp, students, common, random_state, n_jobs, verbose, scaled, device,
                       dcase2024, ir_dir, *_pretrained_teacher(out, schedule, root, features, train,
                                                               data_fp, random_state, common, verbose),
                       store_dtype=store_dtype)
    teachers, teacher_fps = [], []
    for k in range(schedule.n_teachers):
        fp = _digest("teacher", k, data_fp, schedule.key(random_state, fields=teacher_fields))
        teachers.append(_train_or_load(
            out / "models" / f"teacher{k + 1}-{teacher_key}.joblib",
            lambda k=k: DwsCNNClassifier(hidden=schedule.teacher_hidden, max_epochs=schedule.teacher_epochs,
                                         random_state=random_state + k,
                                         checkpoint_dir=out / "checkpoints" / f"teacher{k + 1}-{teacher_key}",
                                         **common),
            features, train.y, verbose, f"teacher {k + 1}/{schedule.n_teachers}", fp))
        teacher_fps.append(fp)
    # already-trained members: FrozenEstimator makes the ensemble's fit a no-op for them
    ensemble = EnsembleTeacher([FrozenEstimator(t) for t in teachers]).fit(features, train.y)
    named = [(f"Teacher{k + 1}", t) for k, t in enumerate(teachers)] + [("Teacher ensemble", ensemble)]
    return _finish(out, schedule, key, root, data_root, train, test, features, test_features, data_fp,
                   students, common, random_state, n_jobs, verbose, scaled, device, dcase2024, ir_dir,
                   ensemble, teacher_fps, named, store_dtype=store_dtype)


def _pretrained_teacher(out, schedule, root, features, train, data_fp, random_state, common, verbose):
    """The pretrained EfficientAT teacher fine-tuned on the training audio
    (reached through the features' audio link); (teacher, fingerprints, named rows)."""
    fields = ["logmel", "pretrained_model", "pretrained_epochs", "pretrained_fine_tune", "batch_size",
              "subset"]
    pkey = schedule.key(str(root), random_state, fields=fields)
    fp = _digest("teacher-pretrained", data_fp, schedule.key(random_state, fields=fields))
    name = schedule.pretrained_model
    teacher = _train_or_load(
        out / "models" / f"teacher-{name}-{pkey}.joblib",
        lambda: PretrainedClassifier(name, max_epochs=schedule.pretrained_epochs,
                                     fine_tune=schedule.pretrained_fine_tune,
                                     sr=schedule.logmel.get("sr", 44100), batch_size=schedule.batch_size,
                                     random_state=random_state, device=common["device"],
                                     checkpoint_dir=out / "checkpoints" / f"teacher-{name}-{pkey}",
                                     verbose=common["verbose"]),
        features, train.y, verbose,
        f"pretrained teacher ({name}, {'head ' if schedule.pretrained_fine_tune == 'head' else ''}fine-tuned)", fp)
    return teacher, [fp], [(f"Teacher {name}", teacher)]


def _finish(out, schedule, key, root, data_root, train, test, features, test_features, data_fp,
            students, common, random_state, n_jobs, verbose, scaled, device, dcase2024, ir_dir,
            ensemble, teacher_fps, named, store_dtype=None):
    """Both students, Table 2, the per-device reports and the DCASE 2024 table."""
    student = _train_or_load(
        out / "models" / f"student-kd-{key}.joblib",
        lambda: _distilled_student(ensemble, schedule, random_state,
                                   out / "checkpoints" / f"student-kd-{key}", students),
        features, train.y, verbose, "student with KD",
        _digest("student-kd", data_fp, key, teacher_fps))
    plain = _train_or_load(
        out / "models" / f"student-plain-{key}.joblib",
        lambda: DwsCNNClassifier(hidden=schedule.student_hidden, max_epochs=schedule.student_epochs,
                                 random_state=random_state,
                                 checkpoint_dir=out / "checkpoints" / f"student-plain-{key}", **students),
        features, train.y, verbose, "student without KD", _digest("student-plain", data_fp, key))

    models = named + [("Student w/o KD", plain), ("Student (KD)", student)]
    rows, reports = [], {}
    for name, model in models:
        proba = model.predict_proba(test_features)
        pred = model.classes_[np.argmax(proba, axis=1)]
        rep = device_report(test.y, pred, test.device, proba=proba, labels=model.classes_)
        cx = complexity_report(model)
        reports[name] = rep
        rows.append(dict(model=name, params=cx.total_params, macs=cx.total_macs,
                         accuracy=rep["overall"]["accuracy"], log_loss=rep["overall"]["log_loss"]))
        if name == "Student (KD)":
            kd_pred = pred
    table = _table2(rows)
    _log(verbose, "\n" + table)
    if scaled:
        _log(verbose, f"(scaled down from the paper: {scaled})")
    for name in ("Student w/o KD", "Student (KD)"):
        _log(verbose, f"\n{name}: per device and class\n" + format_device_report(reports[name]))

    recipe_rows = None
    if dcase2024:
        if ir_dir is None and data_root is None:
            ir_dir = root / "impulse_responses"
        recipe_rows = _dcase2024_recipe(out, schedule, key, train, test, ensemble, reports["Student (KD)"],
                                        ir_dir, students, random_state, n_jobs, verbose, teacher_fps,
                                        store_dtype=store_dtype)
    results = dict(schedule=asdict(schedule), scaled_down=scaled, data_root=str(root), device=device,
                   table2=rows, reports=reports, chance=1.0 / len(student.classes_),
                   dcase2024=recipe_rows)
    text = json.dumps(results, indent=2)
    write_atomically(out / "results.json", lambda tmp: tmp.write_text(text))
    write_atomically(out / "table2.md", lambda tmp: tmp.write_text(_table2(rows, markdown=True) + "\n"))
    _plots(out, test.y, kd_pred, student.classes_, reports, teacher=named[-1][0])
    _log(verbose, f"\n[skasc] wrote {out / 'results.json'}, table2.md, confusion_matrix.png, device_accuracy.png")
    return results


def _dcase2024_recipe(out, schedule, key, train, test, ensemble, kd_report, ir_dir, students,
                      random_state, n_jobs, verbose, teacher_fps, store_dtype=None):
    """The distilled student with Freq-MixStyle and DIR, then fine-tuned per device."""
    steps = [("reassemble", Reassembler())]
    if ir_dir is not None:
        steps.append(("dir", DeviceImpulseResponse(ir_dir, random_state=random_state)))
    else:
        _log(verbose, "[skasc] no impulse responses given (--ir-dir): Freq-MixStyle only")
    steps += _front_end(schedule, out, store_dtype)[1:]
    steps.append(("fms", FreqMixStyle()))
    front = Pipeline(steps).set_params(logmel__verbose=verbose, logmel__n_jobs=n_jobs)
    features = front.fit_transform(train.X)
    test_features = front.transform(test.X)  # the augmentations are training-only
    tag = "fms-dir" if ir_dir is not None else "fms"
    # the features carry the DIR variants and Freq-MixStyle: their own fingerprint
    data_fp = data_fingerprint(features, train.y)
    student_path = out / "models" / f"student-kd-{tag}-{key}.joblib"
    student_fp = _digest(f"student-kd-{tag}", data_fp, key, teacher_fps)
    student = _train_or_load(
        student_path,
        lambda: _distilled_student(ensemble, schedule, random_state,
                                   out / "checkpoints" / f"student-kd-{tag}-{key}", students),
        features, train.y, verbose, f"student with KD + {tag.upper()}", student_fp)
    # DCASE 2025: fine-tune a copy per training device (a tenth of the lr, half the epochs),
    # bound to the general student it starts from and to the clips' devices
    specific = _train_or_load(
        out / "models" / f"student-kd-{tag}-per-device-{key}.joblib",
        lambda: DeviceSpecificClassifier(FrozenEstimator(student), fine_tune=dict(
            max_epochs=max(1, schedule.student_epochs // 2), lr=schedule.lr / 10)),
        features, train.y, verbose, "device-specific fine-tuning",
        _digest("per-device", student_fp, file_digest(student_path), train.device.tolist()),
        devices=train.device)
    rows = [_recipe_row("Student (KD)", kd_report)]
    for name, model, params in ((f"+ Freq-MixStyle{' + DIR' if ir_dir is not None else ''}", student, {}),
                                ("+ device-specific fine-tuning", specific, {"devices": test.device})):
        proba = model.predict_proba(test_features, **params)
        pred = model.classes_[np.argmax(proba, axis=1)]
        rows.append(_recipe_row(name, device_report(test.y, pred, test.device, proba=proba,
                                                    labels=model.classes_)))
    header = ["Accuracy", "real a-c", "seen s1-s3", "unseen s4-s6", "Log-loss"]
    body = [[r["model"], *(f"{100 * r[k]:.1f} %" for k in ("accuracy", "real", "seen", "unseen")),
             f"{r['log_loss']:.3f}"] for r in rows]
    _log(verbose, "\n" + format_table(["Model (DCASE 2024/2025 additions)", *header], body))
    (out / "dcase2024.md").write_text(format_table(["Model", *header], body, markdown=True) + "\n")
    return rows


def _recipe_row(name, report):
    groups = report["groups"]
    return dict(model=name, accuracy=report["overall"]["accuracy"], log_loss=report["overall"]["log_loss"],
                **{g: groups[g]["accuracy"] if g in groups else float("nan")
                   for g in ("real", "seen", "unseen")})


def _table2(rows, markdown=False):
    return format_table(["Model", "Parameters", "MACs", "Accuracy", "Log-loss"],
                        [[r["model"], f"{r['params']:,}", f"{r['macs'] / 1e6:,.1f} M",
                          f"{100 * r['accuracy']:.1f} %", f"{r['log_loss']:.3f}"] for r in rows],
                        markdown=markdown)


def _plots(out, y_true, y_pred, classes, reports, teacher="Teacher ensemble"):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    fig, ax = plt.subplots(figsize=(8, 7))
    ConfusionMatrixDisplay.from_predictions(y_true, y_pred, labels=classes, normalize="true",
                                            values_format=".2f", ax=ax, colorbar=False,
                                            xticks_rotation=60)
    ax.set_title("Student (KD): confusion matrix on fold1_evaluate (row-normalised)")
    fig.tight_layout()
    fig.savefig(out / "confusion_matrix.png", dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(9, 4))
    names = ["Student w/o KD", "Student (KD)", teacher]
    devices = list(reports["Student (KD)"]["devices"])
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        acc = [100 * reports[name]["devices"][d]["accuracy"] for d in devices]
        ax.bar(np.arange(len(devices)) + i * width, acc, width, label=name)
    ax.set_xticks(np.arange(len(devices)) + width, devices)
    ax.set_ylabel("class-wise accuracy (%)")
    ax.set_title("Accuracy per device (s4-s6 unseen in training)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "device_accuracy.png", dpi=100)
    plt.close(fig)


def replace_schedule(schedule, **changes):
    """A copy of ``schedule`` with some fields changed (for the CLI's options;
    None: unchanged).  Switching to ``teacher="dwscnn"`` without naming
    ``teacher_outputs`` gives ``"cached"``: the demo's online outputs are
    meant for its pretrained teacher, and DwsCNN teachers taught worse online
    (see :data:`DEMO`)."""
    changes = {k: v for k, v in changes.items() if v is not None}
    if changes.get("teacher") == "dwscnn" and schedule.teacher != "dwscnn":
        changes.setdefault("teacher_outputs", "cached")
    return replace(schedule, **changes)
