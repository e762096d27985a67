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


def _probe(address: str, context) -> tuple[bool, str]:
    """Connect to ``address`` (``tls://host:port``); return (let in, what happened).

    ``context`` is an ``ssl.SSLContext`` to speak TLS with (it does not check the server: the
    question is whether the server checks us), or None for plain TCP. A dask listener that
    accepts a connection sends its own handshake message at once, so receiving data means the
    caller was let in; a refusal is a failed TLS handshake, a TLS alert, a reset or a closed
    connection. The 60 s socket timeout only bounds a probe that hangs, which counts as let in.
    """
    import socket
    import ssl

    host, port = address.removeprefix("tls://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=60) as raw:
        try:
            if context is None:
                raw.sendall(b"\x00" * 64)  # not TLS: the listener drops it
                data = raw.recv(1)
            else:
                with context.wrap_socket(raw) as tls:
                    data = tls.recv(1)  # TLS 1.3: a rejected client certificate shows here
        except ssl.SSLError as err:
            return False, f"TLS refused: {err.reason or err}"
        except (ConnectionResetError, BrokenPipeError) as err:
            return False, f"reset: {err}"
        except TimeoutError:
            return True, "the connection was kept open"
    return (data != b""), f"received {data!r}"


def _unverified(context):
    """The context, not checking the server (the probe asks whether the server checks us)."""
    import ssl

    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    return context


@pytest.mark.timeout(300)
def test_local_cluster_refuses_clients_without_its_key():
    """Issue 20: another local user connected to a run's scheduler and ran code as its user.

    The run's cluster (started as ``scheduler="local"`` starts it) speaks TLS on loopback with
    a key of its own: a client without a certificate, with a key of its own, or over plain TCP
    is refused, before any dask message is exchanged.
    """
    import ssl
    import urllib.error
    import urllib.request

    from distributed.security import Security

    from pyscatter.processes.execution import _dask_client

    client, cluster = _dask_client("local", 1)
    try:
        address = cluster.scheduler_address
        assert address.startswith("tls://127.0.0.1:"), address
        # the run's own client works
        assert client.submit(sum, [40, 2]).result(timeout=120) == 42
        anonymous = _unverified(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))  # no certificate
        attacker = _unverified(Security.temporary().get_connection_args("client")["ssl_context"])
        outcomes = {
            "no certificate": _probe(address, anonymous),
            "own key": _probe(address, attacker),
            "plain TCP": _probe(address, None),
        }
        print(outcomes)
        assert not any(let_in for let_in, _ in outcomes.values()), outcomes
        # the probe does see a client let in: the run's own key gets the scheduler's handshake
        own = cluster.security.get_connection_args("client")["ssl_context"]
        assert _probe(address, own)[0]
        # and the run's client still works after the attempts
        assert client.submit(sum, [1, 2]).result(timeout=120) == 3
        # no dashboard nor any other HTTP page
        port = cluster.scheduler.http_server.port
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/info/main/workers.html", timeout=60)
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


def thread_probe(spec, h5):
    """A factory of block functions that report the thread limits of the worker they run in."""

    def probe(h5file, start, stop):
        value = float(os.environ.get("OMP_NUM_THREADS", "nan"))
        return {"omp": [[value]] * (stop - start)}

    return probe


def test_joblib_workers_run_one_openmp_thread_each(scan_file, monkeypatch):
    """Two workers on any machine: one OpenMP/BLAS thread each, no oversubscription.

    joblib's default would give each of two workers cpu_count // 2 threads; the machine is made
    to look like 16 cores (and the parent's own limits removed) so that the default would give 8
    and only the explicit limit gives 1, whatever machine runs the test.
    """
    import joblib._parallel_backends as backends
    import numpy as np

    from pyscatter.processes.execution import TaskSpec, run_blocks

    monkeypatch.setattr(backends, "cpu_count", lambda *a, **k: 16)
    for var in backends.ParallelBackendBase.MAX_NUM_THREADS_VARS:
        monkeypatch.delenv(var, raising=False)

    spec = TaskSpec(f"{__name__}:thread_probe", str(scan_file), "{}", token="threads")
    blocks = [(i, i, i + 1) for i in range(6)]
    out = dict(run_blocks(spec, blocks, n_jobs=2))
    assert sorted(out) == list(range(6))
    assert all(np.asarray(o["omp"]).ravel().tolist() == [1.0] for o in out.values())
