"""The layouts :func:`~skasc.datasets.make_tau22` writes: which 10-s segments
exist, where (scene, city, location), which devices record each, and in which
split each recording is.

Two layouts:

* :func:`miniature_plan`, the small layout set by ``n_cities``,
  ``n_locations`` and ``n_segments`` (every device other than ``a`` records
  one segment per scene and split);
* :func:`scaled_plan`, the real development set's counts and proportions
  (:data:`FULL_RECORDINGS`), at full size or any fraction of it.

A plan is a list of segments, each a dict with ``scene``, ``scene_index``,
``city``, ``loc`` (location id), ``seg`` (segment id) and ``recordings``,
the ``(device, split)`` pairs of the devices recording it (in
:data:`~skasc.datasets.DEVICES` order), ``split`` being ``"train"``,
``"evaluate"`` or None (listed in ``meta.csv`` only, in neither split).
"""

import math
from fractions import Fraction

import numpy as np

from ._tau22 import CITIES, DEVICES, SCENES, SNIPPETS_PER_RECORDING, UNSEEN_DEVICES

__all__ = [
    "FULL_RECORDINGS",
    "DEVELOPMENT_CITIES",
    "SEGMENTS_PER_LOCATION",
    "miniature_plan",
    "scaled_plan",
    "plan_counts",
]

#: 10-s recordings of the real development set per device: (in fold1_train,
#: in fold1_evaluate, in neither split).  The DCASE 2020 Task 1A table of
#: TAU Urban Acoustic Scenes 2020 Mobile (a 40 h = 14,400 recordings, the
#: others 3 h = 1,080 each; train 13,962, test 2,970, unused 6,108; b and c
#: 1 and 2 unused), less the 5 recordings the 2022 set lacks (23,035 = 230,350
#: clips / 10; evaluate 2,968 = 29,680 / 10): which recordings those are is not
#: documented; this layout takes them from the real devices b and c, whose
#: counts already show lost recordings (b and c each one fewer in evaluate,
#: and b's one and c's two unused ones).
FULL_RECORDINGS = {
    "a": (10215, 330, 3855),
    "b": (749, 329, 0),
    "c": (748, 329, 0),
    "s1": (750, 330, 0),
    "s2": (750, 330, 0),
    "s3": (750, 330, 0),
    "s4": (0, 330, 750),
    "s5": (0, 330, 750),
    "s6": (0, 330, 750),
}
#: The 10 cities of the development set (the other 2 of
#: :data:`~skasc.datasets.CITIES` appear only in the evaluation set).
DEVELOPMENT_CITIES = CITIES[:10]
#: 10-s segments per location at full size: 6 minutes, the upper end of the
#: real set's 5-6 minutes per location.
SEGMENTS_PER_LOCATION = 36

_KINDS = ("train", "evaluate", "neither")
_N_SCENES = len(SCENES)


# --------------------------------------------------------------------------
# The miniature layout (make_tau22's n_cities, n_locations, n_segments)
# --------------------------------------------------------------------------
def miniature_plan(n_cities, n_locations, n_segments, devices, random_state):
    """The miniature layout (see :func:`make_tau22`'s docstring), as a plan."""
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
                recorded, in_split = e.pop("devices"), e.pop("split")
                e["recordings"] = [(d, in_split) for d in devices if d in recorded]
            plan.extend(segs)
    return plan


# --------------------------------------------------------------------------
# The real set's layout at any scale
# --------------------------------------------------------------------------
def _round(x):
    """Round half up (``round`` rounds half to even)."""
    return math.floor(x + Fraction(1, 2))


def _apportion(quotas, minimums, total):
    """Integer counts near ``quotas``, each at least its minimum, summing to
    ``total`` when the minimums allow (more otherwise): the floors, then one
    more for the cells furthest below their quota (largest remainder)."""
    counts = [max(m, math.floor(q)) for q, m in zip(quotas, minimums)]
    for _ in range(total - sum(counts)):
        gaps = [(q - c, -i) for i, (q, c) in enumerate(zip(quotas, counts)) if q > 0]
        _, i = max(gaps)
        counts[-i] += 1
    return counts


def _spread(n, start, caps=None):
    """``n`` recordings dealt round the scenes from scene ``start``, one per
    scene per round (at most ``caps[s]`` in scene s); returns the counts and
    the scene after the last one dealt."""
    if caps is not None and n > sum(caps):
        raise ValueError(f"cannot place {n} recordings in {sum(caps)} segments")  # a layout bug
    counts = [0] * _N_SCENES
    s = start
    while n:
        if caps is None or counts[s] < caps[s]:
            counts[s] += 1
            n -= 1
        s = (s + 1) % _N_SCENES
    return counts, s


def _device_counts(scale, devices):
    """{device: (train, evaluate, neither)} 10-s recordings at ``scale``, for
    the ``devices`` written.

    The grand total, then each split's total, then each device's share of
    it, by largest remainders, so that the totals and the proportions follow
    the scale; with minimums: each device at least one recording in each
    split it has, device a at least one train and one test location
    segment per scene (10 each), and the evaluate split every scene (10).
    """
    f = Fraction(repr(float(scale)))
    devs = [d for d in DEVICES if d in devices]
    full = [[FULL_RECORDINGS[d][k] for d in devs] for k in range(3)]
    mins = [[(0 if n == 0 else _N_SCENES if (d, k) in (("a", 0), ("a", 2)) else 1)
             for d, n in zip(devs, row)] for k, row in enumerate(full)]
    kind_mins = [sum(mins[0]), max(_N_SCENES, sum(mins[1])), sum(mins[2])]
    totals = _apportion([f * sum(row) for row in full], kind_mins, _round(f * sum(map(sum, full))))
    per_kind = [_apportion([f * n for n in full[k]], mins[k], totals[k]) for k in range(3)]
    return {d: tuple(per_kind[k][i] for k in range(3)) for i, d in enumerate(devs)}


def scaled_plan(scale, devices, random_state):
    """The real development set's layout at ``scale`` (see :func:`make_tau22`).

    Per scene: device a's train-location segments, then its test-location
    segments (some in evaluate, the others in neither split), cut into
    locations of about :data:`SEGMENTS_PER_LOCATION` segments; b, c and
    s1-s3 record train-location segments (train split); every device records
    test-location segments for the evaluate split, a's evaluate segments
    first; s4-s6 record train-location segments too, in neither split.
    """
    counts = _device_counts(scale, devices)
    # per scene counts: a's cells dealt in turn so that every scene gets the
    # same number of a-segments (give or take one); each split's cells
    # continue where the previous one stopped, so that small counts cover
    # different scenes
    a_cells, nxt = [], 0
    for k in range(3):
        cell, nxt = _spread(counts["a"][k], nxt)
        a_cells.append(cell)
    a_train, a_eval, a_other = a_cells
    test_caps = [e + o for e, o in zip(a_eval, a_other)]
    starts = {k: (sum(counts["a"][: k + 1])) % _N_SCENES for k in range(3)}
    extra = {}  # (device, kind) -> per scene counts
    for d in list(counts)[1:]:
        for k, kind in enumerate(_KINDS):
            if counts[d][k]:
                extra[d, kind], starts[k] = _spread(counts[d][k], starts[k],
                                                    test_caps if kind == "evaluate" else a_train)
    plan, loc_counter, seg_counter, city_counter = [], 0, 0, 0
    for si, scene in enumerate(SCENES):
        rng = np.random.default_rng([random_state, 21, si])
        n_tr, n_te = a_train[si], test_caps[si]
        n_loc_tr = max(1, _round(Fraction(n_tr, SEGMENTS_PER_LOCATION)))
        n_loc_te = max(1, _round(Fraction(n_te, SEGMENTS_PER_LOCATION)))
        is_test = np.zeros(n_loc_tr + n_loc_te, bool)
        is_test[rng.choice(is_test.size, n_loc_te, replace=False)] = True
        sizes = {False: np.array_split(np.arange(n_tr), n_loc_tr),
                 True: np.array_split(np.arange(n_te), n_loc_te)}
        used = {False: 0, True: 0}
        train_segs, test_segs = [], []
        for test in is_test.tolist():
            city = DEVELOPMENT_CITIES[city_counter % len(DEVELOPMENT_CITIES)]
            city_counter += 1
            for _ in sizes[test][used[test]]:
                e = dict(scene=scene, scene_index=si, city=city, loc=1000 + loc_counter,
                         seg=40000 + 10 * seg_counter, recordings={})
                seg_counter += 1
                (test_segs if test else train_segs).append(e)
                plan.append(e)
            used[test] += 1
            loc_counter += 1
        for e in train_segs:
            e["recordings"]["a"] = "train"
        evaluate = set(rng.choice(n_te, a_eval[si], replace=False).tolist())
        for j, e in enumerate(test_segs):
            e["recordings"]["a"] = "evaluate" if j in evaluate else None
        eval_first = ([test_segs[j] for j in sorted(evaluate)],
                      [e for j, e in enumerate(test_segs) if j not in evaluate])
        for (d, kind), cell in extra.items():
            n = cell[si]
            if not n:
                continue
            drng = np.random.default_rng([random_state, 22, si, DEVICES.index(d)])
            if kind == "evaluate":  # parallel to a's evaluate recordings where there are enough
                pool = [p[i] for p in eval_first for i in drng.permutation(len(p))]
                chosen = pool[:n]
            else:
                chosen = [train_segs[i] for i in drng.choice(n_tr, n, replace=False)]
            for e in chosen:
                e["recordings"][d] = None if kind == "neither" else kind
    for e in plan:
        e["recordings"] = [(d, e["recordings"][d]) for d in DEVICES if d in e["recordings"]]
    return plan


def plan_counts(plan):
    """Clips of a plan per split and device: {"train"|"evaluate"|"neither":
    {device: clips}}, every device of :data:`~skasc.datasets.DEVICES` listed.

    Examples
    --------
    >>> from skasc.datasets._layout import plan_counts, scaled_plan
    >>> counts = plan_counts(scaled_plan(1.0, ("a", "b"), random_state=0))
    >>> counts["train"]["a"], counts["evaluate"]["b"], counts["neither"]["a"]
    (102150, 3290, 38550)
    """
    out = {kind: dict.fromkeys(DEVICES, 0) for kind in _KINDS}
    for e in plan:
        for d, split in e["recordings"]:
            out[split or "neither"][d] += SNIPPETS_PER_RECORDING
    return out
