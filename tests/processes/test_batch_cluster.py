"""SLURM/PBS through dask-jobqueue: the job scripts pyscatter asks for (no batch system here)."""

from __future__ import annotations

import pytest

from pyscatter.errors import InputError
from pyscatter.processes.execution import make_batch_cluster


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("slurm", ["#SBATCH -t 01:30:00", "#SBATCH --cpus-per-task=8", "#SBATCH --mem=15G"]),
        ("pbs", ["#PBS -l walltime=01:30:00", "#PBS -l select=1:ncpus=8:mem=15GB"]),
    ],
)
def test_batch_job_scripts(kind, expected):
    cluster, jobs = make_batch_cluster(
        {
            "kind": kind,
            "cores": 8,
            "memory": "16GB",
            "walltime": "01:30:00",
            "jobs": 3,
            "scheduler_options": {"host": "127.0.0.1", "dashboard_address": None},
        }
    )
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert jobs == 3
    for line in expected:
        assert line in script, script
    assert "--nthreads 1" in script and "--nworkers 8" in script  # one thread per worker process


def test_bad_cluster_options_are_named():
    with pytest.raises(InputError, match="unsupported cluster 'condor'"):
        make_batch_cluster({"kind": "condor", "cores": 1, "memory": "1GB"})
    with pytest.raises(InputError, match="jobs must be at least 1"):
        make_batch_cluster({"kind": "slurm", "cores": 1, "memory": "1GB", "jobs": 0})
