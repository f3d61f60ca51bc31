"""TAU Urban Acoustic Scenes 2022 Mobile: loading the real development set and
writing miniature synthetic replicas with exactly the same layout.

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

All csv files are tab-separated with a header line. :func:`load_tau22` reads
such a folder (never writing into it); :func:`make_tau22` writes a small
synthetic folder with the same layout and formats, whose scenes and devices
differ audibly, for tests, examples and quick experiments.
"""

import csv
import io
import json
import os
import pathlib
import shutil
import zlib

import numpy as np
import scipy.fft as sfft
import soundfile as sf
from sklearn.utils import Bunch

from ._audio import CLIP_NAME_PATTERN, parse_clip_name, read_clip

__all__ = [
    "load_tau22",
    "make_tau22",
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
_MARKER = "skasc_replica.json"
_REPLICA_FORMAT = 1


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------
def _read_tsv(path, expected, *, exact_count=True):
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


def _parse_names(filenames, source):
    """Parse many clip names; returns one tuple (scene, city, location id,
    segment id, snippet, device) of strings per name."""
    pattern = CLIP_NAME_PATTERN.fullmatch
    out = []
    for fn in filenames:
        m = pattern(fn.rpartition("/")[2])
        if m is None:
            try:
                parse_clip_name(fn)  # raises with the standard message
            except ValueError as exc:
                raise ValueError(f"{exc} (listed in {source})") from None
        out.append(m.groups())
    return out


def load_tau22(root, subset="train", fold=1, *, return_audio=False, check_audio=False):
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
        subset, fold, DESCR
            What was loaded.

    Raises
    ------
    FileNotFoundError
        If ``root``, ``meta.csv`` or the split file is missing, or (with
        ``check_audio``/``return_audio``) an audio file is missing.
    ValueError
        For an unknown ``subset``, a malformed header or row, an unparsable
        clip name, a file name of the split file absent from ``meta.csv``, a
        label that disagrees with ``meta.csv``, metadata that disagrees with
        the file name, or (with ``check_audio``/``return_audio``) a clip that
        is not 1 s of 44.1 kHz mono audio. Messages name the offending file.

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
    """
    if subset not in SUBSETS:
        raise ValueError(f"unknown subset {subset!r}; valid subsets are {list(SUBSETS)}")
    root_path = pathlib.Path(os.fspath(root)).expanduser()
    if not root_path.exists():
        raise FileNotFoundError(f"TAU22 root folder {str(root_path)!r} not found; {_LAYOUT_HINT}")
    if not root_path.is_dir():
        raise NotADirectoryError(f"TAU22 root {str(root_path)!r} is not a folder; {_LAYOUT_HINT}")
    root_path = root_path.resolve()
    meta_path = root_path / "meta.csv"
    meta = _read_tsv(meta_path, META_COLUMNS)
    meta_fn = meta["filename"]
    labels, ident, source = meta["scene_label"], meta["identifier"], meta["source_label"]
    fields = _parse_names(meta_fn, meta_path)  # (scene, city, loc, segment, snippet, device)

    # The metadata must agree with the file names.
    for i, (f, lab, idn, src) in enumerate(zip(fields, labels, ident, source)):
        if f[0] != lab or f[5] != src or idn != f"{f[1]}-{f[2]}":
            what, got, want = (
                ("scene_label", lab, f[0]) if f[0] != lab
                else ("source_label", src, f[5]) if f[5] != src
                else ("identifier", idn, f"{f[1]}-{f[2]}")
            )
            raise ValueError(
                f"{meta_path}: {what} {got!r} of {meta_fn[i]!r} (data row {i + 1})"
                f" disagrees with its file name ({want!r})"
            )
    position = dict(zip(meta_fn, range(len(meta_fn))))
    if len(position) != len(meta_fn):
        seen = set()
        dup = next(fn for fn in meta_fn if fn in seen or seen.add(fn))
        raise ValueError(f"{meta_path}: file name {dup!r} is listed more than once")

    if subset == "all":
        idx = list(range(len(meta_fn)))
        split_path = meta_path
    else:
        split_path = root_path / "evaluation_setup" / f"fold{int(fold)}_{subset}.csv"
        split = _read_tsv(split_path, SETUP_COLUMNS[subset])
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
        city=strings([f[1] for f in sub]),
        identifier=strings([ident[i] for i in idx]),
        recording=strings([f"{f[0]}-{f[1]}-{f[2]}-{f[3]}-{f[5]}" for f in sub]),
        snippet=np.fromiter((int(f[4]) for f in sub), dtype=np.int64, count=len(sub)),
        target_names=np.asarray(sorted(set(meta["scene_label"])), dtype=str),
        root=str(root_path),
        subset=subset,
        fold=int(fold),
        DESCR=(
            f"TAU Urban Acoustic Scenes 2022 Mobile ({subset}"
            + ("" if subset == "all" else f", fold {int(fold)}")
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
    out = []
    pattern = CLIP_NAME_PATTERN.fullmatch
    for fn in filenames:
        fn = os.fspath(fn)
        m = pattern(os.path.basename(fn))
        if m is None:
            parse_clip_name(fn)  # raises ValueError naming the file
        s, c, l, g, _, d = m.groups()
        out.append(f"{s}-{c}-{l}-{g}-{d}")
    return np.asarray(out, dtype=str)


# --------------------------------------------------------------------------
# Synthetic replica: signal building blocks (numpy only)
# --------------------------------------------------------------------------
_FS = SAMPLE_RATE


def _db(x):
    return 10.0 ** (np.asarray(x, dtype=float) / 20.0)


def _rms(x):
    return float(np.sqrt(np.mean(np.square(x)) + 1e-20))


def _smooth(rng, n, points_per_s, fs=_FS):
    """Smooth zero-mean unit-ish random curve of n samples (linear interpolation
    of Gaussian control points spaced 1/points_per_s apart)."""
    k = max(2, int(np.ceil(n / fs * points_per_s)) + 2)
    ctrl = rng.standard_normal(k)
    # light smoothing of the control points for a rounder curve
    if k >= 3:
        ctrl = np.convolve(np.pad(ctrl, 1, mode="edge"), [0.25, 0.5, 0.25], "valid")
        ctrl /= ctrl.std() + 1e-9
    return np.interp(np.arange(n) * (k - 1) / max(n - 1, 1), np.arange(k), ctrl)


_DECIM = 40


def _up(curve, n):
    """Linear interpolation of a coarse curve (one point per _DECIM samples)
    to n samples."""
    return np.interp(np.arange(n) / _DECIM, np.arange(curve.size), curve)


def _log_bumps(freqs, bumps, tilt=0.0):
    """Spectral envelope in dB: tilt (dB/octave re 1 kHz) + Gaussian bumps in
    log-frequency, each (centre Hz, width in octaves, gain dB)."""
    lf = np.log2(np.maximum(freqs, 20.0) / 1000.0)
    env = tilt * lf
    for fc, width, gain in bumps:
        env = env + gain * np.exp(-0.5 * ((lf - np.log2(fc / 1000.0)) / width) ** 2)
    return env


def _butter_mag(freqs, hp=None, lp=None, order=2):
    """Magnitude of Butterworth-like high-/low-pass corners (zero phase)."""
    f = np.maximum(freqs, 1e-3)
    mag = np.ones_like(f)
    if hp is not None:
        mag = mag / np.sqrt(1.0 + (hp / f) ** (2 * order))
    if lp is not None:
        mag = mag / np.sqrt(1.0 + (f / lp) ** (2 * order))
    return mag


def _noise_spectrum(rng, n):
    """rfft of white Gaussian noise of n samples (complex64, drawn directly)."""
    nf = n // 2 + 1
    spec = rng.standard_normal(2 * nf, dtype=np.float32).view(np.complex64)
    spec[0] = spec[0].real
    if n % 2 == 0:
        spec[-1] = spec[-1].real
    return spec


def _shaped_noise(rng, n, mag):
    """Gaussian noise of n samples shaped by the magnitude response ``mag``
    (an array over ``rfftfreq(n)`` or a callable of it), unit RMS."""
    if callable(mag):
        mag = mag(np.fft.rfftfreq(n, 1.0 / _FS))
    x = sfft.irfft(_noise_spectrum(rng, n) * mag.astype(np.float32), n)
    return (x / _rms(x)).astype(np.float64)


def _band_noise(rng, n, lo=None, hi=None, order=2):
    return _shaped_noise(rng, n, lambda f: _butter_mag(f, lo, hi, order))


def _tone(freq_t, fs=_FS, phase=0.0):
    """Sine of time-varying frequency (array, Hz)."""
    return np.sin(phase + 2 * np.pi * np.cumsum(freq_t) / fs)


def _ramp(n, attack, release, fs=_FS):
    env = np.ones(n)
    a = min(n, max(1, int(attack * fs)))
    r = min(n, max(1, int(release * fs)))
    env[:a] *= np.linspace(0, 1, a)
    env[n - r :] *= np.linspace(1, 0, r)
    return env


# ----- events: each returns a short waveform with peak about 1 -------------
def _ev_walker(rng):
    n_steps = int(rng.integers(3, 11))
    interval = rng.uniform(0.42, 0.65)
    cutoff = rng.uniform(700, 3500)
    step_len = int(0.05 * _FS)
    out = np.zeros(int((n_steps * interval + 0.2) * _FS))
    t = np.arange(step_len) / _FS
    for k in range(n_steps):
        burst = rng.standard_normal(step_len) * np.exp(-t / rng.uniform(0.006, 0.015))
        # shoe/floor colour: a short moving average (cut-off ~ cutoff Hz)
        w = max(1, int(_FS / cutoff / 2))
        burst = np.convolve(burst, np.ones(w) / w, "same")
        start = int((k * interval + rng.normal(0, 0.02) + 0.05) * _FS)
        start = min(max(start, 0), out.size - step_len)
        out[start : start + step_len] += burst * rng.uniform(0.5, 1.0)
    return out / (np.abs(out).max() + 1e-9)


def _ev_click(rng):
    n = int(rng.uniform(0.1, 0.4) * _FS)
    out = np.zeros(n)
    t = np.arange(int(0.004 * _FS)) / _FS
    for _ in range(int(rng.integers(1, 6))):
        s = int(rng.integers(0, n - t.size))
        click = rng.standard_normal(t.size) * np.exp(-t / 0.0008)
        out[s : s + t.size] += np.diff(click, prepend=0.0) * rng.uniform(0.4, 1)
    return out / (np.abs(out).max() + 1e-9)


def _ev_chime(rng):
    base = rng.uniform(380, 900)
    ratios = rng.choice([1.0, 1.25, 1.335, 1.5, 2.0], size=int(rng.integers(2, 5)))
    note = int(0.55 * _FS)
    out = np.zeros(note * len(ratios) + int(1.0 * _FS))
    t = np.arange(int(1.4 * _FS)) / _FS
    for k, r in enumerate(ratios):
        f = base * r
        s = np.sin(2 * np.pi * f * t) + 0.35 * np.sin(2 * np.pi * 2 * f * t) + 0.1 * np.sin(2 * np.pi * 3 * f * t)
        s *= np.exp(-t / 0.45) * np.minimum(1, t / 0.004)
        out[k * note : k * note + t.size] += s
    return out / (np.abs(out).max() + 1e-9)


def _ev_door_beep(rng):
    f = rng.uniform(1600, 3200)
    n_beeps = int(rng.integers(2, 7))
    on, off = int(rng.uniform(0.08, 0.2) * _FS), int(rng.uniform(0.08, 0.2) * _FS)
    t = np.arange(on) / _FS
    beep = (np.sin(2 * np.pi * f * t) + 0.3 * np.sin(2 * np.pi * 3 * f * t)) * _ramp(on, 0.004, 0.004)
    out = np.zeros((on + off) * n_beeps)
    for k in range(n_beeps):
        out[k * (on + off) : k * (on + off) + on] = beep
    return out / (np.abs(out).max() + 1e-9)


def _ev_car(rng):
    dur = rng.uniform(2.0, 5.0)
    n = int(dur * _FS)
    t = np.arange(n) / _FS
    tc = dur / 2
    env = np.exp(-0.5 * ((t - tc) / (dur / 5)) ** 2)
    noise = _band_noise(rng, n, rng.uniform(40, 90), rng.uniform(500, 2000), 2)
    f0 = rng.uniform(22, 50)
    doppler = 1 + 0.06 * np.tanh(-(t - tc) / 0.4)
    harm = sum(
        (0.7 / h) * _tone(f0 * h * doppler, phase=rng.uniform(0, 2 * np.pi)) for h in range(1, 7)
    )
    out = env * (noise + rng.uniform(0.3, 1.2) * harm)
    return out / (np.abs(out).max() + 1e-9)


def _ev_bird(rng):
    n_chirps = int(rng.integers(2, 9))
    f_start = rng.uniform(2300, 6500)
    f_ratio = rng.uniform(0.55, 1.7)
    chirp_len = rng.uniform(0.04, 0.16)
    gap = rng.uniform(0.05, 0.2)
    m = int(chirp_len * _FS)
    out = np.zeros(int(n_chirps * (chirp_len + gap) * _FS) + m)
    for k in range(n_chirps):
        fs_k = f_start * rng.uniform(0.93, 1.07)
        freq = np.geomspace(fs_k, fs_k * f_ratio, m)
        c = _tone(freq) * np.hanning(m)
        s = int(k * (chirp_len + gap) * _FS)
        out[s : s + m] += c * rng.uniform(0.5, 1.0)
    return out / (np.abs(out).max() + 1e-9)


def _ev_squeal(rng):
    n = int(rng.uniform(0.5, 2.5) * _FS)
    t = np.arange(n) / _FS
    f = rng.uniform(1900, 5000) * (1 + 0.012 * np.sin(2 * np.pi * rng.uniform(4, 9) * t))
    s = _tone(f) + 0.3 * _tone(2 * f)
    env = _ramp(n, rng.uniform(0.05, 0.3), rng.uniform(0.1, 0.4)) * (1 + 0.3 * _smooth(rng, n, 6))
    out = s * np.clip(env, 0, None)
    return out / (np.abs(out).max() + 1e-9)


def _ev_train(rng):
    """A train arriving/leaving a station: rumble swell + falling whine."""
    dur = rng.uniform(5.0, 9.0)
    n = int(dur * _FS)
    t = np.arange(n) / _FS
    env = np.sin(np.pi * t / dur) ** 2
    rumble = _band_noise(rng, n, 25, rng.uniform(250, 500), 2)
    speed = np.clip(1 - t / dur, 0.05, 1)
    whine = _tone(rng.uniform(500, 1100) * speed) * speed
    out = env * (rumble + rng.uniform(0.1, 0.4) * whine)
    if rng.random() < 0.6:
        sq = _ev_squeal(rng) * rng.uniform(0.2, 0.5)
        s = int(0.6 * n)
        m = min(sq.size, n - s)
        out[s : s + m] += sq[:m]
    return out / (np.abs(out).max() + 1e-9)


def _ev_wind(rng):
    dur = rng.uniform(1.0, 4.0)
    n = int(dur * _FS)
    env = np.sin(np.pi * np.arange(n) / n) ** 2 * (1 + 0.5 * _smooth(rng, n, 3))
    out = _band_noise(rng, n, 15, rng.uniform(120, 450), 2) * np.clip(env, 0, None)
    return out / (np.abs(out).max() + 1e-9)


def _ev_trolley(rng):
    """A rolling suitcase/trolley: rattling mid-band noise."""
    n = int(rng.uniform(1.0, 3.5) * _FS)
    t = np.arange(n) / _FS
    rattle = 1 + 0.8 * np.sin(2 * np.pi * rng.uniform(12, 40) * t) * (1 + 0.3 * _smooth(rng, n, 4))
    out = _band_noise(rng, n, rng.uniform(150, 400), rng.uniform(1500, 4000), 2) * rattle
    out *= _ramp(n, 0.2, 0.3)
    return out / (np.abs(out).max() + 1e-9)


def _ev_horn(rng):
    n = int(rng.uniform(0.25, 1.0) * _FS)
    f0 = rng.uniform(280, 520)
    t = np.arange(n) / _FS
    out = sum((1.0 / h) * np.sin(2 * np.pi * f0 * h * t) for h in range(1, 9)) * _ramp(n, 0.01, 0.03)
    return out / (np.abs(out).max() + 1e-9)


_EVENTS = {
    "walker": _ev_walker,
    "click": _ev_click,
    "chime": _ev_chime,
    "door_beep": _ev_door_beep,
    "car": _ev_car,
    "bird": _ev_bird,
    "squeal": _ev_squeal,
    "train": _ev_train,
    "wind": _ev_wind,
    "horn": _ev_horn,
    "trolley": _ev_trolley,
}

# ----- scene prototypes ------------------------------------------------------
# level: RMS in dBFS; tilt: dB/octave of the background; bumps: (Hz, octaves,
# dB) of the background envelope; am: (control points per s, depth) of the
# background's slow amplitude modulation; babble: (talkers, dB re background);
# hum: (f0 Hz, harmonics, dB); whine: (low Hz, high Hz, dB) motor whine;
# music: dB; events: name -> (events per second, dB re background RMS).
_SCENE_PROTOTYPES = {
    "airport": dict(
        level=-31, tilt=-3.0, bumps=[(120, 1.2, 3), (600, 1.4, 5)], am=(0.4, 0.15),
        babble=(10, 0), hum=None, whine=None, music=None,
        events={"walker": (0.2, 2), "trolley": (0.15, 3), "chime": (0.04, 8)},
    ),
    "bus": dict(
        level=-25, tilt=-5.5, bumps=[(70, 1.0, 10), (400, 1.2, 3)], am=(0.2, 0.35),
        babble=(2, -9), hum=(36, 24, 2), whine=None, music=None,
        events={"door_beep": (0.02, 6), "click": (0.15, -2), "car": (0.03, 0)},
    ),
    "metro": dict(
        level=-23, tilt=-6.5, bumps=[(55, 1.2, 12), (900, 1.0, 5)], am=(0.3, 0.45),
        babble=(2, -12), hum=(60, 10, -3), whine=(250, 800, -4), music=None,
        events={"squeal": (0.04, 4), "door_beep": (0.02, 4)},
    ),
    "metro_station": dict(
        level=-28, tilt=-4.0, bumps=[(80, 1.2, 6), (350, 1.5, 3)], am=(0.3, 0.25),
        babble=(5, -3), hum=None, whine=None, music=None,
        events={"train": (0.05, 8), "walker": (0.3, 1), "chime": (0.025, 6), "squeal": (0.015, 2)},
    ),
    "park": dict(
        level=-37, tilt=-2.0, bumps=[(100, 1.5, 4), (4000, 1.0, 5)], am=(0.5, 0.3),
        babble=(1, -9), hum=None, whine=None, music=None,
        events={"bird": (0.35, 8), "wind": (0.12, 6), "walker": (0.05, 0)},
    ),
    "public_square": dict(
        level=-31, tilt=-3.0, bumps=[(200, 1.5, 5), (3000, 1.5, 2)], am=(0.4, 0.2),
        babble=(3, -3), hum=None, whine=None, music=None,
        events={"walker": (0.3, 2), "bird": (0.1, 4), "car": (0.05, 2), "wind": (0.04, 2)},
    ),
    "shopping_mall": dict(
        level=-30, tilt=-3.0, bumps=[(150, 1.2, 2), (700, 1.5, 4)], am=(0.4, 0.15),
        babble=(8, -1), hum=None, whine=None, music=-5,
        events={"walker": (0.3, 1), "click": (0.3, 0), "chime": (0.01, 6)},
    ),
    "street_pedestrian": dict(
        level=-30, tilt=-3.2, bumps=[(180, 1.5, 6), (2500, 1.5, 1)], am=(0.4, 0.25),
        babble=(3, -3), hum=None, whine=None, music=None,
        events={"walker": (0.45, 3), "car": (0.1, 3), "bird": (0.04, 3), "horn": (0.005, 6)},
    ),
    "street_traffic": dict(
        level=-25, tilt=-4.0, bumps=[(110, 1.5, 8), (1000, 1.5, 3)], am=(0.3, 0.3),
        babble=(1, -12), hum=(30, 8, -6), whine=None, music=None,
        events={"car": (0.45, 6), "horn": (0.015, 6), "walker": (0.05, -2), "squeal": (0.008, 0)},
    ),
    "tram": dict(
        level=-26, tilt=-5.0, bumps=[(140, 1.0, 8), (2200, 1.0, 4)], am=(0.25, 0.35),
        babble=(2, -9), hum=(100, 8, -4), whine=(500, 1400, -6), music=None,
        events={"squeal": (0.05, 5), "door_beep": (0.02, 5), "click": (0.1, -3)},
    ),
}


def _location_params(proto, rng):
    """Perturb a scene prototype for one recording location."""
    p = {
        "level": proto["level"] + rng.normal(0, 2.0),
        "tilt": proto["tilt"] + rng.normal(0, 0.6),
        "bumps": [
            (fc * 2 ** rng.normal(0, 0.25), w * np.exp(rng.normal(0, 0.15)), g + rng.normal(0, 2.0))
            for fc, w, g in proto["bumps"]
        ]
        # a few random "room" resonances/colourings of the location
        + [(float(np.exp(rng.uniform(np.log(80), np.log(8000)))), rng.uniform(0.3, 1.0), rng.normal(0, 2.0))
           for _ in range(3)],
        "am": (proto["am"][0] * np.exp(rng.normal(0, 0.3)), float(np.clip(proto["am"][1] * np.exp(rng.normal(0, 0.3)), 0, 0.8))),
        "babble": None,
        "hum": None,
        "whine": None,
        "music": None,
        "events": {},
    }
    if proto["babble"] is not None:
        talkers, lvl = proto["babble"]
        p["babble"] = (max(1, int(round(talkers * np.exp(rng.normal(0, 0.3))))), lvl + rng.normal(0, 3.0),
                       rng.uniform(350, 700))
    if proto["hum"] is not None:
        f0, nh, lvl = proto["hum"]
        p["hum"] = (f0 * np.exp(rng.normal(0, 0.15)), nh, lvl + rng.normal(0, 3.0),
                    rng.uniform(0.3, 1.0, size=nh))
    if proto["whine"] is not None:
        lo, hi, lvl = proto["whine"]
        s = np.exp(rng.normal(0, 0.15))
        p["whine"] = (lo * s, hi * s, lvl + rng.normal(0, 3.0))
    if proto["music"] is not None and rng.random() < 0.85:  # some malls are silent
        p["music"] = proto["music"] + rng.normal(0, 3.0)
    for name, (rate, lvl) in proto["events"].items():
        p["events"][name] = (rate * np.exp(rng.normal(0, 0.4)), lvl + rng.normal(0, 2.0))
    return p


def _music(rng, n):
    out = np.zeros(n)
    pos = 0
    key = rng.integers(48, 60)
    scale = np.array([0, 2, 4, 5, 7, 9, 11])
    while pos < n:
        length = int(rng.uniform(0.4, 1.0) * _FS)
        m = min(length, n - pos)
        t = np.arange(m) / _FS
        deg = rng.integers(0, 7)
        chord = [scale[(deg + k) % 7] + 12 * ((deg + k) // 7) for k in (0, 2, 4)]
        seg = np.zeros(m)
        for semi in chord:
            f = 440.0 * 2 ** ((key + 12 + semi - 69) / 12)
            seg += sum((0.5**h) * np.sin(2 * np.pi * f * (h + 1) * t) for h in range(3))
        seg *= np.exp(-t / 0.6) * np.minimum(1, t / 0.01)
        out[pos : pos + m] += seg
        pos += length
    return out / _rms(out)


def _location_spectra(p, freqs):
    """Magnitude responses (float32) of a location's background and babble."""
    bg = _db(_log_bumps(freqs, p["bumps"], p["tilt"])) * _butter_mag(freqs, 18, 19000, 2)
    babble = None
    if p["babble"] is not None:
        formant = p["babble"][2]
        babble = _db(_log_bumps(freqs, [(formant, 0.9, 12), (formant * 3.5, 0.6, 5)], -2.0))
        babble = (babble * _butter_mag(freqs, 120, 4000, 2)).astype(np.float32)
    return bg.astype(np.float32), babble


def _synthesize_scene(loc_params, mags, rng, n=RECORDING_SAMPLES):
    """One continuous scene recording (before any device), float64.

    ``mags`` are the location's spectra from :func:`_location_spectra`.
    """
    p = loc_params
    bg = _shaped_noise(rng, n, mags[0])
    # slowly varying curves are drawn on a coarse grid (every 40 samples)
    # and interpolated once
    nl = -(-n // _DECIM)
    fs_l = _FS / _DECIM
    rate, depth = p["am"]
    bg *= _up(np.clip(1 + depth * _smooth(rng, nl, rate * 4, fs_l), 0.05, None), n)
    sig = bg
    if p["babble"] is not None:
        talkers, lvl, _ = p["babble"]
        carrier = _shaped_noise(rng, n, mags[1])
        env = np.zeros(nl)
        for _ in range(talkers):
            syll = np.clip(_smooth(rng, nl, 9.0, fs_l), 0, None) ** 1.5
            phrase = np.clip(_smooth(rng, nl, 0.8, fs_l) + 0.5, 0, 1)
            env += syll * phrase * rng.uniform(0.5, 1.0)
        babble = carrier * _up(env, n)
        sig = sig + _db(lvl) * babble / _rms(babble)
    if p["hum"] is not None:
        f0, nh, lvl, gains = p["hum"]
        f0_t = f0 * (1 + 0.08 * _up(_smooth(rng, nl, 0.4, fs_l), n))
        z = np.exp(1j * (2 * np.pi / _FS) * np.cumsum(f0_t)).astype(np.complex64)
        acc = np.zeros(n, np.complex64)
        zh = z.copy()
        for h, g in enumerate(gains):
            if f0 * (h + 1) >= 15000:
                break
            acc += np.complex64(g / (h + 1) ** 0.7 * np.exp(1j * rng.uniform(0, 2 * np.pi))) * zh
            zh *= z
        hum = acc.imag.astype(np.float64) * _up(1 + 0.3 * _smooth(rng, nl, 1.0, fs_l), n)
        sig = sig + _db(lvl) * hum / _rms(hum)
    if p["whine"] is not None:
        lo, hi, lvl = p["whine"]
        speed = _up(1 / (1 + np.exp(-2.5 * _smooth(rng, nl, 0.3, fs_l))), n)
        phase = (2 * np.pi / _FS) * np.cumsum(lo + (hi - lo) * speed)
        whine = (np.sin(phase) + 0.4 * np.sin(2 * phase)) * speed
        sig = sig + _db(lvl) * whine / _rms(whine)
    if p["music"] is not None:
        sig = sig + _db(p["music"]) * _music(rng, n)
    ref = _rms(sig)
    for name, (rate, lvl) in p["events"].items():
        for _ in range(rng.poisson(rate * n / _FS)):
            ev = _EVENTS[name](rng) * ref * _db(lvl + rng.normal(0, 3.0))
            start = int(rng.integers(-ev.size // 2, n))
            a, b = max(start, 0), min(start + ev.size, n)
            if b > a:
                sig[a:b] += ev[a - start : b - start]
    return sig * (_db(p["level"] + rng.normal(0, 1.0)) / _rms(sig))


# ----- devices ---------------------------------------------------------------
def _stable_seed(text):
    return zlib.crc32(text.encode("utf-8"))


def _device_params(device, random_state):
    """Response (gain included) and noise-floor magnitude over the rfft bins
    of a 10-s recording, and saturation drive (0: none)."""
    rng = np.random.default_rng([random_state, 7, _stable_seed(device)])
    centres = np.geomspace(60, 16000, 9)
    if device == "a":
        sigma, hp, lp, order, gain, floor, drive, res = 0.5, 20.0, 20000.0, 2, 0.0, -90.0, 0.0, None
    elif device in ("b", "c"):
        sigma = 4.0
        hp, lp = rng.uniform(120, 260), rng.uniform(8000, 13000)
        order, gain, floor, drive = 2, rng.uniform(-4, 4), -72.0, rng.uniform(2.0, 4.0)
        res = (rng.uniform(1500, 5000), rng.uniform(0.2, 0.5), rng.uniform(4, 8))
    else:  # simulated devices: impulse-response-like colouring of device a
        sigma = 5.0
        hp, lp = rng.uniform(60, 400), rng.uniform(5000, 15000)
        order, gain, floor, drive = int(rng.integers(1, 4)), rng.uniform(-5, 5), -85.0, 0.0
        res = (rng.uniform(800, 6000), rng.uniform(0.2, 0.5), rng.uniform(4, 10))
    bumps = [(fc, 0.6, g) for fc, g in zip(centres, rng.normal(0, sigma, centres.size))]
    if res is not None:
        bumps.append(res)

    freqs = np.fft.rfftfreq(RECORDING_SAMPLES, 1.0 / _FS)
    response = _db(_log_bumps(freqs, bumps) + gain) * _butter_mag(freqs, hp, lp, order)
    # the noise floor's spectrum: gently pink, band-limited like the device
    floor_mag = _db(floor) * _butter_mag(freqs, 30, 12000, 1) / np.sqrt(np.maximum(freqs, 30) / 1000)
    # noise_spectrum has unit variance per bin; irfft divides by n
    floor_mag *= np.sqrt(RECORDING_SAMPLES)
    return response.astype(np.float32), floor_mag.astype(np.float32), float(drive)


def _record(scene_spec, device_params, rng, n=RECORDING_SAMPLES):
    """The scene (given by its rfft, complex64) as recorded by one device:
    frequency response and gain, additive noise floor, saturation."""
    response, floor_mag, drive = device_params
    y = sfft.irfft(scene_spec * response + _noise_spectrum(rng, n) * floor_mag, n)
    if drive > 0:
        y = np.tanh(drive * y) / drive
    peak = np.abs(y).max()
    if peak > 0.89:
        y *= 0.89 / peak
    return y.astype(np.float32)


# --------------------------------------------------------------------------
# Replica layout and writing
# --------------------------------------------------------------------------
def _plan(n_cities, n_locations, n_segments, devices, random_state):
    """List of segments: dict(scene, city, loc, seg, split, devices, keys)."""
    extra_train = [d for d in devices if d != "a" and d not in UNSEEN_DEVICES]
    extra_eval = [d for d in devices if d != "a"]
    plan = []
    loc_counter = 0
    seg_counter = 0
    for si, scene in enumerate(SCENES):
        rng = np.random.default_rng([random_state, 1, si])
        locations = []
        for city in CITIES[:n_cities]:
            for _ in range(n_locations):
                segs = [40000 + 10 * (seg_counter + k) for k in range(n_segments)]
                seg_counter += n_segments
                locations.append((city, 1000 + loc_counter, segs))
                loc_counter += 1
        n_loc = len(locations)
        n_eval = int(min(n_loc - 1, max(1, round(0.3 * n_loc))))
        eval_idx = set(rng.choice(n_loc, size=n_eval, replace=False).tolist())
        entries = {"train": [], "evaluate": []}
        for li, (city, loc, segs) in enumerate(locations):
            split = "evaluate" if li in eval_idx else "train"
            for seg in segs:
                entries[split].append(
                    dict(scene=scene, scene_index=si, city=city, loc=loc, seg=seg,
                         split=split, devices=["a"])
                )
        for split, extra in (("train", extra_train), ("evaluate", extra_eval)):
            segs = entries[split]
            offset = int(rng.integers(len(segs)))
            for j, d in enumerate(extra):
                segs[(offset + j) % len(segs)]["devices"].append(d)
            for e in segs:
                e["devices"] = [d for d in devices if d in e["devices"]]
            plan.extend(segs)
    return plan


def _clip_name(e, k, device):
    return f"audio/{e['scene']}-{e['city']}-{e['loc']}-{e['seg']}-{k}-{device}.wav"


def _write_wav(path, x):
    """Write a 44.1 kHz mono PCM_24 wav (encoded in memory: soundfile's own
    close() fsyncs every file, which is slow for thousands of clips)."""
    buf = io.BytesIO()
    sf.write(buf, x, SAMPLE_RATE, subtype="PCM_24", format="WAV")
    with open(path, "wb") as fh:
        fh.write(buf.getvalue())


def _write_tsv(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def make_tau22(
    root,
    *,
    n_cities=3,
    n_locations=2,
    n_segments=2,
    devices=DEVICES,
    random_state=0,
    overwrite=False,
):
    """Write a miniature synthetic TAU Urban Acoustic Scenes 2022 Mobile folder.

    The folder has exactly the layout and formats of the real development set
    (see :func:`load_tau22`): tab-separated ``meta.csv`` and
    ``evaluation_setup/fold1_{train,evaluate,test}.csv`` (the test file lists
    the evaluate clips, filename column only) and ``audio/*.wav`` clips of
    1 s, 44.1 kHz, mono, 24-bit PCM, named
    ``<scene>-<city>-<location id>-<segment id>-<snippet>-<device>.wav``.

    **Layout.** For each of the 10 scenes, each of the first ``n_cities``
    cities of :data:`CITIES` has ``n_locations`` recording locations
    (location ids 1000, 1001, ... unique over the whole replica) and each
    location has ``n_segments`` 10-s recordings (segment ids 40000, 40010,
    ...), each cut into snippets 0..9. Per scene, about 30 % of the
    ``n_cities * n_locations`` locations (at least one; at least one stays in
    train) form the evaluate split, the rest the train split: no location is
    in both. Device ``a`` records every segment. In the train split each of
    b, c, s1, s2, s3 (those in ``devices``) records one segment per scene,
    in parallel with ``a``; in the evaluate split each of b, c, s1..s6 (those
    in ``devices``) records one segment per scene, so s4, s5 and s6 only
    appear there. With all devices a scene has
    ``S = n_cities * n_locations * n_segments`` segments and ``10 * (S + 13)``
    clips: the defaults give 2,500 clips (250 recordings of 10 s, about
    330 MB, written in about 15 s on one core); ``n_cities=2,
    n_locations=2, n_segments=1`` gives 1,700 clips.

    **Audio.** Each scene has a characteristic background spectrum (coloured
    noise with a scene-specific tilt and resonances), slow amplitude
    modulation, and scene-specific components with their own rates and
    levels: speech-like babble (airport, shopping mall, station, squares),
    engine harmonics and motor whine (bus, tram, metro, traffic), music
    (shopping mall), footsteps, clicks, announcement chimes, door beeps,
    passing cars, horns, bird songs, wind gusts, brake squeals and passing
    trains. Pairs such as metro/metro_station, public_square/
    street_pedestrian, bus/tram and airport/shopping_mall are deliberately
    similar. Every location perturbs its scene's parameters at random
    (level, spectrum, rates), so generalising to new locations is harder
    than to new segments. Each segment is one continuous 441,000-sample
    signal: its snippets concatenated in order give it back. A device
    applies its own smooth frequency response (random equaliser, high- and
    low-pass corners, a resonance), gain and noise floor (b and c also
    slight saturation); device ``a`` is nearly flat. Parallel recordings of
    a segment share the same scene signal. Everything is drawn from
    ``random_state``: the same value gives byte-identical files.

    Parameters
    ----------
    root : str or path-like
        Folder to write; created if missing.
    n_cities : int, default=3
        Cities per scene (1..12).
    n_locations : int, default=2
        Locations per city and scene; ``n_cities * n_locations`` must be at
        least 2 so that train and evaluate both get a location.
    n_segments : int, default=2
        10-s recordings per location.
    devices : sequence of str, default=DEVICES
        Devices to include, a subset of :data:`DEVICES` containing ``"a"``.
    random_state : int, default=0
        Seed of everything (non-negative).
    overwrite : bool, default=False
        If False and ``root`` is a non-empty folder that is not a complete
        replica made with the same parameters, raise ``FileExistsError``; a
        complete replica with the same parameters (recorded in
        ``root/skasc_replica.json``) is returned as is, without writing. If
        True, ``meta.csv``, ``evaluation_setup/``, ``audio/`` and
        ``skasc_replica.json`` in ``root`` are deleted and written anew
        (other files in ``root`` are left alone).

    Returns
    -------
    root : pathlib.Path
        The absolute path of the replica.

    Raises
    ------
    ValueError
        For invalid parameters.
    FileExistsError
        See ``overwrite``.

    See Also
    --------
    load_tau22 : read the replica (or the real set).

    Examples
    --------
    >>> import tempfile
    >>> from skasc.datasets import make_tau22, load_tau22
    >>> root = make_tau22(tempfile.mkdtemp(), n_cities=2, n_locations=1,
    ...                   n_segments=1, devices=("a", "s4"))
    >>> sorted(p.name for p in root.iterdir())
    ['audio', 'evaluation_setup', 'meta.csv', 'skasc_replica.json']
    >>> data = load_tau22(root, "all")
    >>> len(data.X), sorted(set(data.device.tolist()))
    (300, ['a', 's4'])
    """
    params = _check_replica_params(n_cities, n_locations, n_segments, devices, random_state)
    root = pathlib.Path(os.fspath(root)).expanduser().resolve()
    marker = root / _MARKER
    if root.exists() and not root.is_dir():
        raise FileExistsError(f"{str(root)!r} exists and is not a folder")
    if root.is_dir() and any(root.iterdir()):
        info = None
        if marker.is_file():
            try:
                info = json.loads(marker.read_text())
            except (OSError, ValueError):
                info = None
        if not overwrite:
            if info is None:
                raise FileExistsError(
                    f"{str(root)!r} is not empty and is not a replica written by make_tau22"
                    f" (no valid {_MARKER}); choose an empty folder or pass overwrite=True"
                )
            if info.get("params") != params or info.get("format") != _REPLICA_FORMAT:
                raise FileExistsError(
                    f"{str(root)!r} holds a replica made with other parameters"
                    f" ({info.get('params')}); pass overwrite=True to replace it"
                )
            if _replica_complete(root, info):
                return root
            raise FileExistsError(
                f"{str(root)!r} holds an incomplete replica; pass overwrite=True to rewrite it"
            )
        for name in (_MARKER, "meta.csv"):
            if (root / name).is_file():
                (root / name).unlink()
        for name in ("audio", "evaluation_setup"):
            if (root / name).is_dir():
                shutil.rmtree(root / name)
    _write_replica(root, params)
    return root


def _check_replica_params(n_cities, n_locations, n_segments, devices, random_state):
    for name, v in (("n_cities", n_cities), ("n_locations", n_locations), ("n_segments", n_segments)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer; got {v!r}")
    if n_cities > len(CITIES):
        raise ValueError(f"n_cities must be at most {len(CITIES)}; got {n_cities}")
    if n_cities * n_locations < 2:
        raise ValueError(
            "n_cities * n_locations must be at least 2 (one location for train,"
            f" one for evaluate); got {n_cities} * {n_locations}"
        )
    if isinstance(devices, str):
        raise ValueError(f"devices must be a sequence of device names, not the string {devices!r}")
    devices = list(devices)
    unknown = [d for d in devices if d not in DEVICES]
    if unknown or len(set(devices)) != len(devices) or "a" not in devices:
        raise ValueError(
            f"devices must be distinct names from {list(DEVICES)} including 'a'; got {devices!r}"
        )
    if isinstance(random_state, bool) or not isinstance(random_state, (int, np.integer)) or random_state < 0:
        raise ValueError(f"random_state must be a non-negative integer; got {random_state!r}")
    return {
        "n_cities": int(n_cities),
        "n_locations": int(n_locations),
        "n_segments": int(n_segments),
        "devices": [d for d in DEVICES if d in devices],
        "random_state": int(random_state),
    }


def _replica_complete(root, info):
    try:
        n_files = sum(1 for e in os.scandir(root / "audio") if e.name.endswith(".wav"))
    except OSError:
        return False
    needed = ["meta.csv"] + [f"evaluation_setup/fold1_{s}.csv" for s in ("train", "evaluate", "test")]
    return n_files == info.get("n_clips") and all((root / p).is_file() for p in needed)


def _write_replica(root, params):
    rs = params["random_state"]
    plan = _plan(params["n_cities"], params["n_locations"], params["n_segments"], params["devices"], rs)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    (root / "evaluation_setup").mkdir(exist_ok=True)
    dev_params = {d: _device_params(d, rs) for d in params["devices"]}
    freqs = np.fft.rfftfreq(RECORDING_SAMPLES, 1.0 / _FS)
    loc_cache = {}
    rows = []
    for e in plan:
        key = (e["scene_index"], e["loc"])
        if key not in loc_cache:
            loc_rng = np.random.default_rng([rs, 3, e["scene_index"], e["loc"]])
            p = _location_params(_SCENE_PROTOTYPES[e["scene"]], loc_rng)
            loc_cache = {key: (p, _location_spectra(p, freqs))}
        seg_rng = np.random.default_rng([rs, 4, e["scene_index"], e["loc"], e["seg"]])
        scene = _synthesize_scene(*loc_cache[key], seg_rng)
        spec = sfft.rfft(scene.astype(np.float32))
        for d in e["devices"]:
            rec_rng = np.random.default_rng([rs, 5, e["seg"], _stable_seed(d)])
            y = _record(spec, dev_params[d], rec_rng)
            for k in range(SNIPPETS_PER_RECORDING):
                name = _clip_name(e, k, d)
                _write_wav(root / name, y[k * CLIP_SAMPLES : (k + 1) * CLIP_SAMPLES])
                rows.append((name, e["scene"], f"{e['city']}-{e['loc']}", d, e["split"]))
    rows.sort()
    _write_tsv(root / "meta.csv", META_COLUMNS, [r[:4] for r in rows])
    setup = root / "evaluation_setup"
    _write_tsv(setup / "fold1_train.csv", SETUP_COLUMNS["train"], [r[:2] for r in rows if r[4] == "train"])
    _write_tsv(setup / "fold1_evaluate.csv", SETUP_COLUMNS["evaluate"],
               [r[:2] for r in rows if r[4] == "evaluate"])
    _write_tsv(setup / "fold1_test.csv", SETUP_COLUMNS["test"], [r[:1] for r in rows if r[4] == "evaluate"])
    info = {
        "generator": "skasc.datasets.make_tau22",
        "format": _REPLICA_FORMAT,
        "params": params,
        "n_clips": len(rows),
        "n_recordings": len(rows) // SNIPPETS_PER_RECORDING,
    }
    (root / _MARKER).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
