"""Data sets: the TAU Urban Acoustic Scenes 2022 Mobile loader, a generator
of synthetic replicas with exactly the same layout (miniatures, or the real
development set's size and proportions and any fraction of it), and a
loader for any folder of recordings.

As in :mod:`sklearn.datasets`, loaders (``load_*``, reading data from disk)
live apart from generators (``make_*``, writing synthetic data):

* :mod:`skasc.datasets._tau22`: the data set's facts and :func:`load_tau22`;
* :mod:`skasc.datasets._synthesis`: the signal synthesis of the replica;
* :mod:`skasc.datasets._layout`: the full-size layout (``make_tau22(scale=)``);
* :mod:`skasc.datasets._replica`: :func:`make_tau22`, the replica writer;
* :mod:`skasc.datasets._folder`: :func:`load_audio_folder`, any folder of
  recordings (class subfolders, or a CSV of paths and labels) as 1-s clips.
"""

from ._folder import AUDIO_EXTENSIONS, SHORT_POLICIES, load_audio_folder

from ._replica import make_tau22
from ._tau22 import (
    CITIES,
    CLIP_SAMPLES,
    DEVICES,
    FRACTIONS,
    REAL_DEVICES,
    SAMPLE_RATE,
    SCENES,
    SEEN_DEVICES,
    UNSEEN_DEVICES,
    load_tau22,
    tau22_recording_groups,
)

__all__ = [
    "load_audio_folder",
    "AUDIO_EXTENSIONS",
    "SHORT_POLICIES",
    "load_tau22",
    "make_tau22",
    "tau22_recording_groups",
    "SCENES",
    "CITIES",
    "DEVICES",
    "FRACTIONS",
    "REAL_DEVICES",
    "SEEN_DEVICES",
    "UNSEEN_DEVICES",
    "SAMPLE_RATE",
    "CLIP_SAMPLES",
]
