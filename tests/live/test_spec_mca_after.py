"""SPEC scans whose ``@A`` spectra follow their data line (as SPEC writes them: the APS files of
spec2nexus, pyscatter.datasets_xrf): followed point by point, a point handed on only once its
spectra are complete, and ``pyscatter watch`` + ``xrf-fit`` equal to the offline commands."""

from __future__ import annotations

import subprocess
import sys

import h5py
import numpy as np
import pytest

from pyscatter.datasets_xrf import write_spec_mesh, xrf_map
from pyscatter.live.spec_follow import SpecSource, mca_order, point_ends_after

SHAPE = (2, 3)


@pytest.fixture(scope="module")
def spec_text(tmp_path_factory):
    path = write_spec_mesh(tmp_path_factory.mktemp("spec") / "x.spec", xrf_map(SHAPE, seed=2))
    return path.read_bytes()


def _points(text):
    """(header through #L, [the bytes of each point: data line then its @A lines])."""
    head, _, body = text.partition(b"\n#L ")
    head += b"\n#L " + body[: body.index(b"\n") + 1]
    body = body[body.index(b"\n") + 1 :]
    lines = body.splitlines(keepends=True)
    starts, continued = [], False
    for k, ln in enumerate(lines):  # data lines: not @A lines nor their continuations
        if not continued and ln[:1].isdigit():
            starts.append(k)
        continued = ln.rstrip().endswith(b"\\")
    points = [b"".join(lines[a:b]) for a, b in zip(starts, [*starts[1:], len(lines)], strict=True)]
    return head, points


def test_the_order_and_the_spectra_per_point_are_read_from_the_file(spec_text):
    head, points = _points(spec_text)
    assert mca_order(head, b"") == (None, None)
    data_line = points[0][: points[0].index(b"\n") + 1]
    assert mca_order(head, data_line) == (None, None)  # one data line: spectra may follow
    assert mca_order(head, points[0]) == (True, None)  # how many: not known yet
    assert mca_order(head, points[0] + points[1]) == (True, 1)
    body = points[0] + points[1][:40]  # the second point's data line cut: not a line yet
    assert point_ends_after(body, 1, 6) == ([], False)
    ends, new = point_ends_after(points[0] + points[1], 1, 6)
    assert ends == [len(points[0])] and not new  # the second point may have more to come
    ends, _ = point_ends_after(points[-1], 1, 1)  # the last declared point: its spectrum ends it
    assert ends == [len(points[-1].rstrip(b"\n")) + 1]  # (a blank line ends the file)
    half = points[-1][: points[-1].index(b"\\\n") + 2]  # its spectrum's first line only
    assert point_ends_after(half, 1, 1) == ([], False)


def test_points_are_followed_as_they_are_appended(tmp_path, spec_text):
    head, points = _points(spec_text)
    path = tmp_path / "grow.spec"
    path.write_bytes(head)
    source = SpecSource(path, watch=False)
    assert source.poll() == []
    got = []
    with open(path, "ab") as handle:
        for k, point in enumerate(points):
            cut = len(point) // 2
            handle.write(point[:cut])
            handle.flush()
            got += source.poll()
            handle.write(point[cut:])
            handle.flush()
            got += source.poll()
            assert len(got) in (k, k + 1)  # a point is handed on once it is complete
    assert [a.index for a in got] == list(range(len(points)))
    assert source.finished()
    expected = xrf_map(SHAPE, seed=2).spectra.reshape(len(points), -1)
    for arrival, spectrum in zip(got, expected, strict=True):
        np.testing.assert_array_equal(arrival.frame, spectrum)


def test_watch_and_xrf_fit_equal_the_offline_commands(tmp_path, spec_text):
    spec = tmp_path / "x.spec"
    spec.write_bytes(spec_text)
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text("steps:\n  - xrf-fit: {elements: [Ca, Fe, Cu, Zn], excitation: 17}\n")
    cli = [sys.executable, "-m", "pyscatter", "-q"]
    live, off = tmp_path / "live.h5", tmp_path / "off.h5"
    subprocess.run(
        [
            *cli,
            "watch",
            str(spec),
            "-o",
            str(live),
            "--pipeline",
            str(pipeline),
            "--until-complete",
        ],
        check=True,
    )
    subprocess.run(
        [*cli, "translate", str(spec), "--format", "spec", "--scan", "1", "-o", str(off)],
        check=True,
    )
    subprocess.run(
        [*cli, "xrf-fit", str(off), "--elements", "Ca", "Fe", "Cu", "Zn", "--excitation", "17"],
        check=True,
    )

    def read(path):
        with h5py.File(path, "r") as h5:
            chan = h5["Measurement_000/Channel_000"]
            group = chan[next(k for k in chan if "XrfFit" in k)]
            energy = chan["Spectroscopic_Values"][()]  # keV from #@CALIB, as offline
            return chan["Raw_Data"][()], energy, group["area"][()], group["area_sigma"][()]

    for a, b in zip(read(live), read(off), strict=True):
        np.testing.assert_array_equal(a, b)
