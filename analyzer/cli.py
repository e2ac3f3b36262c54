"""The `analyzer` command: a thin layer over `analyze`."""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import sys
import time
from datetime import datetime
from pathlib import Path

from tqdm import tqdm

from . import __version__, flags, report
from .audio import AUDIO_EXTENSIONS, AudioError, sha256_of
from .config import DOMAIN_TERMS, INITIAL_PROMPT, Config
from .pipeline import analyze, load_models
from .result import CallResult

log = logging.getLogger("analyzer")
MAX_EXIT_STATUS = 100  # the exit status is the number of failed files, capped here


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="analyzer", description=__doc__)
    parser.add_argument("--version", action="version", version=f"analyzer {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("analyze", help="analyse recordings into <out>/<call_id>.json and .txt")
    run.add_argument("inputs", nargs="*", type=Path, help="audio files or folders (searched recursively)")
    run.add_argument("--manifest", type=Path,
                     help="a CSV with a `path` column and optional call_id, collector_id, borrower_id, started_at "
                          "(ISO 8601, local time), direction and any other columns, kept as the call's metadata")
    run.add_argument("--rules", type=Path, help="a rulebook YAML file (default: the one installed with analyzer)")
    run.add_argument("--out", type=Path, required=True, help="output folder")
    run.add_argument("--asr-backend", choices=["faster-whisper", "openai-whisper"], default="faster-whisper",
                     help="Whisper runtime (openai-whisper: pip install '.[openai-whisper]')")
    run.add_argument("--model",
                     help="faster-whisper: a CTranslate2 or Hugging Face Whisper directory, or a size name; "
                          "openai-whisper: a .pt checkpoint or a size name (default: the bundled multilingual base)")
    run.add_argument("--allow-download", action="store_true",
                     help="fetch a size name that is not in the local caches (off: nothing is downloaded)")
    run.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    run.add_argument("--compute-type", default="auto", help="CTranslate2 compute type (auto: int8 CPU, float16 CUDA)")
    run.add_argument("--threads", type=int, default=0, help="CPU threads (0: all cores)")
    run.add_argument("--beam-size", type=int, default=5)
    run.add_argument("--domain-prompt", action="store_true",
                     help="decode with a collection-domain prompt and hotwords, for a larger --model "
                          "(with the bundled base model it makes transcripts worse: see README)")
    run.add_argument("--speakers",
                     help="speakers in mono recordings: a number, or 'auto' to count them (default 2: a phone call; "
                          "1 when both are one voice)")
    run.add_argument("--min-speakers", type=int, help="with --speakers auto: at least this many")
    run.add_argument("--max-speakers", type=int, help="with --speakers auto: at most this many")
    run.add_argument("--diarizer", choices=["builtin", "pyannote"], default="builtin",
                     help="mono diarization: the built-in one (offline), or a stock pyannote.audio pipeline "
                          "(pip install '.[pyannote]')")
    run.add_argument("--pyannote-pipeline", default=Config.pyannote_pipeline,
                     help="with --diarizer pyannote: a local pipeline directory or a Hugging Face id (token in HF_TOKEN)")
    run.add_argument("--classifier", help="a text classifier directory (default: the one installed with analyzer)")
    run.add_argument("--timeline-step", type=float, default=Config.timeline_step_s,
                     help="seconds between the points of the pressure, stress and emotion timelines (default 1)")
    run.add_argument("--report", action="store_true", help="also write each call's report (.html and .png)")
    run.add_argument("--force", action="store_true", help="analyse again even when a result is up to date")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    show = commands.add_parser("report", help="write a readable report (.html and .png) of analysed calls")
    show.add_argument("results", nargs="+", type=Path, help="per-call JSON files, or folders of them")
    show.add_argument("--out", type=Path, help="output folder (default: beside each JSON file)")

    args = parser.parse_args(argv)
    return analyze_command(args) if args.command == "analyze" else report_command(args)


def analyze_command(args: argparse.Namespace) -> int:
    num_speakers, min_speakers = _speaker_count(args)
    if not args.inputs and not args.manifest:
        raise SystemExit("analyzer: give audio files or folders, or --manifest CSV")
    try:
        flags.load(args.rules)  # a faulty rulebook stops the run before anything is written or analysed
    except flags.RulebookError as error:
        raise SystemExit(f"analyzer: {error}") from None
    if not 0 < args.timeline_step <= 60:
        raise SystemExit(f"analyzer: --timeline-step takes seconds above 0 and at most 60 (got {args.timeline_step})")
    args.out.mkdir(parents=True, exist_ok=True)
    _setup_logging(args.out / "analyzer.log")
    config = Config(
        device=args.device, asr_backend=args.asr_backend, whisper_model=args.model,
        allow_download=args.allow_download, compute_type=args.compute_type,
        cpu_threads=args.threads, beam_size=args.beam_size, num_speakers=num_speakers,
        min_speakers=min_speakers, max_speakers=args.max_speakers, diarizer=args.diarizer,
        pyannote_pipeline=args.pyannote_pipeline, classifier_model=args.classifier,
        timeline_step_s=args.timeline_step, rules=str(args.rules) if args.rules else None,
    )
    if args.domain_prompt:
        config.initial_prompt, config.hotwords = INITIAL_PROMPT, DOMAIN_TERMS
    jobs, missing = collect_inputs(args.inputs)
    metadata = {}
    if args.manifest:
        listed, metadata, unlisted = read_manifest(args.manifest)
        jobs += listed
        missing += unlisted
    failures = [(str(path), "file or folder not found") for path in missing]
    for path, reason in failures:
        log.error("FAILED %s: %s", path, reason)
    if not jobs:
        log.error("no audio files found in %s", " ".join(map(str, args.inputs)))
        return _finish(args.out, 0, 0, failures)

    log.info("loading models (device %s)", config.resolved_device())
    try:
        models = load_models(config)
    except (FileNotFoundError, ValueError, RuntimeError) as error:  # a model that cannot be found or loaded
        raise SystemExit(f"analyzer: {error}") from None
    done = skipped = 0
    for call_id, path in tqdm(jobs, desc="analyzing", unit="call", disable=args.quiet):
        target = args.out / f"{call_id}.json"
        try:
            if not args.force and _up_to_date(target, path, config, models, metadata.get(call_id, {})):
                skipped += 1
                continue
            started = time.perf_counter()
            result = analyze(path, config, models, call_id=call_id, metadata=metadata.get(call_id))
            _write(target, result.to_json() + "\n")
            _write(target.with_suffix(".txt"), result.transcript())
            if args.report:
                _write_report(result, args.out)
            done += 1
            log.info("%s: %d turns, %.1f s audio in %.1f s", call_id, len(result.turns),
                     result.source.duration_s, time.perf_counter() - started)
        except AudioError as error:
            failures.append((str(path), str(error)))
            log.error("FAILED %s: %s", path, error)
        except Exception as error:  # one broken file must not stop the batch
            failures.append((str(path), f"internal error: {type(error).__name__}: {error}"))
            log.exception("FAILED %s: internal error", path)
    return _finish(args.out, done, skipped, failures)


def _speaker_count(args: argparse.Namespace) -> tuple[int | None, int]:
    """(num_speakers, min_speakers) from --speakers, --min-speakers and --max-speakers."""
    bounded = args.min_speakers is not None or args.max_speakers is not None
    if args.speakers == "auto" or (args.speakers is None and bounded):
        low, high = args.min_speakers or 1, args.max_speakers
        if low < 1 or (high is not None and high < low):
            raise SystemExit("analyzer: need 1 <= --min-speakers <= --max-speakers")
        return None, low
    if bounded:
        raise SystemExit("analyzer: --min-speakers and --max-speakers go with --speakers auto")
    if args.speakers is None:
        return 2, 1  # a phone call: two parties, or one voice
    if not args.speakers.isdigit() or int(args.speakers) < 1:
        raise SystemExit(f"analyzer: --speakers takes a number of at least 1, or 'auto' (got {args.speakers!r})")
    return int(args.speakers), int(args.speakers)


def collect_inputs(inputs: list[Path]) -> tuple[list[tuple[str, Path]], list[Path]]:
    """(call_id, path) for every file named or found in a folder, and the inputs that do not exist.

    A call's id is its file name without extension; where two files share one, the path below the folder given
    tells them apart (a/call.wav and b/call.wav become a__call and b__call).
    """
    found, missing = [], []
    for item in inputs:
        if item.is_dir():
            files = sorted(p for p in item.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
            found.extend((p, p.relative_to(item)) for p in files)
        elif item.exists():
            found.append((item, Path(item.name)))
        else:
            missing.append(item)
    stems: dict[str, int] = {}
    for _, relative in found:
        stems[relative.stem] = stems.get(relative.stem, 0) + 1
    jobs = []
    for path, relative in found:
        call_id = relative.stem if stems[relative.stem] == 1 else "__".join(relative.with_suffix("").parts)
        jobs.append((call_id, path))
    return jobs, missing


def read_manifest(manifest: Path) -> tuple[list[tuple[str, Path]], dict[str, dict], list[Path]]:
    """Jobs, each call's metadata, and the listed files that do not exist. Relative paths are from the manifest's
    folder. `calls_to_borrower_that_day` is counted from the manifest (same borrower_id, same date)."""
    try:
        with open(manifest, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise SystemExit(f"analyzer: cannot read the manifest {manifest}: {error}") from None
    if not rows or "path" not in rows[0]:
        raise SystemExit(f"analyzer: the manifest {manifest} needs a header row with a `path` column")
    jobs, metadata, missing, per_day = [], {}, [], {}
    for number, row in enumerate(rows, start=2):
        path = Path(row["path"]) if Path(row["path"]).is_absolute() else manifest.parent / row["path"]
        call_id = row.get("call_id") or path.stem
        if call_id in metadata:
            raise SystemExit(f"analyzer: {manifest}:{number}: call_id {call_id!r} is listed twice")
        started = row.get("started_at") or ""
        if started:
            try:
                datetime.fromisoformat(started)
            except ValueError:
                raise SystemExit(f"analyzer: {manifest}:{number}: started_at {started!r} is not an ISO 8601 "
                                 "date and time") from None
        metadata[call_id] = {k: v for k, v in row.items() if k not in ("path", "call_id") and v not in (None, "")}
        if row.get("borrower_id") and started:
            key = (row["borrower_id"], started[:10])
            per_day[key] = per_day.get(key, 0) + 1
        if path.is_file():
            jobs.append((call_id, path))
        else:
            missing.append(path)
    for values in metadata.values():
        if values.get("borrower_id") and values.get("started_at"):
            values["calls_to_borrower_that_day"] = per_day[(values["borrower_id"], values["started_at"][:10])]
    return jobs, metadata, missing


def _up_to_date(target: Path, path: Path, config: Config, models, metadata: dict) -> bool:
    """A result for the same audio, metadata, analyser version, models, rulebook and settings exists already."""
    if not target.is_file():
        return False
    try:
        previous = CallResult.load(target)
    except (ValueError, KeyError, TypeError, json.JSONDecodeError):
        return False
    params = {k: v for k, v in previous.provenance.params.items() if k != "layout"}
    return (
        previous.provenance.analyzer_version == __version__
        and previous.provenance.models == models.describe()
        and params == config.params()
        and previous.metadata == metadata
        and previous.source.sha256 == sha256_of(path)
    )


def report_command(args: argparse.Namespace) -> int:
    """Reports for per-call JSON files; one that cannot be read is reported and the others go on."""
    paths, failures = [], []
    for item in args.results:
        if item.is_dir():
            paths.extend(p for p in sorted(item.glob("*.json")) if p.name != "summary.json")
        elif item.is_file():
            paths.append(item)
        else:
            failures.append((str(item), "file or folder not found"))
    if not paths and not failures:
        failures.append((" ".join(map(str, args.results)), "no per-call JSON files found"))
    for path in paths:
        try:
            result = CallResult.load(path)
        except (OSError, UnicodeDecodeError) as error:
            failures.append((str(path), f"cannot read: {error}"))
            continue
        except (ValueError, KeyError, TypeError) as error:  # not JSON, another schema, fields missing
            failures.append((str(path), f"not an analyzer result: {error}"))
            continue
        written = _write_report(result, args.out or path.parent)
        print(written)
    for path, reason in failures:
        print(f"FAILED {path}: {reason}", file=sys.stderr)
    return min(len(failures), MAX_EXIT_STATUS)


def _write_report(result: CallResult, out: Path) -> Path:
    page, png = report.render(result)
    out.mkdir(parents=True, exist_ok=True)
    _write(out / f"{result.call_id}.png", png)
    _write(out / f"{result.call_id}.html", page)
    return out / f"{result.call_id}.html"


def _write(target: Path, content: str | bytes) -> None:
    """Write all or nothing: a crash leaves the previous file, never half of a new one."""
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    if isinstance(content, bytes):
        partial.write_bytes(content)
    else:
        partial.write_text(content, encoding="utf-8")
    os.replace(partial, target)


def _finish(out: Path, done: int, skipped: int, failures: list[tuple[str, str]]) -> int:
    summary = {"analyzed": done, "skipped_up_to_date": skipped, "failed": len(failures),
               "failures": [{"path": p, "error": e} for p, e in failures]}
    _write(out / "summary.json", json.dumps(summary, ensure_ascii=False, indent=1) + "\n")
    log.info("%d analysed, %d up to date, %d failed", done, skipped, len(failures))
    for path, reason in failures:
        print(f"FAILED {path}: {reason}", file=sys.stderr)
    return min(len(failures), MAX_EXIT_STATUS)


def _setup_logging(logfile: Path) -> None:
    log.setLevel(logging.INFO)
    log.handlers.clear()
    to_file = logging.FileHandler(logfile, encoding="utf-8")
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(to_file)


if __name__ == "__main__":
    sys.exit(main())
