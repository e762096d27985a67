"""An sbatch script that runs a pipeline on one file and resubmits itself until it is complete.

``pyscatter batch --template`` prints :data:`TEMPLATE`. Save it, adapt the ``#SBATCH`` lines
and the environment, then ``sbatch pyscatter-file.sh scan.h5 pipeline.yaml``.
"""

from __future__ import annotations

__all__ = ["TEMPLATE"]

TEMPLATE = r"""#!/bin/bash
#SBATCH --job-name=pyscatter-file
#SBATCH --time=04:00:00
#SBATCH --cpus-per-task=8
#SBATCH --mem=16G
#SBATCH --signal=B:USR1@120
#SBATCH --output=pyscatter-file-%j.out
#
# Run a pyscatter pipeline on one file; resubmit this script until the file is complete.
#
#   sbatch pyscatter-file.sh FILE PIPELINE [MAX_RESUBMITS [more pyscatter batch options]]
#   e.g. sbatch pyscatter-file.sh raw/scan_012.h5 pipeline.yaml 10
#        sbatch pyscatter-file.sh raw/scan_012.spec pipeline.yaml 10 --translate spec --out-dir out
#
# 120 s before the time limit SLURM sends USR1 to this script (--signal=B:USR1@120). It stops
# pyscatter with SIGTERM (completed work is kept, the file is recorded "partial"), submits
# itself again and ends; the next job reuses what is complete and continues the interrupted
# step. It does not resubmit when pyscatter ends by itself: exit code 0 means every step of
# the file is complete; any other code is a failure that a new job would repeat (the output
# file of the job and FILE.batch.json say why). At most MAX_RESUBMITS (default 10) times.
#
# PYSCATTER is the command run (default: pyscatter on PATH; the venv's absolute path also
# works, e.g. PYSCATTER=/path/to/.venv/bin/pyscatter).

set -u
FILE=${1:?usage: sbatch pyscatter-file.sh FILE PIPELINE [MAX_RESUBMITS [options]]}
PIPELINE=${2:?usage: sbatch pyscatter-file.sh FILE PIPELINE [MAX_RESUBMITS [options]]}
MAX=${3:-10}
shift $(($# < 3 ? $# : 3))
COUNT=${PYSCATTER_RESUBMIT:-0}
PYSCATTER=${PYSCATTER:-pyscatter}
SCRIPT=${PYSCATTER_SCRIPT:-$0}   # in a job, $0 is SLURM's copy of this script
# source /path/to/.venv/bin/activate

STOP=0
trap 'STOP=1; kill -TERM "$PID" 2>/dev/null' USR1

$PYSCATTER batch "$FILE" --pipeline "$PIPELINE" "$@" &
PID=$!
wait "$PID"
RC=$?
if [ "$STOP" -eq 1 ]; then   # wait returned early for the signal: wait for pyscatter's end
    wait "$PID"
    RC=$?
fi

if [ "$RC" -eq 0 ]; then
    echo "pyscatter-file: $FILE complete"
    exit 0
fi
if [ "$STOP" -ne 1 ]; then
    echo "pyscatter-file: $FILE failed (exit code $RC); not resubmitted" >&2
    exit "$RC"
fi
if [ "$COUNT" -ge "$MAX" ]; then
    echo "pyscatter-file: $FILE not complete after $MAX resubmissions; giving up" >&2
    exit 1
fi
echo "pyscatter-file: time limit near; resubmitting ($((COUNT + 1)) of $MAX)"
PYSCATTER_RESUBMIT=$((COUNT + 1)) sbatch "$SCRIPT" "$FILE" "$PIPELINE" "$MAX" "$@"
"""
"""The sbatch template (bash): one file, resubmitted before its time limit until complete."""
