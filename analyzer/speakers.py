"""Who speaks when: channel = speaker for stereo calls, diarization (`diarize`) for mono ones."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from faster_whisper.vad import VadOptions

from .audio import SAMPLE_RATE, Audio
from .config import Config
from .diarize import Diarizer, PyannoteDiarizer, Turn
from .result import Speaker
from .vad import detect, speech_duration, speech_regions

# Where a call's diarized turns are cut to speech: the call VAD, with half its padding (zh_constructed DER at
# collar 0: 9.0% untrimmed, 5.4% within the call VAD's speech, 4.3% with this).
CALL_TRIM_VAD = VadOptions(threshold=0.5, min_speech_duration_ms=150, min_silence_duration_ms=300, speech_pad_ms=60)
IDENTICAL_CHANNELS = 1e-3         # residual energy share under which two channels carry the same signal
CHANNEL_SILENT_DB = -45.0         # a channel this far below the louder one carries no party of its own
CROSSTALK_DB = 12.0               # a leaking voice arrives at least this far below the original
CROSSTALK_CORRELATION = 0.7       # ... and follows its waveform this closely
CROSSTALK_MAX_LAG_S = 0.005
CROSSTALK_FRAME_S = 0.02


@dataclass
class SpeechRegion:
    start: float
    end: float
    speaker: str


@dataclass
class Stream:
    """Audio transcribed as one piece: one channel of a stereo call, or the whole mono call."""

    samples: np.ndarray
    speech: list[tuple[float, float]]
    speaker: str | None  # the speaker of every word in it, or None when words are assigned by time


@dataclass
class Segmentation:
    layout: str                   # "stereo" (channel = speaker) or "mono" (diarized)
    streams: list[Stream]
    regions: list[SpeechRegion]   # sorted by start; regions of different speakers may overlap
    speakers: list[Speaker]


def segment(audio: Audio, config: Config, diarizer: Diarizer | PyannoteDiarizer) -> Segmentation:
    channels = distinct_channels(audio.samples)
    if channels is not None:
        return _by_channel(audio.samples, channels)
    return by_voice(audio.mono(), config, diarizer)


def distinct_channels(samples: np.ndarray) -> list[int] | None:
    """The channels that carry a party of their own, or None when the recording is in effect mono."""
    if samples.shape[0] < 2:
        return None
    energy = np.mean(samples**2, axis=1) + 1e-12
    loud = [i for i in range(len(energy)) if 10 * np.log10(energy[i] / energy.max()) > CHANNEL_SILENT_DB]
    if len(loud) < 2:
        return None
    a, b = samples[loud[0]], samples[loud[1]]
    scale = np.dot(a, b) / np.dot(b, b)
    if np.mean((a - scale * b) ** 2) < IDENTICAL_CHANNELS * np.mean(a**2):
        return None  # the same signal on both channels (perhaps at another gain)
    return loud


def _by_channel(samples: np.ndarray, channels: list[int]) -> Segmentation:
    streams, regions, speakers = [], [], []
    own = remove_crosstalk(samples[channels])
    for number, channel in enumerate(channels, start=1):
        speech = detect(own[number - 1])
        if not speech.decode:
            continue
        speaker_id = f"S{number}"
        streams.append(Stream(own[number - 1], speech.decode, speaker_id))
        regions.extend(SpeechRegion(s, e, speaker_id) for s, e in speech.turns)
        speakers.append(Speaker(speaker_id, channel=channel, talk_time_s=round(speech_duration(speech.turns), 2)))
    regions.sort(key=lambda r: r.start)
    return Segmentation("stereo", streams, regions, speakers)


def remove_crosstalk(channels: np.ndarray) -> np.ndarray:
    """Silence each channel where it carries only another party's voice leaking across (line echo, a headset
    picking up the other side), which would otherwise be transcribed a second time on the wrong channel.

    A frame is leakage where the channel is much quieter than another and its waveform follows that other's
    (cross-correlation within a few ms); the quiet tail of a word someone talks over does not follow it, and stays.
    """
    frame = int(CROSSTALK_FRAME_S * SAMPLE_RATE)
    count = channels.shape[1] // frame
    frames = channels[:, : count * frame].reshape(len(channels), count, frame)
    energy = np.sum(frames**2, axis=2) + 1e-12
    level = 10 * np.log10(energy)
    spectra = np.fft.rfft(frames, 2 * frame, axis=2)
    lag = int(CROSSTALK_MAX_LAG_S * SAMPLE_RATE)
    leak = np.zeros((len(channels), count), dtype=bool)
    for own in range(len(channels)):
        for other in range(len(channels)):
            if other == own:
                continue
            quieter = level[own] < level[other] - CROSSTALK_DB
            correlation = np.fft.irfft(spectra[own] * np.conj(spectra[other]), 2 * frame, axis=1)
            near = np.concatenate([correlation[:, : lag + 1], correlation[:, -lag:]], axis=1)
            follows = np.abs(near).max(axis=1) / np.sqrt(energy[own] * energy[other]) >= CROSSTALK_CORRELATION
            leak[own] |= quieter & follows
    # widen each leak by a frame either side: the soft onsets and tails of leaked words fail the level test
    leak = leak | np.roll(leak, 1, axis=1) | np.roll(leak, -1, axis=1)
    gain = np.repeat(np.where(leak, 0.0, 1.0), frame, axis=1)
    gain = np.pad(gain, ((0, 0), (0, channels.shape[1] - count * frame)), mode="edge")
    return (channels * gain).astype(np.float32)


def by_voice(samples: np.ndarray, config: Config, diarizer: Diarizer | PyannoteDiarizer) -> Segmentation:
    speech = detect(samples)
    if not speech.decode:
        return Segmentation("mono", [], [], [])
    turns = diarizer(samples, min_speakers=config.min_speakers, max_speakers=config.num_speakers or config.max_speakers,
                     expected_speakers=config.num_speakers)
    if config.num_speakers:
        # a phone call is close-talk speech, whose edges the VAD finds more exactly than the segmentation model,
        # which runs turns on into the line noise before them
        turns = _within(turns, speech_regions(samples, CALL_TRIM_VAD))
    # numbered by first speech in what is kept (trimming can drop a speaker's earliest, stray bit)
    number = {speaker: n for n, speaker in enumerate(dict.fromkeys(t.speaker for t in turns), start=1)}
    regions = [SpeechRegion(t.start, t.end, f"S{number[t.speaker]}") for t in turns]
    speakers = []
    for speaker_id in dict.fromkeys(r.speaker for r in regions):
        talk = sum(r.end - r.start for r in regions if r.speaker == speaker_id)
        speakers.append(Speaker(speaker_id, talk_time_s=round(talk, 2)))
    return Segmentation("mono", [Stream(samples, speech.decode, None)], regions, speakers)


def _within(turns: list[Turn], speech: list[tuple[float, float]]) -> list[Turn]:
    """The parts of the turns that lie in speech."""
    kept = []
    for turn in turns:
        for start, end in speech:
            if min(turn.end, end) > max(turn.start, start):
                kept.append(Turn(max(turn.start, start), min(turn.end, end), turn.speaker))
    return kept
