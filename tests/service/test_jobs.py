"""Watch jobs through the service, with a stand-in for ``pyscatter watch`` (and the real one
when it exists)."""

from __future__ import annotations

import importlib.util
import time

import h5py
import numpy as np
import pytest

from .conftest import SESSION

START = {
    "source": "frames",
    "output": "live.h5",
    "pipeline": "pipeline.yaml",
    "grid": {"Y": 8, "X": 10},
    "poni": "demo.poni",
    "mask": "frames/mask.edf",
    "pattern": "frame_*.edf",
    "until_complete": True,
    "idle": 30.0,
}


def wait_for(check, what, limit=60.0):
    """Poll ``check()`` until true; fail after ``limit`` seconds (a hang, not a timing test)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {limit} s")


def job(client, signed, job_id):
    reply = signed(client, "GET", f"/api/jobs/{job_id}")
    assert reply.status_code == 200, reply.text
    return reply.json()


def ended(client, signed, job_id, limit=60.0):
    return wait_for(
        lambda: (info := job(client, signed, job_id))["exit_code"] is not None and info,
        "job end",
        limit,
    )


def test_start_runs_the_argument_list(make_client, signed, standin, root):
    client = make_client(standin("finish"))
    reply = signed(client, "POST", "/api/jobs", json=START)
    assert reply.status_code == 201, reply.text
    info = reply.json()
    assert info["state"] in ("running", "finished")
    expected = [
        str(root / "frames"),
        "-o",
        str(root / "live.h5"),
        "--pipeline",
        str(root / "pipeline.yaml"),
        "--grid",
        "Y=8,X=10",
        "--poni",
        str(root / "demo.poni"),
        "--mask",
        str(root / "frames" / "mask.edf"),
        "--pattern=frame_*.edf",
        "--until-complete",
        "--idle",
        "30.0",
    ]
    assert info["command"][3:] == expected
    done = ended(client, signed, info["id"])
    assert done["state"] == "finished" and done["exit_code"] == 0
    assert done["log_tail"][0] == f"args {expected!r}" and done["log_tail"][-1] == "done"
    assert done["progress"]["state"] == "watching" and done["progress"]["frames"] == 3
    listed = client.get("/api/jobs", headers=SESSION).json()["jobs"]
    assert [j["id"] for j in listed] == [info["id"]]


def test_stop_sends_sigint(make_client, signed, standin):
    client = make_client(standin("wait"))
    info = signed(client, "POST", "/api/jobs", json=START).json()
    wait_for(lambda: "ready" in job(client, signed, info["id"])["log_tail"], "stand-in ready")
    reply = signed(client, "POST", f"/api/jobs/{info['id']}/stop", json={"grace": 30})
    assert reply.status_code == 200 and reply.json()["state"] in ("stopping", "stopped")
    done = ended(client, signed, info["id"])
    assert done["state"] == "stopped" and done["exit_code"] == 130
    assert done["log_tail"][-1] == "interrupted" and done["progress"]["state"] == "stopped"


def test_stop_kills_after_the_grace_period(make_client, signed, standin):
    client = make_client(standin("stubborn"))
    info = signed(client, "POST", "/api/jobs", json=START).json()
    wait_for(lambda: "ready" in job(client, signed, info["id"])["log_tail"], "stand-in ready")
    signed(client, "POST", f"/api/jobs/{info['id']}/stop", json={"grace": 0.2})
    done = ended(client, signed, info["id"])
    assert done["state"] == "stopped" and done["exit_code"] == -9


def test_failed_job_reports_its_message(make_client, signed, standin):
    client = make_client(standin("fail"))
    info = signed(client, "POST", "/api/jobs", json=START).json()
    done = ended(client, signed, info["id"])
    assert done["state"] == "failed" and done["exit_code"] == 1
    assert "stand-in: the source is corrupt" in done["log_tail"]


def test_one_job_per_output(make_client, signed, standin):
    client = make_client(standin("wait"))
    first = signed(client, "POST", "/api/jobs", json=START).json()
    second = signed(client, "POST", "/api/jobs", json=START)
    assert second.status_code == 409 and first["id"] in second.json()["error"]
    other = signed(client, "POST", "/api/jobs", json={**START, "output": "other.h5"})
    assert other.status_code == 201
    for info in (first, other.json()):
        signed(client, "POST", f"/api/jobs/{info['id']}/stop", json={})
        ended(client, signed, info["id"])


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ({"pipeline": "missing.yaml"}, 404, "no such file"),
        ({"pipeline": "frames"}, 404, "not a file"),
        ({"source": "../frames"}, 403, "'..'"),
        ({"output": "/tmp/live.h5"}, 403, "absolute"),
        ({"output": "live.txt"}, 422, "ending in"),
        ({"output": "nofolder/live.h5"}, 404, "no such file"),
    ],
)
def test_bad_paths_refused(make_client, signed, standin, change, status, words):
    client = make_client(standin("finish"))
    reply = signed(client, "POST", "/api/jobs", json={**START, **change})
    assert reply.status_code == status and words in reply.json()["error"], reply.text
    assert client.get("/api/jobs", headers=SESSION).json()["jobs"] == []


def test_unknown_job(client, signed):
    assert signed(client, "GET", "/api/jobs/nope").status_code == 404
    assert signed(client, "POST", "/api/jobs/nope/stop", json={}).status_code == 404


def test_jobs_stopped_when_the_service_stops(make_client, signed, standin):
    client = make_client(standin("wait"))
    info = signed(client, "POST", "/api/jobs", json=START).json()
    wait_for(lambda: "ready" in job(client, signed, info["id"])["log_tail"], "stand-in ready")
    jobs = client.app.state.service.jobs
    client.__exit__(None, None, None)  # the lifespan ends: SIGINT to every job
    assert jobs.get(info["id"]).process.returncode == 130


@pytest.mark.skipif(
    importlib.util.find_spec("pyscatter.cli.watch") is None,
    reason="pyscatter watch is not in this tree yet",
)
def test_real_watch_job(client, signed, root):
    """A signed request starts the real ``pyscatter watch`` on the demo frames; the S map
    served afterwards is the one in the file."""
    reply = signed(client, "POST", "/api/jobs", json={**START, "output": "live.h5"})
    assert reply.status_code == 201, reply.text
    done = ended(client, signed, reply.json()["id"], limit=600)
    assert done["exit_code"] == 0, done["log_tail"]
    groups = client.get("/api/results", params={"file": "live.h5"}, headers=SESSION).json()
    order = [g for g in groups["groups"] if g["process"] == "OrderParameter"][-1]
    got = client.get(
        "/api/map",
        params={"file": "live.h5", "group": order["path"], "quantity": "S"},
        headers=SESSION,
    ).json()
    with h5py.File(root / "live.h5", "r") as h5:
        np.testing.assert_array_equal(got["values"], h5[order["path"]]["S"][:, 0].astype(float))
    assert got["complete_positions"] == 80
