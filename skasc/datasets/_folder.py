"""Any folder of recordings: :func:`load_audio_folder`.

The rows it returns are 1-s clips (or ``clip_seconds``), each naming its
file and its seconds in one string, ``<file>#t=<start>,<end>`` (the temporal
dimension of W3C Media Fragments; see :func:`skasc._rows.split_fragment`).
Such a row is an ordinary Python string: it lives in a NumPy object or
string array, is indexed by cross-validation and pickled like any path, and
every skasc step understands it -- :class:`~skasc.Reassembler` joins the
clips of one file into its recording, :class:`~skasc.LogMel` reads only the
seconds a row names.  Loading reads the files' headers, never their audio.
"""

import csv
import io
import math
import os
import warnings
from collections.abc import Mapping
from numbers import Integral, Real

import numpy as np
from sklearn.utils import Bunch
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from .._audio import check_channels, audio_info
from .._rows import clip_fragment
from ._tau22 import check_unique

__all__ = ["load_audio_folder", "AUDIO_EXTENSIONS", "SHORT_POLICIES"]

#: File name endings taken as audio in a folder (case-insensitive): the
#: formats libsndfile reads.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".aifc", ".au",
                    ".caf", ".w64", ".rf64")

#: What to do with a file shorter than a clip, and with the tail of a file
#: after its last whole clip.
SHORT_POLICIES = ("pad", "drop", "error")

# Bunch fields: a table column of the same name would overwrite one
_FIELDS = ("X", "y", "groups", "recording", "position", "filename", "file_sr", "padded",
           "target_names", "needs_resampling", "dropped", "sr", "clip_seconds", "short",
           "source", "extra_columns", "DESCR")


def _is_table(obj):
    return isinstance(obj, Mapping) or hasattr(obj, "columns")


def _missing(value):
    return value is None or (isinstance(value, float) and math.isnan(value)) or (
        isinstance(value, str) and not value.strip())


# --------------------------------------------------------------------------
# the two sources of a file list


def _scan_folder(folder, extensions):
    """[(path, filename, label)] of a folder of class subfolders (label None
    for a flat folder of files), in sorted order."""
    ends = tuple(e.lower() if e.startswith(".") else "." + e.lower() for e in extensions)

    def audio(name):
        return not name.startswith(".") and name.lower().endswith(ends)

    reached = {}  # real folder -> the path it was first reached by

    def walk(top):
        found = []
        # symbolic links to folders are followed at every depth, as they are
        # for the class folders themselves (os.walk skips them by default)
        for dirpath, dirnames, filenames in os.walk(top, followlinks=True):
            real = os.path.realpath(dirpath)
            if real in reached:  # also ends a link back to an enclosing folder
                raise ValueError(
                    f"folder {dirpath!r} is {reached[real]!r} again (through a symbolic link):"
                    " its files would be listed twice; remove the link or the copy"
                )
            reached[real] = dirpath
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            found += [os.path.join(dirpath, f) for f in sorted(filenames) if audio(f)]
        return found

    entries = sorted(os.scandir(folder), key=lambda e: e.name)
    top = [e.path for e in entries if e.is_file() and audio(e.name)]
    classes = {e.name: walk(e.path) for e in entries if e.is_dir() and not e.name.startswith(".")}
    labelled = {c: files for c, files in classes.items() if files}
    if top and labelled:
        raise ValueError(
            f"folder {folder!r} holds audio files both directly (e.g."
            f" {os.path.basename(top[0])!r}) and in class subfolders ({sorted(labelled)[:3]}):"
            " put every file in the subfolder of its class, or list files and labels in a CSV"
        )
    if not top and not labelled:
        raise ValueError(
            f"folder {folder!r} holds no audio files (names ending in"
            f" {', '.join(ends)}), neither directly nor in subfolders"
        )
    empty = sorted(set(classes) - set(labelled))
    if empty and labelled:
        warnings.warn(
            f"subfolder(s) {empty} of {folder!r} hold no audio files: they make no class",
            UserWarning, stacklevel=3,
        )
    if top:
        return [(p, os.path.relpath(p, folder).replace(os.sep, "/"), None) for p in top]
    return [(p, os.path.relpath(p, folder).replace(os.sep, "/"), c)
            for c, files in labelled.items() for p in files]


def _read_csv(path):
    """{column: list of str} of a CSV file (delimiter: tab, ';' or ',', from
    the header line), and its column names in order."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        text = fh.read()
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise ValueError(f"{path} is empty: expected a header line naming the columns")
    first = lines[0]
    delimiter = "\t" if "\t" in first else ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = [h.strip() for h in next(reader)]
    if len(set(header)) != len(header):
        raise ValueError(f"{path}: the header {header!r} names a column twice")
    rows = [r for r in reader if any(f.strip() for f in r)]
    for k, row in enumerate(rows, start=1):
        if len(row) != len(header):
            raise ValueError(
                f"malformed row in {path} (data row {k}): expected {len(header)} fields"
                f" {header!r}, got {len(row)}: {row!r}"
            )
    return {h: [r[j].strip() for r in rows] for j, h in enumerate(header)}, header


def _table_columns(table):
    """{column name: list of values} of a DataFrame or a mapping of columns."""
    names = list(table.columns) if hasattr(table, "columns") else list(table.keys())
    columns = {str(c): list(table[c]) for c in names}
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        raise ValueError(f"the columns of the table have different lengths: "
                         f"{ {c: len(v) for c, v in columns.items()} }")
    return columns, [str(c) for c in names]


def _table_entries(columns, header, where, base, path_column, label_column):
    """[(path, filename, label)] and the extra columns of a table."""
    if path_column not in columns:
        raise ValueError(
            f"unknown path column {path_column!r} in {where}: its columns are {header};"
            " pass path_column=<the column of file paths>"
        )
    if label_column is not None and label_column not in columns:
        raise ValueError(
            f"unknown label column {label_column!r} in {where}: its columns are {header};"
            " pass label_column=<the column of labels>, or label_column=None for"
            " files without labels"
        )
    names = columns[path_column]
    if not names:
        raise ValueError(f"{where} lists no files (it has a header but no data rows)")
    entries = []
    for k, name in enumerate(names):
        if _missing(name):
            raise ValueError(f"{where}: data row {k + 1} has no file path in column {path_column!r}")
        label = None
        if label_column is not None:
            label = columns[label_column][k]
            if _missing(label):
                raise ValueError(
                    f"{where}: data row {k + 1} ({name!r}) has no label in column {label_column!r}"
                )
        path = os.path.abspath(os.path.join(base, os.path.expanduser(os.fspath(name))))
        entries.append((path, name, label))
    check_unique([e[0] for e in entries], where)
    extra = [c for c in header if c not in (path_column, label_column)]
    clash = [c for c in extra if c in _FIELDS]
    if clash:
        raise ValueError(
            f"column {clash[0]!r} of {where} has the name of a field of the returned Bunch"
            f" ({list(_FIELDS)}); rename it"
        )
    return entries, {c: columns[c] for c in extra}


# --------------------------------------------------------------------------
# the loader


@validate_params(
    {
        "source": "no_validation",
        "sr": [Interval(Integral, 1, None, closed="left")],
        "clip_seconds": [Interval(Real, 0, None, closed="neither")],
        "short": [StrOptions(set(SHORT_POLICIES))],
        "path_column": [str],
        "label_column": [str, None],
        "root": [str, os.PathLike, None],
        "extensions": [tuple, list],
    },
    prefer_skip_nested_validation=True,
)
def load_audio_folder(source, *, sr=44100, clip_seconds=1.0, short="pad", path_column="filename",
                      label_column="label", root=None, extensions=AUDIO_EXTENSIONS):
    """Load (the clip list of) any folder of recordings: one row per clip.

    Reads a folder of class subfolders, or a CSV file or table of file
    paths and labels, and cuts every file into clips of ``clip_seconds``
    without reading its audio: each row is a string naming the file and the
    clip's seconds, ``"<file>#t=<start>,<end>"`` (e.g.
    ``"/data/dog/bark_01.wav#t=3,4"``, the temporal syntax of W3C Media
    Fragments).  Rows are plain strings, so they work in NumPy arrays,
    cross-validation and pickles, and every skasc step reads them:
    :class:`~skasc.Reassembler` joins the clips of one file into its
    recording (no ``groups`` to build), :class:`~skasc.LogMel` reads only
    the seconds a row names.  Only the files' headers are read here.

    Parameters
    ----------
    source : str, path-like, pandas.DataFrame or mapping of columns
        * a **folder**: each subfolder is a class (its name is the label)
          holding audio files, at any depth; hidden files and folders are
          skipped, symbolic links to folders are followed (a folder reached
          twice, e.g. through a link to an enclosing one, is refused).  A
          folder of files without subfolders gives unlabelled rows (``y``
          is None), e.g. to predict.
        * a **CSV file** (delimiter ``,``, ``;`` or tab, found from the
          header line) or a **table** (a DataFrame, or a dict of equally
          long columns): one row per file, with a column of paths
          (``path_column``), a column of labels (``label_column``), and any
          other columns (e.g. group, fold, device), which are kept.
          Relative paths are taken from ``root``.
    sr : int, default=44100
        The sample rate the clips are meant for (``LogMel(sr=...)``).  Files
        at other rates are loaded all the same and listed in
        ``needs_resampling``; ``LogMel(resample="soxr_hq")`` resamples them.
        The clip count of a file does not depend on it.
    clip_seconds : float, default=1.0
        Length of a clip (a row) in seconds.
    short : {"pad", "drop", "error"}, default="pad"
        What to do with audio shorter than a clip: a file shorter than one
        clip, and the tail of a file after its last whole clip.

        * ``"pad"``: it becomes a clip of its own, zero-padded at the end,
          so no audio is lost and every file has at least one row (a 10.3-s
          file gives 11 clips, the last with 0.3 s of sound); ``padded``
          marks those clips.
        * ``"drop"``: tails are left out; a file shorter than one clip is
          left out with a UserWarning naming it (never silently), and listed
          in ``dropped``.
        * ``"error"``: a ValueError naming the first file that is shorter
          than a clip or not a whole number of clips long.
    path_column : str, default="filename"
        Column of file paths (CSV or table only).
    label_column : str or None, default="label"
        Column of labels (CSV or table only); None: unlabelled files.
    root : str or path-like, default=None
        Folder that relative paths of a CSV or table are taken from.  None:
        the CSV file's folder, or the current folder for a table.
    extensions : tuple of str, default=AUDIO_EXTENSIONS
        File name endings taken as audio in a folder (case-insensitive).

    Returns
    -------
    data : sklearn.utils.Bunch
        Arrays aligned with ``X`` (one entry per clip), files in sorted order
        (folder) or in table order, clips in playing order:

        X : ndarray of shape (n_clips,), dtype object
            The clip rows ``"<absolute path>#t=<start>,<end>"``.
        y : ndarray, or None
            The label of the clip's file (str for a folder or a CSV file; as
            in the table otherwise); None for unlabelled files.
        groups : ndarray of str
            The clip's file (absolute path): pass it as ``groups`` to
            :class:`~sklearn.model_selection.GroupKFold` or
            :class:`~sklearn.model_selection.StratifiedGroupKFold` so that
            the clips of one file never fall on both sides of a split.
        recording : ndarray of str
            The same array as ``groups``: the file is the recording.
        position : ndarray of int
            Index of the clip in its file (``#t=k*c,(k+1)*c`` is clip k).
        filename : ndarray of str
            The file as listed: relative to the folder, or as written in
            the table.
        file_sr : ndarray of int
            The sample rate the clip's file is stored at.
        padded : ndarray of bool
            Whether the clip runs past the end of its file (zero-padded).
        <column> : ndarray
            Every other column of a CSV or table, per clip.
        extra_columns : list of str
            Their names.
        target_names : ndarray
            Sorted unique labels (empty without labels).
        needs_resampling : dict
            ``{file: sample rate}`` of the files not stored at ``sr``.
        dropped : dict
            ``{file: duration in s}`` of the files left out by
            ``short="drop"``.
        sr, clip_seconds, short, source, DESCR
            What was loaded, and how.

    Raises
    ------
    FileNotFoundError
        If ``source`` or a listed file does not exist (the message names it,
        and the CSV row).
    PermissionError
        For a file that may not be read (named).
    ValueError
        For an empty folder (named), a folder reached twice through a symbolic
        link (named), an unknown path or label column (named,
        with the columns there are), a row without a path or label, a file
        listed twice, a column named like a Bunch field, a file that is not
        readable audio, truncated, not mono or empty (named), a file shorter
        than a clip or not a whole number of clips long with
        ``short="error"``, or no file left.

    Warns
    -----
    UserWarning
        With ``short="drop"``, naming the files shorter than a clip that
        were left out; for class subfolders without audio files.

    See Also
    --------
    skasc.predict_recordings : one prediction per file.
    load_tau22 : the TAU22 development set.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np, soundfile as sf
    >>> from skasc.datasets import load_audio_folder
    >>> folder = tempfile.mkdtemp()
    >>> for label, seconds, rate in [("dog", 2.5, 16000), ("cat", 3, 44100)]:
    ...     os.makedirs(os.path.join(folder, label))
    ...     sf.write(os.path.join(folder, label, "a.wav"), np.zeros(int(seconds * rate)), rate)
    >>> data = load_audio_folder(folder)
    >>> [os.path.relpath(x, folder) for x in data.X]  # doctest: +NORMALIZE_WHITESPACE
    ['cat/a.wav#t=0,1', 'cat/a.wav#t=1,2', 'cat/a.wav#t=2,3',
     'dog/a.wav#t=0,1', 'dog/a.wav#t=1,2', 'dog/a.wav#t=2,3']
    >>> data.y.tolist(), data.position.tolist()
    (['cat', 'cat', 'cat', 'dog', 'dog', 'dog'], [0, 1, 2, 0, 1, 2])
    >>> data.padded.tolist()  # dog/a.wav lasts 2.5 s: its third clip is zero-padded
    [False, False, False, False, False, True]
    >>> list(data.needs_resampling.values())
    [16000]
    """
    extra, where = {}, None  # where: the table, named in errors about its rows
    if _is_table(source):
        base = os.path.abspath(os.fspath(root)) if root is not None else os.getcwd()
        columns, header = _table_columns(source)
        where = described = "the table"
        entries, extra = _table_entries(columns, header, where, base, path_column, label_column)
    else:
        if not isinstance(source, (str, os.PathLike)):
            raise TypeError(
                "source must be a folder, a CSV file, a pandas DataFrame or a dict of columns;"
                f" got {type(source).__name__}"
            )
        described = path = os.path.abspath(os.path.expanduser(os.fspath(source)))
        if os.path.isdir(path):
            entries = _scan_folder(path, extensions)
        elif os.path.isfile(path):
            base = os.path.abspath(os.fspath(root)) if root is not None else os.path.dirname(path)
            columns, header = _read_csv(path)
            where = path
            entries, extra = _table_entries(columns, header, where, base, path_column, label_column)
        else:
            raise FileNotFoundError(
                f"{path!r} not found: expected a folder of class subfolders or a CSV file"
            )

    # -- every file's header: its length in clips ---------------------------
    rows, too_short, dropped = [], [], {}
    for i, (path, name, label) in enumerate(entries):
        try:
            info = audio_info(path)
            check_channels(info["channels"], path)
            if info["frames"] == 0:
                raise ValueError(f"audio file {path!r} has no samples")
        except (OSError, ValueError) as exc:
            if where is None:
                raise
            raise type(exc)(f"{exc} (listed as {name!r} in {where}, data row {i + 1})") from exc
        rate, frames = info["samplerate"], info["frames"]
        duration = frames / rate
        per_clip = clip_seconds * rate  # samples of a clip at the file's rate
        n_whole = int(math.floor(frames / per_clip + 1e-9))
        tail = frames - n_whole * per_clip >= 0.5  # at least one sample left over
        if n_whole == 0 or (tail and short == "error"):
            if short == "error":
                what = (f"shorter than one clip ({clip_seconds:g} s)" if n_whole == 0 else
                        f"not a whole number of {clip_seconds:g}-s clips long"
                        f" ({duration - n_whole * clip_seconds:.6g} s left over)")
                raise ValueError(
                    f"audio file {path!r} is {duration:.6g} s long, {what}; pass short='pad'"
                    " to zero-pad it into a clip or short='drop' to leave it out"
                )
            if short == "drop" and n_whole == 0:
                too_short.append(path)
                dropped[path] = duration
                continue
        n = n_whole + (1 if tail and short == "pad" else 0)
        for k in range(n):
            rows.append((i, path, k, (k + 1) * per_clip > frames + 0.5, rate))
    if too_short:
        listed = ", ".join(f"{p!r} ({dropped[p]:.3g} s)" for p in too_short[:5])
        more = f" and {len(too_short) - 5} more" if len(too_short) > 5 else ""
        warnings.warn(
            f"{len(too_short)} audio file(s) shorter than one clip ({clip_seconds:g} s) were"
            f" left out (short='drop'): {listed}{more}; they are listed in the result's"
            " 'dropped'. short='pad' zero-pads them instead",
            UserWarning, stacklevel=2,
        )
    if not rows:
        raise ValueError(
            f"no clips left in {described}: every file is shorter than one clip"
            f" ({clip_seconds:g} s) and short='drop'"
        )

    # -- one row per clip ------------------------------------------------------
    idx = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    X = np.empty(len(rows), dtype=object)
    X[:] = [clip_fragment(p, k * clip_seconds, (k + 1) * clip_seconds) for _, p, k, _, _ in rows]
    files = np.asarray([r[1] for r in rows], dtype=str)
    labels = [entries[i][2] for i in idx]
    y = None if entries[0][2] is None else np.asarray(labels)
    bunch = Bunch(
        X=X,
        y=y,
        groups=files,
        recording=files,
        position=np.fromiter((r[2] for r in rows), dtype=np.int64, count=len(rows)),
        filename=np.asarray([str(entries[i][1]) for i in idx], dtype=str),
        file_sr=np.fromiter((r[4] for r in rows), dtype=np.int64, count=len(rows)),
        padded=np.fromiter((r[3] for r in rows), dtype=bool, count=len(rows)),
    )
    for column, values in extra.items():
        bunch[column] = np.asarray([values[i] for i in idx])
    n_files = len(np.unique(idx))
    needs = {r[1]: r[4] for r in rows if r[4] != sr}
    target_names = np.unique(y) if y is not None else np.empty(0, dtype=str)
    bunch.update(
        extra_columns=list(extra),
        target_names=target_names,
        needs_resampling=needs,
        dropped=dropped,
        sr=int(sr),
        clip_seconds=float(clip_seconds),
        short=short,
        source=described,
        DESCR=(
            f"{len(rows)} clips of {clip_seconds:g} s from {n_files} audio files of {described}"
            + ("" if y is None else f", {len(target_names)} classes")
            + f"; {int(bunch.padded.sum())} clips zero-padded"
            + (f", {len(needs)} files not at {sr} Hz (LogMel(resample='soxr_hq') resamples them)"
               if needs else "")
            + (f", {len(dropped)} files shorter than a clip left out" if dropped else "")
        ),
    )
    return bunch
