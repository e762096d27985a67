"""Synthetic ESRF ID02 LIMA HDF5 files, written the way LIMA's ``CtSaving_Hdf5`` writes them.

Layout (LIMA 1.9, ``SaveContainerHdf5::_open`` / ``_writeFile``): root attributes ``default``,
``NX_class = NXroot``, ``creator = LIMA-<version>``, ``file_name``, ``file_time``; ``/entry_0000``
(NXentry) with ``title = "Lima 2D detector acquisition"``, ``start_time``/``end_time`` (ISO 8601
UTC strings); ``<instrument>/<detector>`` (NXinstrument / NXdetector) holding ``data``
(frames × rows × cols, maxshape unlimited in frames, one frame per chunk, bitshuffle-LZ4 with
options (0, 2) or gzip level 6), ``header`` (NXcollection of scalar variable-length UTF-8 string
datasets), ``plot`` (NXdata, soft link to data), ``detector_information``, ``acquisition``,
``image_operation``; ``measurement`` (NXcollection) with ``data`` a **soft link** to the frames.
Frames never written (an aborted acquisition) are chunks never allocated.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import h5py
import hdf5plugin
import numpy as np

LAYOUTS = {"esrf-id02": ("ESRF-ID02", "eiger2"), "instrument": ("instrument", "id02-eiger2-saxs")}


def geometry_header(**changes) -> dict[str, str]:
    """An ID02-like header: 120 × 80 pixel frames, beam centre at column 60.5, row 40.5."""
    header = {
        "Center_1": "60.5",
        "Center_2": "40.5",
        "PSize_1": "7.5e-05",
        "PSize_2": "7.5e-05",
        "SampleDistance": "2.0",
        "WaveLength": "1.0e-10",
        "Dummy": "-10",
        "DDummy": "0.1",
        "BSize_1": "1",
        "BSize_2": "1",
        "Title": "sampleA_250mT_001",
    }
    header.update({k: str(v) for k, v in changes.items() if v is not None})
    for k in [k for k, v in changes.items() if v is None]:
        header.pop(k, None)
    return header


def write_lima(
    path: Path,
    frames: np.ndarray,
    *,
    header: dict[str, str] | None = None,
    layout: str = "esrf-id02",
    compression: str = "bslz4",
    written: int | None = None,
    start: dt.datetime | None = None,
    exposure: float = 0.1,
    latency: float = 0.01,
) -> Path:
    """Write ``frames`` (n, rows, cols) as a LIMA file; only the first ``written`` frames exist."""
    instrument, detector = LAYOUTS[layout]
    n, rows, cols = frames.shape
    start = start or dt.datetime(2024, 5, 1, 10, 0, 0, tzinfo=dt.UTC)
    iso = start.strftime("%Y-%m-%dT%H:%M:%SZ")
    filters = (
        dict(hdf5plugin.Bitshuffle(nelems=0, cname="lz4"))
        if compression == "bslz4"
        else {"compression": "gzip", "compression_opts": 6}
    )
    with h5py.File(path, "w") as h5:
        h5.attrs.update(
            {
                "default": "entry_0000",
                "NX_class": "NXroot",
                "creator": "LIMA-1.9.7",
                "file_name": str(path),
                "file_time": iso,
            }
        )
        entry = h5.create_group("entry_0000")
        entry.attrs["NX_class"] = "NXentry"
        entry["title"] = "Lima 2D detector acquisition"
        entry["start_time"] = iso
        entry["end_time"] = iso
        inst = entry.create_group(instrument)
        inst.attrs["NX_class"] = "NXinstrument"
        det = inst.create_group(detector)
        det.attrs["NX_class"] = "NXdetector"
        head = det.create_group("header")
        head.attrs["NX_class"] = "NXcollection"
        for key, value in (header if header is not None else geometry_header()).items():
            head[key] = value  # scalar variable-length UTF-8 string, as LIMA writes
        info = det.create_group("detector_information")
        info.attrs["NX_class"] = "NXcollection"
        info["name"], info["model"], info["type"] = detector, "Eiger2 4M", "E-08-0106"
        acq = det.create_group("acquisition")
        acq.attrs["NX_class"] = "NXcollection"
        acq["exposure_time"], acq["latency_time"] = exposure, latency
        acq["nb_frames"] = np.int32(n)
        acq["mode"], acq["trigger_mode"] = "Single", "IntTrig"
        ops = det.create_group("image_operation")
        ops.attrs["NX_class"] = "NXcollection"
        binning = ops.create_group("binning")
        binning["x"], binning["y"] = np.int32(1), np.int32(1)
        data = det.create_dataset(
            "data",
            shape=(n, rows, cols),
            maxshape=(None, rows, cols),
            chunks=(1, rows, cols),
            dtype=frames.dtype,
            **filters,
        )
        data.attrs["interpretation"] = "image"
        for i in range(n if written is None else written):
            data[i] = frames[i]
        plot = det.create_group("plot")
        plot.attrs["NX_class"] = "NXdata"
        plot.attrs["signal"] = "data"
        plot["data"] = h5py.SoftLink(data.name)
        meas = entry.create_group("measurement")
        meas.attrs["NX_class"] = "NXcollection"
        meas["data"] = h5py.SoftLink(data.name)
    return path


def frames_with_ring(n: int, *, shape=(80, 120), seed=0, dtype=np.uint32, dummy_pixels=True):
    """Poisson frames; pixels of column 0 hold the dummy value -10 … as uint: 0 rows masked.

    For unsigned frames the dummy -10 cannot be stored: the dummy test uses int32 frames.
    """
    rng = np.random.default_rng(seed)
    frames = rng.poisson(20.0, size=(n, *shape)).astype(dtype)
    if dummy_pixels and np.dtype(dtype).kind == "i":
        frames[:, :, 0] = -10  # a dead column marked with the Dummy value
    return frames
