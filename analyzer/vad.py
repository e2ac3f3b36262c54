"""Voice activity: the silero VAD model that faster-whisper ships, tuned for two-party phone calls."""

from __future__ import annotations

import numpy as np
from faster_whisper.vad import VadOptions, get_speech_timestamps

from .audio import SAMPLE_RATE

# Short replies (嗯, 对, 好的) last 0.2-0.4 s and must survive; a pause of 0.3 s already separates two turns;
# little padding, so that regions do not stretch into the silence around a turn.
CALL_VAD = VadOptions(threshold=0.5, min_speech_duration_ms=150, min_silence_duration_ms=300, speech_pad_ms=120)


def speech_regions(samples: np.ndarray, options: VadOptions = CALL_VAD) -> list[tuple[float, float]]:
    """Speech as (start, end) seconds, in order and not overlapping."""
    stamps = get_speech_timestamps(samples, options, sampling_rate=SAMPLE_RATE)
    return [(s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE) for s in stamps]


def speech_duration(regions: list[tuple[float, float]]) -> float:
    return sum(end - start for start, end in regions)
