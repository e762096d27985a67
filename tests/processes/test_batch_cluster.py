"""SLURM/PBS through dask-jobqueue: the job scripts pyscatter asks for (no batch system here).

Creating a dask-jobqueue cluster starts its scheduler in this process (no job is submitted):
its address, listeners and HTTP server are those of a real run.
"""

from __future__ import annotations

import os
import stat
import urllib.error
import urllib.request

import pytest

from pyscatter.cli import main
from pyscatter.errors import InputError
from pyscatter.processes.execution import make_batch_cluster

pytestmark = pytest.mark.timeout(120)


def _slurm(tmp_path, **extra):
    options = {"kind": "slurm", "cores": 2, "memory": "4GB", "shared_temp_directory": str(tmp_path)}
    return make_batch_cluster({**options, **extra})


def _http_status(port: int, page: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/{page}", timeout=10) as reply:
            return reply.status
    except urllib.error.HTTPError as err:
        return err.code


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("slurm", ["#SBATCH -t 01:30:00", "#SBATCH --cpus-per-task=8", "#SBATCH --mem=15G"]),
        ("pbs", ["#PBS -l walltime=01:30:00", "#PBS -l select=1:ncpus=8:mem=15GB"]),
    ],
)
def test_batch_job_scripts(kind, expected, tmp_path):
    cluster, jobs = make_batch_cluster(
        {
            "kind": kind,
            "cores": 8,
            "memory": "16GB",
            "walltime": "01:30:00",
            "jobs": 3,
            "scheduler_options": {"host": "127.0.0.1"},
            "shared_temp_directory": str(tmp_path),
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


def test_slurm_cluster_is_tls_on_one_interface_without_dashboard(tmp_path):
    """Issue 20: the scheduler listened on all interfaces, the dashboard on 0.0.0.0:8787."""
    cluster, _ = _slurm(tmp_path, interface="lo")
    try:
        script = cluster.job_script()
        address = cluster.scheduler_address
        listen = [listener.listen_address for listener in cluster.scheduler.listeners]
        http_port = cluster.scheduler.http_server.port
        dashboard_status = _http_status(http_port, "status")
        info_status = _http_status(http_port, "info/main/workers.html")
        key_files = sorted(os.listdir(tmp_path))
        modes = {f: stat.S_IMODE(os.stat(tmp_path / f).st_mode) for f in key_files}
    finally:
        cluster.close()
    # every connection is TLS with the run's key, which the workers are given as files
    assert address.startswith("tls://127.0.0.1:") and listen == [address], (address, listen)
    assert f"dask_worker {address} " in script and "--protocol tls://" in script
    for flag in ("--tls-ca-file", "--tls-cert", "--tls-key"):
        assert f"{flag} {tmp_path}" in script, script
    assert len(key_files) == 3 and set(modes.values()) == {0o600}, modes  # owner only
    # workers bind where the scheduler does; their HTTP servers to their node's loopback
    assert "--interface lo" in script and "--no-dashboard" in script
    assert "--dashboard-address 127.0.0.1:0" in script
    # no dashboard nor any other page on the scheduler's HTTP port
    assert http_port != 8787 and dashboard_status == 404 and info_status == 404


def test_slurm_default_host_is_one_address(tmp_path):
    """Without --interface the scheduler binds one address, never every interface."""
    from distributed.utils import get_ip

    cluster, _ = _slurm(tmp_path)
    try:
        address = cluster.scheduler_address
        listen = [listener.listen_address for listener in cluster.scheduler.listeners]
    finally:
        cluster.close()
    assert address == listen[0] and address.startswith(f"tls://{get_ip()}:"), (address, listen)


def test_loopback_only_machine_asks_for_an_interface(tmp_path, monkeypatch):
    from distributed import utils

    monkeypatch.setattr(utils, "get_ip", lambda *args: "127.0.0.1")
    with pytest.raises(InputError, match="--interface"):
        _slurm(tmp_path)


def test_dashboard_when_asked_is_on_loopback(tmp_path):
    cluster, _ = _slurm(tmp_path, interface="lo", dashboard=True)
    try:
        server = cluster.scheduler.http_server
        assert server.address == "127.0.0.1"  # port 8787 unless taken
        assert _http_status(server.port, "info/main/workers.html") == 200
    finally:
        cluster.close()


def test_user_certificate_files(tmp_path):
    from distributed.security import Security

    sec = Security.temporary()
    files = {}
    for name, text in [("ca", sec.tls_ca_file), ("cert", sec.tls_client_cert)]:
        files[name] = tmp_path / f"{name}.pem"
        files[name].write_text(text)
    files["key"] = tmp_path / "key.pem"
    files["key"].write_text(sec.tls_client_key)
    tls = {"tls_ca_file": str(files["ca"]), "tls_cert": str(files["cert"])}
    with pytest.raises(InputError, match="missing --tls-key"):
        _slurm(tmp_path / "unused", interface="lo", **tls)
    with pytest.raises(InputError, match="--tls-key .*nowhere.pem.*no such file"):
        _slurm(tmp_path, interface="lo", tls_key=str(tmp_path / "nowhere.pem"), **tls)
    cluster, _ = _slurm(tmp_path, interface="lo", tls_key=str(files["key"]), **tls)
    try:
        script = cluster.job_script()
        address = cluster.scheduler_address
    finally:
        cluster.close()
    assert address.startswith("tls://127.0.0.1:")
    assert f"--tls-ca-file {files['ca']}" in script and f"--tls-key {files['key']}" in script
    assert sorted(os.listdir(tmp_path)) == ["ca.pem", "cert.pem", "key.pem"]  # nothing written


def test_tls_flags_need_a_cluster(scan_file, capsys):
    assert main(["integrate", str(scan_file), "--tls-ca", "ca.pem", "--npt", "10"]) == 2
    err = capsys.readouterr().err
    assert "--tls-ca apply to --cluster" in err


def test_bad_cluster_options_are_named():
    with pytest.raises(InputError, match="unsupported cluster 'condor'"):
        make_batch_cluster({"kind": "condor", "cores": 1, "memory": "1GB"})
    with pytest.raises(InputError, match="jobs must be at least 1"):
        make_batch_cluster({"kind": "slurm", "cores": 1, "memory": "1GB", "jobs": 0})
