"""
Your own audio: a folder of recordings of any length and sample rate
====================================================================

What it shows
    The path a user with their own recordings takes, end to end, on a
    generated folder of class subfolders (three synthetic sound classes:
    a wavering whistle, a low rumble and crackling clicks) whose files last
    0.6 to 4.5 s and are stored at 16, 44.1 or 48 kHz:

    * :func:`skasc.datasets.load_audio_folder` cuts every file into 1-s
      clip rows ``"<file>#t=<start>,<end>"`` without reading any audio;
      a file shorter than a clip, and the tail of a longer one, become
      zero-padded clips (``short="pad"``, the default);
    * the files are split into train and test **by file**
      (:class:`~sklearn.model_selection.StratifiedGroupKFold` on
      ``data.groups``), so no recording has clips on both sides;
    * the usual pipeline, with ``LogMel(resample="soxr_hq")`` resampling the
      16 and 48 kHz files to 44.1 kHz, and :class:`~skasc.Reassembler`
      finding each clip's file and position in the rows by itself;
    * :class:`~sklearn.model_selection.GridSearchCV` over ``clf__hidden``
      with :class:`~sklearn.model_selection.GroupKFold` on the files;
    * a smaller :class:`~skasc.DistilledStudent` distilled from the chosen
      network, deployed on the fitted front end;
    * (full mode) an AudioSet-pretrained teacher: EfficientAT's ``mn04_as``
      (:class:`~skasc.PretrainedClassifier`, the checkpoint shipped with
      skasc, no download) fine-tuned on the folder's classes in a
      Pipeline after :class:`~skasc.Reassembler`, and the same
      student distilled from it: the teacher is given the audio of the very
      1-s windows the student's crops draw (through the features'
      ``audio_link``), at 44.1 kHz, and resamples them to its 32 kHz; a
      student of the same size without distillation is the baseline;
    * clip-level and file-level accuracy (one decision per file, the mean
      of its clips' probabilities: :func:`skasc.predict_recordings`,
      :func:`skasc.metrics.recording_report`).

How to run
    ``python examples/your_own_audio.py``         36 files per class, 64 x 51 features,
    widths 8 and 16, 3 folds, 20 epochs, and the pretrained teacher (mn04_as
    fine-tuned 8 epochs, its outputs at every 5th crop position): about 12
    CPU-minutes; 17 minutes wall-clock on a 2-core CPU shared with other jobs
    (of which fine-tuning mn04_as 1.5 min, distilling from it 2.7 min).

    ``python examples/your_own_audio.py --fast``  8 files per class, 32 x 26 features,
    widths 4 and 8, 2 folds, a few epochs: a few seconds (what the
    test-suite runs).

    ``--data FOLDER`` uses your own folder of class subfolders instead of
    the generated one (``--workdir`` holds the generated data and the
    feature cache).
"""

import argparse
import os
import tempfile
import time

import numpy as np
import soundfile as sf
import torch
from sklearn.model_selection import GridSearchCV, GroupKFold, StratifiedGroupKFold
from sklearn.pipeline import Pipeline

from skasc import (
    DistilledStudent,
    DwsCNNClassifier,
    LogMel,
    PretrainedClassifier,
    RandomCrop,
    Reassembler,
    SpecAugment,
    complexity_report,
    predict_recordings,
)
from skasc.datasets import load_audio_folder
from skasc.metrics import recording_report

#: The generated classes and the rates their files are stored at.
CLASSES = ("whistle", "rumble", "clicks")
RATES = (16000, 44100, 48000)


def synthesize(label, seconds, sr, rng):
    """A few seconds of one synthetic class, at ``sr`` Hz."""
    n = int(seconds * sr)
    t = np.arange(n) / sr
    noise = rng.normal(size=n)
    if label == "whistle":  # a 1.5-3 kHz tone with vibrato and a slow swell
        f0 = rng.uniform(1500, 3000)
        phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.02 * np.sin(2 * np.pi * 5 * t))) / sr
        x = np.sin(phase) * (0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.2, 1) * t))
        x += 0.01 * noise
    elif label == "rumble":  # low-pass noise below a few hundred Hz
        k = max(1, int(sr / rng.uniform(150, 400)))
        x = np.convolve(noise, np.ones(k) / np.sqrt(k), mode="same")
    else:  # sparse clicks: decaying bursts of white noise
        x = np.zeros(n)
        for start in rng.integers(0, max(1, n - sr // 50), size=int(seconds * rng.uniform(8, 20))):
            burst = noise[start:start + sr // 50] * np.exp(-np.arange(min(sr // 50, n - start)) / (sr / 2000))
            x[start:start + len(burst)] += burst
    return (0.3 * x / (np.max(np.abs(x)) + 1e-9)).astype(np.float32)


def make_folder(root, files_per_class, random_state=0):
    """Write a folder of class subfolders of multi-second files at mixed rates."""
    rng = np.random.default_rng(random_state)
    for label in CLASSES:
        os.makedirs(os.path.join(root, label), exist_ok=True)
        for k in range(files_per_class):
            seconds = 0.6 if k == 0 else rng.uniform(1.2, 4.5)  # one file shorter than a clip
            sr = RATES[k % len(RATES)]
            sf.write(os.path.join(root, label, f"{label}_{k:02d}.wav"),
                     synthesize(label, seconds, sr, rng), sr, subtype="PCM_16")
    return root


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="small folder, small features, few epochs")
    parser.add_argument("--data", help="your folder of class subfolders (default: generate one)")
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "skasc-examples"),
                        help="where the generated folder and the feature cache go (default: %(default)s)")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    args = parser.parse_args(argv)
    if args.fast:
        torch.set_num_threads(1)
        sizes = dict(files=8, n_mels=32, hop=1764, widths=[4, 8], folds=2, epochs=8, student=3,
                     student_epochs=8)
    else:
        sizes = dict(files=36, n_mels=64, hop=882, widths=[8, 16], folds=3, epochs=20, student=6,
                     student_epochs=30, pretrained_epochs=8, teacher_step=5)

    # -- the data: one row per 1-s clip, no audio read yet -------------------
    folder = args.data or make_folder(
        os.path.join(args.workdir, "own-audio-tiny" if args.fast else "own-audio"), sizes["files"])
    data = load_audio_folder(folder)  # sr=44100, clip_seconds=1.0, short="pad"
    n_files = len(np.unique(data.groups))
    print(f"data: {len(data.X)} clips of 1 s from {n_files} files ({len(data.target_names)} classes);"
          f" {len(data.needs_resampling)} files not at 44100 Hz; {int(data.padded.sum())} clips"
          " zero-padded")
    i = int(np.flatnonzero(data.position == 1)[0])
    print(f"  a row: {os.path.relpath(data.X[i], folder)!r}  (file {str(data.filename[i])!r},"
          f" position {data.position[i]}, stored at {data.file_sr[i]} Hz)")

    # -- train/test split by file: a file's clips never straddle it ------------
    train, test = next(StratifiedGroupKFold(n_splits=4, shuffle=True, random_state=0)
                       .split(data.X, data.y, groups=data.groups))
    shared = set(data.groups[train]) & set(data.groups[test])
    print(f"split by file: {len(set(data.groups[train]))} train files ({len(train)} clips),"
          f" {len(set(data.groups[test]))} test files ({len(test)} clips), {len(shared)} in both")

    # -- the pipeline and a grid search by file groups -------------------------
    pipe = Pipeline([
        ("reassemble", Reassembler()),  # each clip finds its file and position in the row
        ("logmel", LogMel(n_mels=sizes["n_mels"], n_fft=2048, win_length=1764, hop_length=sizes["hop"],
                          resample="soxr_hq", memory=os.path.join(args.workdir, "feature-cache"))),
        ("crop", RandomCrop()),         # random 1-s window of the file, new every batch
        ("specaug", SpecAugment(freq_mask_width=4, time_mask_width=3)),
        ("clf", DwsCNNClassifier(max_epochs=sizes["epochs"], batch_size=16, random_state=0,
                                 device=args.device)),
    ])
    search = GridSearchCV(pipe, {"clf__hidden": sizes["widths"]}, cv=GroupKFold(n_splits=sizes["folds"]),
                          scoring="balanced_accuracy")
    t0 = time.perf_counter()
    search.fit(data.X[train], data.y[train], groups=data.groups[train])
    print(f"grid search over clf__hidden, GroupKFold({sizes['folds']}) by file"
          f" ({time.perf_counter() - t0:.1f} s):")
    for params, score in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"]):
        print(f"  hidden={params['clf__hidden']:<3} CV class-wise accuracy {100 * score:5.1f} %")
    best = search.best_estimator_  # refitted on all training files
    print(f"chosen: hidden={search.best_params_['clf__hidden']}")

    # -- distil a smaller student from the chosen network ----------------------
    front = Pipeline(best.steps[:-1])  # the fitted front end, without the classifier
    F_train = front.fit_transform(data.X[train])  # training view: files + augmentations
    rates = sorted(set(F_train.resampled.values()))
    print(f"LogMel resampled {len(F_train.resampled)} training files (from {rates} Hz) to 44100 Hz")
    student = DistilledStudent(teacher=best.named_steps["clf"], hidden=sizes["student"],
                               max_epochs=sizes["student_epochs"], batch_size=16, random_state=0,
                               device=args.device).fit(F_train, data.y[train])
    deployed = Pipeline(front.steps + [("clf", student)])  # paths in, as the teacher's pipeline

    models = [("teacher (grid search)", best), ("student (distilled)", deployed)]

    if not args.fast:
        # -- an AudioSet-pretrained teacher, fine-tuned on these classes -------
        # EfficientAT's mn04_as, shipped with skasc (no download); it reads the
        # clip rows itself, resampled to its own 32 kHz, and computes its own
        # 128-band log-mel.  Reassembler gives it each clip's file, so its
        # training crops are drawn anywhere in the file like the student's.
        t0 = time.perf_counter()
        pretrained = Pipeline([
            ("reassemble", Reassembler()),
            ("clf", PretrainedClassifier("mn04_as", fine_tune="all", max_epochs=sizes["pretrained_epochs"],
                                         batch_size=16, random_state=0, device=args.device)),
        ]).fit(data.X[train], data.y[train])
        print(f"\nmn04_as fine-tuned on {len(train)} clips in {time.perf_counter() - t0:.1f} s")

        # -- the same student distilled from it -------------------------------
        # The fitted teacher is used frozen.  It is handed the audio of the very
        # windows the student's crops draw (at 44.1 kHz, cut from the files that
        # F_train.audio_link leads back to), once, at every 5th crop position;
        # its columns are matched to the student's classes by label.
        t0 = time.perf_counter()
        from_pretrained = DistilledStudent(
            teacher=pretrained, hidden=sizes["student"], max_epochs=sizes["student_epochs"],
            teacher_step=sizes["teacher_step"], batch_size=16, random_state=0,
            device=args.device).fit(F_train, data.y[train])
        print(f"student distilled from mn04_as in {time.perf_counter() - t0:.1f} s")
        plain = DwsCNNClassifier(hidden=sizes["student"], max_epochs=sizes["student_epochs"], batch_size=16,
                                 random_state=0, device=args.device).fit(F_train, data.y[train])
        deployed = Pipeline(front.steps + [("clf", from_pretrained)])
        models += [("teacher (mn04_as, fine-tuned)", pretrained),
                   ("student (from mn04_as)", deployed),
                   ("student (no distillation)", Pipeline(front.steps + [("clf", plain)]))]

    # -- clip- and file-level accuracy on the test files -----------------------
    print(f"\n{'model':<30} {'params':>9}  {'clip accuracy':>13}  {'file accuracy':>13}")
    for name, model in models:
        rep = recording_report(data.y[test], model.predict_proba(data.X[test]), data.groups[test],
                               labels=model.classes_)
        params = complexity_report(model.named_steps["clf"]).total_params
        print(f"{name:<30} {params:>9,}  {100 * rep['clips']['accuracy']:11.1f} %"
              f"  {100 * rep['recordings']['accuracy']:11.1f} %")
    print(f"(chance: {100 / len(data.target_names):.1f} %)")

    files = predict_recordings(deployed, data.X[test])  # one decision per file: mean of its clips
    print("\nfile-level predictions of the student (first 5 test files):")
    for f, pred, n, p in list(zip(files.recording, files.y_pred, files.n_clips, files.proba))[:5]:
        truth = data.y[data.groups == f][0]
        print(f"  {os.path.relpath(f, folder):<24} {n} clips -> {pred:<8} (p={p.max():.2f}, true {truth})")


if __name__ == "__main__":
    main()
