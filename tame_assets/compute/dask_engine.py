"""The Dask engine: a ``distributed.Client`` on a cluster we start (LocalCluster, dask-jobqueue
SLURM/PBS, dask-kubernetes) or on an existing scheduler. Leaf module: imports distributed.

Failures end with one line instead of a wait or a raw traceback: a ``dask://`` scheduler that cannot
be reached within ``connect_timeout_s`` (the address and the reason); no worker within
``worker_timeout_s`` of the start; a worker lost while the engine starts (retried once, then
explained); and a run left without any worker for ``worker_timeout_s`` (the chunks done so far).
"""

from __future__ import annotations

import logging
import time
import uuid
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator

from distributed import Client, WorkerPlugin, as_completed, get_worker
from distributed.client import FutureCancelledError
from distributed.comm.core import CommClosedError
from distributed.scheduler import KilledWorker

from tame_assets.compute.settings import LOCAL_WHERE, ChunkProgress, ComputeSettings

TORCH_PLUGIN = "tame-torch-threads"


class TorchThreads(WorkerPlugin):
    """Sets ``torch.set_num_threads(n)`` in every worker process (also in ones that join later)."""

    def __init__(self, n: int):
        self.n = n

    def setup(self, worker) -> None:
        import torch

        torch.set_num_threads(self.n)


def _has_torch_plugin(dask_worker) -> bool:
    """True in a worker whose :class:`TorchThreads` set-up has run (``Client.run`` target)."""
    return TORCH_PLUGIN in dask_worker.plugins


def _run_chunk(fn: Callable[[Any], Any], chunk: Any) -> tuple[str, Any]:
    """(address of the worker that ran it, ``fn(chunk)``)."""
    try:
        where = get_worker().address
    except ValueError:
        where = LOCAL_WHERE
    return where, fn(chunk)


#: Seconds between checks for finished chunks, and between asking the scheduler for its workers.
POLL_S, WORKER_CHECK_S = 0.02, 0.5


class DaskEngine:
    """Chunks as Dask tasks; see :meth:`map_chunks`. ``worker_timeout_s``: how long a run waits with
    no worker connected before it fails."""

    distributed = True

    def __init__(self, client: Client, description: str, worker_timeout_s: float = 300.0):
        self.client, self.description, self.worker_timeout_s = client, description, worker_timeout_s

    def map_chunks(
        self,
        fn: Callable[[Any], Any],
        chunks: Iterable[Any],
        *,
        on_progress: ChunkProgress | None = None,
        retries: int = 2,
    ) -> list:
        """``[fn(c) for c in chunks]`` on the cluster, results in input order.

        A chunk that raises is re-run up to ``retries`` times by distributed (``retries=``); a chunk
        whose worker died (the scheduler reschedules it itself, up to its ``allowed-failures``, then
        reports ``KilledWorker``) is resubmitted up to ``retries`` more times from here.
        ``on_progress(done, total, worker address)`` is called as each chunk finishes. With no worker
        connected for ``worker_timeout_s`` it fails (RuntimeError, one line) instead of waiting forever.
        """
        chunks = list(chunks)
        total = len(chunks)
        if not total:
            return []
        run = uuid.uuid4().hex[:12]
        futures = self.client.map(
            _run_chunk,
            [fn] * total,
            chunks,
            key=[f"tame-chunk-{run}-{i}" for i in range(total)],
            retries=retries,
            pure=False,
        )
        index = {f.key: i for i, f in enumerate(futures)}
        resubmitted = [0] * total
        results: list[Any] = [None] * total
        done = 0
        pending = as_completed(futures, with_results=False)
        for future in self._finished(pending, futures, lambda: done, total):  # noqa: B023 - reads the live count
            i = index[future.key]
            if future.status == "error":
                exc = future.exception()
                if isinstance(exc, KilledWorker) and resubmitted[i] < retries:
                    resubmitted[i] += 1
                    again = self.client.submit(
                        _run_chunk,
                        fn,
                        chunks[i],
                        key=f"tame-chunk-{run}-{i}-r{resubmitted[i]}",
                        retries=retries,
                        pure=False,
                    )
                    index[again.key] = i
                    pending.add(again)
                    continue
                self._cancel(futures)
                raise RuntimeError(
                    f"chunk {i + 1}/{total} failed after {retries} retries: {type(exc).__name__}: {exc}"
                ) from exc
            try:
                where, results[i] = future.result()
            except FutureCancelledError as exc:
                raise RuntimeError(f"chunk {i + 1}/{total} was cancelled (scheduler gone?)") from exc
            future.release()
            done += 1
            if on_progress is not None:
                on_progress(done, total, where)
        return results

    def _finished(self, pending, futures, done: Callable[[], int], total: int) -> Iterator:
        """The futures of ``pending`` as they finish; RuntimeError once no worker has been connected
        for ``worker_timeout_s`` (the tasks would wait for one forever)."""
        alone_since, checked = None, time.monotonic()
        while not pending.is_empty():
            batch = pending.next_batch(block=False)
            if batch:
                alone_since = None
                yield from batch
                continue
            time.sleep(POLL_S)
            if time.monotonic() - checked < WORKER_CHECK_S:
                continue
            checked = time.monotonic()
            if self._worker_count() > 0:
                alone_since = None
            elif alone_since is None:
                alone_since = time.monotonic()
            elif time.monotonic() - alone_since > self.worker_timeout_s:
                self._cancel(futures)
                raise RuntimeError(
                    f"no Dask worker left on {self.description} for {self.worker_timeout_s:g} s "
                    f"([compute] worker_timeout_s); {done()}/{total} chunks done — workers killed, "
                    "out of memory or out of walltime? see the worker logs"
                )

    def _worker_count(self) -> int:
        try:
            return len(self.client.scheduler_info(n_workers=-1)["workers"])
        except (OSError, CommClosedError):  # the scheduler itself is unreachable: no worker either
            return 0

    def _cancel(self, futures) -> None:
        try:
            self.client.cancel(futures)
        except Exception:  # noqa: BLE001 - best effort while already failing
            pass

    def worker_addresses(self) -> list[str]:
        """Addresses of the workers connected now."""
        return sorted(self.client.scheduler_info(n_workers=-1)["workers"])


def _jobqueue_kwargs(settings: ComputeSettings) -> dict:
    kwargs: dict[str, Any] = dict(
        cores=settings.cores,
        processes=settings.processes,
        memory=settings.memory,
        walltime=settings.walltime,
        job_script_prologue=list(settings.job_script_prologue),
        job_extra_directives=list(settings.job_extra_directives),
    )  # threads per worker process = cores / processes (dask-jobqueue's rule)
    for name in ("queue", "account", "python", "local_directory", "interface"):
        if getattr(settings, name):
            kwargs[name] = getattr(settings, name)
    if settings.scheduler_host:
        kwargs["scheduler_options"] = {"host": settings.scheduler_host}
    return kwargs


def start_cluster(settings: ComputeSettings):
    """A new cluster for ``settings.mode`` (not yet scaled for job-queue and Kubernetes modes)."""
    if settings.mode == "dask-local":
        from distributed import LocalCluster

        return LocalCluster(
            n_workers=settings.n_workers,
            threads_per_worker=settings.threads_per_worker,
            processes=True,
            host=settings.scheduler_host or "127.0.0.1",
            dashboard_address=":0",
            local_directory=settings.local_directory or None,
        )
    if settings.mode in ("slurm", "pbs"):
        import dask_jobqueue

        cls = dask_jobqueue.SLURMCluster if settings.mode == "slurm" else dask_jobqueue.PBSCluster
        return cls(**_jobqueue_kwargs(settings))
    if settings.mode == "kubernetes":
        try:
            from dask_kubernetes.operator import KubeCluster
        except ImportError:
            raise RuntimeError(
                "compute mode kubernetes needs the dask-kubernetes package "
                "(pip install dask-kubernetes) and a cluster reachable through kubeconfig"
            ) from None
        return KubeCluster(
            name=f"tame-{uuid.uuid4().hex[:8]}",
            image=settings.image,
            namespace=settings.namespace,
            n_workers=0,
            env={"OMP_NUM_THREADS": str(settings.torch_threads)},
        )
    raise ValueError(f"compute mode {settings.mode!r} does not start a cluster")


def _start_workers(client: Client, settings: ComputeSettings, description: str) -> None:
    """Wait for the first worker and set it up (:class:`TorchThreads`); a worker lost meanwhile
    (``CommClosedError``: killed, out of memory) is waited for and set up once more, then explained."""
    for attempt in (1, 2):
        try:
            try:
                client.wait_for_workers(1, timeout=settings.worker_timeout_s)
            except TimeoutError:
                raise RuntimeError(
                    f"no Dask worker joined {description} within {settings.worker_timeout_s:.0f} s "
                    "(batch queue full? job script failing? see the scheduler/job logs)"
                ) from None
            client.register_plugin(TorchThreads(settings.torch_threads), name=TORCH_PLUGIN)
            # a worker killed by the set-up may already be gone (the broadcast then reached nobody):
            # only a worker that answers with the plugin installed counts as started
            answers = client.run(_has_torch_plugin, on_error="return")
            if not any(answer is True for answer in answers.values()):
                raise CommClosedError("no worker answered after its set-up")
            return
        except (CommClosedError, OSError) as exc:
            if attempt == 2:
                reason = " ".join(str(exc).split()) or type(exc).__name__
                raise RuntimeError(
                    f"a Dask worker of {description} was lost while starting, twice "
                    f"({type(exc).__name__}: {reason}); see the worker logs (killed? out of "
                    "memory? a failing import?)"
                ) from None


@contextmanager
def dask_engine(settings: ComputeSettings) -> Iterator[DaskEngine]:
    """Connect to (or start, scale, and at exit close) the cluster of ``settings``; wait up to
    ``worker_timeout_s`` for the first worker, else fail with a clear error."""
    cluster = None
    address = settings.scheduler_address
    try:
        if address:
            try:
                client = Client(address, timeout=f"{settings.connect_timeout_s:g}s")
            except (OSError, TimeoutError) as exc:
                reason = " ".join(str(exc).split()) or type(exc).__name__
                timeout = f"{settings.connect_timeout_s:g} s ([compute] connect_timeout_s)"
                raise RuntimeError(f"cannot reach the Dask scheduler at {address} within {timeout}: {reason}") from None
            description = f"Dask scheduler {address}"
        else:
            cluster = start_cluster(settings)
            client = Client(cluster)
            if settings.mode != "dask-local":
                cluster.scale(settings.n_workers)
            description = f"{settings.mode} cluster {cluster.scheduler_address}"
        try:
            _start_workers(client, settings, description)
            yield DaskEngine(client, description, settings.worker_timeout_s)
        finally:
            client.close()
    finally:
        if cluster is not None:
            try:
                cluster.close()
            except Exception:  # distributed's own bookkeeping of a worker that died (a KeyError) at close
                # must not replace the run's outcome or its clear error: logged, the processes end anyway
                logging.getLogger(__name__).warning("closing %s failed", cluster.scheduler_address, exc_info=True)
