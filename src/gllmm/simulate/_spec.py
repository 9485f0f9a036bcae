"""Declarative specification of a simulation study (paper Section 4, Table 1).

A study is a factorial design of scenarios -- score sets x association levels x sample sizes --
over one data-generating model, a list of estimators, a number of replicates and a seed. The
specification is plain data: it round-trips through a JSON-compatible dict, and its
``fingerprint`` identifies the simulated data so that a checkpoint store is never resumed into
a different study.

Data-generating model (reference note, Section 4): counts are multinomial(n, p) with

    p_ij proportional to exp(beta (s_i - s_bar)(s_j - s_bar)),

the same scores s for rows and columns and no main effects.

Glossary: I table size (rows = columns), s scores, beta association, n sample size,
r replicate index, k scenario index.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from itertools import product
from typing import Any

import numpy as np

from ..errors import SpecError
from ..tables._validate import check_array, check_integer

#: Version of the data-generation and seeding scheme; part of the fingerprint.
SCHEME_VERSION = 1

#: Data-generating models by name.
MODELS = ("linear_by_linear",)

#: The paper's score sets (Section 4, item 3), by table size.
PAPER_SCORES: dict[int, dict[str, tuple[float, ...]]] = {
    3: {"uniform": (1.0, 2.0, 3.0), "nonuniform": (1.0, 2.5, 3.0)},
    6: {
        "uniform": (1.0, 2.0, 3.0, 4.0, 5.0, 6.0),
        "nonuniform": (1.0, 2.8, 4.2, 5.2, 5.8, 6.0),
    },
}
PAPER_BETAS = (0.1, 0.4, 1.0)
PAPER_SAMPLE_SIZES = (50, 200, 1000)
#: Default study seed (any fixed integer; the paper's own seed is not known).
DEFAULT_SEED = 20030401


@dataclass(frozen=True)
class ScoreSet:
    """Named category scores, used for both rows and columns of the true model."""

    name: str
    values: tuple[float, ...]

    def __post_init__(self) -> None:
        if isinstance(self.values, (str, bytes)):
            raise SpecError(f"score set {self.name!r}: give the scores as numbers, e.g. "
                            f"(1, 2, 3), not the text {self.values!r}")
        values = check_array(self.values, f"score set {self.name!r}", (1,), (None,))
        object.__setattr__(self, "values", tuple(float(v) for v in values))
        if len(self.values) < 2:
            raise SpecError(f"score set {self.name!r} needs at least 2 scores")
        if not np.all(np.isfinite(self.values)):
            raise SpecError(f"score set {self.name!r} has non-finite scores")


@dataclass(frozen=True)
class Scenario:
    """One cell of the factorial design: scores, association and sample size.

    ``index`` is the scenario's position in the study; it keys the replicates' seeds.
    """

    index: int
    scores: ScoreSet
    beta: float
    n: int

    @property
    def size(self) -> int:
        return len(self.scores.values)

    @property
    def label(self) -> str:
        return f"{self.scores.name}, beta={self.beta:g}, n={self.n}"

    def probabilities(self) -> np.ndarray:
        """True cell probabilities (I, I): ``p_ij ~ exp(beta (s_i - s_bar)(s_j - s_bar))``."""
        return true_probabilities(self.scores.values, self.beta)


def true_probabilities(scores: Any, beta: float) -> np.ndarray:
    """``p_ij = exp(beta c_i c_j) / sum exp(beta c_k c_l)``, ``c = s - mean(s)`` (I, I)."""
    c = check_array(scores, "scores", (1,), (None,))
    beta = float(check_array(beta, "beta", (0,), ()))
    if c.size < 2:
        raise SpecError(f"true_probabilities needs two or more scores, got {c.size}")
    c = c - c.mean()
    log_p = beta * np.outer(c, c)
    p = np.exp(log_p - log_p.max())
    return p / p.sum()


def replicate_seed(seed: int, scenario: int, replicate: int) -> np.random.SeedSequence:
    """The SeedSequence of one replicate: the study seed with spawn key (scenario, replicate).

    Equal to ``SeedSequence(seed).spawn(...)``'s children addressed directly, so a replicate's
    data depend on nothing but these three integers (not on workers, order or chunking).
    """
    return np.random.SeedSequence(int(seed), spawn_key=(int(scenario), int(replicate)))


def simulate_table(scenario: Scenario, seed: int, replicate: int) -> np.ndarray:
    """One replicate's table of counts (I, I): multinomial(n, p) from its own generator."""
    if not isinstance(scenario, Scenario):
        raise SpecError(f"simulate_table needs a Scenario (e.g. one of StudySpec(...).scenarios), "
                        f"got {type(scenario).__name__}")
    seed = check_integer(seed, "seed", minimum=0)
    replicate = check_integer(replicate, "replicate", minimum=0)
    rng = np.random.Generator(np.random.PCG64(replicate_seed(seed, scenario.index, replicate)))
    p = scenario.probabilities()
    return rng.multinomial(scenario.n, p.ravel()).reshape(p.shape)


@dataclass(frozen=True)
class StudySpec:
    """A simulation study: factorial scenarios, estimators, replicates and seed.

    Configuration
    -------------
    score_sets : tuple of ScoreSet
        Category scores of the true model (all of one length: the table size).
    betas : tuple of float
        Association parameters of the true model.
    sample_sizes : tuple of int
        Multinomial totals n.
    estimators : tuple of str
        Names in :data:`gllmm.simulate.ESTIMATORS`.
    replicates : int
        Tables per scenario.
    seed : int
        Study seed; replicate r of scenario k uses ``SeedSequence(seed, spawn_key=(k, r))``.
    fit_scores : {"equally_spaced", "true"}
        Scores handed to the estimators that need them (L x L bases, local likelihood):
        ``equally_spaced`` = 1..I whatever the truth (the paper's convention, reference note
        Section 4), ``true`` = the true model's scores.
    model : str
        Data-generating model; only ``linear_by_linear`` (the paper's) is defined.
    name : str
        Free text.

    Derived
    -------
    scenarios, size, fingerprint.
    """

    score_sets: tuple[ScoreSet, ...]
    betas: tuple[float, ...]
    sample_sizes: tuple[int, ...]
    estimators: tuple[str, ...]
    replicates: int = 1000
    seed: int = DEFAULT_SEED
    fit_scores: str = "equally_spaced"
    model: str = "linear_by_linear"
    name: str = "simulation study"
    scenarios: tuple[Scenario, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        sets = tuple(s if isinstance(s, ScoreSet) else ScoreSet(*s) for s in self.score_sets)
        object.__setattr__(self, "score_sets", sets)
        betas = check_array(self.betas, "betas", (1,), (None,))
        object.__setattr__(self, "betas", tuple(float(b) for b in betas))
        object.__setattr__(self, "sample_sizes", tuple(
            check_integer(n, "a sample size", minimum=1) for n in _items(self.sample_sizes)))
        object.__setattr__(self, "estimators", tuple(str(e) for e in _items(self.estimators)))
        object.__setattr__(self, "replicates", check_integer(self.replicates, "replicates",
                                                             minimum=1))
        object.__setattr__(self, "seed", check_integer(self.seed, "seed", minimum=0))
        if not sets or not self.betas or not self.sample_sizes:
            raise SpecError("a study needs at least one score set, beta and sample size")
        if len({len(s.values) for s in sets}) != 1:
            raise SpecError("all score sets must have the same length (the table size)")
        if len({s.name for s in sets}) != len(sets):
            raise SpecError("score set names must be distinct")
        if any(n < 1 for n in self.sample_sizes):
            raise SpecError("sample sizes must be positive")
        if self.replicates < 1:
            raise SpecError("replicates must be positive")
        if not self.estimators:
            raise SpecError("a study needs at least one estimator")
        if len(set(self.estimators)) != len(self.estimators):
            raise SpecError("estimator names must be distinct")
        if self.model not in MODELS:
            raise SpecError(f"unknown model {self.model!r}; valid: {', '.join(MODELS)}")
        if self.fit_scores not in ("equally_spaced", "true"):
            raise SpecError("fit_scores must be 'equally_spaced' or 'true'")
        scen = tuple(
            Scenario(k, s, b, n)
            for k, (s, b, n) in enumerate(product(sets, self.betas, self.sample_sizes))
        )
        object.__setattr__(self, "scenarios", scen)

    # ------------------------------------------------------------------ derived
    @property
    def size(self) -> int:
        return len(self.score_sets[0].values)

    def scores_for_fit(self, scenario: Scenario) -> np.ndarray:
        """The scores passed to the estimators for ``scenario`` (see ``fit_scores``)."""
        if self.fit_scores == "true":
            return np.asarray(scenario.scores.values, dtype=float)
        return np.arange(1.0, self.size + 1.0)

    def identity(self) -> dict[str, Any]:
        """What determines the simulated tables and their meaning: everything but the
        replicate count and the estimator list, which may grow in an existing store."""
        d = self.to_dict()
        del d["replicates"], d["estimators"], d["name"]
        d["scheme_version"] = SCHEME_VERSION
        return d

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the canonical JSON of :meth:`identity` (first 16 hex digits)."""
        text = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def with_options(self, **changes: Any) -> StudySpec:
        """A copy with some configuration fields changed (copy-on-update)."""
        return replace(self, **changes)

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict; ``StudySpec.from_dict`` inverts it."""
        return {
            "name": self.name,
            "model": self.model,
            "score_sets": [{"name": s.name, "values": list(s.values)} for s in self.score_sets],
            "betas": list(self.betas),
            "sample_sizes": list(self.sample_sizes),
            "estimators": list(self.estimators),
            "replicates": self.replicates,
            "seed": self.seed,
            "fit_scores": self.fit_scores,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StudySpec:
        if not isinstance(d, dict):
            raise SpecError(f"a study is a dict of its fields (StudySpec.to_dict), got "
                            f"{type(d).__name__}")
        known = {"name", "model", "score_sets", "betas", "sample_sizes", "estimators",
                 "replicates", "seed", "fit_scores"}
        unknown = set(d) - known
        if unknown:
            raise SpecError(f"unknown study fields: {', '.join(sorted(unknown))}")
        args = dict(d)
        try:
            args["score_sets"] = tuple(
                ScoreSet(s["name"], tuple(s["values"])) for s in d["score_sets"])
            return cls(**args)
        except (KeyError, TypeError) as exc:
            raise SpecError(f"incomplete study fields ({type(exc).__name__}: {exc}); give "
                            "score_sets (each with name and values), betas, sample_sizes "
                            "and estimators, as StudySpec.to_dict writes them") from None

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_json(cls, text: str) -> StudySpec:
        try:
            d = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise SpecError(f"the study is not valid JSON ({exc}); give the text of "
                            "StudySpec.to_json") from None
        return cls.from_dict(d)


def _items(values: Any) -> tuple[Any, ...]:
    """A tuple of the entries of a list-like field (one string is one entry, not its
    characters)."""
    return (values,) if isinstance(values, (str, bytes)) or np.ndim(values) == 0 \
        else tuple(values)


def paper_table1_study(
    size: int = 3,
    replicates: int = 1000,
    seed: int = DEFAULT_SEED,
    estimators: Any = None,
) -> StudySpec:
    """The paper's Section 4 design for ``size`` x ``size`` tables: 2 score sets x 3 betas
    (0.1, 0.4, 1.0) x 3 sample sizes (50, 200, 1000), every Table 1 estimator by default.

    Parameters
    ----------
    size : {3, 6}
        3 reproduces Table 1; 6 is the version the paper calls "qualitatively similar".
    estimators : sequence of str, optional
        Default: :data:`gllmm.simulate.TABLE1_ESTIMATORS`.
    """
    from ._estimators import TABLE1_ESTIMATORS

    if size not in PAPER_SCORES:
        raise SpecError(f"the paper's design has sizes {sorted(PAPER_SCORES)}, not {size}")
    sets = tuple(ScoreSet(k, v) for k, v in PAPER_SCORES[size].items())
    return StudySpec(
        score_sets=sets,
        betas=PAPER_BETAS,
        sample_sizes=PAPER_SAMPLE_SIZES,
        estimators=tuple(TABLE1_ESTIMATORS if estimators is None else estimators),
        replicates=replicates,
        seed=seed,
        name=f"Coull & Agresti (2003) Table 1, {size}x{size}",
    )
