"""Every backend gives the bits of the serial run: read-ahead, joblib workers and a real dask
LocalCluster."""

from __future__ import annotations

import multiprocessing
import os

import h5py
import pytest

from pyscatter.processes.base import run_on_file
from pyscatter.processes.integration import AzimuthalIntegration

PARAMS = dict(npt=70, error_model="poisson", max_mem_mb=1, progress=False)


def _results(path, group):
    with h5py.File(path, "r") as h5:
        return {k: h5[group][k][()].tobytes() for k in ("Intensity", "Intensity_Sigma")}


@pytest.fixture()
def serial(tmp_path, small_scan):
    from conftest import write_scan

    path = write_scan(tmp_path / "serial.h5", small_scan)
    summary = run_on_file(path, AzimuthalIntegration, n_jobs=1, read_ahead=False, **PARAMS)
    return _results(path, summary.group)


def test_read_ahead_reads_in_a_thread_and_gives_serial_bits(
    tmp_path, small_scan, serial, monkeypatch
):
    import threading

    from conftest import write_scan

    from pyscatter.processes.execution import FrameReader

    readers: list[str] = []
    real_read = FrameReader.read

    def read(self, *args, **kwargs):
        readers.append(threading.current_thread().name)
        return real_read(self, *args, **kwargs)

    monkeypatch.setattr(FrameReader, "read", read)
    path = write_scan(tmp_path / "ahead.h5", small_scan)
    summary = run_on_file(path, AzimuthalIntegration, **PARAMS)  # read_ahead is the default
    assert summary.computed_positions == small_scan.n_positions
    assert len(readers) > 2 and all(name.startswith("pyscatter-read") for name in readers)
    assert _results(path, summary.group) == serial
    assert not [t for t in threading.enumerate() if t.name.startswith("pyscatter-read")]


def test_joblib_workers_give_serial_bits(tmp_path, small_scan, serial):
    from conftest import write_scan

    path = write_scan(tmp_path / "joblib.h5", small_scan)
    summary = run_on_file(path, AzimuthalIntegration, n_jobs=2, **PARAMS)
    assert summary.computed_positions == small_scan.n_positions
    assert _results(path, summary.group) == serial


def test_dask_local_cluster_gives_serial_bits(tmp_path, small_scan, serial):
    from conftest import write_scan

    path = write_scan(tmp_path / "dask.h5", small_scan)
    summary = run_on_file(path, AzimuthalIntegration, scheduler="local", n_jobs=2, **PARAMS)
    assert summary.computed_positions == small_scan.n_positions
    assert _results(path, summary.group) == serial


def test_dask_scheduler_address(tmp_path, small_scan, serial):
    """A TLS scheduler started elsewhere, reached by address with dask's TLS configuration."""
    import dask
    from conftest import write_scan

    from pyscatter.processes.execution import start_local_cluster

    path = write_scan(tmp_path / "address.h5", small_scan)
    with start_local_cluster(1) as cluster:
        sec = cluster.security  # PEM text: dask's configuration takes contents or file paths
        tls = {
            "distributed.comm.tls.ca-file": sec.tls_ca_file,
            "distributed.comm.tls.client.cert": sec.tls_client_cert,
            "distributed.comm.tls.client.key": sec.tls_client_key,
        }
        with dask.config.set(tls):
            summary = run_on_file(
                path, AzimuthalIntegration, scheduler=cluster.scheduler_address, **PARAMS
            )
    assert _results(path, summary.group) == serial


@pytest.mark.timeout(120)
def test_local_cluster_refuses_clients_without_its_key():
    """Issue 20: another local user connected to a run's scheduler and ran code as its user.

    The run's cluster (started as ``scheduler="local"`` starts it) speaks TLS on loopback with
    a key of its own: a client without it, with a key of its own, or over plain TCP is refused.
    """
    import urllib.error
    import urllib.request

    from dask.distributed import Client
    from distributed.security import Security

    from pyscatter.processes.execution import _dask_client

    client, cluster = _dask_client("local", 1)
    try:
        address = cluster.scheduler_address
        assert address.startswith("tls://127.0.0.1:"), address
        # the run's own client works
        assert client.submit(sum, [40, 2]).result(timeout=60) == 42
        for kwargs, addr in [
            ({}, address),  # no credentials: distributed refuses to speak TLS without them
            ({"security": Security.temporary()}, address),  # an attacker's own key
            ({}, address.replace("tls://", "tcp://")),  # plain TCP to the same port
        ]:
            with pytest.raises((OSError, TypeError)):  # refused, handshake fails or reset
                intruder = Client(addr, timeout="5s", **kwargs)
                intruder.close()  # pragma: no cover - reached only if it connected
        # no dashboard nor any other HTTP page
        port = cluster.scheduler.http_server.port
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/info/main/workers.html", timeout=5)
    finally:
        client.close()
        cluster.close()


def test_second_writer_is_refused_naming_the_holder(scan_file):
    from pyscatter.io import safety

    with safety.job_lock(scan_file, command="someone else's job"):
        ctx = multiprocessing.get_context("forkserver")
        with ctx.Pool(1) as pool:
            err = pool.apply(_try_run, (str(scan_file),))
    assert err is not None and err[0] == "FileBusyError"
    assert str(os.getpid()) in err[1] and str(scan_file) in err[1]


def _try_run(path):
    try:
        run_on_file(path, AzimuthalIntegration, npt=10, progress=False)
    except Exception as exc:  # returned to the parent for its assertions
        return type(exc).__name__, str(exc)
    return None
