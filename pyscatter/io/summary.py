"""Series summaries as Python objects and tidy CSV: :func:`summary_dataset` (xarray),
:func:`summary_table` (pandas) and :func:`write_summary_csv` / :func:`read_summary_csv`.

A :class:`~pyscatter.processes.summary.SeriesSummary` results group holds one row per source
position and, when positions sharing a scan value were combined, its ``Table/``. Both read as
an :class:`xarray.Dataset` in the manner of :func:`pyscatter.to_xarray` (units in
``attrs["units"]``) and as a tidy :class:`pandas.DataFrame`: one row per position (or per scan
value) and series (ring, peak, q), columns the position dims (or the scan variable), the series
dims, every parameter with its ``_sigma`` (and ``_std`` in the table), ``R2``, ``status`` with
``status_meaning``, and ``good``. Units are in ``DataFrame.attrs["units"]`` and in the CSV
headers (``Field[mT]``, as :mod:`pyscatter.io.export` heads its columns); floats are written
so that they read back to the same bits.
"""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from pyscatter.errors import ExistingResultsError, InputError
from pyscatter.io.export import _flag_meanings, _texts
from pyscatter.io.results import find_results
from pyscatter.io.usid import dims_of, is_main
from pyscatter.io.xarray import open_for_reading, to_xarray

__all__ = [
    "PROCESS",
    "read_summary_csv",
    "summary_dataset",
    "summary_table",
    "write_summary_csv",
]

PROCESS = "SeriesSummary"
_HEADER = re.compile(r"^(?P<name>.*?)\[(?P<unit>[^\[\]]*)\]$")


def _group_path(path: str | os.PathLike, index: int, group: str | None) -> str:
    with open_for_reading(path) as h5:
        if group is not None:
            if group not in h5 or h5[group].attrs.get("process") != PROCESS:
                raise InputError(f"{path}: {group} is not a {PROCESS} results group")
            return group
        groups = find_results(h5, PROCESS)
        if not groups:
            raise InputError(f"{path}: no {PROCESS} results; run `pyscatter summary` first")
        try:
            return groups[index].name
        except IndexError:
            raise InputError(f"{path}: {len(groups)} {PROCESS} results; no index {index}") from None


def summary_dataset(
    path: str | os.PathLike,
    *,
    index: int = -1,
    per_position: bool = False,
    group: str | None = None,
) -> Any:
    """A series summary as an :class:`xarray.Dataset`.

    Parameters
    ----------
    path : path
    index : int
        Which SeriesSummary group, in file order (-1: the latest); or name it with ``group``.
    per_position : bool
        The rows of every position (dims: the position dims, then the series dims) instead of
        the combined table (dims: the scan variable, then the series dims). A summary made with
        ``reduce="none"`` has only the former.

    Returns
    -------
    xarray.Dataset
        ``attrs``: ``against``, ``reduce``, ``summarised`` (JSON list of the parameters),
        ``parameters`` (the step's recorded parameters, JSON), ``group``, ``table`` (1 for the
        combined table).
    """
    import xarray as xr

    name = _group_path(path, index, group)
    with open_for_reading(path) as h5:
        g = h5[name]
        params = json.loads(str(g.attrs["parameters"]))
        table = g.get("Table")
        attrs = {
            "against": params["against"],
            "reduce": params["reduce"],
            "parameters": str(g.attrs["parameters"]),
            "summarised": json.dumps(params["parameters"]),
            "group": name,
            "source_process": str(g.attrs.get("source_process", "")),
        }
        if table is not None and not per_position:
            data_vars, coords = {}, {}
            for key in table:
                dset = table[key]
                if not is_main(dset):
                    continue
                dims = dims_of(dset, "Position") + dims_of(dset, "Spectroscopic")
                data_vars[key] = xr.Variable(
                    [d.name for d in dims],
                    dset[()].reshape(tuple(len(d) for d in dims)),
                    attrs={
                        "units": str(dset.attrs["units"]),
                        "long_name": str(dset.attrs["quantity"]),
                    },
                )
                coords.update(
                    {d.name: xr.Variable(d.name, d.values, attrs={"units": d.units}) for d in dims}
                )
            return xr.Dataset(data_vars, coords=coords, attrs={**attrs, "table": 1})
    index_of = _index_of(path, name)
    ds = to_xarray(path, PROCESS, index=index_of).squeeze("value", drop=True)
    against = ds["against"]
    ds = ds.drop_vars("against")
    if params["against_kind"] != "position":
        ds[params["against"]] = against
    return ds.assign_attrs({**attrs, "table": 0})


def _index_of(path: str | os.PathLike, name: str) -> int:
    with open_for_reading(path) as h5:
        return [g.name for g in find_results(h5, PROCESS)].index(name)


def summary_table(
    path: str | os.PathLike,
    against: str | None = None,
    *,
    index: int = -1,
    per_position: bool = False,
    source: str | None = None,
    **options: Any,
) -> Any:
    """A series summary as a tidy :class:`pandas.DataFrame`; with ``against``, run it first.

    Parameters
    ----------
    path : path
    against : str, optional
        Run the ``summary`` step (:class:`~pyscatter.processes.summary.SeriesSummary`) with
        this scan variable, ``source`` and ``options`` (``parameters``, ``min_r2``, ``status``,
        ``reduce``, ``q``; reused when it ran before), and read its results. Without it,
        read the SeriesSummary group ``index`` (-1: the latest).
    per_position : bool
        One row per position and series (with ``R2``, ``status``, ``good``) instead of one row
        per scan value and series.

    Returns
    -------
    pandas.DataFrame
        ``attrs["units"]`` maps columns to units; ``attrs`` also holds ``against``, ``reduce``
        and ``group``.
    """
    group = None
    if against is not None:
        from pyscatter.processes.base import run_on_file
        from pyscatter.processes.summary import SeriesSummary

        options.setdefault("progress", False)
        if source is None and options.get("q") is not None:  # I(q): the latest 1-D integration
            from pyscatter.processes.summary import default_source

            with open_for_reading(path) as h5:
                source = default_source(h5, options["q"]).name
        group = run_on_file(path, SeriesSummary, source=source, against=against, **options).group
    elif source is not None or options:
        raise InputError("source= and step options need against= (which runs the summary)")
    ds = summary_dataset(path, index=index, per_position=per_position, group=group)
    return dataset_to_frame(ds)


def dataset_to_frame(ds: Any) -> Any:
    """The tidy :class:`pandas.DataFrame` of a :func:`summary_dataset` (see :func:`summary_table`)."""
    skip = {"complete"} | {c for c in ds.coords if str(c).endswith("_measured")}
    names = [v for v in ds.data_vars if v not in skip]
    frame = ds[names].reset_coords(drop=True).to_dataframe().reset_index()
    frame = frame[_column_order(ds, list(frame.columns))]
    units = {str(c): str(ds[c].attrs.get("units", "")) for c in frame.columns if c in ds.variables}
    if "status" in names:
        meanings = _flag_meanings(ds, "status")
        where = frame.columns.get_loc("status") + 1
        frame.insert(
            where,
            "status_meaning",
            [meanings.get(int(v), f"unknown code {v}") for v in frame["status"]],
        )
        units["status_meaning"] = ""
    if "good" in frame:
        frame["good"] = frame["good"].astype(bool)
    elif "n_good" in frame:
        frame["good"] = frame["n_good"] > 0
    units["good"] = ""
    frame.attrs = {
        "units": units,
        "against": ds.attrs.get("against"),
        "reduce": ds.attrs.get("reduce"),
        "group": ds.attrs.get("group"),
    }
    return frame


def _column_order(ds: Any, columns: list[str]) -> list[str]:
    """Dims, the scan variable, each parameter with its errors, then counts and quality."""
    summarised = json.loads(str(ds.attrs.get("summarised", "[]")))
    first = [c for c in columns if c in ds.dims]
    first += [c for c in columns if c == ds.attrs.get("against") and c not in first]
    for p in summarised:
        first += [c for c in (p, f"{p}_sigma", f"{p}_std") if c in columns]
    tail = [c for c in ("n_good", "n_positions", "R2", "status", "good") if c in columns]
    return first + [c for c in columns if c not in first and c not in tail] + tail


def write_summary_csv(frame: Any, out: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write a :func:`summary_table` as one CSV; columns headed ``name[unit]`` (plain ``name``
    without a unit). Refuses an existing file unless ``overwrite``."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise ExistingResultsError(f"{out} exists; pass overwrite=True (--overwrite) to replace")
    units = frame.attrs.get("units", {})
    header = [f"{c}[{units[c]}]" if units.get(c) else str(c) for c in frame.columns]
    columns = [_texts(np.asarray(frame[c].to_numpy())) for c in frame.columns]
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(zip(*columns, strict=True))
    return out


def read_summary_csv(path: str | os.PathLike) -> Any:
    """Read a CSV of :func:`write_summary_csv` back: units out of the headers into
    ``attrs["units"]``, ``good`` as bool."""
    import pandas as pd

    frame = pd.read_csv(path, keep_default_na=False, na_values=["nan"])
    units, names = {}, []
    for column in frame.columns:
        match = _HEADER.match(str(column))
        name = match["name"] if match else str(column)
        units[name] = match["unit"] if match else ""
        names.append(name)
    frame.columns = names
    if "good" in frame:
        frame["good"] = frame["good"].astype(str).str.lower().eq("true")
    frame.attrs = {"units": units}
    return frame
