"""Batch throughput: audio hours analysed per wall-clock hour for a 20-call archive, local workers 1 vs 2 and the
Ray engine, with each worker's peak memory. Each run is the whole `analyzer analyze` command, model loading
included, into a fresh store.

    python benchmarks/batch.py [--calls 20] [--runs local:1 local:2 ray:2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import SAMPLE_IDS, SAMPLES, encode  # noqa: E402

from analyzer.audio import SAMPLE_RATE, load  # noqa: E402


def make_archive(folder: Path, calls: int) -> float:
    """`calls` recordings: the samples, each copy at a slightly different level (so that every file is its own
    recording to the store). Returns the audio's total seconds."""
    total = 0.0
    for n in range(calls):
        samples = load(SAMPLES / f"{SAMPLE_IDS[n % len(SAMPLE_IDS)]}.wav").samples
        encode(samples * (1.0 - 0.002 * n), SAMPLE_RATE, folder / f"call_{n:02d}.wav", "pcm_s16le")
        total += samples.shape[1] / SAMPLE_RATE
    return total


def run(archive: Path, engine: str, workers: int) -> dict:
    with tempfile.TemporaryDirectory() as out:
        cpu_before = _cpu_of_children()
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "analyzer.cli", "analyze", str(archive), "--out", out,
                               "--engine", engine, "--workers", str(workers), "-q"], capture_output=True, text=True)
        wall = time.perf_counter() - started
        cpu = _cpu_of_children() - cpu_before
        if done.returncode != 0:
            raise SystemExit(f"{engine}:{workers} failed:\n{done.stderr[-3000:]}")
        summary = json.loads((Path(out) / "summary.json").read_text())
    return {"wall_s": wall, "cpu_s": cpu, "audio_h": summary["audio_hours"],
            "peak_mb": summary["peak_rss_mb_per_worker"], "analyzed": summary["analyzed"]}


def _cpu_of_children() -> float:
    """CPU seconds of every finished descendant (the command, its workers, Ray's processes once reaped)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--runs", nargs="+", default=["local:1", "local:2", "ray:2"], help="engine:workers")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        archive = Path(folder)
        audio_s = make_archive(archive, args.calls)
        print(f"{args.calls} calls, {audio_s / 60:.1f} min of audio\n")
        print("| engine | workers | wall s | cores busy | audio h / wall h | vs first | peak MB per worker |")
        print("|---|---|---|---|---|---|---|")
        base = None
        for spec in args.runs:
            engine, workers = spec.split(":")
            measured = run(archive, engine, int(workers))
            assert measured["analyzed"] == args.calls
            throughput = measured["audio_h"] / (measured["wall_s"] / 3600)
            base = base or throughput
            peaks = ", ".join(str(v) for v in sorted(measured["peak_mb"].values()))
            # Ray's processes are not this script's children: their CPU time is not counted
            busy = f"{measured['cpu_s'] / measured['wall_s']:.2f}" if engine == "local" else "–"
            print(f"| {engine} | {workers} | {measured['wall_s']:.0f} | {busy} "
                  f"| {throughput:.1f} | {throughput / base:.2f}x "
                  f"| {peaks} |", flush=True)
    print(f"\nmachine: {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
