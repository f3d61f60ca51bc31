"""The TAU Urban Acoustic Scenes 2022 Mobile development set: its facts (scenes,
cities, devices and their groups, sample rate, file layout) and its loader.

The real development set (DCASE 2023 Task 1) is a folder::

    root/
        meta.csv                       filename, scene_label, identifier, source_label
        evaluation_setup/
            fold1_train.csv            filename, scene_label
            fold1_evaluate.csv         filename, scene_label
            fold1_test.csv             filename
        audio/
            airport-lisbon-1000-40000-0-a.wav   (1 s, 44.1 kHz, mono)
            ...

The DCASE 2024 Task 1 data-efficient subsets of the train split are lists
``split5.csv``, ``split10.csv``, ``split25.csv``, ``split50.csv`` and
``split100.csv`` (tab-separated, a ``filename`` column), distributed with the
DCASE 2024 Task 1 baseline (CPJKU/dcase2024_task1_baseline, release
"files"); :func:`load_tau22` looks for them in ``root/split_setup/`` (where
the baseline and :func:`make_tau22` keep them), then ``root/`` and
``root/evaluation_setup/``.

All csv files are tab-separated with a header line.  :func:`load_tau22`
reads such a folder and never writes into it.  The clip-name grammar and the
recording id live in :func:`skasc._rows.parse_clip_name`.
"""

import csv
import os
import pathlib

import numpy as np
from sklearn.utils import Bunch

from .._audio import read_clip
from .._rows import parse_clip_name, recording_id

__all__ = [
    "load_tau22",
    "tau22_recording_groups",
    "SCENES",
    "CITIES",
    "DEVICES",
    "REAL_DEVICES",
    "SEEN_DEVICES",
    "UNSEEN_DEVICES",
    "SAMPLE_RATE",
    "CLIP_SAMPLES",
]

#: The 10 acoustic scene labels, in sorted order.
SCENES = (
    "airport",
    "bus",
    "metro",
    "metro_station",
    "park",
    "public_square",
    "shopping_mall",
    "street_pedestrian",
    "street_traffic",
    "tram",
)
#: The 12 cities of the development set, in the order :func:`make_tau22` uses them.
CITIES = (
    "barcelona",
    "helsinki",
    "lisbon",
    "london",
    "lyon",
    "milan",
    "paris",
    "prague",
    "stockholm",
    "vienna",
    "amsterdam",
    "madrid",
)
#: All recording devices: real a, b, c and simulated s1-s6.
DEVICES = ("a", "b", "c", "s1", "s2", "s3", "s4", "s5", "s6")
REAL_DEVICES = ("a", "b", "c")
#: Simulated devices present in the training split.
SEEN_DEVICES = ("s1", "s2", "s3")
#: Simulated devices present only in the evaluate/test split.
UNSEEN_DEVICES = ("s4", "s5", "s6")

SAMPLE_RATE = 44100
CLIP_SAMPLES = 44100
SNIPPETS_PER_RECORDING = 10
RECORDING_SAMPLES = CLIP_SAMPLES * SNIPPETS_PER_RECORDING

SUBSETS = ("train", "evaluate", "test", "all")
#: Percentages of the train split of the DCASE 2024 Task 1 subsets.
FRACTIONS = (5, 10, 25, 50, 100)
#: Folders (relative to the root) searched for ``split<fraction>.csv``, in order.
SPLIT_FOLDERS = ("split_setup", ".", "evaluation_setup")
META_COLUMNS = ("filename", "scene_label", "identifier", "source_label")
SETUP_COLUMNS = {
    "train": ("filename", "scene_label"),
    "evaluate": ("filename", "scene_label"),
    "test": ("filename",),
}
_LAYOUT_HINT = (
    "expected TAU22 layout root/meta.csv, root/evaluation_setup/fold<k>_"
    "{train,evaluate,test}.csv and root/audio/*.wav"
)


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------
def read_tsv(path, expected, *, exact_count=True):
    """Read a tab-separated file with a header; return {column: list}.

    ``expected`` columns must all be present (extra columns are tolerated but
    ignored); every data row must have as many fields as the header.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found; {_LAYOUT_HINT}")
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh, delimiter="\t")
        try:
            header = next(reader)
        except StopIteration:
            raise ValueError(f"{path} is empty: expected a tab-separated header") from None
        header = [h.strip() for h in header]
        missing = [c for c in expected if c not in header]
        if missing or len(set(header)) != len(header):
            raise ValueError(
                f"malformed header in {path}: got {header!r}, expected the"
                f" tab-separated columns {list(expected)!r}"
            )
        rows = [row for row in reader if row]
    width = len(header)
    for lineno, row in enumerate(rows, start=2):
        if len(row) != width:
            raise ValueError(
                f"malformed row in {path} (data row {lineno - 1}): expected {width}"
                f" tab-separated fields {header!r}, got {len(row)}: {row!r}"
            )
    cols = list(zip(*rows)) if rows else [()] * width
    return {name: list(cols[header.index(name)]) for name in expected}


def _check_listed(filenames, path):
    """Refuse a file with a header but no data rows: it would load as 0
    clips, and fail (or train on nothing) far from the cause."""
    if not filenames:
        raise ValueError(f"{path} lists no clips: it has a header but no data rows")


def check_unique(filenames, path):
    """Refuse a file name listed twice: its clip would count twice in
    training or in a score."""
    if len(set(filenames)) == len(filenames):
        return
    first = {}
    for k, fn in enumerate(filenames):
        j = first.setdefault(fn, k)
        if j != k:
            raise ValueError(
                f"{path}: file name {fn!r} is listed more than once (data rows"
                f" {j + 1} and {k + 1})"
            )


def _parse_names(filenames, source):
    """Parse many clip names with :func:`~skasc._rows.parse_clip_name` (the
    one home of the name grammar and the recording id); errors name ``source``."""
    out = []
    for fn in filenames:
        try:
            out.append(parse_clip_name(fn))
        except ValueError as exc:
            raise ValueError(f"{exc} (listed in {source})") from None
    return out


def _split_file(root_path, fraction):
    """The path of ``split<fraction>.csv``: the first of :data:`SPLIT_FOLDERS`
    that holds it; FileNotFoundError naming every place looked at otherwise."""
    name = f"split{fraction}.csv"
    places = [root_path / folder / name for folder in SPLIT_FOLDERS]
    for path in places:
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"{name} (the DCASE 2024 Task 1 {fraction} % subset of the train split) not"
        f" found: looked for {', '.join(repr(str(p)) for p in places)}. The real"
        " files come with the DCASE 2024 Task 1 baseline (release 'files' of"
        " CPJKU/dcase2024_task1_baseline); a replica written by make_tau22 has"
        " them in split_setup/ (call make_tau22 again on an older replica to add them)"
    )


def _subset_rows(idx, meta_fn, split_path, path):
    """The rows of ``idx`` (the train split) whose file names ``path`` lists.

    Names may be given with or without the ``audio/`` folder; each must be a
    clip of the train split.
    """
    listed = read_tsv(path, ("filename",))["filename"]
    _check_listed(listed, path)
    check_unique(listed, path)
    train = {meta_fn[i] for i in idx}
    wanted = set()
    for k, fn in enumerate(listed):
        name = fn if fn in train or fn.startswith("audio/") else "audio/" + fn
        if name not in train:
            raise ValueError(
                f"{path}: file name {fn!r} (data row {k + 1}) is not a clip of the"
                f" train split {split_path}"
            )
        wanted.add(name)
    return [i for i in idx if meta_fn[i] in wanted]


def load_tau22(root, subset="train", fold=1, *, fraction=None, return_audio=False,
               check_audio=False):
    """Load (the file list of) a TAU Urban Acoustic Scenes 2022 Mobile folder.

    Reads the development set layout: ``root/meta.csv`` (tab-separated columns
    filename, scene_label, identifier, source_label), the split files
    ``root/evaluation_setup/fold{fold}_{train,evaluate,test}.csv`` (filename,
    scene_label; test: filename only) and ``root/audio/*.wav``. Nothing is
    ever written into ``root``. Without ``check_audio`` or ``return_audio``
    only the csv files are read (about a second for the 230,350-row real set).

    Parameters
    ----------
    root : str or path-like
        The development set folder (the one holding ``meta.csv``).
    subset : {"train", "evaluate", "test", "all"}, default="train"
        Which split: the rows of ``fold{fold}_{subset}.csv`` in its order, or
        every row of ``meta.csv`` for ``"all"``. The test split lists the same
        clips as the evaluate split without labels; ``y`` is then taken from
        ``meta.csv``.
    fold : int, default=1
        Fold number of the evaluation setup files (the development set has
        only fold 1). Ignored for ``subset="all"``.
    fraction : {5, 10, 25, 50, 100} or None, default=None
        With ``subset="train"`` only: keep the clips of the DCASE 2024 Task 1
        data-efficient subset of about ``fraction`` % of the train split, as
        listed by ``split<fraction>.csv`` (tab-separated, a ``filename``
        column, names with or without ``audio/``), searched for in
        ``root/split_setup/``, ``root/`` and ``root/evaluation_setup/``, in
        that order.  Rows keep the order of the train split file.  The
        evaluate and test splits are the same whatever the subset.  None:
        the whole train split.
    return_audio : bool, default=False
        If True, ``X`` holds the waveforms, float32 of shape (n_clips, 44100),
        read one by one with :func:`skasc._audio.read_clip` (sample rate,
        channel count and length are checked). The full development set needs
        about 40 GB in memory this way.
    check_audio : bool, default=False
        If True, verify that every listed file exists and is a 1-s, 44.1 kHz
        mono clip (reads every file: slow on the real set).

    Returns
    -------
    data : sklearn.utils.Bunch
        With the attributes, all arrays aligned with ``X``, in csv order:

        X : ndarray of shape (n_clips,), dtype object, or (n_clips, 44100) float32
            Absolute paths of the wav files, or the waveforms.
        y : ndarray of str
            Scene label of each clip.
        filename : ndarray of str
            The file name as written in the csv, e.g. ``"audio/...wav"``.
        device : ndarray of str
            Recording device (``source_label``): a, b, c, s1..s6.
        city : ndarray of str
            City of the recording.
        identifier : ndarray of str
            Recording location, ``"<city>-<location id>"``. Use it as the
            group for location-wise cross-validation.
        recording : ndarray of str
            The 10-s parent recording id (the base name without the snippet
            index), e.g. ``"airport-lisbon-1000-40000-a"``.
        snippet : ndarray of int
            Index 0..9 of the 1-s clip within its recording.
        target_names : ndarray of str
            Sorted unique scene labels of the whole ``meta.csv``.
        root : str
            Absolute path of ``root``.
        subset, fold, fraction, DESCR
            What was loaded.

    Raises
    ------
    FileNotFoundError
        If ``root``, ``meta.csv`` or the split file is missing, with
        ``fraction`` if ``split<fraction>.csv`` is in none of the folders
        searched (the message names them), or (with
        ``check_audio``/``return_audio``) an audio file is missing.
    ValueError
        For a csv file with a header but no data rows (named), an unknown
        ``subset``, a ``fraction`` other than 5, 10, 25, 50,
        100 or None, or given with another subset than "train", a subset
        file naming a clip outside the train split, a malformed header or
        row, an unparsable
        clip name, a file name listed twice in ``meta.csv`` or in the split
        file (the message gives both data rows), a file name of the split
        file absent from ``meta.csv``, a label that disagrees with
        ``meta.csv``, metadata that disagrees with the file name, or (with
        ``check_audio``/``return_audio``) a clip that is not 1 s of 44.1 kHz
        mono audio or a WAV file shorter than its header says. Messages name
        the offending file.
    PermissionError
        With ``check_audio``/``return_audio``, for an audio file that may not
        be read (the message names it).

    See Also
    --------
    make_tau22 : write a small synthetic folder with the same layout.

    Examples
    --------
    >>> import tempfile
    >>> from skasc.datasets import make_tau22, load_tau22
    >>> root = make_tau22(tempfile.mkdtemp(), n_cities=2, n_locations=1,
    ...                   n_segments=1, devices=("a", "b", "s4"))
    >>> train = load_tau22(root, "train")
    >>> train.X[0].endswith(".wav"), sorted(set(train.device.tolist()))
    (True, ['a', 'b'])
    >>> test = load_tau22(root, "evaluate", return_audio=True)
    >>> test.X.shape[1], len(test.target_names)
    (44100, 10)
    >>> len(load_tau22(root, "train", fraction=50).X) <= len(train.X)
    True
    """
    if subset not in SUBSETS:
        raise ValueError(f"unknown subset {subset!r}; valid subsets are {list(SUBSETS)}")
    if fraction is not None:
        if isinstance(fraction, bool) or not isinstance(fraction, (int, np.integer)) or (
                fraction not in FRACTIONS):
            raise ValueError(
                f"fraction must be one of {list(FRACTIONS)} (percent of the train split)"
                f" or None; got {fraction!r}"
            )
        if subset != "train":
            raise ValueError(
                f"fraction={fraction} selects a subset of the train split; it cannot be"
                f" used with subset={subset!r} (the evaluate and test splits are always whole)"
            )
        fraction = int(fraction)
    root_path = pathlib.Path(os.fspath(root)).expanduser()
    if not root_path.exists():
        raise FileNotFoundError(f"TAU22 root folder {str(root_path)!r} not found; {_LAYOUT_HINT}")
    if not root_path.is_dir():
        raise NotADirectoryError(f"TAU22 root {str(root_path)!r} is not a folder; {_LAYOUT_HINT}")
    root_path = root_path.resolve()
    meta_path = root_path / "meta.csv"
    meta = read_tsv(meta_path, META_COLUMNS)
    meta_fn = meta["filename"]
    _check_listed(meta_fn, meta_path)
    labels, ident, source = meta["scene_label"], meta["identifier"], meta["source_label"]
    fields = _parse_names(meta_fn, meta_path)

    # The metadata must agree with the file names.
    for i, (f, lab, idn, src) in enumerate(zip(fields, labels, ident, source)):
        if f["scene"] != lab or f["device"] != src or idn != f["location"]:
            what, got, want = (
                ("scene_label", lab, f["scene"]) if f["scene"] != lab
                else ("source_label", src, f["device"]) if f["device"] != src
                else ("identifier", idn, f["location"])
            )
            raise ValueError(
                f"{meta_path}: {what} {got!r} of {meta_fn[i]!r} (data row {i + 1})"
                f" disagrees with its file name ({want!r})"
            )
    check_unique(meta_fn, meta_path)
    position = dict(zip(meta_fn, range(len(meta_fn))))

    if subset == "all":
        idx = list(range(len(meta_fn)))
        split_path = meta_path
    else:
        split_path = root_path / "evaluation_setup" / f"fold{int(fold)}_{subset}.csv"
        split = read_tsv(split_path, SETUP_COLUMNS[subset])
        _check_listed(split["filename"], split_path)
        check_unique(split["filename"], split_path)
        idx = [position.get(fn) for fn in split["filename"]]
        if None in idx:
            k = idx.index(None)
            raise ValueError(
                f"{split_path}: file name {split['filename'][k]!r} (data row {k + 1})"
                f" is not listed in {meta_path}"
            )
        if "scene_label" in split:
            for k, (i, lab) in enumerate(zip(idx, split["scene_label"])):
                if labels[i] != lab:
                    raise ValueError(
                        f"{split_path}: label {lab!r} of {split['filename'][k]!r} (data row"
                        f" {k + 1}) disagrees with {meta_path} ({labels[i]!r})"
                    )

    if fraction is not None:
        idx = _subset_rows(idx, meta_fn, split_path, _split_file(root_path, fraction))

    filenames = [meta_fn[i] for i in idx]
    sub = [fields[i] for i in idx]
    prefix = str(root_path) + os.sep
    paths = np.empty(len(filenames), dtype=object)
    paths[:] = [prefix + fn.replace("/", os.sep) for fn in filenames]

    if check_audio or return_audio:
        for p, fn in zip(paths, filenames):
            if not os.path.isfile(p):
                raise FileNotFoundError(
                    f"audio file {p!r} not found (listed as {fn!r} in {split_path})"
                )
    if return_audio:
        X = np.empty((len(paths), CLIP_SAMPLES), dtype=np.float32)
        for k, p in enumerate(paths):
            X[k] = read_clip(p, sr=SAMPLE_RATE, n_samples=CLIP_SAMPLES)
    else:
        if check_audio:
            for p in paths:
                read_clip(p, sr=SAMPLE_RATE, n_samples=CLIP_SAMPLES)
        X = paths

    def strings(values):
        return np.asarray(values, dtype=str) if len(values) else np.empty(0, dtype="<U1")

    return Bunch(
        X=X,
        y=strings([labels[i] for i in idx]),
        filename=strings(filenames),
        device=strings([source[i] for i in idx]),
        city=strings([f["city"] for f in sub]),
        identifier=strings([ident[i] for i in idx]),
        recording=strings([f["recording"] for f in sub]),
        snippet=np.fromiter((f["snippet"] for f in sub), dtype=np.int64, count=len(sub)),
        target_names=np.asarray(sorted(set(meta["scene_label"])), dtype=str),
        root=str(root_path),
        subset=subset,
        fold=int(fold),
        fraction=fraction,
        DESCR=(
            f"TAU Urban Acoustic Scenes 2022 Mobile ({subset}"
            + ("" if subset == "all" else f", fold {int(fold)}")
            + ("" if fraction is None else f", {fraction} % subset")
            + f"): {len(idx)} clips of 1 s at 44.1 kHz from {root_path}"
        ),
    )


def tau22_recording_groups(filenames):
    """Return the 10-s parent recording id of each clip.

    Useful as ``groups`` for :class:`sklearn.model_selection.GroupKFold` so
    that the ten 1-s snippets of one recording never straddle a split.

    Parameters
    ----------
    filenames : sequence of str or path-like
        Clip paths or names following the TAU22 grammar.

    Returns
    -------
    groups : ndarray of str, shape (n_clips,)
        E.g. ``"airport-lisbon-1000-40000-a"``.

    Raises
    ------
    ValueError
        If a name cannot be parsed (the message names it).

    Examples
    --------
    >>> from skasc.datasets import tau22_recording_groups
    >>> tau22_recording_groups(["audio/bus-milan-1003-40030-7-b.wav",
    ...                         "audio/bus-milan-1003-40030-8-b.wav"]).tolist()
    ['bus-milan-1003-40030-b', 'bus-milan-1003-40030-b']
    """
    ids = []
    for fn in filenames:
        parse_clip_name(fn)  # a name off the grammar is refused, named
        ids.append(recording_id(fn))  # the row grammar's one answer
    return np.asarray(ids, dtype=str) if ids else np.empty(0, dtype="<U1")


