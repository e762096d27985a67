"""``pyscatter info FILE.h5``: main datasets, processes, parameters and completion.

On an HDF5 file pyscatter did not write (a NeXus or detector file, say), it says so and outlines
what it holds: groups with their ``NX_class``, datasets with shape, dtype and units.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

#: At most this many lines of outline for a file pyscatter did not write.
OUTLINE_LINES = 40
#: And this deep (``/entry/instrument/detector/data`` is depth 4).
OUTLINE_DEPTH = 4


def register(sub) -> None:
    p = sub.add_parser(
        "info", help="what a file holds and how far each process got", description=__doc__
    )
    p.add_argument("file")
    p.add_argument("--parameters", action="store_true", help="print every parameter")
    p.set_defaults(func=run)


def describe(path: str, *, parameters: bool = False) -> str:
    """The text ``pyscatter info`` prints."""
    from pyscatter.io import safety
    from pyscatter.io.geometry_series import read_series
    from pyscatter.io.record import FLAGS, verified_positions
    from pyscatter.io.results import all_results
    from pyscatter.io.usid import dims_of, main_datasets
    from pyscatter.io.xarray import open_for_reading

    lines = [path]
    holder = safety.lock_holder(path)
    with open_for_reading(path) as h5:
        if "Measurement_000" not in h5 and not main_datasets(h5):
            return "\n".join([*lines, *_foreign(h5)])
        for name, value in h5["Measurement_000"].attrs.items() if "Measurement_000" in h5 else []:
            if name in ("translator", "created", "orientation", "instrument"):
                lines.append(f"  {name}: {value}")
        if "live_state" in h5.attrs:  # written by pyscatter watch
            state = f"  live: {_text(h5.attrs['live_state'])}"
            frames = h5.get("Measurement_000/Channel_000/live_frames")
            if frames is not None:
                done = int(np.count_nonzero(frames[()]))
                state += f", {done} of {frames.shape[0]} frames written"
            lines.append(state)
        for dset in main_datasets(h5):
            pos = " × ".join(f"{d.name}={len(d)} [{d.units}]" for d in dims_of(dset, "Position"))
            spec = " × ".join(
                f"{d.name}={len(d)} [{d.units}]" for d in dims_of(dset, "Spectroscopic")
            )
            lines.append(
                f"  {dset.name}  {dset.shape} {dset.dtype}  positions: {pos}  values: {spec}"
            )
            if dset.name.endswith("/Raw_Data") and (series := read_series(dset)) is not None:
                n = len(series.groups()[0])
                lines.append(
                    f"    geometry per position: {', '.join(series.keys)} vary "
                    f"({n} distinct geometries, {series.source})"
                )
        for group in all_results(h5):
            if FLAGS not in group or "n_positions" not in group.attrs:
                lines.append(f"  {group.name}: {group.attrs['process']} (no completion record)")
                continue
            done = int(verified_positions(group).sum())
            total = int(group.attrs["n_positions"])
            if done == total:
                state = "complete"
            elif holder is not None:
                state = f"running (pid {holder.pid} on {holder.host} since {holder.since})"
            else:
                state = "interrupted: run the same command again to resume"
            lines.append(
                f"  {group.name}: {group.attrs['process']} {done}/{total} positions, {state}"
            )
            if parameters and "parameters" in group.attrs:
                params = json.loads(group.attrs["parameters"])
                for key in sorted(params):
                    value = params[key]
                    text = (
                        value
                        if not isinstance(value, str) or len(value) < 80
                        else value[:77] + "..."
                    )
                    lines.append(f"      {key} = {text}")
    if holder is not None:
        lines.append(
            f"  job running: pid {holder.pid} on {holder.host} since {holder.since}: {holder.command}"
        )
    return "\n".join(lines)


def _foreign(h5: Any) -> list[str]:
    """What a file pyscatter did not write holds: an outline of its groups and datasets."""
    import h5py

    lines = [
        "  not a pyscatter file (no Measurement_000 group, no USID main dataset): translate it "
        "first ('pyscatter translate', formats: 'pyscatter formats'). It holds:"
    ]
    for key in ("creator", "NX_class", "default"):
        if key in h5.attrs:
            lines.append(f"  @{key} = {_text(h5.attrs[key])}")
    entries: list[str] = []

    def visit(name: str, obj: Any) -> None:
        depth = name.count("/") + 1
        if depth > OUTLINE_DEPTH or len(entries) > OUTLINE_LINES:
            return
        indent = "  " * depth
        last = name.rsplit("/", 1)[-1]
        if isinstance(obj, h5py.Group):
            nx = f" {_text(obj.attrs['NX_class'])}" if "NX_class" in obj.attrs else ""
            entries.append(f"{indent}{last}/{nx} ({len(obj)} members)")
        elif isinstance(obj, h5py.Dataset):
            units = f" [{_text(obj.attrs['units'])}]" if "units" in obj.attrs else ""
            value = ""
            if obj.shape == () and obj.dtype.kind in "iufSOb":
                value = f" = {_text(obj[()])[:60]}"
            entries.append(f"{indent}{last}  {obj.shape} {obj.dtype}{units}{value}")

    h5.visititems(visit)
    if not entries:
        entries.append("    (empty)")
    if len(entries) > OUTLINE_LINES:
        entries = entries[:OUTLINE_LINES] + [f"    … (more; h5ls -r {h5.filename} lists all)"]
    return lines + entries


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value)


def run(args: argparse.Namespace) -> int:
    print(describe(args.file, parameters=args.parameters))
    return 0
