"""The `analyzer` command: a thin layer over `analyze`."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from . import __version__, batch, export, flags, report
from .config import DOMAIN_TERMS, INITIAL_PROMPT, Config
from .result import CallResult
from .store import Store, StoreError

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
    run.add_argument("--store", type=Path,
                     help="the SQLite store of results, failures and runs (default: <out>/analyzer.sqlite)")
    run.add_argument("--workers", type=int,
                     help="calls analysed at once, each worker with its own models (default: one per core, as "
                          "many as memory holds; 1 on a GPU)")
    run.add_argument("--engine", choices=["local", "ray"], default="local",
                     help="local: worker processes on this machine; ray: Ray actors (pip install '.[ray]')")
    run.add_argument("--ray-address",
                     help="with --engine ray: the cluster to join (e.g. ray://head:10001 or auto); "
                          "default: a Ray instance started on this machine")
    run.add_argument("--asr-backend", choices=["faster-whisper", "openai-whisper"], default="faster-whisper",
                     help="Whisper runtime (openai-whisper: pip install '.[openai-whisper]')")
    run.add_argument("--model",
                     help="faster-whisper: a CTranslate2 or Hugging Face Whisper directory, or a size name; "
                          "openai-whisper: a .pt checkpoint or a size name (default: the bundled multilingual base)")
    run.add_argument("--allow-download", action="store_true",
                     help="fetch a size name that is not in the local caches (off: nothing is downloaded)")
    run.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    run.add_argument("--compute-type", default="auto",
                     help="auto: int8 on CPU, float16 on CUDA; faster-whisper takes any CTranslate2 compute type, "
                          "openai-whisper int8 or float32 on CPU, float16 or float32 on CUDA")
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
    run.add_argument("--force", action="store_true",
                     help="analyse again even when the store has an up-to-date result")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    show = commands.add_parser("report", help="write a readable report (.html and .png) of analysed calls")
    show.add_argument("results", nargs="+", type=Path, help="per-call JSON files, or folders of them")
    show.add_argument("--out", type=Path, help="output folder (default: beside each JSON file)")

    dump = commands.add_parser("export", help="write the store's tables as CSV and Parquet")
    dump.add_argument("store", type=Path, help="the SQLite store (e.g. results/analyzer.sqlite)")
    dump.add_argument("--out", type=Path, required=True, help="output folder")
    dump.add_argument("--format", nargs="+", choices=export.FORMATS, default=list(export.FORMATS))
    dump.add_argument("--deidentify", action="store_true",
                      help="research export: hashed ids, no transcript text, evidence, audio paths or file hashes; "
                           "personal data redacted in any text kept")
    dump.add_argument("--salt", default=os.environ.get("ANALYZER_EXPORT_SALT", ""),
                      help="the secret the ids are hashed with (default $ANALYZER_EXPORT_SALT); the same salt gives "
                           "the same ids in every export")
    dump.add_argument("--redact", action="store_true",
                      help="full export with phone, ID and card numbers and addresses redacted in the text")

    web = commands.add_parser("serve", help="the review app: a queue of the stored calls, each call's page")
    web.add_argument("results", type=Path, help="the SQLite store, or the --out folder that holds analyzer.sqlite")
    web.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    web.add_argument("--port", type=int, default=8765)
    web.add_argument("--token", default=os.environ.get("ANALYZER_TOKEN"),
                     help="require this token on every request, for a shared deployment (default $ANALYZER_TOKEN); "
                          "open the app once with ?token=…")
    web.add_argument("--read-only", action="store_true", help="show calls, take no decisions")

    args = parser.parse_args(argv)
    command = {"analyze": analyze_command, "report": report_command, "export": export_command,
               "serve": serve_command}[args.command]
    return command(args)


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
    if args.workers is not None and args.workers < 1:
        raise SystemExit(f"analyzer: --workers takes a number of at least 1 (got {args.workers})")
    if args.ray_address and args.engine != "ray":
        raise SystemExit("analyzer: --ray-address goes with --engine ray")
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
    jobs, missing = batch.collect_inputs(args.inputs)
    if args.manifest:
        try:
            listed, unlisted = batch.read_manifest(args.manifest)
        except batch.ManifestError as error:
            raise SystemExit(f"analyzer: {error}") from None
        jobs += listed
        missing += unlisted
    args.out.mkdir(parents=True, exist_ok=True)
    _setup_logging(args.out / "analyzer.log")
    try:
        store = Store(args.store or args.out / "analyzer.sqlite")
    except StoreError as error:
        raise SystemExit(f"analyzer: {error}") from None
    with store:
        batch.count_calls_per_day(jobs, store.calls_per_borrower_day())
        summary = batch.Summary()
        for path in missing:
            summary.failures.append((str(path), "file or folder not found"))
            store.record_failure(None, str(path), "file or folder not found")
            log.error("FAILED %s: file or folder not found", path)
        if jobs:
            summary = _run_batch(args, config, jobs, store, summary)
        else:
            log.error("no audio files found in %s", " ".join(map(str, args.inputs)))
    return _finish(args.out, summary)


def _run_batch(args: argparse.Namespace, config: Config, jobs: list[batch.Job], store: Store,
               before: batch.Summary) -> batch.Summary:
    try:
        if args.engine == "ray":
            from .ray_engine import RayEngine

            # without --workers: as many as the cluster's CPUs (or GPUs), not this machine's
            engine = RayEngine(config, args.workers, args.report, args.ray_address)
        else:
            workers = args.workers or batch.default_workers(config.resolved_device())
            engine = batch.LocalEngine(config, min(workers, len(jobs)), args.report)
    except RuntimeError as error:  # Ray not installed, or its cluster not reachable
        raise SystemExit(f"analyzer: {error}") from None
    log.info("starting: device %s, %s engine, %d worker(s)", config.resolved_device(), args.engine, engine.workers)
    try:
        summary = batch.run(jobs, engine, store, args.out, force=args.force, progress=not args.quiet,
                            command=" ".join(sys.argv))
    except (FileNotFoundError, ValueError, RuntimeError) as error:  # a model that cannot be found or loaded
        raise SystemExit(f"analyzer: {error}") from None
    finally:
        engine.close()
    summary.failures[:0] = before.failures
    return summary


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


def export_command(args: argparse.Namespace) -> int:
    try:
        with Store(args.store, readonly=True) as store:
            written = export.export(store, args.out, tuple(args.format), deidentify=args.deidentify,
                                    salt=args.salt, redact_text=args.redact)
    except (StoreError, ValueError) as error:
        raise SystemExit(f"analyzer: {error}") from None
    for path in written:
        print(path)
    return 0


def serve_command(args: argparse.Namespace) -> int:
    import uvicorn

    from .web import create_app

    path = args.results / "analyzer.sqlite" if args.results.is_dir() else args.results
    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.token:
        log.warning("serving on %s without --token: anyone who can reach it can read the calls", args.host)
    try:
        app = create_app(path, readonly=args.read_only, token=args.token)
    except StoreError as error:
        raise SystemExit(f"analyzer: {error}") from None
    print(f"analyzer review: http://{args.host}:{args.port}/ ({path})", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def _write_report(result: CallResult, out: Path) -> Path:
    page, png = report.render(result)
    out.mkdir(parents=True, exist_ok=True)
    batch.write(out / f"{result.call_id}.png", png)
    batch.write(out / f"{result.call_id}.html", page)
    return out / f"{result.call_id}.html"


def _finish(out: Path, summary: batch.Summary) -> int:
    batch.write(out / "summary.json", json.dumps(summary.to_dict(), ensure_ascii=False, indent=1) + "\n")
    for path, reason in summary.failures:
        print(f"FAILED {path}: {reason}", file=sys.stderr)
    return min(len(summary.failures), MAX_EXIT_STATUS)


def _setup_logging(logfile: Path) -> None:
    log.setLevel(logging.INFO)
    log.handlers.clear()
    to_file = logging.FileHandler(logfile, encoding="utf-8")
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(to_file)


if __name__ == "__main__":
    sys.exit(main())
