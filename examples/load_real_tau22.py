"""
Loading the real TAU Urban Acoustic Scenes 2022 Mobile development set
======================================================================

What it shows
    How to point :func:`skasc.datasets.load_tau22` at a TAU22 folder: the
    fields of the returned :class:`~sklearn.utils.Bunch`, the number of clips
    per device in each split (s4-s6 appear only in evaluate/test), and how
    :class:`skasc.Reassembler` groups the 1-s clips into their 10-s parent
    recordings -- from the file names for paths, from ``groups`` and
    ``positions`` for waveforms -- while keeping one row per clip.

    Only the csv files are read to list the clips (about a second for the
    230,350-clip real set); audio is read when features are computed, or
    here for the ten clips of one recording.

How to run
    ``python examples/load_real_tau22.py --data-root /path/to/TAU-urban-acoustic-scenes-2022-mobile-development``

    The folder is the one holding ``meta.csv``, ``evaluation_setup/`` and
    ``audio/`` (as unpacked from Zenodo); it is only read, never written.

    ``python examples/load_real_tau22.py``  without ``--data-root`` generates
    the miniature replica with :func:`skasc.datasets.make_tau22` (same layout,
    file names and formats) and uses it as if it were the real folder;
    ``--fast`` makes that replica tiny (what the test-suite runs).
"""

import argparse
import collections
import os
import tempfile

import numpy as np
import soundfile as sf

from skasc import Reassembler
from skasc.datasets import DEVICES, load_tau22, make_tau22


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--data-root", help="the TAU22 development folder (holding meta.csv)")
    parser.add_argument("--fast", action="store_true", help="without --data-root: a tiny replica")
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "skasc-examples"),
                        help="where the replica is generated (default: %(default)s)")
    args = parser.parse_args(argv)

    if args.data_root:
        root = args.data_root
    else:
        if args.fast:
            root = make_tau22(os.path.join(args.workdir, "tau22-replica-tiny"), n_cities=2, n_locations=1,
                              n_segments=1, devices=("a", "b", "s1", "s4"), random_state=0)
        else:
            root = make_tau22(os.path.join(args.workdir, "tau22-replica"), random_state=0)
        print(f"no --data-root: using the generated replica at {root} as if it were the real set")

    # -- one split, and what the Bunch holds --------------------------------
    train = load_tau22(root, "train")  # fold 1, the paper's (and the challenge's) setup
    print(train.DESCR)
    print("\nBunch fields (aligned with X, one entry per 1-s clip):")
    for key in train:
        value = train[key]
        if isinstance(value, np.ndarray):
            first = value[0].item() if isinstance(value[0], np.generic) else value[0]
            print(f"  {key:<13} {str(value.dtype):<8} shape {value.shape}, first: {first!r}")
        else:
            print(f"  {key:<13} {value!r}" if key != "DESCR" else f"  {key:<13} (the line above)")

    # -- clips per device and split -----------------------------------------
    splits = {s: load_tau22(root, s) for s in ("train", "evaluate", "test")}
    print("\nclips per device:")
    print(f"  {'split':<9}" + "".join(f"{d:>7}" for d in DEVICES) + f"{'total':>8}")
    for name, data in splits.items():
        counts = collections.Counter(data.device.tolist())
        print(f"  {name:<9}" + "".join(f"{counts.get(d, 0):>7}" for d in DEVICES) + f"{len(data.X):>8}")
    print(f"  scenes: {', '.join(train.target_names)}")
    print("  (test lists the evaluate clips without labels in its csv; y then comes from meta.csv)")

    # -- Reassembler: clips -> their 10-s recordings, rows unchanged ---------
    audio = Reassembler().fit_transform(train.X)  # groups from the file names
    print(f"\nReassembler on the train paths: {audio!r}")
    print(f"  {len(audio)} rows (still one per clip), {len(audio.recordings)} recordings")
    sizes = collections.Counter(map(len, audio.recordings))
    print(f"  clips per recording: {', '.join(f'{n} recordings of {k}' for k, n in sorted(sizes.items()))}")
    r = int(audio.row_recording[0])
    pieces = audio.recordings[r]
    print(f"  recording {str(train.recording[0])!r} = {len(pieces)} clips in snippet order:")
    for p in pieces[:3]:
        print(f"    {os.path.basename(p)}")
    print("    ...")
    rows = np.flatnonzero(audio.row_recording == r)
    print(f"  rows of that recording: {rows.tolist()}, their position in it: {audio.row_piece[rows].tolist()}")
    # at predict time every clip stands alone: the paper tests on the 1-s clips
    single = Reassembler().fit(train.X).transform(train.X)
    print(f"  at predict time (transform): {single!r}")

    # -- waveforms instead of paths: pass groups and positions ---------------
    # (the whole set is ~40 GB as float32 waveforms: here only one recording)
    X = np.stack([sf.read(p, dtype="float32")[0] for p in train.X[rows]])  # as return_audio=True reads them
    audio = Reassembler().fit_transform(X, groups=train.recording[rows], positions=train.snippet[rows])
    joined = np.concatenate(audio.recordings[0])
    print(f"\nwaveforms {X.shape}: {len(audio.recordings)} recording of {len(joined):,} samples "
          f"({len(joined) / 44100:.0f} s)")


if __name__ == "__main__":
    main()
