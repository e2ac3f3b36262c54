"""CER of the analyzer's transcription on ../shared/data/asr_zh (16 kHz and the 8 kHz telephone copies).

    python benchmarks/asr_cer.py [--shared ../shared] [--asr-backend faster-whisper|openai-whisper] [--model M]
                                 [--compute-type auto|int8|float32]
                                 [--prompt] [--hotwords] [--show] [--joined GAP_S]

Each clip goes through the same path as a call: VAD, padded speech chunks, Whisper (with the domain prompt and
hotwords when asked), Simplified conversion, domain-term fixes and the hallucination guard. Prints a table.

--joined GAP_S puts every clip's speech (from its first VAD region to its last) end to end in one recording of 45 s,
GAP_S seconds of silence between them, like one channel of a call where stretches of speech in different voices
follow each other: Whisper then decodes them in shared 30 s windows, where it can pass over one of them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from analyzer import audio, transcribe, vad
from analyzer.config import DOMAIN_TERMS, INITIAL_PROMPT, Config
from analyzer.evaluate import cer, join_speech


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared")
    parser.add_argument("--asr-backend", default="faster-whisper", choices=transcribe.BACKENDS)
    parser.add_argument("--model", help="as `analyzer analyze --model` takes it")
    parser.add_argument("--compute-type", default="auto", help="auto: int8 on CPU (either backend)")
    parser.add_argument("--prompt", action="store_true", help="decode with the domain prompt")
    parser.add_argument("--hotwords", action="store_true", help="decode with the domain terms as hotwords")
    parser.add_argument("--show", action="store_true", help="print every reference and hypothesis")
    parser.add_argument("--joined", type=float, metavar="GAP_S", help="decode all clips as one recording")
    args = parser.parse_args()
    root = args.shared / "data/asr_zh"
    if not root.is_dir():
        sys.exit(f"no data at {root}")
    config = Config(asr_backend=args.asr_backend, whisper_model=args.model, compute_type=args.compute_type)
    if args.prompt:
        config.initial_prompt = INITIAL_PROMPT
    if args.hotwords:
        config.hotwords = DOMAIN_TERMS
    whisper = transcribe.load(config)
    rows = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines() if line.strip()]

    print(f"model: {whisper.name}; prompt: {bool(config.initial_prompt)}; hotwords: {bool(config.hotwords)}")
    print(f"| audio | clips | chars | CER | RTF |\n|---|---|---|---|---|")
    for key, label in (("wav", "16 kHz"), ("wav_8k", "8 kHz telephone band")):
        recordings = [(row["text"], audio.load(root / row[key]).mono()) for row in rows]
        if args.joined is not None:
            recordings = [join_speech(recordings, args.joined)]
        pairs, audio_s, started = [], 0.0, time.perf_counter()
        for reference, samples in recordings:
            words, _ = transcribe.transcribe(whisper, samples, vad.detect(samples).decode, config)
            hypothesis = "".join(w.text for w in words)
            pairs.append((reference, hypothesis))
            audio_s += len(samples) / audio.SAMPLE_RATE
            if args.show:
                print(f"  REF {reference}\n  HYP {hypothesis}")
        rtf = (time.perf_counter() - started) / audio_s
        chars = sum(len(r) for r, _ in pairs)
        print(f"| {label} | {len(pairs)} | {chars} | {100 * cer(pairs):.1f}% | {rtf:.3f} |", flush=True)


if __name__ == "__main__":
    main()
