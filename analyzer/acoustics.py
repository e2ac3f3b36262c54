"""How each turn sounds: pitch, loudness, voice quality, tempo, and how each of these departs from the same
speaker's usual voice in this call (robust z-scores), summed up as an `arousal` 0…1 (0.5 = the speaker's usual).

Markers of stress are changes relative to a person, not absolute values (a deep voice is not a calm one), hence
the per-speaker baseline. Every feature is either independent of the recording's gain (pitch, tempo, ratios) or
shifts with it by a constant (loudness in dB), so the z-scores are the same whatever the recording level.

Jitter and shimmer are frame-level estimates (10 ms frames: the relative change of the pitch period and of the
frame amplitude between consecutive voiced frames), not Praat's cycle-by-cycle measures; they track the same
roughness of the voice but are not comparable to published Praat values.
"""

from __future__ import annotations

import re

import librosa
import numpy as np

from .audio import SAMPLE_RATE
from .result import Acoustic, Speaker, Turn

RATE = 8000               # telephone band: everything the voice features need, half the pitch-tracking cost
HOP = 80                  # 10 ms
FRAME = 512               # 64 ms: two periods of the lowest pitch tracked
FMIN, FMAX = 65.0, 500.0  # Hz: deep male to high female voices
PITCH_RESOLUTION = 0.25   # semitones; pyin's default 0.1 costs four times as much for no gain at this use
PAUSE_DB = 30.0           # a frame this far below the turn's loud frames is a pause
MIN_PAUSE_S = 0.2         # shorter dips are stop consonants and breaths, not pauses
MIN_VOICED_FRAMES = 10    # fewer (a 嗯 of 0.1 s) give no reliable pitch statistics
PUNCTUATION = re.compile(r"[\s，。？！、,.?!;；:：…“”\"'（）()]")

# the smallest spread a speaker's baseline is given, so that a speaker whose turns happen to be nearly alike
# does not turn a trivial difference into a large z-score
MIN_SCALE = {
    "f0_level_st": 0.5, "f0_range_st": 1.0, "f0_variability_st": 0.3, "loudness_db": 1.0, "jitter": 0.003,
    "shimmer": 0.02, "voiced_ratio": 0.05, "speech_rate_cps": 0.5, "pause_ratio": 0.05,
}
FEATURES = tuple(MIN_SCALE)
MAX_Z = 5.0
# arousal = logistic(Σ weight × z): a louder, higher, wider-ranging, faster voice than the speaker's usual
AROUSAL_WEIGHTS = {"loudness_db": 0.35, "f0_level_st": 0.3, "f0_range_st": 0.2, "speech_rate_cps": 0.15}


def measure(samples: np.ndarray, turns: list[Turn], speakers: list[Speaker]) -> None:
    """Give every turn its `acoustic` {raw, z} and `arousal`. `samples` is the call's (channels, frames) audio at
    SAMPLE_RATE; a speaker with a channel of their own is measured on it, others on the mixdown."""
    if not turns:
        return
    channels = {s.id: s.channel for s in speakers}
    narrow = librosa.resample(samples, orig_sr=SAMPLE_RATE, target_sr=RATE, res_type="soxr_hq", axis=-1)
    mixdown = narrow.mean(axis=0)
    raw = []
    for turn in turns:
        channel = channels.get(turn.speaker)
        signal = narrow[channel] if channel is not None and channel < narrow.shape[0] else mixdown
        raw.append(turn_features(signal, turn))
    for speaker in {turn.speaker for turn in turns}:
        mine = [index for index, turn in enumerate(turns) if turn.speaker == speaker]
        baseline = _baseline([raw[index] for index in mine])
        for index in mine:
            z = {name: _z(raw[index][name], *baseline[name]) for name in FEATURES}
            turns[index].acoustic = Acoustic(raw[index], z)
            turns[index].arousal = _arousal(z)


def turn_features(signal: np.ndarray, turn: Turn) -> dict[str, float | None]:
    """The raw features of one turn, from `signal` at RATE; None where the turn has too little voice to say."""
    segment = signal[int(turn.start * RATE):max(int(turn.end * RATE), int(turn.start * RATE) + FRAME)]
    features: dict[str, float | None] = dict.fromkeys(FEATURES)
    features["speech_rate_cps"] = _speech_rate(turn)
    if len(segment) < FRAME:
        return features
    f0, voiced, _ = librosa.pyin(segment, fmin=FMIN, fmax=FMAX, sr=RATE, frame_length=FRAME, hop_length=HOP,
                                 resolution=PITCH_RESOLUTION, center=True)
    power = librosa.feature.rms(y=segment, frame_length=2 * HOP, hop_length=HOP, center=True)[0] ** 2
    frames = min(len(f0), len(power))
    f0, voiced, power = f0[:frames], voiced[:frames], power[:frames]
    level_db = 10 * np.log10(np.maximum(power, 1e-12))
    features["pause_ratio"] = _pause_ratio(level_db)
    features["voiced_ratio"] = round(float(voiced.mean()), 3)
    if voiced.sum() < MIN_VOICED_FRAMES:
        return features
    semitones = 12 * np.log2(f0[voiced] / 100.0)  # re 100 Hz, as Praat
    low, median, high = np.percentile(semitones, [5, 50, 95])
    features["f0_level_st"] = round(float(median), 3)
    features["f0_range_st"] = round(float(high - low), 3)
    features["f0_variability_st"] = round(float(semitones.std()), 3)
    features["loudness_db"] = round(float(10 * np.log10(max(power[voiced].mean(), 1e-12))), 2)
    # consecutive voiced frames only: a change across a pause is not jitter
    pairs = voiced[1:] & voiced[:-1]
    if pairs.sum() >= MIN_VOICED_FRAMES:
        period = 1.0 / f0
        amplitude = np.sqrt(power)
        features["jitter"] = round(float(np.abs(np.diff(period))[pairs].mean() / period[voiced].mean()), 4)
        features["shimmer"] = round(float(np.abs(np.diff(amplitude))[pairs].mean() / amplitude[voiced].mean()), 4)
    return features


def _speech_rate(turn: Turn) -> float | None:
    """Characters a second from the first word's start to the last word's end."""
    if not turn.words:
        return None
    span = turn.words[-1].end - turn.words[0].start
    characters = len(PUNCTUATION.sub("", "".join(word.text for word in turn.words)))
    return round(characters / span, 2) if span > 0.2 and characters else None


def _pause_ratio(level_db: np.ndarray) -> float:
    """The share of the turn spent in pauses: runs of at least MIN_PAUSE_S well below the turn's loud frames."""
    quiet = level_db < np.percentile(level_db, 95) - PAUSE_DB
    shortest = int(MIN_PAUSE_S * RATE / HOP)
    paused, run = 0, 0
    for is_quiet in np.append(quiet, False):
        if is_quiet:
            run += 1
            continue
        paused += run if run >= shortest else 0
        run = 0
    return round(paused / len(level_db), 3)


def _baseline(rows: list[dict]) -> dict[str, tuple[float | None, float]]:
    """Each feature's median over a speaker's turns and its spread (1.4826 × MAD, at least MIN_SCALE)."""
    baseline = {}
    for name in FEATURES:
        values = np.array([row[name] for row in rows if row[name] is not None], dtype=float)
        if not len(values):
            baseline[name] = (None, MIN_SCALE[name])
            continue
        median = float(np.median(values))
        spread = 1.4826 * float(np.median(np.abs(values - median)))
        baseline[name] = (median, max(spread, MIN_SCALE[name]))
    return baseline


def _z(value: float | None, median: float | None, scale: float) -> float | None:
    if value is None or median is None:
        return None
    return round(float(np.clip((value - median) / scale, -MAX_Z, MAX_Z)), 3)


def _arousal(z: dict[str, float | None]) -> float:
    drive = sum(weight * (z[name] or 0.0) for name, weight in AROUSAL_WEIGHTS.items())
    return round(float(1.0 / (1.0 + np.exp(-drive))), 3)
