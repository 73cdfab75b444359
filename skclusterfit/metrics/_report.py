"""The report of :func:`representation_report`: fold scores, a table and a verdict.

:class:`RepresentationReport` holds the probes' scores of several
representations on the same folds and says which reads the classes best, and
whether by more than the folds' spread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

N_CF, N_PRE, PIXELS, CONTROL = "N_cf", "N_pre", "raw pixels", "N_cf from random N_pre"
BOTH = "N_cf + N_pre"


class _Comparison(NamedTuple):
    """Mean difference of two rows of a :class:`RepresentationReport` on one probe.

    Attributes
    ----------
    margin : float
        Mean score of the first row minus that of the second.
    spread : float
        The larger of the two rows' standard deviations over folds.
    exceeds_spread : bool
        Whether ``abs(margin) > spread``.
    """

    margin: float
    spread: float
    exceeds_spread: bool


@dataclass(repr=False, eq=False)
class RepresentationReport:
    """Cross-validated probe scores of several representations of the same images.

    Made by :func:`representation_report`; printing it (``str`` or ``repr``)
    gives an aligned table, one row per representation and one column per
    probe, each cell the mean accuracy over the folds ``± std [min, max]``,
    followed by the :attr:`verdict` and the notes.

    Parameters
    ----------
    scores : dict
        ``scores[representation][probe]`` is the array of the probe's accuracy
        on each held-out fold. Every representation must have the same probes
        and the same number of folds, scored on the same folds.
    n_samples : int or None, default=None
        Number of labelled images cross-validated (shown in the title).
    notes : list of str, default=[]
        Representations left out and other remarks, printed under the table.
    baselines : sequence of str, default=()
        The representations (keys of ``scores``) that are the user's own
        alternatives to ClusterFit; the verdict compares ``"N_cf"`` with the
        best of them.

    Attributes
    ----------
    scores : dict of str to dict of str to ndarray of shape (n_folds,)
        As given, the arrays as float64.
    probes : tuple of str
        The probes, in column order.
    n_folds : int
        Number of cross-validation folds.
    best : dict of str to str
        For each probe, the representation with the highest mean score (the
        first listed among ties).
    verdict : str
        For each probe, the best representation, then its margin over the
        runner-up and over ``"N_pre"``, each said to be within or beyond the
        fold spread (see Notes); then, when the report has both, the margin
        of ``"N_cf"`` over ``"N_pre"`` on every probe, the answer to "does
        ClusterFit help?"; and with ``baselines``, its margin over the best
        baseline on every probe, the answer to "this or what I have?".

    See Also
    --------
    representation_report : Builds the report.

    Notes
    -----
    **The verdict's rule.** A margin (the difference of two rows' mean scores)
    counts as beyond the fold spread when it is larger than both rows'
    standard deviations over folds (numpy's, ``ddof=0``); otherwise it is
    within it. The rule is deliberately cautious: the folds are the same for
    every row, and part of a row's spread is the folds' own difficulty,
    which every row shares. A margin within the spread is no evidence of a
    difference, not evidence of none; more labelled images, or more folds,
    narrow it. :meth:`compare` applies the rule to any two rows.

    Examples
    --------
    >>> from skclusterfit.metrics import RepresentationReport
    >>> report = RepresentationReport(
    ...     {"N_cf": {"linear": [0.92, 0.95, 0.94]},
    ...      "N_pre": {"linear": [0.85, 0.88, 0.86]},
    ...      "raw pixels": {"linear": [0.91, 0.95, 0.92]}})
    >>> report.best
    {'linear': 'N_cf'}
    >>> report.compare("N_cf", "raw pixels", "linear").exceeds_spread
    False
    >>> print(report.verdict)
    linear: N_cf best at 0.937
      +0.010 over raw pixels (runner-up), within the fold spread (0.017)
      +0.073 over N_pre, beyond the fold spread (0.012)
    N_cf against N_pre (does ClusterFit help?):
      linear: +0.073 over N_pre, beyond the fold spread (0.012)
    """

    scores: dict
    n_samples: int | None = None
    notes: list = field(default_factory=list)
    baselines: tuple = ()

    def __post_init__(self):
        if not isinstance(self.scores, dict) or not self.scores:
            raise ValueError("scores must be a non-empty dict: representation -> probe -> scores.")
        self.scores = {
            str(name): {str(probe): np.asarray(s, dtype=np.float64) for probe, s in row.items()}
            for name, row in self.scores.items()
        }
        probes = tuple(next(iter(self.scores.values())))
        if not probes or any(tuple(row) != probes for row in self.scores.values()):
            raise ValueError("Every representation must have scores of the same probes.")
        shapes = {s.shape for row in self.scores.values() for s in row.values()}
        if len(shapes) != 1 or len(shape := shapes.pop()) != 1 or shape[0] == 0:
            raise ValueError(
                "Every score must be a 1-D array of the same number of folds, at least one."
            )
        self.notes = list(self.notes)
        self.baselines = tuple(str(name) for name in self.baselines)
        missing = [name for name in self.baselines if name not in self.scores]
        if missing:
            raise ValueError(f"baselines {missing} have no scores; scores has {list(self.scores)}.")

    @property
    def probes(self) -> tuple:
        """The probes, in column order."""
        return tuple(next(iter(self.scores.values())))

    @property
    def n_folds(self) -> int:
        """Number of cross-validation folds."""
        return len(next(iter(next(iter(self.scores.values())).values())))

    @property
    def best(self) -> dict:
        """The representation with the highest mean score, for each probe (ties: the first)."""
        return {probe: self._ranked(probe)[0] for probe in self.probes}

    def _ranked(self, probe: str) -> list:
        """Representations by decreasing mean score on ``probe`` (ties in row order)."""
        means = {name: row[probe].mean() for name, row in self.scores.items()}
        return sorted(means, key=lambda name: -means[name])

    def compare(self, first: str, second: str, probe: str):
        """How far apart two representations are on one probe, by the verdict's rule.

        Parameters
        ----------
        first, second : str
            Representations (keys of :attr:`scores`).
        probe : str
            One of :attr:`probes`.

        Returns
        -------
        comparison : named tuple
            ``(margin, spread, exceeds_spread)``: the mean score of ``first``
            minus that of ``second``; the larger of their standard deviations
            over folds; and whether the margin's size is larger than that
            spread.
        """
        for name in (first, second):
            if name not in self.scores:
                raise KeyError(f"No representation {name!r}; the report has {list(self.scores)}.")
        if probe not in self.probes:
            raise KeyError(f"No probe {probe!r}; the report has {list(self.probes)}.")
        a, b = self.scores[first][probe], self.scores[second][probe]
        margin = float(a.mean() - b.mean())
        spread = float(max(a.std(), b.std()))
        return _Comparison(margin, spread, bool(abs(margin) > spread))

    @property
    def verdict(self) -> str:
        """Each probe's best representation and its margins, within or beyond the fold spread.

        The margins are the best one's over the runner-up and over
        ``"N_pre"``; then, when the report has both, those of ``"N_cf"`` over
        ``"N_pre"`` on every probe, the answer to "does ClusterFit help?";
        then those of ``"N_cf"`` over the best of the :attr:`baselines` on
        every probe (see Notes for the rule).
        """
        lines = []
        for probe in self.probes:
            ranked = self._ranked(probe)
            winner = ranked[0]
            lines.append(f"{probe}: {winner} best at {self.scores[winner][probe].mean():.3f}")
            if len(ranked) == 1:
                continue
            lines.append("  " + self._margin(winner, ranked[1], probe, " (runner-up)"))
            if N_PRE in self.scores and N_PRE not in ranked[:2]:
                lines.append("  " + self._margin(winner, N_PRE, probe))
        if N_CF in self.scores and N_PRE in self.scores:
            lines.append(f"{N_CF} against {N_PRE} (does ClusterFit help?):")
            lines += [f"  {probe}: " + self._margin(N_CF, N_PRE, probe) for probe in self.probes]
        if N_CF in self.scores and self.baselines:
            lines.append(f"{N_CF} against the best baseline (this or what I have?):")
            for probe in self.probes:
                best = max(self.baselines, key=lambda name: self.scores[name][probe].mean())
                lines.append(f"  {probe}: " + self._margin(N_CF, best, probe))
        return "\n".join(lines)

    def _margin(self, first: str, second: str, probe: str, role: str = "") -> str:
        margin, spread, exceeds = self.compare(first, second, probe)
        where = "beyond" if exceeds else "within"
        return f"{margin:+.3f} over {second}{role}, {where} the fold spread ({spread:.3f})"

    def __str__(self) -> str:
        table = [["representation", *self.probes]]
        for name, row in self.scores.items():
            table.append(
                [name]
                + [
                    f"{s.mean():.3f} ± {s.std():.3f} [{s.min():.3f}, {s.max():.3f}]"
                    for s in row.values()
                ]
            )
        widths = [max(len(cells[i]) for cells in table) for i in range(len(table[0]))]
        on = f" of {self.n_samples} labelled images" if self.n_samples is not None else ""
        lines = [
            f"Probe accuracy on held-out folds ({self.n_folds}-fold cross-validation{on}),",
            "mean ± std [min, max] over folds:",
            "",
            *("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) for cells in table),
            "",
            "Verdict (a margin is beyond the fold spread when larger than both rows' std):",
            *(f"  {line}" for line in self.verdict.splitlines()),
        ]
        if self.notes:
            lines += ["", "Notes:", *(f"  - {note}" for note in self.notes)]
        return "\n".join(line.rstrip() for line in lines)

    def __repr__(self) -> str:
        return str(self)

    def to_frame(self):
        """The fold scores as a pandas DataFrame in long format.

        Returns
        -------
        pandas.DataFrame
            One row per representation, probe and fold, with columns
            ``representation``, ``probe``, ``fold`` (0 to ``n_folds - 1``) and
            ``score``. ``df.groupby(["representation", "probe"], sort=False)
            ["score"].agg(["mean", "std", "min", "max"])`` summarises it (pandas'
            ``std`` has ``ddof=1``, the table's ``ddof=0``).
        """
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(
                "RepresentationReport.to_frame needs pandas: pip install pandas."
            ) from None
        records = [
            {"representation": name, "probe": probe, "fold": fold, "score": float(score)}
            for name, row in self.scores.items()
            for probe, scores in row.items()
            for fold, score in enumerate(scores)
        ]
        return pd.DataFrame.from_records(
            records, columns=["representation", "probe", "fold", "score"]
        )
