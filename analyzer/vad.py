"""Voice activity: the silero VAD model that faster-whisper ships, tuned for two-party phone calls."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from faster_whisper.vad import VadOptions, get_speech_timestamps

from .audio import SAMPLE_RATE

# Short replies (嗯, 对, 好的) last 0.2-0.4 s and must survive; a pause of 0.3 s already separates two turns;
# little padding, so that regions do not stretch into the silence around a turn.
CALL_VAD = VadOptions(threshold=0.5, min_speech_duration_ms=150, min_silence_duration_ms=300, speech_pad_ms=120)
# Silero scores telephone-band speech (nothing above ~3.4 kHz) lower: a clear 1.8 s sentence at 8 kHz stays
# below 0.5 throughout and would be lost without a trace. For such audio, what Whisper decodes is found with a
# lower threshold (asr_zh at 8 kHz: CER 31.6% at 0.5, 27.3% at 0.2); turn boundaries keep the stricter one,
# which does not run turns together. Wideband audio loses nothing at 0.5 (and decodes better: 15.0% vs 17.1%).
NARROWBAND_VAD = VadOptions(threshold=0.2, min_speech_duration_ms=150, min_silence_duration_ms=300,
                            speech_pad_ms=120)
# Share of energy above 3.8 kHz: telephone-band audio (8 kHz, or filtered to 3.4 kHz) has under 0.01%;
# wideband speech had 0.14% to 4.6% on asr_zh's 16 kHz clips.
NARROWBAND_HZ = 3800
NARROWBAND_SHARE = 0.0005


@dataclass
class Speech:
    turns: list[tuple[float, float]]   # confident speech with tight boundaries: who speaks when, talk time
    decode: list[tuple[float, float]]  # everything that may be speech: what Whisper transcribes


def speech_regions(samples: np.ndarray, options: VadOptions = CALL_VAD) -> list[tuple[float, float]]:
    """Speech as (start, end) seconds, in order and not overlapping."""
    stamps = get_speech_timestamps(samples, options, sampling_rate=SAMPLE_RATE)
    return [(s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE) for s in stamps]


def detect(samples: np.ndarray) -> Speech:
    """Speech for turns and speech for Whisper; the latter found more generously in telephone-band audio."""
    confident = speech_regions(samples, CALL_VAD)
    if not is_narrowband(samples):
        return Speech(confident, confident)
    decode = speech_regions(samples, NARROWBAND_VAD)
    return Speech(confident or decode, decode)  # quiet speech only: its regions are all there is


def is_narrowband(samples: np.ndarray, frame: int = 512) -> bool:
    frames = samples[: len(samples) // frame * frame].reshape(-1, frame) * np.hanning(frame)
    if not len(frames):
        return False
    power = (np.abs(np.fft.rfft(frames, axis=1)) ** 2).sum(axis=0)
    high = power[int(NARROWBAND_HZ / (SAMPLE_RATE / 2) * (frame // 2)):].sum()
    return high < NARROWBAND_SHARE * (power.sum() + 1e-12)


def speech_duration(regions: list[tuple[float, float]]) -> float:
    return sum(end - start for start, end in regions)
