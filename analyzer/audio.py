"""Decode any common audio file with PyAV into float32 samples at 16 kHz, keeping its channels."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from .result import Source

SAMPLE_RATE = 16000
AUDIO_EXTENSIONS = (".wav", ".mp3", ".m4a", ".aac", ".amr", ".ogg", ".opus", ".flac", ".wma", ".webm", ".mp4")
SILENCE_PEAK = 10 ** (-70 / 20)  # a recording whose loudest sample is below -70 dBFS holds nothing to analyse


class AudioError(Exception):
    """A file that cannot be analysed; the message is one line a user can act on."""


@dataclass
class Audio:
    samples: np.ndarray  # (channels, frames) float32 at SAMPLE_RATE
    source: Source
    warnings: list[str]

    @property
    def duration_s(self) -> float:
        return self.samples.shape[1] / SAMPLE_RATE

    def mono(self) -> np.ndarray:
        return self.samples.mean(axis=0) if self.samples.shape[0] > 1 else self.samples[0]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load(path: str | Path, data: bytes | None = None) -> Audio:
    """Decode `path`, or the file's bytes `data` read elsewhere (a worker on another machine); raise AudioError
    with a clear reason for anything that is not usable audio."""
    path = Path(path)
    if data is None:
        if not path.exists():
            raise AudioError(f"file not found: {path}")
        if path.is_dir():
            raise AudioError(f"is a directory, not an audio file: {path}")
        try:
            size = path.stat().st_size
            sha256 = sha256_of(path)
        except OSError as error:
            raise AudioError(f"cannot read file: {error.strerror or error}") from error
    else:
        size, sha256 = len(data), hashlib.sha256(data).hexdigest()
    if size == 0:
        raise AudioError("empty file (0 bytes)")

    samples, sample_rate, channels, bad_packets = _decode(str(path) if data is None else io.BytesIO(data))
    if samples.shape[1] == 0:
        raise AudioError("zero-length audio: the file decodes to no samples")
    if np.abs(samples).max() < SILENCE_PEAK:
        raise AudioError("the recording is silent (peak below -70 dBFS)")

    warnings = []
    if bad_packets:
        warnings.append(f"{bad_packets} corrupt packet(s) skipped while decoding")
    source = Source(str(path), sha256, round(samples.shape[1] / SAMPLE_RATE, 3), sample_rate, channels)
    return Audio(samples, source, warnings)


def _decode(source: str | io.BytesIO) -> tuple[np.ndarray, int, int, int]:
    try:
        container = av.open(source, metadata_errors="ignore")
    except PermissionError as error:
        raise AudioError(f"cannot read file: permission denied: {source}") from error
    except av.error.FFmpegError as error:
        raise AudioError(f"not a readable audio file (unknown format or corrupt header): {_reason(error)}") from error

    with container:
        if not container.streams.audio:
            raise AudioError("the file has no audio stream")
        stream = container.streams.audio[0]
        sample_rate = stream.codec_context.sample_rate
        channels = stream.codec_context.channels
        if not sample_rate or not channels:
            raise AudioError("corrupt audio header: no sample rate or channel count")
        resampler = av.AudioResampler(format="fltp", layout=stream.layout, rate=SAMPLE_RATE)
        chunks, bad_packets = [], 0
        try:
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except av.error.FFmpegError:
                    bad_packets += 1
                    continue
                for frame in frames:
                    chunks.extend(f.to_ndarray() for f in resampler.resample(frame))
        except av.error.FFmpegError as error:
            if not chunks:
                raise AudioError(f"corrupt audio: {_reason(error)}") from error
            bad_packets += 1
        chunks.extend(f.to_ndarray() for f in resampler.resample(None))

    if not chunks:
        return np.zeros((channels, 0), dtype=np.float32), sample_rate, channels, bad_packets
    return np.concatenate(chunks, axis=1).astype(np.float32), sample_rate, channels, bad_packets


def _reason(error: av.error.FFmpegError) -> str:
    return getattr(error, "strerror", None) or str(error)
