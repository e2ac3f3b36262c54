"""Real-time factor and peak memory of `analyzer analyze` on one call (default: the 66 s mono 8 kHz sample).

    python benchmarks/speed.py [CALL.wav] [--threads 2] [--repeat 3]

Two figures: the warm per-call time with models loaded (what a batch pays per call), split by stage, and a cold
`analyzer analyze` run in a fresh process (model loading included) with its peak resident memory.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from analyzer import Config, analyze, load_models

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "call_02_abusive.wav"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("call", nargs="?", type=Path, default=SAMPLE)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "analyzer.cli", "analyze", str(args.call), "--out", out, "-q",
                        "--threads", str(args.threads)], check=True)
        cold = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    config = Config(cpu_threads=args.threads)
    models = load_models(config)
    runs = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        result = analyze(args.call, config, models)
        runs.append((time.perf_counter() - started, result.provenance.timings_s))
    duration = result.source.duration_s
    best, stages = min(runs, key=lambda r: r[0])

    print(f"call: {args.call.name}, {duration:.1f} s, {result.source.sample_rate} Hz, "
          f"{result.provenance.params['layout']}; {args.threads} threads")
    print("| measure | seconds | real-time factor |\n|---|---|---|")
    for stage, seconds in stages.items():
        print(f"| stage: {stage} | {seconds:.2f} | {seconds / duration:.3f} |")
    print(f"| warm, per call (best of {args.repeat}) | {best:.2f} | {best / duration:.3f} |")
    print(f"| cold CLI run, model loading included | {cold:.2f} | {cold / duration:.3f} |")
    print(f"\npeak memory of the cold CLI run: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
