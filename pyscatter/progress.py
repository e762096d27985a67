"""Progress bars that behave in terminals, batch logs and under ``-q``.

- ``pyscatter -q`` silences every bar (:data:`QUIET`, set by the command line);
- output that is not a terminal (a SLURM log, a pipe) gets no bar at all: no carriage-return
  frames, no final bar printed twice; the command's summary line says what was done;
- in a notebook the widget bar is shown.
"""

from __future__ import annotations

import sys
from typing import Any

#: Set by ``pyscatter -q``: no progress bars at all.
QUIET = False


def bar(total: int, *, desc: str, unit: str, enabled: bool = True, **kwargs: Any):
    """A :func:`tqdm.auto.tqdm` bar for ``total`` items, shown only where it makes sense."""
    if QUIET or not enabled:  # importing tqdm costs 25 ms of a command: not for a hidden bar
        return HiddenBar(total)
    from tqdm.auto import tqdm

    disable: bool | None
    if _in_notebook(tqdm):
        disable = False
    else:
        disable = None if _stderr_is_terminal() else True
    return tqdm(total=total, desc=desc, unit=unit, disable=disable, **kwargs)


class HiddenBar:
    """What a bar that is never shown needs to be: a disabled tqdm's counting, without tqdm.

    Examples
    --------
    >>> with HiddenBar(3) as b:
    ...     b.update(2)
    >>> b.n, b.total, b.disable
    (2, 3, True)
    """

    disable = True

    def __init__(self, total: int) -> None:
        self.total = total
        self.n = 0

    def update(self, n: int = 1) -> None:
        self.n += n

    def close(self) -> None:
        pass

    def __enter__(self) -> HiddenBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


def _in_notebook(tqdm_auto: type) -> bool:
    """Whether :mod:`tqdm.auto` chose its notebook widget (in Jupyter it subclasses it)."""
    from tqdm.notebook import tqdm as notebook_tqdm

    return issubclass(tqdm_auto, notebook_tqdm)
