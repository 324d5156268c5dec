"""Procedural sound sources for the 13 DCASE2025 classes (dry, mono, randomised per event).

Each class has a generator ``(rng, num_samples, sample_rate) -> (num_samples,)`` that draws its
own parameters (pitch, rate, timbre, rhythm) from ``rng``, so two events of one class differ while
the classes stay acoustically distinct:

====  ===================  =============================================================
idx   class                recipe
====  ===================  =============================================================
0     woman speaking       voiced syllables, f0 165-255 Hz, vowel formants scaled up ~17 %
1     man speaking         voiced syllables, f0 85-145 Hz, adult-male vowel formants
2     clapping             trains of band-passed noise bursts at 3-8 claps/s
3     telephone            two-tone electronic ringer (tones together or alternating) in a ring cadence
4     laughter             breathy "ha" bursts at 4-6 Hz with falling pitch and level
5     domestic sounds      appliance hum (mains/motor harmonics + rumble) with dish clatter
6     footsteps            low heel/toe thumps every 0.42-0.65 s
7     door                 stick-slip creak (gliding pulse rate) ending in a slam with rattle
8     music                chord progressions (triads + bass) on piano / organ / string timbres, hi-hat
9     musical instrument   a monophonic melody of single notes: flute, plucked string or clarinet
10    water tap            running-water noise with fast flutter and rising bubble chirps
11    bell                 inharmonic bell partials, struck one or more times, long decay
12    knock                groups of 2-4 wooden knocks with a click
====  ===================  =============================================================

:func:`synthesize_event` returns a generator's output with 5 ms fades at both ends and its level
normalised so that the loud part of the event (90th percentile of 20 ms frame RMS) is 1.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from scipy.signal import lfilter

from seld.constants import CLASS_NAMES, NUM_CLASSES, SAMPLE_RATE
from seld.sim.signals import (
    bandpass_noise,
    decay,
    formant_filter,
    harmonic_tone,
    jittered_times,
    midi_to_hz,
    place,
    ramp_envelope,
    resonate,
    rolloff,
)

SoundGenerator = Callable[[np.random.Generator, int, int], np.ndarray]

# Vowel formants F1-F3 (Hz) of an adult male voice (Peterson & Barney style averages).
_VOWEL_FORMANTS = np.array(
    [
        [730.0, 1090.0, 2440.0],  # a
        [270.0, 2290.0, 3010.0],  # i
        [300.0, 870.0, 2240.0],  # u
        [530.0, 1840.0, 2480.0],  # e
        [570.0, 840.0, 2410.0],  # o
        [660.0, 1720.0, 2410.0],  # ae
        [440.0, 1020.0, 2240.0],  # uh
        [490.0, 1350.0, 1690.0],  # er
    ]
)
_FORMANT_BANDWIDTHS = np.array([80.0, 110.0, 160.0])


# ---------------------------------------------------------------- the 13 classes
def _speech(
    rng: np.random.Generator, n: int, sr: int, f0_range: tuple[float, float], formant_scale: float
) -> np.ndarray:
    out = np.zeros(n)
    base_f0 = rng.uniform(*f0_range)
    scale = formant_scale * rng.uniform(0.97, 1.03)
    harmonics = rolloff(40, rng.uniform(9.0, 13.0))
    t = int(rng.uniform(0.0, 0.05) * sr)
    syllable = 0
    while t < n - int(0.04 * sr):
        seg_n = min(int(rng.uniform(0.12, 0.30) * sr), n - t)
        declination = 1.0 - 0.02 * syllable
        start = base_f0 * declination * rng.uniform(0.88, 1.12)
        f0 = np.linspace(start, start * rng.uniform(0.85, 1.12), seg_n)
        f0 *= 1.0 + 0.012 * np.sin(2 * np.pi * rng.uniform(4.0, 7.0) * np.arange(seg_n) / sr)
        source = harmonic_tone(f0, sr, harmonics, rng) + 0.03 * rng.standard_normal(seg_n)
        formants = _VOWEL_FORMANTS[rng.integers(len(_VOWEL_FORMANTS))] * scale
        voiced = formant_filter(source, formants * rng.uniform(0.95, 1.05, 3), _FORMANT_BANDWIDTHS, sr)
        voiced *= ramp_envelope(seg_n, int(0.02 * sr), int(0.05 * sr))
        out[t : t + seg_n] += voiced / (np.abs(voiced).max() + 1e-12)
        if rng.random() < 0.35:  # fricative consonant leading into the syllable
            fn = min(int(rng.uniform(0.04, 0.09) * sr), n - t)
            lo = 2500.0 * scale
            fric = bandpass_noise(rng, fn, lo, min(lo * 2.6, 0.45 * sr), sr)
            out[t : t + fn] += 0.25 * fric * ramp_envelope(fn, fn // 3, fn // 2)
        gap = rng.uniform(0.03, 0.12) if rng.random() > 0.15 else rng.uniform(0.2, 0.4)
        t += seg_n + int(gap * sr)
        syllable += 1
    return out


def female_speech(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Speech-like voiced syllables with a female pitch range (165-255 Hz)."""
    return _speech(rng, n, sr, (165.0, 255.0), 1.17)


def male_speech(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Speech-like voiced syllables with a male pitch range (85-145 Hz)."""
    return _speech(rng, n, sr, (85.0, 145.0), 1.0)


def clapping(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """One or two clappers: trains of short band-passed noise bursts."""
    out = np.zeros(n)
    for _ in range(1 if rng.random() < 0.7 else 2):
        period = rng.uniform(0.13, 0.3)
        starts = jittered_times(rng, n, sr, period, 0.06)
        burst_n = int(0.04 * sr)
        excitation = np.zeros(n)
        tau = rng.uniform(0.004, 0.01)
        for s in starts:
            burst = rng.standard_normal(burst_n) * decay(burst_n, tau, sr, 0.0008)
            place(excitation, burst, np.array([s]), np.array([rng.uniform(0.7, 1.0)]))
        centre = rng.uniform(900.0, 2200.0)
        clap = resonate(excitation, centre, centre * rng.uniform(0.8, 1.4), sr)
        clap += 0.3 * resonate(excitation, centre * rng.uniform(1.8, 2.6), centre, sr)
        out += clap
    return out


def telephone(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Two-tone electronic ringer in an on/off cadence."""
    f1 = rng.uniform(380.0, 900.0)
    f2 = f1 * rng.uniform(1.1, 1.35)
    t = np.arange(n) / sr
    square_ish = lambda f: np.sin(2 * np.pi * f * t) + 0.3 * np.sin(6 * np.pi * f * t)  # noqa: E731
    if rng.random() < 0.5:  # both tones together, warbled
        warble = 0.75 + 0.25 * np.sign(np.sin(2 * np.pi * rng.uniform(15.0, 25.0) * t))
        tone = (square_ish(f1) + square_ish(f2)) * warble
    else:  # tones alternating at 10-25 Hz
        sel = np.sin(2 * np.pi * rng.uniform(10.0, 25.0) * t) >= 0
        tone = np.where(sel, square_ish(f1), square_ish(f2))
    on_s, off_s = rng.uniform(0.35, 1.0), rng.uniform(0.15, 0.5)
    phase = (t + rng.uniform(0.0, 0.1)) % (on_s + off_s)
    gate = (phase < on_s).astype(np.float64)
    # 4 ms ramps at the gate edges avoid clicks.
    ramp = int(0.004 * sr)
    gate = np.convolve(gate, np.ones(ramp) / ramp, mode="same")
    return tone * gate


def laughter(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Groups of breathy "ha" bursts with falling pitch and level."""
    out = np.zeros(n)
    rate = rng.uniform(4.0, 6.0)
    f0 = rng.uniform(230.0, 420.0)
    formants = np.array([rng.uniform(750, 1000), rng.uniform(1200, 1550), rng.uniform(2500, 2900)])
    harmonics = rolloff(25, 10.0)
    t = int(rng.uniform(0.0, 0.05) * sr)
    while t < n - int(0.05 * sr):
        group = rng.integers(3, 9)
        level, pitch = 1.0, f0 * rng.uniform(0.9, 1.1)
        for _ in range(group):
            ha = min(int(rng.uniform(0.07, 0.13) * sr), n - t)
            if ha < int(0.02 * sr):
                break
            contour = np.linspace(pitch, pitch * 0.85, ha)
            src = 0.6 * harmonic_tone(contour, sr, harmonics, rng) + 0.5 * rng.standard_normal(ha)
            voiced = formant_filter(src, formants, _FORMANT_BANDWIDTHS * 1.5, sr)
            voiced *= ramp_envelope(ha, int(0.01 * sr), int(0.05 * sr))
            out[t : t + ha] += level * voiced / (np.abs(voiced).max() + 1e-12)
            t += int(sr / rate * rng.uniform(0.9, 1.1))
            level *= rng.uniform(0.8, 0.95)
            pitch *= rng.uniform(0.94, 0.99)
            if t >= n:
                break
        t += int(rng.uniform(0.2, 0.5) * sr)
    return out


def domestic_sounds(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Appliance hum (harmonics of 45-130 Hz plus rumble) with dish clatter."""
    t = np.arange(n) / sr
    f0 = rng.uniform(45.0, 130.0)
    amps = rng.uniform(0.2, 1.0, 12) * rolloff(12, 4.0)
    hum = harmonic_tone(np.full(n, f0), sr, amps, rng)
    hum /= np.abs(hum).max() + 1e-12
    rumble = bandpass_noise(rng, n, 40.0, rng.uniform(300.0, 1500.0), sr, tilt=0.5)
    motor = (hum + 0.5 * rumble / 3.0) * (1.0 + 0.2 * np.sin(2 * np.pi * rng.uniform(0.5, 3.0) * t))
    clatter = np.zeros(n)
    clink_n = int(0.08 * sr)
    tk = np.arange(clink_n) / sr
    count = rng.poisson(rng.uniform(1.5, 5.0) * n / sr)
    for s in rng.integers(0, n, size=count):
        clink = np.zeros(clink_n)
        for _ in range(rng.integers(2, 5)):
            clink += np.sin(2 * np.pi * rng.uniform(1500.0, 6500.0) * tk) * np.exp(-tk / rng.uniform(0.008, 0.04))
        place(clatter, clink, np.array([s]), np.array([rng.uniform(0.4, 1.0)]))
    balance = rng.uniform(0.35, 1.0)
    return balance * motor / (motor.std() + 1e-12) + (1.0 - balance + 0.3) * clatter


def footsteps(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Low heel/toe thumps with a scuff, one step every 0.42-0.65 s."""
    step_n = int(0.25 * sr)
    tk = np.arange(step_n) / sr
    f = rng.uniform(50.0, 110.0)
    thump = np.sin(2 * np.pi * f * tk) * decay(step_n, rng.uniform(0.025, 0.045), sr, 0.003)
    scuff = bandpass_noise(rng, step_n, 800.0, 3500.0, sr) * decay(step_n, 0.006, sr)
    toe_delay = int(rng.uniform(0.05, 0.09) * sr)
    step = thump + 0.25 * scuff
    step[toe_delay:] += 0.5 * step[: step_n - toe_delay]
    starts = jittered_times(rng, n, sr, rng.uniform(0.42, 0.65), 0.04)
    amps = rng.uniform(0.75, 1.0, starts.shape[0])
    return place(np.zeros(n), step, starts, amps)


def door(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """A creak (stick-slip pulses with a gliding rate) followed by a slam and rattle."""
    out = np.zeros(n)
    slam_at = int(rng.uniform(0.4, 0.75) * n) if n > int(0.6 * sr) else int(0.05 * n)
    if slam_at > int(0.1 * sr):
        rate = np.linspace(rng.uniform(20.0, 60.0), rng.uniform(70.0, 160.0), slam_at)
        rate *= 1.0 + 0.15 * np.sin(2 * np.pi * rng.uniform(1.0, 4.0) * np.arange(slam_at) / sr)
        phase = np.cumsum(rate) / sr
        pulses = np.diff(np.floor(phase), prepend=0.0) * rng.uniform(0.5, 1.0, slam_at)
        creak = resonate(pulses, rng.uniform(500.0, 1300.0), 60.0, sr)
        creak += 0.6 * resonate(pulses, rng.uniform(1700.0, 3000.0), 90.0, sr)
        creak *= ramp_envelope(slam_at, int(0.05 * sr), int(0.05 * sr))
        out[:slam_at] += 0.4 * creak / (np.abs(creak).max() + 1e-12)
    tail_n = n - slam_at
    tk = np.arange(tail_n) / sr
    body = np.sin(2 * np.pi * rng.uniform(70.0, 160.0) * tk) * np.exp(-tk / rng.uniform(0.06, 0.15))
    crack = rng.standard_normal(tail_n) * np.exp(-tk / 0.012)
    rattle = np.zeros(tail_n)
    clicks = (rng.uniform(0.03, 0.25, size=rng.integers(2, 6)) * sr).astype(np.int64)
    click = rng.standard_normal(int(0.01 * sr)) * decay(int(0.01 * sr), 0.002, sr)
    place(rattle, click, clicks, rng.uniform(0.1, 0.3, clicks.shape[0]))
    out[slam_at:] += body + 0.5 * crack + rattle
    return out


def music(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """A chord progression (triads plus bass) on one timbre, with soft hi-hat ticks."""
    out = np.zeros(n)
    key = rng.integers(48, 60)
    degrees = {0: (0, 4, 7), 5: (5, 9, 12), 7: (7, 11, 14), 9: (9, 12, 16), 2: (2, 5, 9)}
    timbre = rng.integers(3)  # 0 piano, 1 organ, 2 strings
    chord_s = rng.uniform(0.4, 1.0)
    chord_n = int(chord_s * sr)
    if timbre == 0:
        amps = rolloff(10, 6.0)
    elif timbre == 1:
        amps = np.array([1.0, 0.6, 0.4, 0.25, 0.1, 0.08])
    else:
        amps = rolloff(16, 5.0)
    roots = list(degrees)
    for start in range(0, n, chord_n):
        seg = min(chord_n, n - start)
        degree = roots[rng.integers(len(roots))]
        notes = [key + d for d in degrees[degree]] + [key + degree - 12]
        tk = np.arange(seg) / sr
        if timbre == 0:
            env = np.exp(-tk / rng.uniform(0.3, 0.8)) * ramp_envelope(seg, int(0.003 * sr), int(0.02 * sr))
        elif timbre == 1:
            env = ramp_envelope(seg, int(0.01 * sr), int(0.02 * sr))
        else:
            env = ramp_envelope(seg, int(0.08 * sr), int(0.05 * sr))
        chord = np.zeros(seg)
        for m in notes:
            f = float(midi_to_hz(m)) * (1.0 + 0.002 * rng.standard_normal())
            chord += harmonic_tone(np.full(seg, f), sr, amps, rng)
        out[start : start + seg] += chord * env
    out /= np.abs(out).max() + 1e-12
    hat_n = int(0.05 * sr)
    hat = bandpass_noise(rng, hat_n, 6000.0, 11000.0, sr) * decay(hat_n, 0.01, sr)
    hats = np.arange(int(rng.uniform(0, chord_s / 2) * sr), n, max(1, chord_n // 2))
    return place(out, hat, hats, np.full(hats.shape[0], rng.uniform(0.05, 0.2)))


def _pluck(rng: np.random.Generator, f: float, m: int, sr: int) -> np.ndarray:
    """Karplus-Strong plucked string of ``m`` samples at ``f`` Hz."""
    delay = max(2, int(round(sr / f)))
    excitation = np.zeros(m)
    excitation[: min(delay, m)] = rng.uniform(-1.0, 1.0, min(delay, m))
    a = np.zeros(delay + 2)
    a[0], a[delay], a[delay + 1] = 1.0, -0.498, -0.498
    return lfilter([1.0], a, excitation)


def musical_instrument(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """A monophonic melody of single notes on a flute, plucked string or clarinet timbre."""
    out = np.zeros(n)
    timbre = rng.integers(3)
    pentatonic = np.array([0, 2, 4, 7, 9, 12, 14, 16, 19, 21, 24])
    base = rng.integers(55, 67)
    idx = rng.integers(len(pentatonic))
    t = int(rng.uniform(0.0, 0.05) * sr)
    while t < n - int(0.05 * sr):
        m = min(int(rng.uniform(0.18, 0.6) * sr), n - t)
        idx = int(np.clip(idx + rng.integers(-2, 3), 0, len(pentatonic) - 1))
        f = float(midi_to_hz(base + pentatonic[idx]))
        tk = np.arange(m) / sr
        if timbre == 1:
            note = _pluck(rng, f, m, sr)
        else:
            vibrato = 1.0 + 0.006 * np.sin(2 * np.pi * rng.uniform(4.5, 6.5) * tk) * np.minimum(tk / 0.15, 1.0)
            if timbre == 0:  # flute: few harmonics and breath noise
                amps = np.array([1.0, 0.35, 0.12, 0.05])
                note = harmonic_tone(f * vibrato, sr, amps, rng)
                note += 0.05 * resonate(rng.standard_normal(m), f, f * 0.3, sr)
            else:  # clarinet: odd harmonics
                amps = np.zeros(15)
                amps[0::2] = rolloff(15, 6.0)[0::2]
                note = harmonic_tone(f * vibrato, sr, amps, rng)
            note *= ramp_envelope(m, int(0.03 * sr), int(0.04 * sr))
        out[t : t + m] += note / (np.abs(note).max() + 1e-12)
        t += m + int(rng.uniform(0.0, 0.08) * sr)
    return out


def water_tap(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Running water: fluttering band-passed noise with rising bubble chirps."""
    lo = rng.uniform(400.0, 1200.0)
    hiss = bandpass_noise(rng, n, lo, rng.uniform(5000.0, 9000.0), sr, tilt=rng.uniform(0.0, 0.4))
    flutter = bandpass_noise(rng, n, 5.0, rng.uniform(20.0, 50.0), sr)
    hiss *= np.exp(0.35 * flutter)
    bubbles = np.zeros(n)
    bubble_n = int(0.03 * sr)
    tk = np.arange(bubble_n) / sr
    count = rng.poisson(rng.uniform(15.0, 50.0) * n / sr)
    for s in rng.integers(0, n, size=count):
        f0 = rng.uniform(900.0, 3500.0)
        chirp = f0 * (1.0 + rng.uniform(0.2, 0.6) * tk / tk[-1])
        bubble = np.sin(2 * np.pi * np.cumsum(chirp) / sr) * np.exp(-tk / rng.uniform(0.004, 0.012))
        place(bubbles, bubble, np.array([s]), np.array([rng.uniform(0.5, 2.0)]))
    return hiss + bubbles


_BELL_RATIOS = np.array([0.5, 1.0, 1.19, 1.5, 2.0, 2.51, 2.66, 3.01, 4.1])


def bell(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Inharmonic bell partials struck one or more times, each partial decaying exponentially."""
    f = rng.uniform(350.0, 1400.0)
    ratios = _BELL_RATIOS * (1.0 + 0.01 * rng.standard_normal(_BELL_RATIOS.shape[0]))
    amps = rng.uniform(0.3, 1.0, ratios.shape[0]) / np.sqrt(np.arange(1, ratios.shape[0] + 1))
    tau0 = rng.uniform(0.5, 1.6)
    tk = np.arange(n) / sr
    strike = np.zeros(n)
    for r, a in zip(ratios, amps):
        fk = f * r
        if fk >= 0.45 * sr:
            continue
        strike += a * np.sin(2 * np.pi * fk * tk + rng.uniform(0, 2 * np.pi)) * np.exp(-tk / (tau0 * (f / fk) ** 0.7))
    strike *= ramp_envelope(n, int(0.001 * sr), 0)
    starts = [int(rng.uniform(0.0, 0.05) * sr)]
    if rng.random() < 0.7:
        period = rng.uniform(0.5, 1.4)
        while (starts[-1] / sr + period) < n / sr - 0.1:
            starts.append(starts[-1] + int(period * sr * rng.uniform(0.95, 1.05)))
    return place(np.zeros(n), strike, np.array(starts), rng.uniform(0.7, 1.0, len(starts)))


def knock(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Groups of 2-4 wooden knocks (damped body modes plus a click)."""
    knock_n = int(0.12 * sr)
    tk = np.arange(knock_n) / sr
    f = rng.uniform(180.0, 600.0)
    tau = rng.uniform(0.008, 0.02)
    template = np.sin(2 * np.pi * f * tk) * np.exp(-tk / tau)
    template += 0.5 * np.sin(2 * np.pi * f * rng.uniform(2.1, 2.7) * tk) * np.exp(-tk / (tau / 2))
    template += 0.4 * bandpass_noise(rng, knock_n, 2000.0, 8000.0, sr) * np.exp(-tk / 0.0015)
    starts = []
    t = rng.uniform(0.0, 0.1)
    gap = rng.uniform(0.12, 0.22)
    while t < n / sr:
        for _ in range(rng.integers(2, 5)):
            starts.append(t)
            t += gap * rng.uniform(0.9, 1.1)
        t += rng.uniform(0.5, 1.2)
    starts_arr = (np.asarray(starts) * sr).astype(np.int64)
    return place(np.zeros(n), template, starts_arr, rng.uniform(0.7, 1.0, starts_arr.shape[0]))


SOUND_GENERATORS: dict[int, SoundGenerator] = {
    0: female_speech,
    1: male_speech,
    2: clapping,
    3: telephone,
    4: laughter,
    5: domestic_sounds,
    6: footsteps,
    7: door,
    8: music,
    9: musical_instrument,
    10: water_tap,
    11: bell,
    12: knock,
}
"""Class index (``seld.constants.CLASS_NAMES`` order) -> dry sound generator."""


def active_level(x: np.ndarray, sample_rate: int = SAMPLE_RATE, percentile: float = 90.0) -> float:
    """The ``percentile`` of the 20 ms frame RMS of ``x``: the level of its loud part."""
    hop = max(1, int(0.02 * sample_rate))
    frames = x[: (x.shape[0] // hop) * hop].reshape(-1, hop) if x.shape[0] >= hop else x[None, :]
    return float(np.percentile(np.sqrt(np.mean(frames**2, axis=1)), percentile))


def synthesize_event(
    class_idx: int, num_samples: int, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """A dry mono event of class ``class_idx``: float32 ``(num_samples,)``, active level 1, 5 ms fades."""
    if class_idx not in SOUND_GENERATORS:
        valid = ", ".join(f"{i} ({CLASS_NAMES[i]})" for i in range(NUM_CLASSES))
        raise ValueError(f"unknown sound class {class_idx}; valid classes: {valid}")
    if num_samples <= 0:
        raise ValueError(f"num_samples must be > 0, got {num_samples}")
    x = SOUND_GENERATORS[class_idx](rng, int(num_samples), int(sample_rate))
    x = np.asarray(x, dtype=np.float64)[:num_samples]
    x = x - x.mean()
    fade = int(0.005 * sample_rate)
    x *= ramp_envelope(num_samples, fade, fade)
    level = active_level(x, sample_rate)
    if level > 0:
        x /= level
    return x.astype(np.float32)
