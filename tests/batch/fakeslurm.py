"""A fake SLURM for the batch tests: ``sbatch``, ``squeue``, ``scancel``, ``sacct`` on PATH.

:func:`install` writes the four commands into a folder; they keep a job table in a JSON file
(``state.json``) and log every call. Deterministic, no clock: a job is ``PENDING (Priority)``
for ``pending_polls`` looks of ``squeue``; at the next look its tasks run, to their end,
inside that ``squeue`` call (``bash SCRIPT`` with ``SLURM_JOB_ID``, ``SLURM_ARRAY_JOB_ID``,
``SLURM_ARRAY_TASK_ID``, in its ``--chdir`` or the submitting folder, output to its
``--output``) and ``squeue`` shows them ``RUNNING``; at the look after that they have ended
(not listed; ``sacct`` says ``COMPLETED`` or ``FAILED`` by their exit code). With
``start=False`` jobs never leave ``PENDING``. ``scancel`` cancels (``CANCELLED``). An id
``squeue`` never knew gives its real error, "Invalid job id specified".
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

TOOLS = ("sbatch", "squeue", "scancel", "sacct")


def install(
    bin_dir: Path, *, pending_polls: int = 1, start: bool = True, accept: int | None = None
) -> Path:
    """Write the fake commands into ``bin_dir``; the path of their job table.

    ``accept``: sbatch refuses every job after that many (as for an invalid partition).
    """
    bin_dir.mkdir(parents=True, exist_ok=True)
    state = bin_dir / "state.json"
    config = {"pending_polls": pending_polls, "start": start, "accept": accept}
    state.write_text(json.dumps({**config, "next": 1000, "jobs": {}, "calls": []}))
    here = Path(__file__).resolve().parent
    for tool in TOOLS:
        path = bin_dir / tool
        path.write_text(
            f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(here)!r})\n"
            f"import fakeslurm\nsys.exit(fakeslurm.main({tool!r}, {str(state)!r}, sys.argv[1:]))\n"
        )
        path.chmod(0o755)
    return state


def load(state: Path) -> dict[str, Any]:
    """The job table and the log of calls."""
    return json.loads(Path(state).read_text())


def main(tool: str, state_path: str, argv: list[str]) -> int:
    with open(state_path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = json.loads(Path(state_path).read_text())
        state["calls"].append({"tool": tool, "argv": argv})
        code, out, err = globals()[f"_{tool}"](state, argv, Path(state_path).parent)
        tmp = f"{state_path}.{os.getpid()}.tmp"  # killed mid-call: the old table stays whole
        Path(tmp).write_text(json.dumps(state, indent=1))
        os.replace(tmp, state_path)
    sys.stdout.write(out)
    sys.stderr.write(err)
    return code


def _sbatch(state, argv, folder):
    options: dict[str, str] = {}
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        key, _, value = argv[i].lstrip("-").partition("=")
        options[key] = value
        i += 1
    script, args = argv[i], argv[i + 1 :]
    if state["accept"] is not None and len(state["jobs"]) >= state["accept"]:
        return (
            1,
            "",
            "sbatch: error: Batch job submission failed: Invalid partition name specified\n",
        )
    job = str(state["next"])
    state["next"] += 1
    copy = folder / f"job-{job}.sh"  # sbatch keeps a copy: the job runs it, not the original
    text = Path(script).read_text()
    copy.write_text(text)
    tasks = None
    if "array" in options:
        lo, hi = options["array"].split("%")[0].split("-")
        tasks = list(range(int(lo), int(hi) + 1))
    state["jobs"][job] = {
        "script": script,
        "text": text,
        "copy": str(copy),
        "args": args,
        "options": options,
        "cwd": os.getcwd(),
        "env": {k: v for k, v in os.environ.items() if k.startswith("PYSCATTER")},
        "tasks": tasks,
        "polls": 0,
        "state": "PENDING",
        "exit": {},
    }
    out = job + "\n" if "parsable" in options else f"Submitted batch job {job}\n"
    return 0, out, ""


def _run(job_id: str, job: dict[str, Any]) -> None:
    for task in job["tasks"] if job["tasks"] is not None else [None]:
        env = dict(os.environ, SLURM_JOB_ID=job_id)
        name = job_id
        if task is not None:
            env.update(SLURM_ARRAY_JOB_ID=job_id, SLURM_ARRAY_TASK_ID=str(task))
            name = f"{job_id}_{task}"
        pattern = job["options"].get("output", f"slurm-{name}.out")
        log = pattern.replace("%j", job_id).replace("%A", job_id).replace("%a", str(task))
        cwd = job["options"].get("chdir", job["cwd"])
        with open(Path(cwd) / log, "wb") as out:
            done = subprocess.run(
                ["bash", job["copy"], *job["args"]], env=env, cwd=cwd, stdout=out, stderr=out
            )
        job["exit"][name] = done.returncode


def _squeue(state, argv, folder):
    ids = argv[argv.index("-j") + 1].split(",")
    if not any(i in state["jobs"] for i in ids):
        return 1, "", "slurm_load_jobs error: Invalid job id specified\n"
    rows = []
    for job_id in ids:
        job = state["jobs"].get(job_id)
        if job is None or job["state"] in ("ENDED", "CANCELLED"):
            continue
        job["polls"] += 1
        tasks = job["tasks"]
        if not state["start"] or job["polls"] <= state["pending_polls"]:
            name = job_id if tasks is None else f"{job_id}_[{tasks[0]}-{tasks[-1]}]"
            rows.append(f"{name} PENDING Priority")
        elif job["state"] == "PENDING":
            job["state"] = "RUNNING"
            _run(job_id, job)
            names = [job_id] if tasks is None else [f"{job_id}_{t}" for t in tasks]
            rows += [f"{n} RUNNING None" for n in names]
        else:
            job["state"] = "ENDED"
    return 0, "".join(r + "\n" for r in rows), ""


def _scancel(state, argv, folder):
    for job_id in argv:
        job = state["jobs"].get(job_id)
        if job is not None and job["state"] != "ENDED":
            job["state"] = "CANCELLED"
    return 0, "", ""


def _sacct(state, argv, folder):
    job_id = argv[argv.index("-j") + 1]
    job = state["jobs"].get(job_id)
    if job is None:
        return 0, "", ""
    if job["state"] == "CANCELLED" and not job["exit"]:
        name = (
            job_id if job["tasks"] is None else f"{job_id}_[{job['tasks'][0]}-{job['tasks'][-1]}]"
        )
        return 0, f"{name}|CANCELLED by 1000|0:0\n", ""
    lines = [
        f"{name}|{'COMPLETED' if code == 0 else 'FAILED'}|{code}:0"
        for name, code in job["exit"].items()
    ]
    return 0, "".join(line + "\n" for line in lines), ""
