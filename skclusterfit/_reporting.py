"""Everything the package prints goes through one :class:`Reporter`.

A reporter knows where lines go (its sink, standard error by default) and
whether to print at all: ``verbose >= 1``, and only on the main process of a
distributed run, so that a fit on eight ranks prints once. A stage that runs
in steps (training, embedding) shows a :class:`Progress`: a tqdm bar with its
rate and time left when tqdm is installed (``tqdm.auto``, a widget in
notebooks), otherwise a plain line per epoch. This is the one module that
uses tqdm.
"""

from __future__ import annotations

import sys
import time

from . import _distributed as distributed

PREFIX = "[ClusterFit]"


class Reporter:
    """Where a fit's messages go, and whether they are printed.

    Parameters
    ----------
    verbose : int, default=0
        0 prints nothing; 1 prints a line per stage and a progress bar per
        stage that runs in steps.
    sink : file-like or None, default=None
        Where lines go: any object with ``write`` (a ``StringIO`` in tests).
        None is ``sys.stderr`` as it is when a line is written.
    """

    def __init__(self, verbose: int = 0, sink=None):
        self.enabled = verbose >= 1 and distributed.is_main()
        self._sink = sink

    @property
    def sink(self):
        return sys.stderr if self._sink is None else self._sink

    def say(self, message: str) -> None:
        """Print one line, such as a stage's result and its time."""
        if self.enabled:
            self.sink.write(f"{PREFIX} {message}\n")
            self.sink.flush()

    def progress(self, stage: str, *, total: int, unit: str, initial: int = 0) -> Progress:
        """The progress of ``stage``, ``total`` units long, ``initial`` of them done."""
        return Progress(self, stage, total=total, unit=unit, initial=initial)


class Progress:
    """The progress of one stage: a tqdm bar, plain lines without tqdm, or nothing.

    :meth:`update` only counts (it never waits for a device); :meth:`note`
    shows what is known at the end of an epoch. Use it as a context manager,
    so that the bar is closed when the stage raises.
    """

    def __init__(self, reporter: Reporter, stage: str, *, total: int, unit: str, initial: int):
        self.reporter, self.stage = reporter, stage
        self.total, self.done, self.initial = total, initial, initial
        self.start = time.perf_counter()
        self.bar = None
        if reporter.enabled:
            tqdm = _tqdm()
            if tqdm is not None:
                self.bar = tqdm(
                    total=total,
                    initial=initial,
                    unit=unit,
                    desc=f"{PREFIX} {stage}",
                    file=reporter.sink,
                    dynamic_ncols=True,
                )

    @property
    def seconds(self) -> float:
        """Time since the stage started (or resumed)."""
        return time.perf_counter() - self.start

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)

    def note(self, text: str) -> None:
        """Show ``text``: beside the bar, or as a line with the time so far and left."""
        if self.bar is not None:
            self.bar.set_postfix_str(text)
        elif self.reporter.enabled:
            seconds = self.seconds
            rate = (self.done - self.initial) / seconds if seconds > 0 else 0.0
            left = (self.total - self.done) / rate if rate > 0 else 0.0
            self.reporter.say(f"{self.stage} {text} ({seconds:.1f}s, about {left:.0f}s left)")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _tqdm():
    """tqdm's class for this front end (a widget in notebooks), or None without tqdm."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm
