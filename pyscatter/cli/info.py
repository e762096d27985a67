"""``pyscatter info FILE.h5``: main datasets, processes, parameters and completion."""

from __future__ import annotations

import argparse
import json


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
    from pyscatter.io.record import verified_positions
    from pyscatter.io.usid import dims_of, main_datasets
    from pyscatter.io.xarray import open_for_reading

    lines = [path]
    holder = safety.lock_holder(path)
    with open_for_reading(path) as h5:
        for name, value in h5["Measurement_000"].attrs.items() if "Measurement_000" in h5 else []:
            if name in ("translator", "created", "orientation", "instrument"):
                lines.append(f"  {name}: {value}")
        for dset in main_datasets(h5):
            pos = " × ".join(f"{d.name}={len(d)} [{d.units}]" for d in dims_of(dset, "Position"))
            spec = " × ".join(
                f"{d.name}={len(d)} [{d.units}]" for d in dims_of(dset, "Spectroscopic")
            )
            lines.append(
                f"  {dset.name}  {dset.shape} {dset.dtype}  positions: {pos}  values: {spec}"
            )
        groups = []
        h5.visititems(
            lambda _n, o: (
                groups.append(o)
                if hasattr(o, "attrs") and "process" in o.attrs and "parameters_hash" in o.attrs
                else None
            )
        )
        for group in groups:
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
            if parameters:
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


def run(args: argparse.Namespace) -> int:
    print(describe(args.file, parameters=args.parameters))
    return 0
