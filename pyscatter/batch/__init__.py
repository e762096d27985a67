"""Batches: one pipeline over many files, here or as SLURM jobs, each file resumable on its own.

``pyscatter batch 'raw/*.h5' --pipeline p.yaml`` (:mod:`pyscatter.cli.batch`) runs the
pipeline's steps on every file named (globs, lists), and with ``--translate FORMAT --out-dir
DIR`` translates raw files first. Each file's run records what happened next to its output
(:mod:`pyscatter.batch.records`); the summary says per file ``ran``, ``reused``, ``failed``
(with the error), ``partial`` or ``not run``.

- :mod:`pyscatter.batch.plan`: the files, their outputs, the pipeline (checked up front);
- :mod:`pyscatter.batch.task`: one file (in this process, or in a job);
- :mod:`pyscatter.batch.local`: in turn here, or N at a time as subprocesses;
- :mod:`pyscatter.batch.slurm`: job scripts, ``sbatch``, the queue watched, ``scancel``;
- :data:`pyscatter.batch.template.TEMPLATE`: an sbatch script that resubmits itself until
  a file is complete.

Examples
--------
>>> from pyscatter.batch.records import FileResult, summary_table
>>> print(summary_table([FileResult("a.h5", "a.h5", "reused", 1, [{"step": "integrate"}], 0.5)]))
file  status  steps  time   job  error
a.h5  reused  1/1    0.5 s
1 file: 1 reused
"""

from __future__ import annotations

from pyscatter.batch.records import FileResult
from pyscatter.errors import PyscatterError

__all__ = ["BatchInterrupted", "FileResult", "QueueTimeoutError"]


class BatchInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped a batch; ``results`` says what each file got to."""

    def __init__(self, results: list[FileResult], message: str = "") -> None:
        super().__init__(message)
        self.results = results
        self.message = message


class QueueTimeoutError(PyscatterError, TimeoutError):
    """No job of a SLURM batch started within ``--queue-timeout``; its jobs were cancelled."""

    def __init__(self, message: str, results: list[FileResult]) -> None:
        super().__init__(message)
        self.results = results
