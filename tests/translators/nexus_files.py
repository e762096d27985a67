"""Synthetic NeXus NXsas files (the NeXus application definition for small-angle scattering).

Layout: ``/entry`` (NXentry, ``definition = NXsas``) → ``instrument`` (NXinstrument) →
``detector`` (NXdetector: ``data`` frames × rows × cols and the scalar geometry fields given)
and ``monochromator`` (NXmonochromator: ``wavelength``); ``/entry/data`` (NXdata, the
``@default``) links the frames with a ``time`` axis of the frames (``@axes = [time, ., .]``).
"""

from __future__ import annotations

import h5py
import numpy as np

SHAPE = (40, 50)  # rows, cols
WAVELENGTH_A = 1.0
#: Frame times of the NXdata time axis, s.
FRAME_PERIOD_S = 0.5


def write_nxsas(path, fields, *, wavelength=(WAVELENGTH_A, "angstrom"), n=3, header=None):
    """An NXsas file: frames in the NXdetector, NXdata /entry/data with a time axis.

    ``fields`` maps detector field names to ``(value, units or None)``; ``header``, a dict of
    text, is written as a detector ``header`` NXcollection (some NeXus writers have one).
    """
    with h5py.File(path, "w") as h5:
        h5.attrs.update({"NX_class": "NXroot", "default": "entry"})
        entry = h5.create_group("entry")
        entry.attrs.update({"NX_class": "NXentry", "default": "data"})
        entry["definition"] = "NXsas"
        inst = entry.create_group("instrument")
        inst.attrs["NX_class"] = "NXinstrument"
        det = inst.create_group("detector")
        det.attrs["NX_class"] = "NXdetector"
        det["data"] = np.random.default_rng(0).poisson(10, (n, *SHAPE)).astype(np.int32)
        if header is not None:
            group = det.create_group("header")
            group.attrs["NX_class"] = "NXcollection"
            for key, text in header.items():
                group[key] = text
        for name, (value, unit) in fields.items():
            det[name] = np.float64(value)
            if unit is not None:
                det[name].attrs["units"] = unit
        mono = inst.create_group("monochromator")
        mono.attrs["NX_class"] = "NXmonochromator"
        mono["wavelength"] = wavelength[0]
        if wavelength[1] is not None:
            mono["wavelength"].attrs["units"] = wavelength[1]
        data = entry.create_group("data")
        data.attrs.update({"NX_class": "NXdata", "signal": "data", "axes": ["time", ".", "."]})
        data["data"] = det["data"]
        data["time"] = np.arange(n) * FRAME_PERIOD_S
        data["time"].attrs["units"] = "s"
    return path
