"""Batch runs over whole archives: the inputs (files, folders, a manifest), what the store already has, and the
rest analysed on parallel workers (processes on this machine, or Ray actors), each call written as it finishes.

Every call is written on its own (files first, then the store in one transaction), so a run killed at any moment
loses at most the calls in flight, and the next run picks up where it stopped.
"""

from __future__ import annotations

import csv
import ctypes
import hashlib
import json
import logging
import multiprocessing
import os
import resource
import socket
import time
import traceback
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from threadpoolctl import threadpool_limits
from tqdm import tqdm

from . import __version__, report
from .audio import AUDIO_EXTENSIONS, AudioError
from .config import Config
from .pipeline import analyze, describe_models, load_models
from .result import CallResult
from .store import Store

log = logging.getLogger("analyzer")
PER_WORKER_MEMORY_GB = 2.0   # a worker's models and one call peak at about 1.5 GB (benchmarks/batch.py)


@dataclass
class Job:
    call_id: str
    path: Path
    metadata: dict = field(default_factory=dict)
    audio_sha256: str = ""


@dataclass
class Outcome:
    """What a worker made of a job: a result (and its report files), or the reason it failed."""

    job: Job
    result: CallResult | None = None
    error: str | None = None
    detail: str = ""                                            # the traceback of an internal error
    files: dict[str, bytes | str] = field(default_factory=dict)  # report files, by name
    seconds: float = 0.0
    worker: str = ""
    peak_rss_mb: float = 0.0                                    # the worker process's peak so far


@dataclass
class Summary:
    analyzed: int = 0
    skipped: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    audio_s: float = 0.0                # of the calls analysed in this run
    wall_s: float = 0.0
    peak_rss_mb: dict[str, float] = field(default_factory=dict)  # by worker

    def to_dict(self) -> dict:
        return {"analyzed": self.analyzed, "skipped_up_to_date": self.skipped, "failed": len(self.failures),
                "failures": [{"path": p, "error": e} for p, e in self.failures],
                "audio_hours": round(self.audio_s / 3600, 4), "wall_s": round(self.wall_s, 1),
                "peak_rss_mb_per_worker": self.peak_rss_mb}


# --- inputs ---------------------------------------------------------------------------------------------------

def collect_inputs(inputs: list[Path]) -> tuple[list[Job], list[Path]]:
    """A job for every file named or found in a folder (recursively), and the inputs that do not exist.

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
        jobs.append(Job(call_id, path))
    return jobs, missing


class ManifestError(ValueError):
    """A manifest that cannot be used; the message names the file and line."""


def read_manifest(manifest: Path) -> tuple[list[Job], list[Path]]:
    """Jobs with their metadata, and the listed files that do not exist. Relative paths are from the manifest's
    folder; every column but `path` and `call_id` is kept as the call's metadata."""
    try:
        with open(manifest, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ManifestError(f"cannot read the manifest {manifest}: {error}") from None
    if not rows or "path" not in rows[0]:
        raise ManifestError(f"the manifest {manifest} needs a header row with a `path` column")
    jobs, missing, seen = [], [], set()
    for number, row in enumerate(rows, start=2):
        path = Path(row["path"]) if Path(row["path"]).is_absolute() else manifest.parent / row["path"]
        call_id = row.get("call_id") or path.stem
        if call_id in seen:
            raise ManifestError(f"{manifest}:{number}: call_id {call_id!r} is listed twice")
        seen.add(call_id)
        started = row.get("started_at") or ""
        if started:
            try:
                datetime.fromisoformat(started)
            except ValueError:
                raise ManifestError(f"{manifest}:{number}: started_at {started!r} is not an ISO 8601 date and "
                                    "time") from None
        metadata = {k: v for k, v in row.items() if k not in ("path", "call_id") and v not in (None, "")}
        if path.is_file():
            jobs.append(Job(call_id, path, metadata))
        else:
            missing.append(path)
    return jobs, missing


def count_calls_per_day(jobs: list[Job], stored: dict[tuple[str, str], set[str]]) -> None:
    """Set each job's `calls_to_borrower_that_day`: the distinct calls to the same borrower on the same date,
    among these jobs and the calls already in the store."""
    per_day = {key: set(ids) for key, ids in stored.items()}
    for job in jobs:
        key = _borrower_day(job.metadata)
        if key:
            per_day.setdefault(key, set()).add(job.call_id)
    for job in jobs:
        key = _borrower_day(job.metadata)
        if key:
            job.metadata["calls_to_borrower_that_day"] = len(per_day[key])


def _borrower_day(metadata: dict) -> tuple[str, str] | None:
    if metadata.get("borrower_id") and metadata.get("started_at"):
        return metadata["borrower_id"], metadata["started_at"][:10]
    return None


# --- workers --------------------------------------------------------------------------------------------------

class Worker:
    """The models, loaded once, and the analysis of one job at a time: one per process or Ray actor."""

    def __init__(self, config: Config, with_report: bool = False):
        self.config, self.with_report = config, with_report
        # BLAS and OpenMP pools (numpy, librosa) to the worker's share of the cores, as torch and CTranslate2 are
        # by `cpu_threads`; kept for the worker's life
        self.thread_limits = threadpool_limits(config.cpu_threads) if config.cpu_threads else None
        self.models = load_models(config)
        self.name = f"{socket.gethostname()}:{os.getpid()}"

    def describe(self) -> dict:
        return {"models": self.models.description, "params": self.config.params()}

    def analyze(self, job: Job, data: bytes | None = None) -> Outcome:
        started = time.perf_counter()
        outcome = Outcome(job, worker=self.name)
        try:
            outcome.result = analyze(job.path, self.config, self.models, call_id=job.call_id,
                                     metadata=job.metadata, data=data)
            if self.with_report:
                page, png = report.render(outcome.result)
                outcome.files = {f"{job.call_id}.html": page, f"{job.call_id}.png": png}
        except AudioError as error:
            outcome.error = str(error)
        except Exception as error:  # one broken file must not stop the batch
            outcome.error = f"internal error: {type(error).__name__}: {error}"
            outcome.detail = traceback.format_exc()
        _release_freed_memory()
        outcome.seconds = time.perf_counter() - started
        outcome.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return outcome


def _release_freed_memory() -> None:
    """Hand the memory a call freed back to the system. glibc keeps it in its arenas otherwise, and a worker's
    resident size climbs call after call (1.1 GB to 2.2 GB over 16 calls, measured; 1.1 GB steady with this)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def fingerprint(described: dict, metadata: dict) -> str:
    """What a stored result depends on: analyzer version, models, settings that change results (not the thread
    count), and the call's metadata. A stored call with another fingerprint is analysed again.

    The CPU's int8 library is left out: it moves Whisper's output a little, but an archive is not analysed
    again because a rerun lands on a machine of another make (the result records which it was)."""
    params = {k: v for k, v in described["params"].items() if k not in ("cpu_threads", "layout")}
    models = {**described["models"]}
    models["asr"] = {k: v for k, v in models["asr"].items() if k != "cpu_int8_gemm"}
    content = {"analyzer": __version__, "models": models, "params": params, "metadata": metadata}
    return hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def default_workers(device: str) -> int:
    """One worker per core, as many as memory holds; one on a GPU (its model copy fills the device)."""
    if device == "cuda":
        return 1
    available_gb = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 1e9
    return max(1, min(os.cpu_count() or 1, int(available_gb // PER_WORKER_MEMORY_GB)))


def worker_config(config: Config, workers: int) -> Config:
    """The configuration each worker runs with: the cores shared between the workers unless set."""
    threads = config.cpu_threads or max(1, (os.cpu_count() or 1) // workers)
    return replace(config, cpu_threads=threads)


_worker: Worker | None = None  # the pool process's own Worker, made by its first task


def _in_process(config: Config, with_report: bool) -> Worker:
    # not in the pool's initializer: an error there (a model that cannot load) would break the pool and lose its
    # message; raised by a task, it reaches the caller as it is
    global _worker
    if _worker is None:
        _worker = Worker(config, with_report)
    return _worker


def _start(config: Config, with_report: bool) -> None:
    _in_process(config, with_report)


def _analyze(config: Config, with_report: bool, job: Job) -> Outcome:
    return _in_process(config, with_report).analyze(job)


def _outcome(future: Future, job: Job) -> Outcome:
    try:
        return future.result()
    except Exception as error:  # the job or its result could not pass between processes
        return Outcome(job, error=f"internal error: {type(error).__name__}: {error}", detail=traceback.format_exc())


class LocalEngine:
    """Worker processes on this machine, each loading the models once."""

    name = "local"

    def __init__(self, config: Config, workers: int, with_report: bool = False):
        self.config, self.workers, self.with_report = worker_config(config, workers), workers, with_report
        self.pool = self._pool()

    def _pool(self) -> ProcessPoolExecutor:
        # spawn, not fork: torch and CTranslate2 thread pools do not survive a fork
        return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))

    def describe(self) -> dict:
        """The models and settings the workers will run with, learnt without loading anything."""
        return {"models": describe_models(self.config), "params": self.config.params()}

    def start(self) -> None:
        """Every worker loads its models now, side by side; a model that cannot load stops the run here."""
        for future in [self.pool.submit(_start, self.config, self.with_report) for _ in range(self.workers)]:
            future.result()

    def imap(self, jobs: Iterable[Job]) -> Iterator[Outcome]:
        """Outcomes in the order they finish, a few jobs queued per worker so that none waits. When a worker
        process dies (killed, out of memory, a crash in a decoder), the jobs in flight are tried again one at a
        time, so that only the file that kills its worker is recorded as failed."""
        queue, pending, suspects = iter(jobs), {}, []
        while True:
            if suspects:
                job = suspects.pop(0)
                future = self.pool.submit(_analyze, self.config, self.with_report, job)
                wait([future])
                if isinstance(future.exception(), BrokenProcessPool):
                    self._restart()
                    yield Outcome(job, error="the worker process died while analysing this file (killed, out of "
                                             "memory, or a crash in a decoder)")
                else:
                    yield _outcome(future, job)
                continue
            while len(pending) < 2 * self.workers and (job := next(queue, None)) is not None:
                pending[self.pool.submit(_analyze, self.config, self.with_report, job)] = job
            if not pending:
                return
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                job = pending.pop(future)
                if isinstance(future.exception(), BrokenProcessPool):
                    suspects.append(job)
                else:
                    yield _outcome(future, job)
            if suspects:
                suspects.extend(pending.values())
                pending.clear()
                self._restart()

    def _restart(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.pool = self._pool()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


# --- the run --------------------------------------------------------------------------------------------------

def run(jobs: list[Job], engine, store: Store, out: Path, force: bool = False, progress: bool = True,
        command: str = "") -> Summary:
    """Analyse every job not already in the store with the same fingerprint; write each call's JSON, transcript
    (and report) into `out` and into the store as it finishes; record each failure and go on."""
    started = time.perf_counter()
    summary = Summary()
    _remove_stale_partials(out)
    described = engine.describe()
    run_id = store.start_run(__version__, command, engine.name, engine.workers, described["models"],
                             described["params"])
    done, todo, seen = store.done(), [], {}
    for job in jobs:
        try:
            job.audio_sha256 = store.audio_sha256(job.path)
        except OSError as error:
            _fail(store, run_id, summary, job, f"cannot read file: {error.strerror or error}")
            continue
        if job.audio_sha256 in seen:
            log.warning("%s: same audio as %s, analysed once", job.path, seen[job.audio_sha256])
            summary.skipped += 1
            continue
        seen[job.audio_sha256] = job.call_id
        stored = done.get(job.audio_sha256)
        if not force and stored == (job.call_id, fingerprint(described, job.metadata)):
            _restore_files(store, job.call_id, out)
            summary.skipped += 1
        else:
            todo.append(job)
    log.info("%d to analyse, %d up to date, %d failed before analysis", len(todo), summary.skipped,
             len(summary.failures))
    if todo:  # only now: a rerun with nothing left to do loads no model
        log.info("loading the models in %d worker(s)", engine.workers)
        engine.start()
    # longest first: the last calls to finish are short ones, so that no worker waits long at the end
    todo.sort(key=_size, reverse=True)

    bar = tqdm(total=len(todo), desc="analyzing", unit="call", disable=not progress, dynamic_ncols=True)
    try:
        for outcome in engine.imap(todo):
            job = outcome.job
            summary.peak_rss_mb[outcome.worker or "?"] = round(outcome.peak_rss_mb)
            if outcome.result is None:
                if outcome.detail:
                    log.error("%s", outcome.detail.rstrip())
                _fail(store, run_id, summary, job, outcome.error)
            else:
                _keep(outcome, fingerprint(described, job.metadata), store, run_id, out)
                summary.analyzed += 1
                summary.audio_s += outcome.result.source.duration_s
                log.info("%s: %d turns, %.1f s audio in %.1f s (%s)", job.call_id, len(outcome.result.turns),
                         outcome.result.source.duration_s, outcome.seconds, outcome.worker)
            bar.set_postfix(done=summary.analyzed, skipped=summary.skipped, failed=len(summary.failures))
            bar.update()
    finally:
        bar.close()
    summary.wall_s = time.perf_counter() - started
    store.finish_run(run_id, summary.analyzed, summary.skipped, len(summary.failures))
    log.info("%d analysed, %d up to date, %d failed", summary.analyzed, summary.skipped, len(summary.failures))
    return summary


def _size(job: Job) -> int:
    try:
        return job.path.stat().st_size
    except OSError:  # gone since it was hashed: its worker reports it
        return 0


def _keep(outcome: Outcome, call_fingerprint: str, store: Store, run_id: int, out: Path) -> None:
    """Files first, then the store: a kill in between leaves the call not done, to be analysed again."""
    result = outcome.result
    write(out / f"{result.call_id}.json", result.to_json() + "\n")
    write(out / f"{result.call_id}.txt", result.transcript())
    for name, content in outcome.files.items():
        write(out / name, content)
    replaced = store.save(result, call_fingerprint, run_id)
    if replaced:
        log.warning("%s: replaces the earlier call %s (other audio under the same call id)", result.call_id, replaced)


def _fail(store: Store, run_id: int, summary: Summary, job: Job, error: str) -> None:
    summary.failures.append((str(job.path), error))
    store.record_failure(run_id, str(job.path), error, job.audio_sha256 or None, job.call_id)
    log.error("FAILED %s: %s", job.path, error)


def _restore_files(store: Store, call_id: str, out: Path) -> None:
    """A call done in the store whose JSON was removed from `out` gets it back, without analysing it again."""
    target = out / f"{call_id}.json"
    if not target.is_file():
        result = store.result(call_id)
        write(target, result.to_json() + "\n")
        write(target.with_suffix(".txt"), result.transcript())


def write(target: Path, content: str | bytes) -> None:
    """Write all or nothing: a crash leaves the previous file, never half of a new one."""
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    if isinstance(content, bytes):
        partial.write_bytes(content)
    else:
        partial.write_text(content, encoding="utf-8")
    os.replace(partial, target)


def _remove_stale_partials(out: Path) -> None:
    """Half-written files of a process that was killed (`write` names them .<name>.<pid>.partial)."""
    for partial in out.glob(".*.partial"):
        pid = partial.name.rsplit(".", 2)[-2]
        if pid.isdigit() and not _alive(int(pid)):
            partial.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

