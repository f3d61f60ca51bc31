"""Writing miniature synthetic TAU22 replicas with exactly the real layout.

:func:`make_tau22` writes a folder with the same files, names, CSV formats and
audio format (44.1 kHz mono PCM_24) as the real development set, whose scenes
and devices differ audibly (see :mod:`skasc.datasets._synthesis`), for tests,
examples and quick experiments.
"""

import csv
import io
import json
import os
import pathlib
import shutil

import numpy as np
import scipy.fft as sfft
import soundfile as sf

from .._rows import parse_clip_name
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
    UNSEEN_DEVICES,
    read_tsv,
)

__all__ = ["make_tau22"]

_MARKER = "skasc_replica.json"
# 2: impulse_responses/ and split_setup/ added; the audio and csv files are
# those of format 1, which make_tau22 completes in place
_REPLICA_FORMAT = 2
_IR_FOLDER = "impulse_responses"
_SPLIT_FOLDER = "split_setup"
#: Devices whose impulse responses a replica hands out: the devices of the
#: train split other than the reference a, never the unseen s4-s6.
_IR_DEVICES = tuple(d for d in REAL_DEVICES + SEEN_DEVICES if d != "a")

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
    Two folders are added for the DCASE 2024/2025 recipes:
    ``split_setup/split{5,10,25,50,100}.csv``, the data-efficient subsets of
    the train split (read by ``load_tau22(root, "train", fraction=...)``),
    and ``impulse_responses/<device>.wav``, the seen devices' impulse
    responses (for :class:`~skasc.DeviceImpulseResponse`).

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
    330 MB); ``n_cities=2,
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
    whole train split.  On a replica this small the subsets cannot be
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
        ``root/skasc_replica.json``) is returned as is, without writing.  A
        complete replica written by an older skasc (format 1: without
        ``split_setup/`` and ``impulse_responses/``) with the same parameters
        is completed in place: those two folders are added, every other file
        stays as it is.  If True, ``meta.csv``, ``evaluation_setup/``,
        ``audio/``, ``split_setup/``, ``impulse_responses/`` and
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
    ['audio', 'evaluation_setup', 'meta.csv', 'skasc_replica.json', 'split_setup']
    >>> data = load_tau22(root, "all")
    >>> len(data.X), sorted(set(data.device.tolist()))
    (300, ['a', 's4'])
    >>> len(load_tau22(root, "train", fraction=25).X)  # one recording per scene
    100
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
            if info.get("params") != params:
                raise FileExistsError(
                    f"{str(root)!r} holds a replica made with other parameters"
                    f" ({info.get('params')}); pass overwrite=True to replace it"
                )
            fmt = info.get("format")
            if fmt not in (1, _REPLICA_FORMAT):
                raise FileExistsError(
                    f"{str(root)!r} holds a replica of format {fmt!r}, which this skasc"
                    f" does not know (it writes format {_REPLICA_FORMAT}); pass"
                    " overwrite=True to rewrite it"
                )
            if _replica_complete(root, info):
                if fmt != _REPLICA_FORMAT or not _extras_complete(root, info):
                    # an older replica: its audio and csv files stay as they are
                    info.update(_write_extras(root, params), format=_REPLICA_FORMAT)
                    _write_marker(root, info)
                return root
            raise FileExistsError(
                f"{str(root)!r} holds an incomplete replica; pass overwrite=True to rewrite it"
            )
        for name in (_MARKER, "meta.csv"):
            if (root / name).is_file():
                (root / name).unlink()
        for name in ("audio", "evaluation_setup", _SPLIT_FOLDER, _IR_FOLDER):
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
        (root / _IR_FOLDER / f"{device}.wav").write_bytes(bytes(data))
        written.append(device)
    if not written:
        (root / _IR_FOLDER).rmdir()
    return {"impulse_responses": written, "subsets": sizes}


def _write_marker(root, info):
    (root / _MARKER).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")


def _write_replica(root, params):
    rs = params["random_state"]
    plan = _plan(params["n_cities"], params["n_locations"], params["n_segments"], params["devices"], rs)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    (root / "evaluation_setup").mkdir(exist_ok=True)
    dev_params = {d: device_params(d, rs) for d in params["devices"]}
    freqs = np.fft.rfftfreq(RECORDING_SAMPLES, 1.0 / SAMPLE_RATE)
    loc_cache = {}
    rows = []
    for e in plan:
        key = (e["scene_index"], e["loc"])
        if key not in loc_cache:
            loc_rng = np.random.default_rng([rs, 3, e["scene_index"], e["loc"]])
            p = location_params(SCENE_PROTOTYPES[e["scene"]], loc_rng)
            loc_cache = {key: (p, location_spectra(p, freqs))}
        seg_rng = np.random.default_rng([rs, 4, e["scene_index"], e["loc"], e["seg"]])
        scene = synthesize_scene(*loc_cache[key], seg_rng)
        spec = sfft.rfft(scene.astype(np.float32))
        for d in e["devices"]:
            rec_rng = np.random.default_rng([rs, 5, e["seg"], stable_seed(d)])
            y = record(spec, dev_params[d], rec_rng)
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
    info.update(_write_extras(root, params))
    _write_marker(root, info)
