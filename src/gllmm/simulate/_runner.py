"""Running a study: one task per replicate, on local processes or a Dask cluster, checkpointed.

A task is ``(scenario k, replicate r, estimators)``. It draws its table from
``SeedSequence(seed, spawn_key=(k, r))``, applies every estimator and returns one row per
estimator: the n-normalised MSE ``n * mean_ij (p_hat_ij - p_ij)^2`` and the time taken. Tasks
share no state, so the stored results are the same whatever the number of workers, the backend
or the order of completion. The main process writes each finished replicate to the
:class:`CheckpointStore` immediately and skips, on a later run, every (k, r, estimator) already
stored.

Backends: ``serial`` (in this process; ``n_workers=1``), ``processes``
(:class:`concurrent.futures.ProcessPoolExecutor`, forkserver or spawn start method) and ``dask`` (a
``distributed.Client`` given directly or by scheduler address).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import GllmmError, SpecError
from ._estimators import EstimatorUnavailable, get_estimator
from ._lifeline import ENV, die_with_parent
from ._spec import StudySpec, simulate_table
from ._store import CheckpointStore

Row = tuple[str, float, float, str]
TaskResult = tuple[int, int, list[Row]]


def normalised_mse(p_hat: np.ndarray, p: np.ndarray, n: int) -> float:
    """``n * mean_ij (p_hat_ij - p_ij)^2`` (the paper's n-normalised MSE of one table)."""
    p_hat, p = np.asarray(p_hat, dtype=float), np.asarray(p, dtype=float)
    if p_hat.shape != p.shape:
        raise SpecError(f"estimated probabilities {p_hat.shape} and true ones {p.shape} "
                        "differ in shape; give one estimate per cell")
    return float(n * np.mean((p_hat - p) ** 2))


def run_replicate(spec: StudySpec, scenario: int, replicate: int,
                  estimators: Sequence[str] | None = None) -> list[Row]:
    """Simulate replicate ``replicate`` of scenario ``scenario`` and apply the estimators.

    Returns
    -------
    list of (estimator, mse, seconds, status)
        ``status`` is ``ok`` or ``error: <type>: <message>`` (then ``mse`` is NaN). An
        unavailable estimator raises :class:`EstimatorUnavailable` instead.
    """
    if not isinstance(spec, StudySpec):
        raise SpecError(f"run_replicate needs a StudySpec, got {type(spec).__name__}")
    if not 0 <= scenario < len(spec.scenarios):
        raise SpecError(f"scenario {scenario} does not exist; the study has scenarios 0 to "
                        f"{len(spec.scenarios) - 1}")
    sc = spec.scenarios[scenario]
    counts = simulate_table(sc, spec.seed, replicate)
    p = sc.probabilities()
    scores = spec.scores_for_fit(sc)
    rows: list[Row] = []
    for name in spec.estimators if estimators is None else estimators:
        est = get_estimator(name)
        t0 = time.perf_counter()
        try:
            p_hat = est(counts, scores)
            mse, status = normalised_mse(p_hat, p, sc.n), "ok"
            if not np.isfinite(mse):
                status = "error: non-finite estimate"
        except EstimatorUnavailable:
            raise
        except Exception as exc:  # a failed fit is a result, not a crash
            mse, status = float("nan"), f"error: {type(exc).__name__}: {exc}"[:500]
        rows.append((name, mse, time.perf_counter() - t0, status))
    return rows


@lru_cache(maxsize=8)
def _spec_from_json(text: str) -> StudySpec:
    return StudySpec.from_json(text)


#: Thread-count variables of the BLAS/OpenMP runtimes. The fits work on matrices of at most a
#: few dozen rows, where a multi-threaded BLAS only spins: two worker processes with two BLAS
#: threads each on two cores ran each table twice as slowly as one process (measured).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@contextmanager
def _single_threaded_children() -> Iterator[None]:
    """Start worker processes with one BLAS thread each (unless the user set the variables)."""
    saved = {k: os.environ.get(k) for k in THREAD_VARIABLES}
    for k in THREAD_VARIABLES:
        os.environ.setdefault(k, "1")
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@lru_cache(maxsize=1)
def _limit_blas_threads() -> bool:
    """One BLAS thread in this process, through threadpoolctl when it is installed (workers
    started by the runner get it through the environment anyway)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return False
    threadpool_limits(1, user_api="blas")
    return True


def _task(spec_json: str, scenario: int, replicate: int,
          estimators: tuple[str, ...]) -> TaskResult:
    """Worker entry point (module level, so it pickles by reference)."""
    _limit_blas_threads()
    spec = _spec_from_json(spec_json)
    return scenario, replicate, run_replicate(spec, scenario, replicate, estimators)


# ---------------------------------------------------------------------------------------------
# backends: each yields finished TaskResults for a stream of task arguments
# ---------------------------------------------------------------------------------------------


def _serial(tasks: Iterator[tuple[Any, ...]]) -> Iterator[TaskResult]:
    for args in tasks:
        yield _task(*args)


def _bounded(submit: Callable[[tuple[Any, ...]], Future], tasks: Iterator[tuple[Any, ...]],
             in_flight: int) -> Iterator[TaskResult]:
    """Keep at most ``in_flight`` futures pending; yield results as they complete."""
    pending: set[Future] = set()
    try:
        for args in tasks:
            pending.add(submit(args))
            if len(pending) >= in_flight:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    yield fut.result()
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                yield fut.result()
    finally:
        for fut in pending:
            fut.cancel()


def _context(mp_context: str | None) -> Any:
    """The start method: ``forkserver`` (with this package preloaded, so each worker starts
    from an already-imported process) where available, else ``spawn``. ``fork`` is allowed but
    not the default: forking a process that runs threads (a Dask client, a GUI) can deadlock."""
    if mp_context is None:
        methods = multiprocessing.get_all_start_methods()
        mp_context = "forkserver" if "forkserver" in methods else "spawn"
    ctx = multiprocessing.get_context(mp_context)
    if mp_context == "forkserver":
        ctx.set_forkserver_preload(["gllmm.simulate", "gllmm.simulate._lifeline"])
    return ctx


def _processes(tasks: Iterator[tuple[Any, ...]], n_workers: int,
               mp_context: str | None) -> Iterator[TaskResult]:
    ctx = _context(mp_context)
    # the forkserver (started with this environment) and every worker die with this process
    os.environ[ENV] = str(os.getpid())
    with _single_threaded_children(), \
            ProcessPoolExecutor(max_workers=n_workers, mp_context=ctx,
                                initializer=die_with_parent) as pool:
        yield from _bounded(lambda a: pool.submit(_task, *a), tasks, 4 * n_workers)


def _dask(tasks: Iterator[tuple[Any, ...]], client: Any) -> Iterator[TaskResult]:
    from distributed import as_completed

    n_threads = max(1, sum(client.nthreads().values()))
    in_flight = 4 * n_threads
    pending = as_completed()
    count = 0
    for args in tasks:
        pending.add(client.submit(_task, *args, pure=False))
        count += 1
        if count >= in_flight:
            fut = next(pending)
            yield fut.result()
            count -= 1
    for fut in pending:
        yield fut.result()


# ---------------------------------------------------------------------------------------------
# the study runner
# ---------------------------------------------------------------------------------------------


@dataclass
class StudyRun:
    """What :func:`run_study` did and what the store holds.

    Attributes
    ----------
    spec : StudySpec
    results : DataFrame
        One row per (scenario, replicate, estimator) of the study: ``mse``, ``seconds``,
        ``status``, ``run``.
    computed : int
        Replicate tasks computed by this run (0 when everything was stored already).
    skipped : int
        Replicates of the study already complete in the store.
    elapsed : float
        Wall time of this run in seconds.
    backend : str
    n_workers : int
    db : str
    """

    spec: StudySpec
    results: pd.DataFrame
    computed: int
    skipped: int
    elapsed: float
    backend: str
    n_workers: int
    db: str
    extra: dict[str, Any] = field(default_factory=dict)

    def table1(self) -> pd.DataFrame:
        """Average n-normalised MSE and its Monte Carlo SE per scenario and estimator."""
        from ._report import table1

        return table1(self.results, self.spec)


# seconds to wait for a Dask scheduler given by address
SCHEDULER_TIMEOUT = 30.0


def _connect(scheduler: str) -> Any:
    """A Dask client of ``scheduler``, or a gllmm error saying what to check."""
    try:
        from distributed import Client
    except ImportError as exc:
        raise EstimatorUnavailable(f"--scheduler needs dask.distributed ({exc}): pip install "
                                   "'gllmm[dask]', or run with local --workers") from None
    try:
        return Client(scheduler, timeout=SCHEDULER_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as exc:
        raise SchedulerError(f"cannot reach the Dask scheduler {scheduler} ({exc}); check the "
                             "address and that the scheduler runs, or use local --workers "
                             "instead") from None


class SchedulerError(GllmmError, ConnectionError):
    """The Dask scheduler given by address cannot be reached."""


def _todo(spec: StudySpec, done: set[tuple[int, int, str]]
          ) -> tuple[list[tuple[int, int, tuple[str, ...]]], int]:
    todo = []
    skipped = 0
    for sc in spec.scenarios:
        for r in range(spec.replicates):
            missing = tuple(e for e in spec.estimators if (sc.index, r, e) not in done)
            if missing:
                todo.append((sc.index, r, missing))
            else:
                skipped += 1
    return todo, skipped


def run_study(
    spec: StudySpec,
    db: str | Path = ":memory:",
    *,
    n_workers: int = 1,
    scheduler: str | None = None,
    client: Any = None,
    progress: bool = True,
    overwrite: bool = False,
    mp_context: str | None = None,
    check_available: bool = True,
) -> StudyRun:
    """Run (or resume) ``spec``, checkpointing every finished replicate in ``db``.

    Parameters
    ----------
    spec : StudySpec
    db : str or Path
        SQLite file; an existing file of the same study is resumed (nothing stored is
        recomputed), one of another study is refused. ``":memory:"`` keeps nothing.
    n_workers : int
        Local worker processes; 1 runs in this process.
    scheduler : str, optional
        Address of a Dask distributed scheduler (``tcp://host:8786``): run there instead.
    client : distributed.Client, optional
        An existing Dask client (e.g. on a ``LocalCluster``); takes precedence over
        ``scheduler``.
    progress : bool
        Show a tqdm progress bar (rate and ETA) on stderr.
    overwrite : bool
        Start ``db`` afresh.
    mp_context : str, optional
        Start method of the local worker processes (default ``forkserver`` with
        ``gllmm.simulate`` preloaded where available, else ``spawn``).
    check_available : bool
        Refuse to start when an estimator's implementation cannot be imported here.

    Returns
    -------
    StudyRun
    """
    if not isinstance(spec, StudySpec):
        raise SpecError(f"run_study needs a StudySpec (e.g. paper_table1_study()), got "
                        f"{type(spec).__name__}")
    if n_workers < 1:
        raise SpecError("n_workers must be at least 1")
    if check_available:
        missing = [e for e in spec.estimators if not get_estimator(e).available()]
        if missing:
            raise EstimatorUnavailable(
                "estimators not available in this installation: " + ", ".join(missing)
            )
    t0 = time.perf_counter()
    store = CheckpointStore(db, spec, overwrite=overwrite)
    own_client = None
    try:
        store.check_estimators({e: get_estimator(e).version for e in spec.estimators})
        todo, skipped = _todo(spec, store.completed())
        if client is None and scheduler is not None:
            client = own_client = _connect(scheduler)
        if client is not None:
            backend, workers = "dask", max(1, sum(client.nthreads().values()))
        elif n_workers > 1:
            backend, workers = "processes", n_workers
        else:
            backend, workers = "serial", 1
        store.begin_run(workers, backend)
        spec_json = spec.to_json(sort_keys=True)
        tasks = ((spec_json, k, r, est) for k, r, est in todo)
        if backend == "dask":
            stream = _dask(tasks, client)
        elif backend == "processes":
            stream = _processes(tasks, n_workers, mp_context)
        else:
            stream = _serial(tasks)
        computed = 0
        from tqdm.auto import tqdm

        interactive = bool(getattr(sys.stderr, "isatty", lambda: False)())
        with tqdm(total=len(todo), disable=not progress or not todo, unit="rep",
                  desc=f"{spec.name} ({backend}, {workers} worker{'s' * (workers > 1)})",
                  smoothing=0.05, dynamic_ncols=True,
                  mininterval=0.1 if interactive else 10.0) as bar:
            try:
                for scenario, replicate, rows in stream:
                    store.write_replicate(scenario, replicate, rows)
                    computed += 1
                    bar.update(1)
            finally:
                if hasattr(stream, "close"):
                    stream.close()
                store.end_run(computed)
        results = store.results(spec)
        return StudyRun(spec, results, computed, skipped, time.perf_counter() - t0, backend,
                        workers, str(db))
    finally:
        store.close()
        if own_client is not None:
            own_client.close()
