"""The batch on a Ray cluster: the same `Worker` as a Ray actor, one per worker, each loading the models once
(on a GPU when the cluster has them). The driver reads each recording and ships its bytes, so the cluster's
machines need analyzer installed but not the recordings; results come back to the driver, which writes the
store as the local engine does."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import replace

from .batch import Job, Outcome, Worker, worker_config
from .config import Config

LOCAL_OBJECT_STORE_BYTES = 256 * 1024 * 1024  # a call's audio and result are a few MB; Ray's default is 30% of RAM


class RayEngine:
    name = "ray"

    def __init__(self, config: Config, workers: int | None, with_report: bool = False, address: str | None = None):
        try:
            import ray
        except ImportError as error:
            raise RuntimeError('the Ray engine needs Ray: pip install ".[ray]"') from error
        self.ray = ray
        self.started_here = not ray.is_initialized()
        if self.started_here:
            try:
                if address:
                    ray.init(address=address, logging_level=logging.WARNING)
                else:
                    ray.init(include_dashboard=False, logging_level=logging.WARNING,
                             object_store_memory=LOCAL_OBJECT_STORE_BYTES)
            except (ConnectionError, RuntimeError, ValueError) as error:
                raise RuntimeError(f"cannot start or reach the Ray cluster {address or '(local)'}: {error}") from error
        resources = ray.cluster_resources()
        cpus, gpus = int(resources.get("CPU", 1)), resources.get("GPU", 0)
        use_gpu = gpus > 0 and config.device != "cpu"
        self.workers = workers or (int(gpus) if use_gpu else max(1, cpus))
        config = worker_config(config, self.workers) if not use_gpu else config
        threads = config.cpu_threads or 1
        options = {
            "num_cpus": min(threads, cpus),
            "num_gpus": gpus / self.workers if use_gpu else 0,  # GPU actors share the cluster's GPUs
            "max_restarts": -1,        # a worker that dies comes back, with its models
            "max_task_retries": 1,     # the jobs queued on it are tried once more; the file that killed it fails
        }
        actor_config = replace(config, device="cuda") if use_gpu else config
        self.actors = [ray.remote(Worker).options(**options).remote(actor_config, with_report)
                       for _ in range(self.workers)]

    def describe(self) -> dict:
        # asked of an actor: the driver's machine need not hold the models
        return self.ray.get(self.actors[0].describe.remote())

    def start(self) -> None:
        """The actors loaded their models when they were made."""

    def imap(self, jobs: Iterable[Job]) -> Iterator[Outcome]:
        """Outcomes in the order they finish; two jobs queued per actor so that none waits."""
        ray = self.ray
        queue, pending = iter(jobs), {}
        free = [actor for actor in self.actors for _ in range(2)]
        while True:
            while free and (job := next(queue, None)) is not None:
                try:
                    data = job.path.read_bytes()
                except OSError as error:
                    yield Outcome(job, error=f"cannot read file: {error.strerror or error}")
                    continue
                actor = free.pop()
                pending[actor.analyze.remote(job, data)] = (job, actor)
            if not pending:
                return
            ready, _ = ray.wait(list(pending), num_returns=1)
            job, actor = pending.pop(ready[0])
            free.append(actor)
            try:
                yield ray.get(ready[0])
            except ray.exceptions.RayActorError:
                yield Outcome(job, error="the Ray worker died while analysing this file (killed, out of memory, "
                                         "or a crash in a decoder)")
            except ray.exceptions.RayError as error:
                yield Outcome(job, error=f"internal error: {type(error).__name__}: {error}")

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)
        if self.started_here:
            self.ray.shutdown()
