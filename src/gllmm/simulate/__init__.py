"""Simulation studies (paper Section 4, Table 1): specs, estimators, runners, checkpoints, reports.

``paper_table1_study(size=3)`` builds the paper's 2 score sets x 3 betas x 3 sample sizes design;
``run_study(spec, db, n_workers=2)`` runs it on local processes (or a Dask cluster via
``scheduler=`` / ``client=``), writing every finished replicate to a SQLite checkpoint so that an
interrupted run resumes without recomputing anything; ``table1(run.results, spec)`` averages the
n-normalised MSEs with their Monte Carlo SEs.

Glossary: scenario = (scores, beta, n); replicate = one simulated table; MSE of a replicate =
``n * mean_ij (p_hat_ij - p_ij)^2``.
"""

from ._estimators import (
    ESTIMATORS,
    TABLE1_ESTIMATORS,
    Estimator,
    EstimatorUnavailable,
    available_estimators,
    get_estimator,
    register_estimator,
)
from ._report import (
    compare_with_published,
    plot_mse_by_n,
    published_table1,
    render_table,
    summarise,
    table1,
    write_outputs,
)
from ._runner import StudyRun, normalised_mse, run_replicate, run_study
from ._spec import (
    Scenario,
    ScoreSet,
    StudySpec,
    paper_table1_study,
    replicate_seed,
    simulate_table,
    true_probabilities,
)
from ._store import CheckpointStore, StoreMismatchError, read_store

__all__ = [
    "ESTIMATORS",
    "TABLE1_ESTIMATORS",
    "CheckpointStore",
    "Estimator",
    "EstimatorUnavailable",
    "Scenario",
    "ScoreSet",
    "StoreMismatchError",
    "StudyRun",
    "StudySpec",
    "available_estimators",
    "compare_with_published",
    "get_estimator",
    "normalised_mse",
    "paper_table1_study",
    "plot_mse_by_n",
    "published_table1",
    "read_store",
    "register_estimator",
    "render_table",
    "replicate_seed",
    "run_replicate",
    "run_study",
    "simulate_table",
    "summarise",
    "table1",
    "true_probabilities",
    "write_outputs",
]
