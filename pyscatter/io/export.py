"""Exports of results to the formats other tools read: netCDF, CSV, SasView, Fit2D, NXcanSAS.

Every export starts from :func:`pyscatter.io.xarray.to_xarray` (position dims slow to fast,
then the result dims), so the numbers written are exactly those of the xarray view:

========== ================================================ ==================================
format     writes                                           results it takes
========== ================================================ ==================================
netcdf     one ``.nc`` file (``Dataset.to_netcdf``)         any
csv        one ``.csv`` per position + ``index.csv``        any (long format over result dims)
sasview    one file per position that SasView loads:        1-D I(q), a cake I(chi, q) or
           ASCII ``.txt`` Q, I, dI for I(q); NIST/IGOR 2-D  sectors; q in 1/nm or 1/Å
           ``.dat`` Qx, Qy, I, dI for a cake (Q in 1/Å)
chi        one Fit2D ``.chi`` per position: x, I            1-D I(q), I(2θ) or I(r)
nxcansas   one NeXus/HDF5 file, one SASentry per position:  1-D I(q), q in 1/nm or 1/Å
           Q (1/angstrom), I, Idev
========== ================================================ ==================================

Every column is headed with its unit (CSV ``2theta[deg]``, ``q[1/nm]``). SasView reads the
first column of any ASCII file as Q in 1/Å, so the sasview and nxcansas exports convert q to 1/Å
and refuse results over 2θ, r or chi; a CSV is not a SasView file (its header names the unit).

Positions not yet computed (a run still going or interrupted: False in the ``complete``
coordinate of :func:`~pyscatter.io.xarray.to_xarray`) are left out of the per-position formats,
with a warning. Positions whose fits failed are computed: they are exported with their NaN
values and their ``status`` (the CSV adds a ``status_meaning`` column; netCDF keeps the CF
``flag_values``/``flag_meanings``). Per-position files are named by the position values
(``Y=10_X=-20.csv``); ``index.csv`` lists them with their position and measured motor values.

Examples
--------
>>> from pyscatter.io.export import FORMATS
>>> FORMATS
('netcdf', 'csv', 'sasview', 'chi', 'nxcansas')
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import logging
import os
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pyscatter.errors import ExistingResultsError, InputError

__all__ = [
    "FORMATS",
    "export",
    "netcdf_safe_attrs",
    "write_chi",
    "write_csv",
    "write_netcdf",
    "write_nxcansas",
    "write_sasview",
]

log = logging.getLogger(__name__)

FORMATS = ("netcdf", "csv", "sasview", "chi", "nxcansas")
#: Formats that write a folder of files (one per position); the others write one file.
FOLDER_FORMATS = ("csv", "sasview", "chi")
#: Unit strings of q (as the processes record them) → factor to 1/Å.
Q_UNITS_TO_INV_ANGSTROM = {"1/nm": 0.1, "nm^-1": 0.1, "1/A": 1.0, "A^-1": 1.0, "1/angstrom": 1.0}
#: Azimuthal dims (degrees, pyFAI's chi convention) a 2-D SasView export accepts.
ANGLE_DIMS = ("chi", "sector")
_SHORT = {"Intensity": "I", "Intensity_Sigma": "sigma"}
_CHI_LABELS = {
    ("2theta", "deg"): "2-Theta Angle (Degrees)",
    ("2theta", "rad"): "2-Theta Angle (Radians)",
    ("r", "mm"): "Radial Distance (mm)",
    ("q", "1/nm"): "Q (nm^-1)",
    ("q", "1/A"): "Q (Angstrom^-1)",
}


# --------------------------------------------------------------------------- entry point


def export(
    path: str | os.PathLike,
    to: str,
    out: str | os.PathLike | None = None,
    *,
    process: str = "AzimuthalIntegration",
    index: int = -1,
    overwrite: bool = False,
) -> list[Path]:
    """Export the results of ``process`` in ``path`` to the format ``to``.

    Parameters
    ----------
    path : path
        A pyscatter HDF5 file.
    to : {"netcdf", "csv", "sasview", "chi", "nxcansas"}
    out : path, optional
        The file (netcdf, nxcansas) or folder (csv, sasview, chi) to write. Default: beside
        ``path``, ``<stem>.nc``, ``<stem>_nxcansas.h5`` or the folder ``<stem>_<to>/``, with
        ``_<process>`` after the stem for other processes than AzimuthalIntegration.
    process : str
        Process name as recorded in the file (``AzimuthalIntegration``, ``ProfileFit`` …) or
        its pipeline step name (``integrate``, ``sectors`` …); the default output names use the
        recorded name.
    index : int
        Which results group of that process, in file order (-1: the latest).
    overwrite : bool
        Replace existing output files; otherwise refuse before writing anything.

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    InputError
        Unknown format, results the format cannot hold (named), no such results.
    ExistingResultsError
        An output file exists and ``overwrite`` is false.
    """
    from pyscatter.io.results import process_name
    from pyscatter.io.xarray import to_xarray

    if to not in WRITERS:
        raise InputError(f"unsupported export format {to!r}; expected one of {', '.join(FORMATS)}")
    process = process_name(process)  # "sectors" and "SectorIntegration": the same files
    ds = to_xarray(path, process, index=index)
    ds.attrs["source_file"] = str(Path(path).resolve())
    stem = Path(path).stem + ("" if process == "AzimuthalIntegration" else f"_{process}")
    if out is None:
        parent = Path(path).parent
        out = {
            "netcdf": parent / f"{stem}.nc",
            "nxcansas": parent / f"{stem}_nxcansas.h5",
        }.get(to, parent / f"{stem}_{to}")
    out = Path(out)
    folder = to in FOLDER_FORMATS
    if out.exists() and out.is_dir() != folder:
        raise InputError(
            f"output {out} is a {'file' if folder else 'folder'}; {to} writes "
            f"{'a folder of files' if folder else 'one file'}: give another -o/--output"
        )
    return WRITERS[to](ds, out, overwrite=overwrite)


# --------------------------------------------------------------------------- helpers


def _position_dims(ds: Any) -> list[str]:
    names = [n for n in str(ds.attrs.get("position_dims", "")).split(",") if n]
    if not names:
        raise InputError(
            "the dataset does not say which dims are positions: set "
            "ds.attrs['position_dims'] = 'Y,X' (pyscatter.to_xarray records it)"
        )
    missing = [n for n in names if n not in ds.dims]
    if missing:
        raise InputError(f"position dims {missing} are not dims of the dataset {list(ds.dims)}")
    return names


def _fmt_value(value: Any) -> str:
    """Shortest text of a position value that reads back to the same float64."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def _safe(text: str) -> str:
    return re.sub(r"[^\w.+=-]", "_", text)


def _position_label(ds: Any, pos_dims: list[str], idx: tuple[int, ...], sep: str = "_") -> str:
    return sep.join(
        f"{d}={_fmt_value(ds[d].values[i])}" for d, i in zip(pos_dims, idx, strict=True)
    )


def _positions(ds: Any, pos_dims: list[str]) -> Iterator[tuple[int, tuple[int, ...]]]:
    shape = tuple(ds.sizes[d] for d in pos_dims)
    yield from enumerate(np.ndindex(*shape))


def _check_targets(paths: Sequence[Path], overwrite: bool) -> None:
    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise ExistingResultsError(
            f"{existing[0]} exists{more}; pass overwrite=True (--overwrite) to replace"
        )


def _units(ds: Any, name: str) -> str:
    return str(ds[name].attrs.get("units", ""))


def _signal(ds: Any) -> tuple[str, str | None]:
    """The intensity variable and its sigma (None when absent)."""
    if "Intensity" not in ds.data_vars:
        raise InputError(
            f"results {ds.attrs.get('group', '')} have no Intensity (variables: "
            f"{', '.join(ds.data_vars)}); export them as netcdf or csv"
        )
    return "Intensity", ("Intensity_Sigma" if "Intensity_Sigma" in ds.data_vars else None)


def _result_dims(ds: Any, var: str, pos_dims: list[str]) -> list[str]:
    return [d for d in ds[var].dims if d not in pos_dims]


def _at(ds: Any, var: str, pos_dims: list[str], idx: tuple[int, ...]) -> np.ndarray:
    return np.asarray(ds[var].isel(dict(zip(pos_dims, idx, strict=True))).values)


def _computed(ds: Any, var: str, pos_dims: list[str], idx: tuple[int, ...]) -> bool:
    """Whether the position ``idx`` was computed.

    From the ``complete`` coordinate of :func:`~pyscatter.io.xarray.to_xarray` (a failed fit is
    computed: NaN values and a status saying why); for a dataset without it, False only when
    every value of ``var`` there is NaN.
    """
    from pyscatter.io.xarray import COMPLETE

    if COMPLETE in ds.coords and set(ds[COMPLETE].dims) <= set(pos_dims):
        where = {d: i for d, i in zip(pos_dims, idx, strict=True) if d in ds[COMPLETE].dims}
        return bool(ds[COMPLETE].isel(where).values)
    values = _at(ds, var, pos_dims, idx)
    return not (np.issubdtype(values.dtype, np.floating) and np.isnan(values).all())


def _q_factor(ds: Any, dim: str, fmt: str) -> float:
    units = _units(ds, dim)
    if units not in Q_UNITS_TO_INV_ANGSTROM:
        raise InputError(
            f"{fmt} needs q in 1/nm or 1/A (SasView reads the first column as Q in 1/A); the "
            f"dim {dim!r} is in {units!r}, which would be read as Q. Integrate with unit "
            "q_nm^-1 or q_A^-1, or export to csv or chi, which name the unit"
        )
    return Q_UNITS_TO_INV_ANGSTROM[units]


def _skipped(n: int, fmt: str) -> None:
    if n:
        log.warning("%s: %d position(s) not computed yet were left out", fmt, n)


# --------------------------------------------------------------------------- netCDF


def netcdf_safe_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    """Attributes netCDF can store: text, numbers and 1-D numeric arrays.

    ``None`` is dropped, booleans become 0/1, mappings and mixed lists become JSON text.
    """
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if value is None:
            continue
        if isinstance(value, (bool, np.bool_)):
            out[key] = int(value)
        elif isinstance(value, (str, int, float, np.integer, np.floating)):
            out[key] = value
        elif isinstance(value, np.ndarray) and value.ndim <= 1 and value.dtype.kind in "iuf":
            out[key] = value
        elif (
            isinstance(value, (list, tuple))
            and value
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        ):
            out[key] = np.asarray(value)
        else:
            out[key] = json.dumps(value, default=str)
    return out


def write_netcdf(ds: Any, out: str | os.PathLike, *, overwrite: bool = False) -> list[Path]:
    """Write ``ds`` as one netCDF file (netCDF4 when installed), attributes made safe."""
    out = Path(out)
    _check_targets([out], overwrite)
    ds = ds.copy()
    ds.attrs = netcdf_safe_attrs(dict(ds.attrs))
    for name in list(ds.variables):
        ds[name].attrs = netcdf_safe_attrs(dict(ds[name].attrs))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial")
    ds.to_netcdf(tmp)
    os.replace(tmp, out)
    return [out]


# --------------------------------------------------------------------------- CSV


def write_csv(ds: Any, out: str | os.PathLike, *, overwrite: bool = False) -> list[Path]:
    """One CSV per position (result dims as leading columns, then every variable) + index.

    Columns are headed ``name[units]``; ``Intensity`` and ``Intensity_Sigma`` are ``I`` and
    ``sigma``, so a 1-D integration gives ``q[1/nm],I[a.u.],sigma[a.u.]``. Variables over other
    result dims than the first variable's go to files suffixed with their name.
    """
    folder = Path(out)
    pos_dims = _position_dims(ds)
    groups: dict[tuple[str, ...], list[str]] = {}
    for var in ds.data_vars:
        groups.setdefault(tuple(_result_dims(ds, var, pos_dims)), []).append(var)
    suffixes = {
        dims: ("" if k == 0 else f"_{vs[0]}") for k, (dims, vs) in enumerate(groups.items())
    }
    first = next(iter(ds.data_vars))
    rows, files = [], []
    for flat, idx in _positions(ds, pos_dims):
        if not _computed(ds, first, pos_dims, idx):
            continue
        label = _safe(_position_label(ds, pos_dims, idx))
        names = [folder / f"{label}{suffixes[dims]}.csv" for dims in groups]
        rows.append((flat, idx, names[0].name))
        files.append((idx, names))
    index_file = folder / "index.csv"
    _check_targets([index_file, *(p for _, names in files for p in names)], overwrite)
    _skipped(int(np.prod([ds.sizes[d] for d in pos_dims])) - len(files), "csv")
    folder.mkdir(parents=True, exist_ok=True)
    for idx, names in files:
        for (dims, variables), name in zip(groups.items(), names, strict=True):
            _write_position_csv(ds, pos_dims, idx, dims, variables, name)
    written = [index_file] + [p for _, names in files for p in names]
    _write_index(ds, pos_dims, rows, index_file)
    return written


def _write_position_csv(ds, pos_dims, idx, dims, variables, path: Path) -> None:
    grids = np.meshgrid(*(ds[d].values for d in dims), indexing="ij") if dims else []
    columns = [(f"{d}[{_units(ds, d)}]", g.ravel()) for d, g in zip(dims, grids, strict=True)]
    for var in variables:
        header = f"{_SHORT.get(var, var)}[{_units(ds, var)}]"
        values = _at(ds, var, pos_dims, idx).ravel()
        columns.append((header, values))
        meanings = _flag_meanings(ds, var)
        if meanings:
            names = np.array([meanings.get(int(v), f"unknown code {v}") for v in values.tolist()])
            columns.append((f"{_SHORT.get(var, var)}_meaning", names))
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([h for h, _ in columns])
        texts = [_texts(v) for _, v in columns]
        writer.writerows(zip(*texts, strict=True))


def _flag_meanings(ds: Any, var: str) -> dict[int, str]:
    """``{code: name}`` of a variable with CF ``flag_values``/``flag_meanings`` (else empty)."""
    attrs = ds[var].attrs
    if "flag_values" not in attrs or "flag_meanings" not in attrs:
        return {}
    values = np.atleast_1d(attrs["flag_values"]).tolist()
    return dict(zip(values, str(attrs["flag_meanings"]).split(), strict=False))


def _texts(values: np.ndarray) -> list[str]:
    """Numbers as text that reads back to the same value (9 digits for float32)."""
    if values.dtype == np.float32:
        return [f"{v:.9g}" for v in values.tolist()]
    if np.issubdtype(values.dtype, np.floating):
        return [repr(v) for v in values.tolist()]
    return [str(v) for v in values.tolist()]


def _write_index(ds, pos_dims, rows, path: Path) -> None:
    measured = [f"{d}_measured" for d in pos_dims if f"{d}_measured" in ds.coords]
    header = ["file", "index"] + [f"{d}[{_units(ds, d)}]" for d in pos_dims]
    header += [f"{m}[{_units(ds, m)}]" for m in measured]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for flat, idx, name in rows:
            values = [ds[d].values[i] for d, i in zip(pos_dims, idx, strict=True)]
            values += [ds[m].values[idx] for m in measured]
            writer.writerow([name, flat, *(repr(float(v)) for v in values)])


# --------------------------------------------------------------------------- SasView 2-D


def write_sasview(ds: Any, out: str | os.PathLike, *, overwrite: bool = False) -> list[Path]:
    """One file per position that SasView loads: I(q) as ASCII ``.txt``, a cake as 2-D ``.dat``.

    1-D I(q): columns ``Q I dI`` (Q in 1/Å, the unit SasView's ASCII reader assumes) after
    ``#`` header lines naming the source, the position and the units (SasView skips them).
    A cake I(chi, q) (or sectors I(sector, q)): a NIST/IGOR 2-D Q-map, Qx = q cos(chi),
    Qy = q sin(chi) in 1/Å, chi in degrees as pyFAI defines it, columns ``Qx Qy I dI`` after the
    header lines ``Data columns are Qx - Qy - I(Qx,Qy) - err(I)`` and ``ASCII data …``. ``dI``
    only with a sigma. Bins holding no value (NaN, or no pixel: I = 0 with sigma = 0) are left
    out. SasView reads the first column as Q: results over 2θ, r or chi are refused.
    """
    folder = Path(out)
    pos_dims = _position_dims(ds)
    signal, sigma = _signal(ds)
    dims = _result_dims(ds, signal, pos_dims)
    if len(dims) == 1:
        return _write_sasview_1d(ds, folder, pos_dims, dims[0], signal, sigma, overwrite)
    if len(dims) != 2 or dims[0] not in ANGLE_DIMS:
        raise InputError(
            f"sasview export needs I(q) or a cake I(chi, q) (integrate with npt_azim) or "
            f"sectors; these results have dims {dims} (use netcdf or csv)"
        )
    factor = _q_factor(ds, dims[1], "sasview export")
    chi, q = np.meshgrid(np.radians(ds[dims[0]].values), ds[dims[1]].values * factor, indexing="ij")
    qx, qy = (q * np.cos(chi)).ravel(), (q * np.sin(chi)).ravel()
    jobs = []
    for _flat, idx in _positions(ds, pos_dims):
        if _computed(ds, signal, pos_dims, idx):
            jobs.append((idx, folder / f"{_safe(_position_label(ds, pos_dims, idx))}.dat"))
    _check_targets([p for _, p in jobs], overwrite)
    _skipped(int(np.prod([ds.sizes[d] for d in pos_dims])) - len(jobs), "sasview")
    folder.mkdir(parents=True, exist_ok=True)
    origin = f"{Path(str(ds.attrs.get('source_file', ''))).name}:{ds.attrs.get('group', '')}"
    for idx, path in jobs:
        intensity = _at(ds, signal, pos_dims, idx).ravel().astype(np.float64)
        columns = [qx, qy, intensity]
        keep = np.isfinite(intensity)
        if sigma is not None:
            err = _at(ds, sigma, pos_dims, idx).ravel().astype(np.float64)
            columns.append(err)
            keep &= np.isfinite(err) & ~((err == 0) & (intensity == 0))
        err_text = " - err(I)" if sigma is not None else ""
        with open(path, "w") as handle:
            handle.write(f"Data columns are Qx - Qy - I(Qx,Qy){err_text}\n\n")
            handle.write(
                f"ASCII data from pyscatter: {origin} at {_position_label(ds, pos_dims, idx, ' ')}"
                f"; Qx, Qy in 1/A\n\n"
            )
            np.savetxt(handle, np.column_stack([c[keep] for c in columns]), fmt="%.9g")
    return [p for _, p in jobs]


def _write_sasview_1d(ds, folder: Path, pos_dims, dim, signal, sigma, overwrite) -> list[Path]:
    q = ds[dim].values * _q_factor(ds, dim, "sasview export")
    jobs = [
        (idx, folder / f"{_safe(_position_label(ds, pos_dims, idx))}.txt")
        for _flat, idx in _positions(ds, pos_dims)
        if _computed(ds, signal, pos_dims, idx)
    ]
    _check_targets([p for _, p in jobs], overwrite)
    _skipped(int(np.prod([ds.sizes[d] for d in pos_dims])) - len(jobs), "sasview")
    folder.mkdir(parents=True, exist_ok=True)
    origin = f"{Path(str(ds.attrs.get('source_file', ''))).name}:{ds.attrs.get('group', '')}"
    units = _units(ds, signal) or "arbitrary"
    for idx, path in jobs:
        intensity = _at(ds, signal, pos_dims, idx).astype(np.float64)
        columns, keep = [q, intensity], np.isfinite(intensity)
        names = f"Q (1/A)  I ({units})"
        if sigma is not None:
            err = _at(ds, sigma, pos_dims, idx).astype(np.float64)
            columns.append(err)
            keep &= np.isfinite(err) & ~((err == 0) & (intensity == 0))
            names += f"  dI ({units})"
        with open(path, "w") as handle:
            handle.write(f"# pyscatter: {origin} at {_position_label(ds, pos_dims, idx, ' ')}\n")
            handle.write(f"# {names}\n")
            np.savetxt(handle, np.column_stack([c[keep] for c in columns]), fmt="%.9g")
    return [p for _, p in jobs]


# --------------------------------------------------------------------------- Fit2D .chi


def write_chi(ds: Any, out: str | os.PathLike, *, overwrite: bool = False) -> list[Path]:
    """One Fit2D ``.chi`` per position: 4 header lines then ``x I`` columns.

    The header is Fit2D's: a title, the x label (``2-Theta Angle (Degrees)``, ``Q (nm^-1)`` …),
    ``Intensity`` and the number of points; rows are ``' %.7e   %.7e'`` as Fit2D (and GSAS-II's
    Fit2D exporter) write them. x is in the unit of the integration (no conversion).
    """
    folder = Path(out)
    pos_dims = _position_dims(ds)
    signal, _ = _signal(ds)
    dims = _result_dims(ds, signal, pos_dims)
    if len(dims) != 1:
        raise InputError(
            f"chi export needs 1-D I(q) or I(2theta); these results have dims "
            f"{dims} (a cake: use sasview or csv)"
        )
    x = ds[dims[0]].values
    label = chi_label(dims[0], _units(ds, dims[0]))
    jobs = []
    for _flat, idx in _positions(ds, pos_dims):
        if _computed(ds, signal, pos_dims, idx):
            jobs.append((idx, folder / f"{_safe(_position_label(ds, pos_dims, idx))}.chi"))
    _check_targets([p for _, p in jobs], overwrite)
    _skipped(int(np.prod([ds.sizes[d] for d in pos_dims])) - len(jobs), "chi")
    folder.mkdir(parents=True, exist_ok=True)
    for idx, path in jobs:
        intensity = _at(ds, signal, pos_dims, idx).astype(np.float64)
        path.write_text(chi_text(path.name, label, x, intensity))
    return [p for _, p in jobs]


def chi_label(dim: str, units: str) -> str:
    """Fit2D's x label of a radial dim (``Q (nm^-1)`` …), else ``dim (units)``."""
    return _CHI_LABELS.get((dim, units), f"{dim} ({units})")


def chi_text(title: str, label: str, x: np.ndarray, intensity: np.ndarray) -> str:
    """A Fit2D ``.chi`` file: 4 header lines then ``' %.7e   %.7e'`` rows of x and I."""
    lines = [title, label, "Intensity", f"{x.size:>11d}"]
    lines += [f" {a:.7e}   {b:.7e}" for a, b in zip(x.tolist(), intensity.tolist(), strict=True)]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- NXcanSAS


def write_nxcansas(ds: Any, out: str | os.PathLike, *, overwrite: bool = False) -> list[Path]:
    """An NXcanSAS file of I(q): one ``SASentry`` (NXentry) per computed position.

    Each entry holds ``definition = NXcanSAS``, ``title`` (the position), ``run`` (its flat
    index) and a ``sasdata`` group (NXdata, canSAS_class SASdata, ``@signal = I``,
    ``@I_axes = Q``, ``@Q_indices = [0]``, and NXdata's ``@axes = Q``) with ``Q`` in
    1/angstrom, ``I`` (``@uncertainties = Idev``) and ``Idev`` when the results have a sigma.
    Entries are named ``sasentry01`` … in position order (slow to fast); the root ``@default``
    names the first.
    """
    out = Path(out)
    pos_dims = _position_dims(ds)
    signal, sigma = _signal(ds)
    dims = _result_dims(ds, signal, pos_dims)
    if len(dims) != 1:
        raise InputError(
            f"nxcansas export needs 1-D I(q); these results have dims {dims} (a cake: use sasview)"
        )
    q = ds[dims[0]].values * _q_factor(ds, dims[0], "nxcansas export")
    _check_targets([out], overwrite)
    positions = [(f, i) for f, i in _positions(ds, pos_dims) if _computed(ds, signal, pos_dims, i)]
    _skipped(int(np.prod([ds.sizes[d] for d in pos_dims])) - len(positions), "nxcansas")
    width = max(2, len(str(len(positions))))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial")
    origin = f"{Path(str(ds.attrs.get('source_file', ''))).name}:{ds.attrs.get('group', '')}"
    with h5py.File(tmp, "w") as h5:
        h5.attrs["NX_class"] = "NXroot"
        h5.attrs["creator"] = "pyscatter"
        h5.attrs["file_name"] = out.name
        h5.attrs["file_time"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
        h5.attrs["HDF5_Version"] = h5py.version.hdf5_version
        h5.attrs["h5py_version"] = h5py.version.version
        for k, (flat, idx) in enumerate(positions):
            name = f"sasentry{k + 1:0{width}d}"
            if k == 0:
                h5.attrs["default"] = name
            label = _position_label(ds, pos_dims, idx, " ")
            entry = h5.create_group(name)
            entry.attrs.update(
                {
                    "NX_class": "NXentry",
                    "canSAS_class": "SASentry",
                    "version": "1.1",
                    "default": "sasdata",
                }
            )
            entry["definition"] = "NXcanSAS"
            entry["title"] = f"{origin} {label}"
            entry["run"] = str(flat)
            entry["run"].attrs["name"] = label
            for d, i in zip(pos_dims, idx, strict=True):
                entry.attrs[f"position_{d}"] = float(ds[d].values[i])
                entry.attrs[f"position_{d}_units"] = _units(ds, d)
            _write_sasdata(
                entry,
                q,
                _at(ds, signal, pos_dims, idx),
                _units(ds, signal),
                None if sigma is None else _at(ds, sigma, pos_dims, idx),
            )
    os.replace(tmp, out)
    return [out]


def _write_sasdata(entry: h5py.Group, q, intensity, units: str, sigma) -> None:
    data = entry.create_group("sasdata")
    # NXcanSAS SASdata: @signal, @I_axes, @Q_indices; NXdata (its base class): @axes
    data.attrs.update(
        {"NX_class": "NXdata", "canSAS_class": "SASdata", "signal": "I", "I_axes": "Q", "axes": "Q"}
    )
    data.attrs["Q_indices"] = np.array([0], dtype=np.int32)
    dq = data.create_dataset("Q", data=np.asarray(q, dtype=np.float64))
    dq.attrs["units"] = "1/angstrom"
    di = data.create_dataset("I", data=np.asarray(intensity))
    di.attrs["units"] = units or "arbitrary"
    if sigma is not None:
        di.attrs["uncertainties"] = "Idev"
        dd = data.create_dataset("Idev", data=np.asarray(sigma))
        dd.attrs["units"] = units or "arbitrary"


WRITERS: dict[str, Callable[..., list[Path]]] = {
    "netcdf": write_netcdf,
    "csv": write_csv,
    "sasview": write_sasview,
    "chi": write_chi,
    "nxcansas": write_nxcansas,
}
