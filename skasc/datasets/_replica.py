"""Writing synthetic TAU22 replicas with exactly the real layout.

:func:`make_tau22` writes a folder with the same files, names, CSV formats and
audio format (44.1 kHz mono PCM_24) as the real development set, whose scenes
and devices differ audibly (see :mod:`skasc.datasets._synthesis`): a
miniature for tests, examples and quick experiments, or the real set's size
and proportions at any scale (see :mod:`skasc.datasets._layout`), written in
parallel and resumably.
"""

import csv
import functools
import io
import json
import os
import pathlib
import re
import shutil

import numpy as np
import scipy.fft as sfft
import soundfile as sf
from joblib import Parallel, delayed, effective_n_jobs

from .._files import write_atomically
from .._rows import parse_clip_name
from ._layout import miniature_plan, plan_counts, scaled_plan
from ._synthesis import (
    SCENE_PROTOTYPES,
    device_impulse_response,
    device_params,
    location_params,
    location_spectra,
    record,
    stable_seed,
    synthesize_scene,
)
from ._tau22 import (
    CITIES,
    CLIP_SAMPLES,
    DEVICES,
    FRACTIONS,
    META_COLUMNS,
    REAL_DEVICES,
    RECORDING_SAMPLES,
    SAMPLE_RATE,
    SCENES,
    SEEN_DEVICES,
    SETUP_COLUMNS,
    SNIPPETS_PER_RECORDING,
    read_tsv,
)

__all__ = ["make_tau22"]

_MARKER = "skasc_replica.json"
#: written first, removed last: the folder is a replica being written (a
#: re-run with the same parameters resumes it)
_PARTIAL = "skasc_replica.partial.json"
# 2: impulse_responses/ and split_setup/ added; the audio and csv files are
# those of format 1, which make_tau22 completes in place
_REPLICA_FORMAT = 2
_IR_FOLDER = "impulse_responses"
_SPLIT_FOLDER = "split_setup"
#: Devices whose impulse responses a replica hands out: the devices of the
#: train split other than the reference a, never the unseen s4-s6.
_IR_DEVICES = tuple(d for d in REAL_DEVICES + SEEN_DEVICES if d != "a")
#: write_atomically's temporary files: ".<name>.<pid>.tmp"
_TEMPORARY = re.compile(r"\..+\.(wav|csv|json)\.[0-9]+\.tmp")
#: the miniature's layout when scale is None and n_cities, ... are not given
_MINIATURE = {"n_cities": 3, "n_locations": 2, "n_segments": 2}

# --------------------------------------------------------------------------
# Replica writing
# --------------------------------------------------------------------------
def _clip_name(e, k, device):
    return f"audio/{e['scene']}-{e['city']}-{e['loc']}-{e['seg']}-{k}-{device}.wav"


def _encode_wav(x):
    """A 44.1 kHz mono PCM_24 wav, encoded in memory (then written in one go)."""
    buf = io.BytesIO()
    sf.write(buf, x, SAMPLE_RATE, subtype="PCM_24", format="WAV")
    return buf.getvalue()


@functools.cache
def _clip_bytes():
    """The size of every clip file (a fixed header and 3 bytes a sample)."""
    return len(_encode_wav(np.zeros(CLIP_SAMPLES, np.float32)))


def _clip_done(path):
    """Is the clip there, whole?"""
    try:
        return os.stat(path).st_size == _clip_bytes()
    except FileNotFoundError:
        return False


def _write_wav(path, x):
    """Write a clip under a temporary name, renamed when complete (and on
    disk): a clip under its own name is whole."""
    data = _encode_wav(x)
    write_atomically(path, lambda tmp: tmp.write_bytes(data))


def _write_tsv(path, header, rows):
    def write(tmp):
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, delimiter="\t", lineterminator="\n")
            w.writerow(header)
            w.writerows(rows)

    write_atomically(path, write)


@functools.lru_cache(maxsize=None)
def _device(device, random_state):
    return device_params(device, random_state)


@functools.cache
def _freqs():
    return np.fft.rfftfreq(RECORDING_SAMPLES, 1.0 / SAMPLE_RATE)


def _write_location(root, rs, segments):
    """Write the clips of one location's segments that are not there yet
    (run in a worker); return how many clips the segments have.

    Each recording depends only on ``rs`` and its own identity (scene,
    location, segment, device): whatever is written when, and by which
    worker, the files are the same.
    """
    spectra = None
    for e in segments:
        todo = {}
        for d, _ in e["recordings"]:
            missing = [k for k in range(SNIPPETS_PER_RECORDING) if not _clip_done(root / _clip_name(e, k, d))]
            if missing:
                todo[d] = missing
        if not todo:
            continue
        if spectra is None:
            loc_rng = np.random.default_rng([rs, 3, e["scene_index"], e["loc"]])
            p = location_params(SCENE_PROTOTYPES[e["scene"]], loc_rng)
            spectra = (p, location_spectra(p, _freqs()))
        seg_rng = np.random.default_rng([rs, 4, e["scene_index"], e["loc"], e["seg"]])
        spec = sfft.rfft(synthesize_scene(*spectra, seg_rng).astype(np.float32))
        for d, snippets in todo.items():
            rec_rng = np.random.default_rng([rs, 5, e["seg"], stable_seed(d)])
            y = record(spec, _device(d, rs), rec_rng)
            for k in snippets:
                _write_wav(root / _clip_name(e, k, d), y[k * CLIP_SAMPLES : (k + 1) * CLIP_SAMPLES])
    return SNIPPETS_PER_RECORDING * sum(len(e["recordings"]) for e in segments)


def _write_audio(root, plan, rs, n_jobs, verbose):
    """Write the clips missing from ``root/audio``, one location per task."""
    locations = {}
    for e in plan:
        locations.setdefault((e["scene_index"], e["loc"]), []).append(e)
    # the largest first, so that the workers finish together
    tasks = sorted(locations.values(), key=lambda t: -sum(len(e["recordings"]) for e in t))
    bar = None
    if verbose:
        from tqdm.auto import tqdm

        bar = tqdm(total=SNIPPETS_PER_RECORDING * sum(len(e["recordings"]) for e in plan),
                   desc="make_tau22", unit="clip")
    try:
        if effective_n_jobs(n_jobs) == 1:
            done = (_write_location(root, rs, t) for t in tasks)
        else:
            done = Parallel(n_jobs=n_jobs, return_as="generator")(
                delayed(_write_location)(root, rs, t) for t in tasks)
        for n in done:
            if bar is not None:
                bar.update(n)
    finally:
        if bar is not None:
            bar.close()


def _remove_temporaries(root):
    """Remove what an interrupted run left under temporary names."""
    for folder in (root, root / "audio", root / "evaluation_setup", root / _SPLIT_FOLDER, root / _IR_FOLDER):
        if folder.is_dir():
            for entry in os.scandir(folder):
                if _TEMPORARY.fullmatch(entry.name) and entry.is_file():
                    os.unlink(entry.path)


def make_tau22(
    root,
    *,
    scale=None,
    n_cities=None,
    n_locations=None,
    n_segments=None,
    devices=DEVICES,
    random_state=0,
    n_jobs=None,
    verbose=0,
    overwrite=False,
):
    """Write a synthetic TAU Urban Acoustic Scenes 2022 Mobile folder: a
    miniature, or the real development set's size and proportions at any scale.

    The folder has exactly the layout and formats of the real development set
    (see :func:`load_tau22`): tab-separated ``meta.csv`` and
    ``evaluation_setup/fold1_{train,evaluate,test}.csv`` (the test file lists
    the evaluate clips, filename column only) and ``audio/*.wav`` clips of
    1 s, 44.1 kHz, mono, 24-bit PCM, named
    ``<scene>-<city>-<location id>-<segment id>-<snippet>-<device>.wav``.
    Two folders are added for the DCASE 2024/2025 recipes:
    ``split_setup/split{5,10,25,50,100}.csv``, the data-efficient subsets of
    the train split (read by ``load_tau22(root, "train", fraction=...)``),
    and ``impulse_responses/<device>.wav``, the seen devices' impulse
    responses (for :class:`~skasc.DeviceImpulseResponse`).

    **Miniature layout** (``scale=None``). For each of the 10 scenes, each
    of the first ``n_cities`` cities of :data:`CITIES` has ``n_locations``
    recording locations (location ids 1000, 1001, ... unique over the whole
    replica) and each location has ``n_segments`` 10-s recordings (segment
    ids 40000, 40010, ...), each cut into snippets 0..9. Per scene, about
    30 % of the ``n_cities * n_locations`` locations (at least one; at least
    one stays in train) form the evaluate split, the rest the train split:
    no location is in both. Device ``a`` records every segment. In the train
    split each of b, c, s1, s2, s3 (those in ``devices``) records one segment
    per scene, in parallel with ``a``; in the evaluate split each of b, c,
    s1..s6 (those in ``devices``) records one segment per scene, so s4, s5
    and s6 only appear there. With all devices a scene has
    ``S = n_cities * n_locations * n_segments`` segments and ``10 * (S + 13)``
    clips: the defaults give 2,500 clips (250 recordings of 10 s, about
    330 MB); ``n_cities=2, n_locations=2, n_segments=1`` gives 1,700 clips.

    **Real layout** (``scale``). The development set's counts and
    proportions times ``scale``. At ``scale=1``, in 10-s recordings of ten
    clips each, train / evaluate / neither split (listed in ``meta.csv``
    only, as in the real set):

    ==================  =======================  ===============================
    device              this layout              real set
    ==================  =======================  ===============================
    a                   10,215 / 330 / 3,855     the same
    b                   749 / 329 / 0            749 / 330 / 1 (2020)
    c                   748 / 329 / 0            748 / 330 / 2 (2020)
    s1, s2, s3 (each)   750 / 330 / 0            the same
    s4, s5, s6 (each)   0 / 330 / 750            the same
    all                 13,962 / 2,968 / 6,105   the same
    ==================  =======================  ===============================

    Exact: 230,350 clips (23,035 recordings), fold1_train 139,620 and
    fold1_evaluate 29,680 clips, device a's 14,400 recordings (40 h) and
    s1-s6's 1,080 (3 h) each, split by split, as in the DCASE 2020 Task 1A
    table of the 2020 set the 2022 set was cut from. Assumed: the 2022 set
    lacks 5 of the 2020 set's 23,040 recordings (2 in evaluate, 3 in
    neither split), which ones is not documented; this layout takes them
    from the real devices b and c (1,078 and 1,077 recordings instead of
    1,080), whose counts already show lost recordings. Every scene has 1,440
    a-segments; the cities are the development set's 10 (the first 10 of
    :data:`CITIES`; amsterdam and madrid are only in the evaluation set);
    a location holds about 36 segments (6 minutes; real ones 5-6), 28 train
    and 12 test locations per scene, 400 in all (the real count is not
    reproduced). At train locations a records every segment (train), b, c
    and s1-s3 record random ones in parallel (train), s4-s6 too (neither
    split: they are the unseen devices). At test locations a records every
    segment, a random 33 per scene in the evaluate split and the rest in
    neither; every other device records a's evaluate segments (b and c one
    fewer). No location is in two splits. A fraction rounds the total, each
    split's total and each device's share of it by largest remainders,
    deals them round the scenes and keeps locations of about 36 segments:
    ``scale=0.1`` gives 23,040 clips (train 13,960, evaluate 2,970),
    ``0.01`` 2,300 (1,390 and 300). Minimums keep it whole: every scene has
    a train and a test location and is in both splits, every device is in
    the splits it has; a device with at least 10 recordings in a split has
    some in every scene (in evaluate from ``scale=0.03``); below that the
    other devices' evaluate recordings are spread over the scenes, where
    needed on a's segments of neither split. Below ``scale=0.005`` the
    minimums dominate (0.002: 500 clips, 270 train, 100 evaluate).

    **Writing.** The audio is synthesized and written recording by
    recording, location by location by ``n_jobs`` joblib workers (the memory
    is that of a few recordings per worker), each clip under a temporary
    name renamed when complete, the csv files last (atomically). A clip
    depends only on ``random_state`` and its name: ``n_jobs`` changes no
    byte. A run that was interrupted is resumed by calling again with the
    same parameters (``skasc_replica.partial.json`` marks the folder): the
    clips already written are kept, the others written. The full size is
    230,350 files of 132,344 bytes (30.5 GB).

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

    **Subsets.** ``split_setup/split<f>.csv`` (columns filename,
    scene_label, like the DCASE 2024 Task 1 files) lists about ``f`` % of
    the train split, built by the properties of the DCASE 2024 subsets:
    *nested* (each subset contains the smaller ones), *whole recordings*
    (the ten 1-s snippets of a 10-s recording are in or out together) and
    *every scene present*, with the scenes' shares and, within a scene, the
    devices' shares kept.  The rule: within each scene, the recordings of
    each device are put in a random order (from ``random_state``) and
    recording ``k`` of ``n`` gets the key ``(k + u) / n``, ``u`` uniform in
    [0, 1); the scene's recordings sorted by key form one list, and subset
    ``f`` takes its first ``max(1, round(f / 100 * n_scene))`` recordings.
    Nestedness follows from every subset being a prefix of one list; the
    keys interleave the devices in proportion.  ``split100.csv`` is the
    whole train split.  On a small replica the subsets cannot be
    exactly ``f`` %: one recording per scene is 10 clips.

    **Impulse responses.** ``impulse_responses/<device>.wav`` holds, for
    each of b, c, s1, s2, s3 in ``devices``, a 4,096-tap minimum-phase FIR
    filter (float32 WAV at 44.1 kHz) with the device's simulated frequency
    response, gain included: the cepstral construction of a minimum-phase
    filter from the response's magnitude, within 0.01 dB of it from 100 Hz
    to 16 kHz.  Noise floor and saturation are not part of it.  The unseen
    devices s4, s5 and s6 get none, ever: their responses are the test
    condition of the device-generalisation task, and handing them out
    would leak it; ``a``, the nearly flat reference, gets none either.

    Parameters
    ----------
    root : str or path-like
        Folder to write; created if missing.
    scale : float or None, default=None
        None: the miniature layout set by ``n_cities``, ``n_locations`` and
        ``n_segments``. A number in (0, 1]: the real development set's
        layout at that fraction of its size (1.0: all 230,350 clips; see
        above); ``n_cities``, ``n_locations`` and ``n_segments`` must then
        be left None.
    n_cities : int or None, default=None
        Miniature: cities per scene (1..12); None: 3.
    n_locations : int or None, default=None
        Miniature: locations per city and scene; None: 2.
        ``n_cities * n_locations`` must be at least 2 so that train and
        evaluate both get a location.
    n_segments : int or None, default=None
        Miniature: 10-s recordings per location; None: 2.
    devices : sequence of str, default=DEVICES
        Devices to include, a subset of :data:`DEVICES` containing ``"a"``.
    random_state : int, default=0
        Seed of everything (non-negative).
    n_jobs : int or None, default=None
        Worker processes writing the audio (joblib: -1 for all cores; None
        for 1 outside a :func:`joblib.parallel_config` context). The files
        are the same whatever it is, and it is not one of the parameters
        recorded in the folder.
    verbose : int, default=0
        If positive, a progress bar over the clips (tqdm).
    overwrite : bool, default=False
        If False and ``root`` is a non-empty folder that is not a complete
        replica made with the same parameters, raise ``FileExistsError``; a
        complete replica with the same parameters (recorded in
        ``root/skasc_replica.json``) is returned as is, without writing.  A
        replica being written with the same parameters (an interrupted run:
        ``root/skasc_replica.partial.json``) is resumed.  A
        complete replica written by an older skasc (format 1: without
        ``split_setup/`` and ``impulse_responses/``) with the same parameters
        is completed in place: those two folders are added, every other file
        stays as it is.  If True, ``meta.csv``, ``evaluation_setup/``,
        ``audio/``, ``split_setup/``, ``impulse_responses/``,
        ``skasc_replica.json`` and ``skasc_replica.partial.json`` in ``root``
        are deleted and written anew (other files in ``root`` are left alone).

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
    OSError
        When the disk is full, naming the file being written (a later call
        with the same parameters resumes).

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
    ['audio', 'evaluation_setup', 'meta.csv', 'skasc_replica.json', 'split_setup']
    >>> data = load_tau22(root, "all")
    >>> len(data.X), sorted(set(data.device.tolist()))
    (300, ['a', 's4'])
    >>> len(load_tau22(root, "train", fraction=25).X)  # one recording per scene
    100

    The real layout, at a tiny fraction (its minimums: every scene in both
    splits), then at full size on 8 cores with a progress bar:

    >>> small = make_tau22(tempfile.mkdtemp(), scale=0.001, devices=("a",))
    >>> [len(load_tau22(small, s).X) for s in ("train", "evaluate", "all")]
    [100, 100, 300]
    >>> make_tau22("tau22-full", scale=1.0, n_jobs=8, verbose=1)  # doctest: +SKIP
    """
    params = _check_replica_params(scale, n_cities, n_locations, n_segments, devices, random_state)
    if n_jobs is not None and (isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer))
                               or n_jobs == 0):
        raise ValueError(f"n_jobs must be None or a non-zero integer (-1: all cores); got {n_jobs!r}")
    if not isinstance(verbose, (int, np.integer)) or verbose < 0:
        raise ValueError(f"verbose must be a non-negative integer; got {verbose!r}")
    root = pathlib.Path(os.fspath(root)).expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise FileExistsError(f"{str(root)!r} exists and is not a folder")
    if root.is_dir() and any(root.iterdir()):
        info, partial = _read_json(root / _MARKER), _read_json(root / _PARTIAL)
        if not overwrite:
            if info is None and partial is not None:
                if partial.get("params") != params:
                    raise FileExistsError(
                        f"{str(root)!r} holds an unfinished replica made with other parameters"
                        f" ({partial.get('params')}); pass overwrite=True to replace it"
                    )
                # an interrupted run with the same parameters: resumed below
            elif info is None:
                raise FileExistsError(
                    f"{str(root)!r} is not empty and is not a replica written by make_tau22"
                    f" (no valid {_MARKER}); choose an empty folder or pass overwrite=True"
                )
            elif info.get("params") != params:
                raise FileExistsError(
                    f"{str(root)!r} holds a replica made with other parameters"
                    f" ({info.get('params')}); pass overwrite=True to replace it"
                )
            elif info.get("format") not in (1, _REPLICA_FORMAT):
                raise FileExistsError(
                    f"{str(root)!r} holds a replica of format {info.get('format')!r}, which this"
                    f" skasc does not know (it writes format {_REPLICA_FORMAT}); pass"
                    " overwrite=True to rewrite it"
                )
            elif _replica_complete(root, info):
                if info["format"] != _REPLICA_FORMAT or not _extras_complete(root, info):
                    # an older replica: its audio and csv files stay as they are
                    info.update(_write_extras(root, params), format=_REPLICA_FORMAT)
                    _write_marker(root, info)
                return root
            else:
                raise FileExistsError(
                    f"{str(root)!r} holds an incomplete replica; pass overwrite=True to rewrite it"
                )
        else:
            for name in (_MARKER, _PARTIAL, "meta.csv"):
                if (root / name).is_file():
                    (root / name).unlink()
            for name in ("audio", "evaluation_setup", _SPLIT_FOLDER, _IR_FOLDER):
                if (root / name).is_dir():
                    shutil.rmtree(root / name)
    _write_replica(root, params, n_jobs, verbose)
    return root


def _check_replica_params(scale, n_cities, n_locations, n_segments, devices, random_state):
    layout = {"n_cities": n_cities, "n_locations": n_locations, "n_segments": n_segments}
    if scale is None:
        layout = {k: _MINIATURE[k] if v is None else v for k, v in layout.items()}
        for name, v in layout.items():
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive integer; got {v!r}")
        if layout["n_cities"] > len(CITIES):
            raise ValueError(f"n_cities must be at most {len(CITIES)}; got {layout['n_cities']}")
        if layout["n_cities"] * layout["n_locations"] < 2:
            raise ValueError(
                "n_cities * n_locations must be at least 2 (one location for train,"
                f" one for evaluate); got {layout['n_cities']} * {layout['n_locations']}"
            )
        params = {k: int(v) for k, v in layout.items()}
    else:
        given = [k for k, v in layout.items() if v is not None]
        if given:
            raise ValueError(
                f"{', '.join(given)} set the miniature layout, but scale={scale!r} asks for the"
                " real set's layout: leave n_cities, n_locations and n_segments None"
            )
        if isinstance(scale, bool) or not isinstance(scale, (int, float, np.integer, np.floating)) \
                or not 0 < scale <= 1:
            raise ValueError(
                f"scale must be None or a number in (0, 1] (1.0: the real set's size); got {scale!r}"
            )
        params = {"scale": float(scale)}
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
    params.update(devices=[d for d in DEVICES if d in devices], random_state=int(random_state))
    return params


def _replica_complete(root, info):
    try:
        n_files = sum(1 for e in os.scandir(root / "audio") if e.name.endswith(".wav"))
    except OSError:
        return False
    needed = ["meta.csv"] + [f"evaluation_setup/fold1_{s}.csv" for s in ("train", "evaluate", "test")]
    return n_files == info.get("n_clips") and all((root / p).is_file() for p in needed)


def _extras_complete(root, info):
    """Are the subset files and impulse responses of format 2 all there?"""
    needed = [f"{_SPLIT_FOLDER}/split{f}.csv" for f in FRACTIONS]
    needed += [f"{_IR_FOLDER}/{d}.wav" for d in info.get("impulse_responses", [])]
    return all((root / p).is_file() for p in needed)


def _subset_order(train_files, random_state):
    """The train recordings in the order the subsets take them, per scene.

    Returns {scene: [recording id, ...]} and {recording id: [file, ...]}.
    See make_tau22's docstring for the rule.
    """
    files_of, scene_of, device_of = {}, {}, {}
    for fn in train_files:
        f = parse_clip_name(fn)
        files_of.setdefault(f["recording"], []).append(fn)
        scene_of[f["recording"]], device_of[f["recording"]] = f["scene"], f["device"]
    order = {}
    for si, scene in enumerate(SCENES):
        rng = np.random.default_rng([random_state, 11, si])
        keys = {}
        for device in DEVICES:
            group = sorted(r for r in files_of if scene_of[r] == scene and device_of[r] == device)
            ranks = rng.permutation(len(group))
            offsets = rng.random(len(group))
            for r, k, u in zip(group, ranks, offsets):
                keys[r] = (k + u) / len(group)
        order[scene] = sorted(keys, key=lambda r: (keys[r], r))
    return order, files_of


def _subsets(train_files, random_state):
    """{fraction: set of the files of that subset} (see make_tau22's docstring)."""
    order, files_of = _subset_order(train_files, random_state)
    subsets = {}
    for fraction in FRACTIONS:
        chosen = set()
        for recs in order.values():
            if recs:
                n = len(recs) if fraction == 100 else max(1, round(fraction / 100 * len(recs)))
                for r in recs[:n]:
                    chosen.update(files_of[r])
        subsets[fraction] = chosen
    return subsets


def _write_extras(root, params):
    """Write split_setup/ and impulse_responses/ (the additions of format 2),
    reading the train split from the csv files already written."""
    train = read_tsv(root / "evaluation_setup" / "fold1_train.csv", SETUP_COLUMNS["train"])
    (root / _SPLIT_FOLDER).mkdir(exist_ok=True)
    sizes = {}
    for fraction, chosen in _subsets(train["filename"], params["random_state"]).items():
        rows = [(fn, lab) for fn, lab in zip(train["filename"], train["scene_label"]) if fn in chosen]
        _write_tsv(root / _SPLIT_FOLDER / f"split{fraction}.csv", SETUP_COLUMNS["train"], rows)
        sizes[str(fraction)] = len(rows)
    (root / _IR_FOLDER).mkdir(exist_ok=True)
    written = []
    for device in params["devices"]:
        if device not in _IR_DEVICES:  # never the unseen s4-s6 (nor the reference a)
            continue
        h = device_impulse_response(device, params["random_state"])
        buf = io.BytesIO()
        # float samples: the response's gain may exceed full scale
        sf.write(buf, h, SAMPLE_RATE, subtype="FLOAT", format="WAV")
        data = bytearray(buf.getvalue())
        peak = data.find(b"PEAK", 12)
        if peak >= 0:  # libsndfile stamps its PEAK chunk with the time: files would differ
            data[peak + 12:peak + 16] = bytes(4)
        write_atomically(root / _IR_FOLDER / f"{device}.wav", lambda tmp: tmp.write_bytes(bytes(data)))
        written.append(device)
    if not written:
        (root / _IR_FOLDER).rmdir()
    return {"impulse_responses": written, "subsets": sizes}


def _read_json(path):
    """The content of a marker, or None if it is missing or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_marker(root, info, name=_MARKER):
    text = json.dumps(info, indent=2, sort_keys=True) + "\n"
    write_atomically(root / name, lambda tmp: tmp.write_text(text))


def _plan(params):
    if params.get("scale") is None:
        return miniature_plan(params["n_cities"], params["n_locations"], params["n_segments"],
                              params["devices"], params["random_state"])
    return scaled_plan(params["scale"], params["devices"], params["random_state"])


def _write_replica(root, params, n_jobs=None, verbose=0):
    plan = _plan(params)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    (root / "evaluation_setup").mkdir(exist_ok=True)
    # first: a re-run with the same parameters knows the folder and resumes
    _write_marker(root, {"generator": "skasc.datasets.make_tau22", "params": params}, _PARTIAL)
    _remove_temporaries(root)
    _write_audio(root, plan, params["random_state"], n_jobs, verbose)
    rows = sorted(
        (_clip_name(e, k, d), e["scene"], f"{e['city']}-{e['loc']}", d, split or "")
        for e in plan for d, split in e["recordings"] for k in range(SNIPPETS_PER_RECORDING)
    )
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
        "clips": {split: sum(n.values()) for split, n in plan_counts(plan).items()},
    }
    info.update(_write_extras(root, params))
    _write_marker(root, info)
    (root / _PARTIAL).unlink()
