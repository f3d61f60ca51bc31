"""Signal synthesis of the TAU22 replica (numpy only): background textures,
sound events and scene prototypes, and the recording devices that colour them.

Scenes differ in level, spectral envelope, modulation and event mix; devices
differ in frequency response, noise floor and saturation, so that a model
trained on the replica faces the same kinds of differences as on the real
set.  Used by :func:`skasc.datasets.make_tau22`.
"""

import zlib

import numpy as np
import scipy.fft as sfft

from ._tau22 import RECORDING_SAMPLES, SAMPLE_RATE

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
SCENE_PROTOTYPES = {
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


def location_params(proto, rng):
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


def location_spectra(p, freqs):
    """Magnitude responses (float32) of a location's background and babble."""
    bg = _db(_log_bumps(freqs, p["bumps"], p["tilt"])) * _butter_mag(freqs, 18, 19000, 2)
    babble = None
    if p["babble"] is not None:
        formant = p["babble"][2]
        babble = _db(_log_bumps(freqs, [(formant, 0.9, 12), (formant * 3.5, 0.6, 5)], -2.0))
        babble = (babble * _butter_mag(freqs, 120, 4000, 2)).astype(np.float32)
    return bg.astype(np.float32), babble


def synthesize_scene(loc_params, mags, rng, n=RECORDING_SAMPLES):
    """One continuous scene recording (before any device), float64.

    ``mags`` are the location's spectra from :func:`location_spectra`.
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
def stable_seed(text):
    return zlib.crc32(text.encode("utf-8"))


def _device_spec(device, random_state):
    """The random draws that make a device: equaliser bumps, gain, corners,
    noise floor (dB) and saturation drive."""
    rng = np.random.default_rng([random_state, 7, stable_seed(device)])
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
    return dict(bumps=bumps, gain=gain, hp=hp, lp=lp, order=order, floor=floor, drive=drive)


def _device_response(spec, freqs):
    """A device's magnitude response (gain included) at ``freqs`` Hz."""
    return _db(_log_bumps(freqs, spec["bumps"]) + spec["gain"]) * _butter_mag(
        freqs, spec["hp"], spec["lp"], spec["order"])


def device_params(device, random_state):
    """Response (gain included) and noise-floor magnitude over the rfft bins
    of a 10-s recording, and saturation drive (0: none)."""
    spec = _device_spec(device, random_state)
    freqs = np.fft.rfftfreq(RECORDING_SAMPLES, 1.0 / _FS)
    response = _device_response(spec, freqs)
    # the noise floor's spectrum: gently pink, band-limited like the device
    floor_mag = _db(spec["floor"]) * _butter_mag(freqs, 30, 12000, 1) / np.sqrt(np.maximum(freqs, 30) / 1000)
    # noise_spectrum has unit variance per bin; irfft divides by n
    floor_mag *= np.sqrt(RECORDING_SAMPLES)
    return response.astype(np.float32), floor_mag.astype(np.float32), float(spec["drive"])


def device_impulse_response(device, random_state, n_taps=4096, n_fft=1 << 16):
    """A minimum-phase FIR of ``n_taps`` taps with the device's magnitude response.

    The response (gain included) is sampled on an ``n_fft``-point grid,
    floored 100 dB below its maximum (the Butterworth corners go to zero at
    DC, where the logarithm would not exist), and made minimum-phase by the
    real-cepstrum (homomorphic) construction: fold the cepstrum of
    ``log |H|`` onto positive quefrencies and exponentiate.  A minimum-phase
    filter puts its energy first, so convolving with it and cutting the
    output to the input's length adds no delay.  The last 10 % of the taps
    fade out with a half Hann window.  Only the frequency response is
    captured: not the device's noise floor or (b, c) saturation.
    """
    spec = _device_spec(device, random_state)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / _FS)
    mag = _device_response(spec, freqs)
    log_mag = np.log(np.maximum(mag, mag.max() * 1e-5))
    cepstrum = np.fft.irfft(log_mag, n_fft)
    fold = np.zeros(n_fft)
    fold[0] = cepstrum[0]
    fold[1:n_fft // 2] = 2 * cepstrum[1:n_fft // 2]
    fold[n_fft // 2] = cepstrum[n_fft // 2]
    h = np.fft.irfft(np.exp(np.fft.rfft(fold)), n_fft)[:n_taps]
    fade = n_taps // 10
    h[n_taps - fade:] *= np.hanning(2 * fade)[fade:]
    return h.astype(np.float32)


def record(scene_spec, device_params, rng, n=RECORDING_SAMPLES):
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


