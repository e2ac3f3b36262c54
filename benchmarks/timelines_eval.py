"""Pressure and stress on the project's samples against their scripts: where each call's peaks fall and what was
scripted there, and each quarter's highest pressure and stress.

    python benchmarks/timelines_eval.py [--threads 2]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from analyzer import Config, analyze, load_models

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def scripted_acts(script: dict, role: str, t: float) -> str:
    """The acts of the role's scripted turn at (or last before) time t."""
    turns = [turn for turn in script["turns"] if turn["role"] == role and turn["start"] <= t]
    return "+".join(turns[-1]["acts"]) if turns else "-"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    config = Config(cpu_threads=args.threads)
    models = load_models(config)
    peaks_table = ["| call | layout | pressure peak | scripted there | stress peak | scripted there |", "|---|---|---|---|---|---|"]
    quarters_table = ["| call | pressure max by quarter | stress max by quarter |", "|---|---|---|"]
    for truth in sorted(SAMPLES.glob("*.truth.json")):
        script = json.loads(truth.read_text(encoding="utf-8"))
        result = analyze(SAMPLES / script["audio"], config, models)
        cells = [script["call_id"], script["layout"]]
        for series, role in (("collector_pressure", "collector"), ("borrower_stress", "borrower")):
            peak = next(p for p in result.timelines.peaks if p.series == series)
            cells += [f"{peak.value:.2f} at {peak.t:.0f} s", scripted_acts(script, role, peak.t)]
        peaks_table.append("| " + " | ".join(cells) + " |")
        quarters = result.timelines.quarters
        quarters_table.append(f"| {script['call_id']} | " + " ".join(f"{q.collector_pressure_max:.2f}" for q in quarters)
                              + " | " + " ".join(f"{q.borrower_stress_max:.2f}" for q in quarters) + " |")
    print("\n".join(peaks_table))
    print()
    print("\n".join(quarters_table))


if __name__ == "__main__":
    main()
