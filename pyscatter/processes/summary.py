"""Series summaries: the results of a step against a scan variable, filtered by fit quality.

The source is the results group of a step (OrderParameter, ProfileFit, PeakFit, SaxsInvariants,
or any group of main datasets with one value per position and series), or a 1-D I(q) read at
chosen ``q`` values. The scan variable ``against`` is a position dimension (``Field``,
``Temperature``, ``Time``, ``Y`` ...) or a per-position dataset of the measurement (``Monitor``,
``Time`` ...). Parameters and their errors are found by name: ``<p>_sigma`` (fits, order
parameters, peaks, invariants) or ``<p>_Sigma`` (``Intensity_Sigma``).

::

    <source>-SeriesSummary_000/        attrs: parameters (against, filter, reduction ...)
    ├── against, <p>, <p>_sigma, R2, status, good     one row per source position
    ├── completed_chunks
    └── Table/                         reduce = mean or median (not none); attrs: sha256
        ├── <p>, <p>_sigma, <p>_std    (n_values, n_series) mains over the dim ``against``
        └── n_good, n_positions        int32: positions that pass the filter, and all

``good`` is 1 where a position passes the recorded filter (``min_r2``, ``status``); the table
combines, at each scan value, the good positions with a finite value: their mean with the
propagated error ``sqrt(sum sigma_i^2) / n`` (or the median, error times sqrt(pi/2)) and the
standard deviation of the values (:func:`pyscatter.kernels.summary.reduce_groups`). The table is
computed and stored before the group is linked into the file (like a decomposition's model), so
it is complete whenever the group exists; the per-position rows are written block by block and
resume like every step.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import h5py
import numpy as np

from pyscatter.errors import InputError
from pyscatter.io.results import require_complete, results_by_start_time
from pyscatter.io.usid import Dim, create_main, dims_of, is_main, write_ancillary
from pyscatter.kernels.summary import REDUCTIONS, group_labels, reduce_groups
from pyscatter.processes.base import Output, ScatterProcess
from pyscatter.processes.decomposition import model_sha256
from pyscatter.processes.summary_worker import against_values, make_function

__all__ = [
    "SOURCE_PROCESSES",
    "TABLE_GROUP",
    "SeriesSummary",
    "anchor_dataset",
    "available_against",
    "available_parameters",
    "default_source",
]

#: The steps whose latest results are summarised when no source is named (latest first wins).
SOURCE_PROCESSES = ("OrderParameter", "ProfileFit", "PeakFit", "SaxsInvariants")
TABLE_GROUP = "Table"
#: Main datasets of a results group that are never parameters (carried along, or counters).
_NOT_PARAMETERS = ("R2", "status", "good", "against")
#: Per-position datasets of a measurement that are bookkeeping, not values.
_NOT_ANCILLARY = ("Frame_Checksums", "Chunk_Checksums", "valid_positions")
#: Steps whose results are spectra: summarised at q values only.
_SPECTRA = ("AzimuthalIntegration", "AzimuthalProfiles", "SectorIntegration")
#: Parameters left out when none are named (fit diagnostics).
_DIAGNOSTICS = ("reduced_chi2",)


def _sigma_of(group: h5py.Group, name: str) -> str | None:
    for suffix in ("_sigma", "_Sigma"):
        dset = group.get(f"{name}{suffix}")
        if isinstance(dset, h5py.Dataset):
            return dset.name
    return None


def anchor_dataset(obj: h5py.Group | h5py.Dataset) -> h5py.Dataset:
    """The main dataset that names a source: ``status`` or ``Intensity`` of a results group,
    else its first main dataset; a main dataset outside a results group is its own anchor.

    Raises
    ------
    InputError
        Not a results group nor a main dataset (or a group without main datasets).
    """
    group = obj if isinstance(obj, h5py.Group) else obj.parent
    if isinstance(obj, h5py.Dataset) and "process" not in group.attrs:
        if not is_main(obj):
            raise InputError(f"{obj.name} is not a USID main dataset nor in a results group")
        return obj
    if "process" not in group.attrs:
        raise InputError(f"{obj.name} is not a results group (no 'process' attribute)")
    for name in ("status", "Intensity"):
        if is_main(group.get(name)):
            return group[name]
    mains = [group[k] for k in group if is_main(group[k])]
    if not mains:
        raise InputError(f"{group.name} holds no main dataset to summarise")
    return mains[0]


def default_source(h5: h5py.File, q: Sequence[float] | None = None) -> h5py.Dataset:
    """The anchor of the latest results of :data:`SOURCE_PROCESSES`; with ``q``, the latest
    1-D AzimuthalIntegration ``Intensity``.

    Raises
    ------
    InputError
        No such results (the message says which step to run or to name a source).
    """
    if q is not None:
        from pyscatter.processes.decomposition import default_spectra

        return default_spectra(h5, one_d=True)
    groups = [g for p in SOURCE_PROCESSES for g in results_by_start_time(h5, p)]
    if not groups:
        raise InputError(
            f"{h5.filename}: no {', '.join(SOURCE_PROCESSES)} results to summarise; run one of "
            "those steps first, name a results group (--source), or give q values (--q) to "
            "summarise I(q)"
        )
    # the latest start; within a second, the step later in a pipeline (first in the list)
    latest = max(range(len(groups)), key=lambda i: (str(groups[i].attrs.get("start_time")), -i))
    return anchor_dataset(groups[latest])


def available_parameters(anchor: h5py.Dataset) -> list[str]:
    """The float main datasets of the anchor's group that are parameters (not errors)."""
    group = anchor.parent
    if "process" not in group.attrs:
        return [anchor.name.rsplit("/", 1)[-1]]
    found = []
    order = json.loads(str(group.attrs.get("output_order", "[]")))  # the step's own order
    for name in [*order, *(k for k in group if k not in order)]:
        dset = group.get(name)
        if not is_main(dset) or dset.shape != anchor.shape or name in _NOT_PARAMETERS:
            continue
        if name.endswith(("_sigma", "_Sigma")) or not np.issubdtype(dset.dtype, np.floating):
            continue
        found.append(name)
    return found


def _measurement_group(anchor: h5py.Dataset) -> h5py.Group | None:
    """The channel group of the raw data the source was made from (following ``@source``)."""
    group = anchor.parent
    for _ in range(32):
        if "process" not in group.attrs:
            return group
        path = str(group.attrs.get("source", ""))
        if path not in group.file:
            return None
        group = group.file[path].parent
    return None


def available_against(anchor: h5py.Dataset) -> tuple[list[str], dict[str, str]]:
    """The position dims of the source, and its per-position datasets (name -> path)."""
    dims = [d.name for d in dims_of(anchor, "Position")]
    found: dict[str, str] = {}
    channel = _measurement_group(anchor)
    if channel is not None:
        n = anchor.shape[0]
        for name in channel:
            dset = channel[name]
            if name in _NOT_ANCILLARY or name in dims or not isinstance(dset, h5py.Dataset):
                continue
            if dset.shape == (n,) and np.issubdtype(dset.dtype, np.number):
                found[name] = dset.name
    return dims, found


def _status_codes(group: h5py.Group, status: Sequence[str] | str | None) -> list[int] | None:
    if status is None:
        return None
    names = [status] if isinstance(status, str) else list(status)
    if "status" not in group or "status_codes" not in group.attrs:
        raise InputError(f"status filter {names}: {group.name} records no fit status")
    codes = json.loads(str(group.attrs["status_codes"]))
    upper = {k.upper(): v for k, v in codes.items()}
    unknown = [n for n in names if str(n).upper() not in upper]
    if unknown or not names:
        raise InputError(
            f"status {unknown or names!r} unknown; the statuses of {group.name} are: "
            + ", ".join(codes)
        )
    return sorted({int(upper[str(n).upper()]) for n in names})


def _against(anchor: h5py.Dataset, against: Any) -> tuple[str, str | None]:
    dims, ancillary = available_against(anchor)
    if against in dims:
        return "position", None
    if against in ancillary:
        return "ancillary", ancillary[against]
    raise InputError(
        f"against {against!r} is neither a position dim nor a per-position value of "
        f"{anchor.name}; position dims: {', '.join(dims)}; per-position values: "
        + (", ".join(ancillary) or "none")
    )


def _q_values(anchor: h5py.Dataset, q: Any) -> list[float]:
    spec = dims_of(anchor, "Spectroscopic")
    if len(spec) != 1:
        raise InputError(
            f"q values need 1-D spectra; {anchor.name} has spectroscopic dims "
            f"{[d.name for d in spec]}"
        )
    try:
        values = [float(v) for v in np.atleast_1d(np.asarray(q, dtype=float)).ravel()]
    except (TypeError, ValueError):
        raise InputError(f"q must be numbers; got {q!r}") from None
    lo, hi = float(spec[0].values.min()), float(spec[0].values.max())
    bad = [v for v in values if not (np.isfinite(v) and lo <= v <= hi)]
    if bad or not values:
        raise InputError(
            f"q {bad or values} outside the {spec[0].name} axis of {anchor.name}: "
            f"[{lo:g}, {hi:g}] {spec[0].units}"
        )
    return values


def _parameters(anchor: h5py.Dataset, parameters: Any, q: list[float] | None) -> list[str]:
    available = available_parameters(anchor)
    process = anchor.parent.attrs.get("process")
    if q is None and (process is None or process in _SPECTRA):
        raise InputError(
            f"{anchor.name} holds spectra, not one value per position and series: give q "
            "values (--q) to summarise I(q), or name the results of a fit (--source)"
        )
    if (
        q is not None
        and "process" in anchor.parent.attrs
        and anchor.name.rsplit("/", 1)[-1] not in ("Intensity", "Raw_Data")
    ):
        raise InputError(
            f"q values are read from 1-D I(q); {anchor.parent.name} is "
            f"{anchor.parent.attrs['process']} results (name an integration's Intensity)"
        )
    if q is not None:
        return [anchor.name.rsplit("/", 1)[-1]]
    if parameters is None:
        return [p for p in available if p not in _DIAGNOSTICS and not p.endswith("_correlation")]
    names = [parameters] if isinstance(parameters, str) else list(parameters)
    unknown = [p for p in names if p not in available]
    if unknown or not names:
        raise InputError(
            f"parameter(s) {unknown or names} not in {anchor.parent.name}; available: "
            + ", ".join(available)
        )
    return list(dict.fromkeys(names))


def _min_r2(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise InputError(f"min_r2 must be a number (or None); got {value!r}")
    if not np.isfinite(value) or value > 1:
        raise InputError(f"min_r2 must be a finite number <= 1; got {value!r}")
    return float(value)


class SeriesSummary(ScatterProcess):
    """Every parameter of a step against a scan variable, filtered, with the positions that
    share a scan value combined (see the module doc for the layout).

    Parameters
    ----------
    h5_main : h5py.Dataset or h5py.Group
        A results group or any dataset in it (default: the latest OrderParameter, ProfileFit,
        PeakFit or SaxsInvariants results), or a 1-D I(q) main dataset with ``q``.
    against : str
        The scan variable: a position dim (``Field``) or a per-position dataset of the
        measurement (``Monitor``); the message of a wrong name lists both.
    parameters : sequence of str, optional
        Parameters to summarise (default: every float result but errors and ``R2``).
    min_r2 : float, optional
        Positions whose ``R2`` is lower are bad (not combined; ``good`` 0).
    status : sequence of str, optional
        Fit statuses that are good (``["OK", "ISOTROPIC"]``, any case); default: any.
    reduce : {"mean", "median", "none"}
        How positions sharing a scan value are combined into the table; ``none`` writes no
        table (the per-position rows are the table).
    q : sequence of float, optional
        Read I(q) at these q values (linear interpolation, error from ``Intensity_Sigma``)
        instead of parameters; the source must be 1-D spectra.
    **kwargs
        Execution options of :class:`~pyscatter.processes.base.ScatterProcess`.
    """

    process_name = "SeriesSummary"
    factory = "pyscatter.processes.summary_worker:build"

    def __init__(
        self,
        h5_main: h5py.Dataset | h5py.Group,
        *,
        against: str,
        parameters: Sequence[str] | None = None,
        min_r2: float | None = None,
        status: Sequence[str] | None = None,
        reduce: str = "mean",
        q: Sequence[float] | None = None,
        **kwargs: Any,
    ) -> None:
        anchor = anchor_dataset(h5_main)
        require_complete(anchor, "summarising its results")
        if reduce not in REDUCTIONS:
            raise InputError(f"reduce must be one of {', '.join(REDUCTIONS)}; got {reduce!r}")
        kind, dataset = _against(anchor, against)
        q_values = None if q is None else _q_values(anchor, q)
        names = _parameters(anchor, parameters, q_values)
        group = anchor.parent
        in_group = "process" in group.attrs
        params = {
            "against": against,
            "against_kind": kind,
            "against_dataset": dataset,
            "parameters": names,
            "sigmas": {n: _sigma_of(group, n) for n in names},
            "min_r2": _min_r2(min_r2),
            "status": None if status is None else sorted({str(s).upper() for s in status}),
            "status_codes": _status_codes(group, status) if in_group else None,
            "reduce": reduce,
            "q": q_values,
            "source_group": group.name,
            "has_r2": in_group and q_values is None and is_main(group.get("R2")),
            "has_status": in_group and q_values is None and is_main(group.get("status")),
        }
        if params["min_r2"] is not None and not params["has_r2"]:
            raise InputError(f"min_r2 {min_r2}: {anchor.name} has no R2 to filter on")
        if status is not None and params["status_codes"] is None:
            raise InputError(f"status {status}: {anchor.name} records no fit status")
        self.nexus_signal = names[0]  # the NeXus view plots the first parameter
        super().__init__(anchor, params, **kwargs)

    @classmethod
    def default_source(cls, h5: h5py.File) -> h5py.Dataset:
        """The latest OrderParameter, ProfileFit, PeakFit or SaxsInvariants results."""
        return default_source(h5)

    def _series_dims(self) -> tuple[Dim, ...]:
        q = self.parameters["q"]
        if q is not None:
            axis = dims_of(self._source, "Spectroscopic")[0]
            return (Dim(axis.name, axis.units, np.asarray(q)),)
        return tuple(dims_of(self._source, "Spectroscopic"))

    def _against_units(self) -> str:
        p = self.parameters
        if p["against_kind"] == "position":
            return next(
                d.units for d in dims_of(self._source, "Position") if d.name == p["against"]
            )
        return str(self._source.file[p["against_dataset"]].attrs.get("units", ""))

    def _outputs(self) -> list[Output]:
        if getattr(self, "_outputs_cache", None) is None:
            p, dims = self.parameters, self._series_dims()
            group = self._source.parent
            one = (Dim("value", "1", np.zeros(1)),)
            units = self._against_units()
            prefix = "Against_Spectroscopic_"  # its own (length-1) spectroscopic dim
            outs = [Output("against", p["against"], units, one, np.float64, spec_prefix=prefix)]
            for name in p["parameters"]:
                dset = self._source if p["q"] is not None else group[name]
                quantity, units = str(dset.attrs["quantity"]), str(dset.attrs["units"])
                outs.append(Output(name, quantity, units, dims, np.float64))
                if p["sigmas"][name] is not None:
                    outs.append(
                        Output(f"{name}_sigma", f"{quantity} sigma", units, dims, np.float64)
                    )
            if p["has_r2"]:
                outs.append(Output("R2", str(group["R2"].attrs["quantity"]), "1", dims, np.float64))
            if p["has_status"]:
                outs.append(Output("status", "Fit status", "code", dims, np.int8))
            outs.append(Output("good", "Passes the quality filter", "1", dims, np.uint8))
            self._outputs_cache = outs
        return self._outputs_cache

    def _bytes_per_position(self) -> int:
        width = self._source.shape[1] if self.parameters["q"] is not None else 0
        return int(8 * (3 * width + 4 * len(self._outputs()) * max(1, self._source.shape[1])))

    def _setup_extra(self, group: h5py.Group) -> None:
        src = self._source.parent
        for key in ("status_codes", "status_description"):
            if self.parameters["has_status"] and key in src.attrs:
                group.attrs[key] = src.attrs[key]
        group.attrs["source_process"] = str(src.attrs.get("process", ""))
        if self.parameters["reduce"] != "none":
            self._write_table(group)

    def per_position(self, chunk: int = 4096) -> dict[str, np.ndarray]:
        """Every output at every position, computed in memory (the table is made from it)."""
        h5 = self._source.file
        params = json.loads(self._worker_parameters())
        func = make_function(params, against_values(h5, params))
        n = self._source.shape[0]
        parts = [func(h5, s, min(s + chunk, n)) for s in range(0, n, chunk)]
        rows = {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}
        invalid = self._invalid_positions()
        if invalid is not None:  # never measured: NaN in the written rows, never combined
            rows["good"][invalid] = 0
        return rows

    def _write_table(self, group: h5py.Group) -> None:
        p = self.parameters
        rows = self.per_position()
        values, labels = group_labels(rows["against"][:, 0])
        table = group.create_group(TABLE_GROUP)
        pos = write_ancillary(
            table, "Position_", [Dim(p["against"], self._against_units(), values)],
            spectroscopic=False,
        )  # fmt: skip
        spec = write_ancillary(table, "Spectroscopic_", self._series_dims(), spectroscopic=True)
        good = rows["good"].astype(bool)
        outputs = {o.name: o for o in self._outputs()}
        arrays: dict[str, tuple[np.ndarray, str, str]] = {}
        for name in p["parameters"]:
            sigma = rows.get(f"{name}_sigma")
            red = reduce_groups(rows[name], sigma, good, labels, values.size, p["reduce"])
            quantity, units = outputs[name].quantity, outputs[name].units
            arrays[name] = (red.value, f"{quantity} ({p['reduce']})", units)
            if sigma is not None:
                arrays[f"{name}_sigma"] = (
                    red.sigma,
                    f"{quantity} sigma of the {p['reduce']}",
                    units,
                )
            arrays[f"{name}_std"] = (red.std, f"{quantity} standard deviation", units)
        grouped = labels >= 0
        counts = [np.bincount(labels[grouped & g], minlength=values.size) for g in good.T]
        arrays["n_good"] = (np.stack(counts, axis=1).astype(np.int32), "Good positions", "count")
        n_all = np.bincount(labels[grouped], minlength=values.size).astype(np.int32)
        arrays["n_positions"] = (
            np.repeat(n_all[:, None], good.shape[1], axis=1),
            "Positions",
            "count",
        )
        for name, (data, quantity, units) in arrays.items():
            create_main(
                table, name, shape=data.shape, dtype=data.dtype, quantity=quantity, units=units,
                position=pos, spectroscopic=spec, data=data,
            )  # fmt: skip
        table.attrs["against"] = p["against"]
        table.attrs["reduce"] = p["reduce"]
        table.attrs["sha256"] = model_sha256([a for a, _, _ in arrays.values()])
