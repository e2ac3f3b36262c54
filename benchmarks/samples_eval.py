"""CER and role accuracy of `analyze` on the project's samples, as recorded and mixed down to mono.

    python benchmarks/samples_eval.py [--asr-backend faster-whisper|openai-whisper] [--model M]
                                      [--compute-type auto|int8|float32] [--as-recorded] [--long [--long-wav PATH]]

`--as-recorded` skips the stereo calls' mono mixdowns. `--long` adds a call of 4.6 minutes: the two mono calls
(the same two voices in the same roles) end to end, twice over. The last column is the transcription stage's
real-time factor.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import av
import numpy as np

from analyzer import Config, analyze, load_models
from analyzer.audio import SAMPLE_RATE, load
from analyzer.evaluate import cer

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def role_at(turns: list[dict], start: float, end: float) -> str | None:
    overlaps = [(min(end, t["end"]) - max(start, t["start"]), t["role"]) for t in turns]
    best = max(overlaps)
    return best[1] if best[0] > 0 else None


def write_mono(samples: np.ndarray, path: Path) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=SAMPLE_RATE, layout="mono")
        frame = av.AudioFrame.from_ndarray((samples[None] * 32767).astype(np.int16), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--asr-backend", default="faster-whisper", choices=["faster-whisper", "openai-whisper"])
    parser.add_argument("--model", help="as `analyzer analyze --model` takes it")
    parser.add_argument("--compute-type", default="auto", help="auto: int8 on CPU (either backend)")
    parser.add_argument("--as-recorded", action="store_true", help="no mono mixdowns of the stereo calls")
    parser.add_argument("--long", action="store_true", help="also the mono calls end to end, twice, as one call")
    parser.add_argument("--long-wav", type=Path, help="where to keep that call (for benchmarks/speed.py)")
    args = parser.parse_args()
    config = Config(asr_backend=args.asr_backend, whisper_model=args.model, compute_type=args.compute_type)
    models = load_models(config)
    print(f"ASR: {models.whisper.backend}, {models.whisper.name}")
    print("| call | layout | CER | turns | turns with the right role | speech with the right role | transcribe RTF |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for truth_file in sorted(SAMPLES.glob("*.truth.json")):
            truth = json.loads(truth_file.read_text(encoding="utf-8"))
            path = SAMPLES / truth["audio"]
            versions = [(truth["layout"], path)]
            if truth["layout"] == "stereo" and not args.as_recorded:
                mixed = load(path).samples.mean(axis=0)
                versions.append(("stereo mixed to mono", write_mono(mixed, Path(tmp) / truth["audio"])))
            for layout, audio_path in versions:
                print(row(config, models, truth["call_id"], layout, truth["turns"], audio_path), flush=True)
        if args.long:
            turns, path = long_call(args.long_wav or Path(tmp) / "long_call.wav")
            print(row(config, models, "call_02 + call_03 + call_02 + call_03", "mono", turns, path), flush=True)


def row(config: Config, models, call_id: str, layout: str, truth_turns: list[dict], audio_path: Path) -> str:
    result = analyze(audio_path, config, models, call_id=Path(audio_path).stem)
    reference = "".join(t["text"] for t in truth_turns)
    error = cer([(reference, "".join(t.text for t in result.turns))])
    right = [t for t in result.turns if t.role == role_at(truth_turns, t.start, t.end)]
    speech = sum(t.end - t.start for t in result.turns)
    right_speech = sum(t.end - t.start for t in right)
    return (f"| {call_id} | {layout} | {100 * error:.1f}% | {len(result.turns)} | {len(right)}/{len(result.turns)} | "
            f"{100 * right_speech / speech:.1f}% | "
            f"{result.provenance.timings_s['transcribe'] / result.source.duration_s:.3f} |")


def long_call(path: Path) -> tuple[list[dict], Path]:
    """The mono calls end to end, twice over, and their scripted turns moved to match."""
    pieces, turns, offset = [], [], 0.0
    for name in ["call_02_abusive", "call_03_distress"] * 2:
        truth = json.loads((SAMPLES / f"{name}.truth.json").read_text(encoding="utf-8"))
        samples = load(SAMPLES / truth["audio"]).mono()
        pieces.append(samples)
        turns += [dict(t, start=t["start"] + offset, end=t["end"] + offset) for t in truth["turns"]]
        offset += len(samples) / SAMPLE_RATE
    return turns, write_mono(np.concatenate(pieces), path)


if __name__ == "__main__":
    main()
