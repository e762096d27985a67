"""X-ray fluorescence maps from MCA spectra: region-of-interest sums and the fast linear fit.

Both processes read the raw MCA spectra of a translated scan (positions × channels, counts as
measured) and write element maps, one value per position and line group, as USID main datasets
(positions × ``line``; the ``line`` coordinate is the energy of each group's strongest line, the
group names are the results group's ``lines`` attribute):

:class:`XrfRoi` (``xrf-roi``)
    ``net``, ``net_sigma``, ``gross``, ``background``: counts in a window around each group's
    strongest line, ``± roi_width`` FWHM of the detector there (or given windows in keV), less a
    linear background from side windows (:mod:`pyscatter.kernels.xrf_roi`).
:class:`XrfLinearFit` (``xrf-fit``)
    ``area``, ``area_sigma`` per line group and ``chi2_reduced``: a SNIP background then the
    line groups' fixed-shape peaks solved by linear least squares
    (:func:`pyscatter.kernels.xrf.fast_linear_fit`); ``fit_background`` (positions × channels)
    with ``store_background``.

Corrections are recorded parameters, never applied to the raw counts:

``dead_time``
    ``"auto"`` applies what the translator recorded on the spectra's channel (``dead_time``:
    a percent, a correction factor, or live and real times, from columns or ``#@CTIME``;
    :func:`pyscatter.translators.spec.dead_time_record`): every result of a position is
    multiplied by its factor (``1 / (1 - percent/100)``, ``real / live`` or the factor).
    ``"none"`` leaves the counts as measured.
``normalize``
    ``"monitor"`` multiplies by ``reference / monitor`` (the monitor the translator recorded,
    or ``monitor=<dataset>``; the reference is the monitor's mean over the map, recorded):
    results are counts at the mean monitor.

σ is Poisson on the measured counts, scaled by the same factors (taken as exact).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import h5py
import numpy as np

from pyscatter.errors import InputError
from pyscatter.io.usid import Dim, dims_of, main_datasets
from pyscatter.processes.base import Output, ScatterProcess
from pyscatter.processes.decomposition import _positive_int, check_source

__all__ = [
    "DEAD_TIME",
    "NORMALIZE",
    "XrfLinearFit",
    "XrfRoi",
    "energy_axis",
    "line_label",
    "mca_source",
]

DEAD_TIME = ("auto", "none")
NORMALIZE = ("none", "monitor")

#: IUPAC line names -> Siegbahn (for labels: "Fe Kα1")
_SIEGBAHN = {
    "KL3": "Kα1", "KL2": "Kα2", "KL1": "Kα3", "KM3": "Kβ1", "KM2": "Kβ3", "KN3": "Kβ2",
    "KN2": "Kβ2", "KM5": "Kβ5", "KM4": "Kβ5", "L3M5": "Lα1", "L3M4": "Lα2", "L2M4": "Lβ1",
    "L3N5": "Lβ2", "L3N4": "Lβ15", "L1M3": "Lβ3", "L1M2": "Lβ4", "L2N4": "Lγ1", "L1N3": "Lγ3",
    "L3M1": "Lℓ", "L2M1": "Lη", "L3O4": "Lβ5", "M5N7": "Mα1", "M5N6": "Mα2", "M4N6": "Mβ",
    "M3N5": "Mγ", "M4N2": "Mζ2", "M5N3": "Mζ1",
}  # fmt: skip


def line_label(element: str, line: str) -> str:
    """``"Fe Kα1"`` for ``("Fe", "KL3")``; the IUPAC name when there is no Siegbahn one."""
    return f"{element} {_SIEGBAHN.get(line, line)}"


# ----------------------------------------------------------------------------------------------
# source, energy axis, corrections


def mca_source(h5: h5py.File) -> h5py.Dataset:
    """The first MCA ``Raw_Data`` (a channel with ``mca_index``), else the first ``Raw_Data``
    of 1-D spectra on an energy axis (keV or eV).

    Raises
    ------
    InputError
        No such dataset in the file.
    """
    spectra = [
        d
        for d in main_datasets(h5)
        if d.name.endswith("/Raw_Data") and len(dims_of(d, "Spectroscopic")) == 1
    ]
    for dset in spectra:
        if "mca_index" in dset.parent.attrs:
            return dset
    for dset in spectra:
        if dims_of(dset, "Spectroscopic")[0].units in ("keV", "eV"):
            return dset
    raise InputError(
        f"{h5.filename}: no MCA spectra (a Raw_Data of 1-D spectra); translate a scan with "
        "MCA spectra (pyscatter translate SCAN.spec --format spec) or name a main dataset "
        "(source=..., --source PATH)"
    )


def _calibration_list(value: Any) -> list[float] | None:
    from pyscatter.translators.spec_scans import check_mca_calibration

    checked = check_mca_calibration(value)
    return None if checked is None else list(checked)


def energy_axis(h5_main: h5py.Dataset, calibration: Sequence[float] | None) -> np.ndarray:
    """The channel energies in keV of a spectra dataset: its axis in keV or eV, or its channel
    numbers through ``calibration`` (a, b, c): ``a + b·ch + c·ch²`` keV.

    Raises
    ------
    InputError
        An axis of channel numbers and no calibration, or another unit.
    """
    dims = dims_of(h5_main, "Spectroscopic")
    axis = dims[0]
    where = f"{h5_main.file.filename}:{h5_main.name}"
    if len(dims) != 1:
        raise InputError(f"{where}: expected 1-D spectra (one spectroscopic dim), got {len(dims)}")
    if calibration is not None:
        if axis.units not in ("channel", ""):
            raise InputError(
                f"{where}: its axis {axis.name} is already in {axis.units}; give no "
                "mca_calibration (it applies to channel numbers)"
            )
        a, b, c = calibration
        ch = axis.values.astype(np.float64)
        return a + b * ch + c * ch**2
    if axis.units == "keV":
        return axis.values.astype(np.float64)
    if axis.units == "eV":
        return axis.values.astype(np.float64) / 1000.0
    raise InputError(
        f"{where}: the spectra have no energy calibration (axis {axis.name} in "
        f"{axis.units or 'no unit'}); translate with --mca-calibration A B [C] (keV) or give "
        "mca_calibration (--mca-calibration A B [C]) to this step"
    )


def _dataset(h5_main: h5py.Dataset, path: str, what: str) -> h5py.Dataset:
    """A per-position dataset: ``path`` absolute, or relative to the measurement group, the
    spectra's channel group or the measurement's ``Channel_000`` (where the counters are)."""
    n = h5_main.shape[0]
    measurement = h5_main.parent.parent
    bases = [h5_main.file] if path.startswith("/") else [measurement, h5_main.parent]
    bases += [] if path.startswith("/") else [measurement.get("Channel_000", measurement)]
    for base in bases:
        obj = base.get(path)
        if isinstance(obj, h5py.Dataset):
            if obj.shape != (n,):
                raise InputError(
                    f"{what} {obj.name} has shape {obj.shape}; expected one value per position "
                    f"({n},)"
                )
            return obj
    raise InputError(f"{what} {path!r}: no such dataset beside {h5_main.name}")


def _digest(datasets: Sequence[h5py.Dataset]) -> str:
    digest = hashlib.sha256()
    for dset in datasets:
        digest.update(np.ascontiguousarray(dset[()], dtype=np.float64).tobytes())
    return digest.hexdigest()


def dead_time_parameters(h5_main: h5py.Dataset, dead_time: str) -> dict[str, Any]:
    """``dead_time`` resolved: the recorded kind and the absolute paths of its datasets, with
    a digest of their values (changed values are new parameters)."""
    if dead_time not in DEAD_TIME:
        raise InputError(f"dead_time {dead_time!r}: expected one of {', '.join(DEAD_TIME)}")
    if dead_time == "none":
        return {"kind": "none", "reason": "dead_time='none'"}
    text = h5_main.parent.attrs.get("dead_time")
    if text is None:
        return {"kind": "none", "reason": "no dead time recorded with the spectra"}
    record = json.loads(text)
    kind = record.get("kind", "none")
    names = {
        "percent": ("percent",),
        "factor": ("factor",),
        "live_real": ("live_time", "real_time"),
    }
    if kind not in names:
        return {"kind": "none", "reason": f"recorded kind {kind!r}"}
    found = {key: _dataset(h5_main, record[key], f"dead time {key}") for key in names[kind]}
    return {
        "kind": kind,
        "datasets": {key: d.name for key, d in found.items()},
        "source": record.get("source", ""),
        "sha256": _digest(list(found.values())),
    }


def monitor_parameters(h5_main: h5py.Dataset, normalize: str, monitor: str) -> dict[str, Any]:
    """``normalize`` resolved: the monitor's path, its mean over the map (the reference) and a
    digest of its values."""
    if normalize not in NORMALIZE:
        raise InputError(f"normalize {normalize!r}: expected one of {', '.join(NORMALIZE)}")
    if normalize == "none":
        return {"kind": "none"}
    if not isinstance(monitor, str):
        raise InputError(f"monitor {monitor!r}: expected 'auto' or a per-position dataset path")
    if monitor == "auto":
        recorded = h5_main.parent.parent.attrs.get("monitor")
        if recorded is None:
            raise InputError(
                f"normalize='monitor': {h5_main.file.filename} records no monitor; translate "
                "with --monitor COLUMN or give monitor=<dataset> (e.g. Counters/I0)"
            )
        monitor = str(recorded)
    dset = _dataset(h5_main, monitor, "monitor")
    values = dset[()].astype(np.float64)
    good = values[np.isfinite(values) & (values > 0)]
    if good.size == 0:
        raise InputError(f"monitor {dset.name}: no positive value to normalise by")
    return {"kind": "monitor", "dataset": dset.name, "reference": float(good.mean()),
            "sha256": _digest([dset])}  # fmt: skip


def _number(value: Any, name: str, *, minimum: float = 0.0, strict: bool = True) -> float:
    try:
        number = math.nan if isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and (number > minimum if strict else number >= minimum)):
        op = ">" if strict else ">="
        raise InputError(f"{name} must be a finite number {op} {minimum:g}; got {value!r}")
    return number


def _range(value: Any, name: str) -> list[float] | None:
    if value is None:
        return None
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be two energies [lo, hi] in keV; got {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo < hi):
        raise InputError(f"{name} must be finite with 0 <= lo < hi keV; got {value!r}")
    return [lo, hi]


def _smooth(value: Any, energy: np.ndarray, response: Any, fit: list[float]) -> int:
    """The smoothing width in channels; ``"auto"``: the peaks' FWHM in the middle of the fit
    range, in channels, made odd (at least 3)."""
    if value == "auto":
        gain = float(np.median(np.abs(np.diff(energy))))
        fwhm = float(response.fwhm_keV(0.5 * (fit[0] + fit[1])))
        return max(3, 2 * int(round(0.5 * fwhm / gain)) + 1)
    width = _positive_int(value, "smooth_width (channels)", 0)
    if width not in (0, 1) and (width < 3 or width % 2 == 0):
        raise InputError(f"smooth_width must be 0 or an odd number >= 3; got {value!r}")
    return width


def _elements(elements: Any) -> list[str]:
    if isinstance(elements, str):
        elements = elements.replace(",", " ").split()
    if not elements or not all(isinstance(e, str) and e for e in elements):
        raise InputError(
            f"elements: expected symbols such as ['Fe', 'Cu', 'Pb_L']; got {elements!r}"
        )
    return list(elements)


# ----------------------------------------------------------------------------------------------
# the processes


class _XrfProcess(ScatterProcess):
    """What the ROI and fit processes share: source, energy axis, lines, corrections."""

    @classmethod
    def default_source(cls, h5: h5py.File) -> h5py.Dataset:
        """The first MCA spectra of the file (:func:`mca_source`)."""
        return mca_source(h5)

    def _common(
        self,
        h5_main: h5py.Dataset,
        *,
        elements: Any,
        excitation: Any,
        families: Sequence[str],
        energy_range: Any,
        noise: Any,
        fano: Any,
        epsilon: Any,
        escape: Any,
        detector: str,
        mca_calibration: Any,
        dead_time: str,
        normalize: str,
        monitor: str,
    ) -> dict[str, Any]:
        """The shared parameters, checked; sets ``_energy``, ``_groups``, ``_response``."""
        from pyscatter.kernels.xrf_lines import DetectorResponse, line_groups

        check_source(h5_main)
        calibration = _calibration_list(mca_calibration)
        energy = energy_axis(h5_main, calibration)
        excitation = _number(excitation, "excitation (keV)")
        if not isinstance(escape, bool):
            raise InputError(f"escape must be true or false; got {escape!r}")
        e_lo, e_hi = float(np.min(energy)), float(np.max(energy))
        span = _range(energy_range, "energy_range") or [max(e_lo, 1.0), e_hi]
        families = [families] if isinstance(families, str) else list(families)
        response = DetectorResponse(
            noise_keV=_number(noise, "noise (keV)", strict=False),
            fano=_number(fano, "fano", strict=False),
            epsilon_keV=_number(epsilon, "epsilon (keV)", strict=False),
            escape=escape,
            detector=str(detector),
        )
        groups = line_groups(
            _elements(elements),
            excitation_keV=excitation,
            families=families,
            energy_range_keV=(span[0], span[1]),
        )
        self._energy, self._groups, self._response = energy, groups, response
        return {
            "elements": _elements(elements),
            "excitation_keV": excitation,
            "families": families,
            "energy_range_keV": span,
            "response": {
                "noise_keV": response.noise_keV,
                "fano": response.fano,
                "epsilon_keV": response.epsilon_keV,
                "escape": escape,
                "detector": response.detector,
            },  # fmt: skip
            "mca_calibration": calibration,
            "axis_units": dims_of(h5_main, "Spectroscopic")[0].units,
            "dead_time": dead_time_parameters(h5_main, dead_time),
            "normalize": monitor_parameters(h5_main, normalize, monitor),
            "lines": [g.name for g in groups],
        }

    def _line_dim(self) -> Dim:
        return Dim(
            "line", "keV", np.array([g.energies_keV[np.argmax(g.ratios)] for g in self._groups])
        )

    def _worker_parameters(self) -> str:
        params = dict(self.parameters, source=self._source.name, fingerprint=self.fingerprint)
        return json.dumps(params, sort_keys=True)

    def _setup_extra(self, group: h5py.Group) -> None:
        group.attrs["lines"] = json.dumps([g.name for g in self._groups])
        group.attrs["line_energies_keV"] = json.dumps(
            [g.energies_keV.tolist() for g in self._groups]
        )
        group.attrs["line_ratios"] = json.dumps([g.ratios.tolist() for g in self._groups])
        group.attrs["line_names"] = json.dumps([list(g.lines) for g in self._groups])


class XrfRoi(_XrfProcess):
    """Net counts in a window around each element line group, with a linear background.

    Parameters
    ----------
    h5_main : h5py.Dataset
        MCA spectra (positions × channels) with an energy axis (keV or eV) or channel numbers
        and ``mca_calibration``.
    elements : list of str
        ``["Fe", "Cu", "Pb_L"]``: every family (K, L, M among ``families``) with a line in
        ``energy_range`` excited at ``excitation``, or the family named.
    excitation : float
        Incident energy in keV (an element with no edge below it is an error).
    families : list of str
        Families tried for a bare symbol.
    energy_range : (float, float), optional
        Lines outside are dropped (default: 1 keV to the end of the axis).
    roi_width : float
        Half width of each region in FWHM of the detector at the group's strongest line.
    background_width : float
        Width of each side window in FWHM (0: no background subtraction).
    windows : dict of name -> (lo, hi), optional
        Regions given in keV instead of computed from the lines (their side windows are
        ``background_width / 2`` times the region's width, ``roi_width`` is not used).
    noise, fano, epsilon, escape, detector
        Detector response (:class:`pyscatter.kernels.xrf_lines.DetectorResponse`): FWHM
        ``sqrt(noise² + 2.3548² fano epsilon E)`` keV.
    mca_calibration : (a, b[, c]), optional
        keV = a + b·ch + c·ch² for spectra on a channel-number axis.
    dead_time : {"auto", "none"}
    normalize : {"none", "monitor"}
    monitor : str
        ``"auto"`` (the one the translator recorded) or a per-position dataset.
    **kwargs
        Execution options of :class:`~pyscatter.processes.base.ScatterProcess`.
    """

    process_name = "XrfRoi"
    factory = "pyscatter.processes.xrf_worker:build_roi"
    nexus_signal = "net"

    def __init__(
        self,
        h5_main: h5py.Dataset,
        *,
        elements: Sequence[str] | None = None,
        excitation: float | None = None,
        families: Sequence[str] = ("K", "L", "M"),
        energy_range: Sequence[float] | None = None,
        roi_width: float = 1.0,
        background_width: float = 1.0,
        windows: Mapping[str, Sequence[float]] | None = None,
        noise: float = 0.1,
        fano: float = 0.114,
        epsilon: float = 0.00385,
        escape: bool = False,
        detector: str = "Si",
        mca_calibration: Sequence[float] | None = None,
        dead_time: str = "auto",
        normalize: str = "none",
        monitor: str = "auto",
        **kwargs: Any,
    ) -> None:
        from pyscatter.kernels.xrf_roi import RoiWindow, line_windows, roi_plan

        if windows is None and (elements is None or excitation is None):
            raise InputError("xrf-roi: give elements and excitation (keV), or windows in keV")
        k = _number(roi_width, "roi_width")
        side = _number(background_width, "background_width", strict=False)
        if windows is not None:
            params = self._given(h5_main, windows, side, mca_calibration, dead_time, normalize,
                                 monitor)  # fmt: skip
            rois = [RoiWindow(n, lo, hi, tuple(left) if left else None,
                              tuple(right) if right else None)
                    for n, lo, hi, left, right in params["windows"]]  # fmt: skip
        else:
            params = self._common(
                h5_main, elements=elements, excitation=excitation, families=families,
                energy_range=energy_range, noise=noise, fano=fano, epsilon=epsilon,
                escape=escape, detector=detector, mca_calibration=mca_calibration,
                dead_time=dead_time, normalize=normalize, monitor=monitor,
            )  # fmt: skip
            centres = [float(g.energies_keV[np.argmax(g.ratios)]) for g in self._groups]
            fwhm = self._response.fwhm_keV(np.asarray(centres)).tolist()
            rois = line_windows(params["lines"], centres, fwhm, k=k, side=side)
            params["windows"] = [[w.name, w.lo, w.hi, w.left and list(w.left),
                                  w.right and list(w.right)] for w in rois]  # fmt: skip
        params.update(roi_width=k, background_width=side)
        roi_plan(self._energy, rois)  # a region without channels fails here
        self._rois = rois
        super().__init__(h5_main, params, **kwargs)

    def _given(
        self, h5_main, windows, side, mca_calibration, dead_time, normalize, monitor
    ) -> dict[str, Any]:
        """Parameters of regions given in keV."""
        check_source(h5_main)
        if not isinstance(windows, Mapping) or not windows:
            raise InputError(f"windows must map names to [lo, hi] keV; got {windows!r}")
        calibration = _calibration_list(mca_calibration)
        self._energy = energy_axis(h5_main, calibration)
        self._groups = []
        rows = []
        for name, span in windows.items():
            lo, hi = _range(span, f"windows[{name!r}]") or (0.0, 0.0)
            width = side * (hi - lo) / 2
            sides = (
                [[lo - width, lo], [float(np.nextafter(hi, np.inf)), hi + width]]
                if width
                else [None, None]
            )
            rows.append([str(name), lo, hi, *sides])
        return {
            "windows": rows,
            "mca_calibration": calibration,
            "axis_units": dims_of(h5_main, "Spectroscopic")[0].units,
            "dead_time": dead_time_parameters(h5_main, dead_time),
            "normalize": monitor_parameters(h5_main, normalize, monitor),
            "lines": [r[0] for r in rows],
        }

    def _line_dim(self) -> Dim:
        if not self._groups:
            return Dim("line", "keV", np.array([(w.lo + w.hi) / 2 for w in self._rois]))
        return super()._line_dim()

    def _outputs(self) -> list[Output]:
        dims = (self._line_dim(),)
        return [
            Output("net", "Net counts", "counts", dims, dtype=np.float64),
            Output("net_sigma", "Net counts sigma", "counts", dims, dtype=np.float64),
            Output("gross", "Gross counts", "counts", dims, dtype=np.float64),
            Output("background", "Background counts", "counts", dims, dtype=np.float64),
        ]

    def _bytes_per_position(self) -> int:
        # the spectrum as read and as float64, and a copy; the four outputs
        return int(
            self._source.shape[1] * (self._source.dtype.itemsize + 16) + 32 * len(self._rois)
        )

    def _setup_extra(self, group: h5py.Group) -> None:
        super()._setup_extra(group)
        group.attrs["lines"] = json.dumps([w.name for w in self._rois])
        group.attrs["windows_keV"] = json.dumps(self.parameters["windows"])


class XrfLinearFit(_XrfProcess):
    """Areas of element line groups by the fast linear fit: SNIP background, fixed-shape peaks.

    Parameters
    ----------
    h5_main, elements, excitation, families, energy_range, noise, fano, epsilon, escape,
    detector, mca_calibration, dead_time, normalize, monitor
        As for :class:`XrfRoi`.
    fit_range : (float, float), optional
        Channels fitted, in keV (default: ``energy_range``).
    snip_width : int
        Half width of the SNIP background's clipping window, in channels (about 2-3 FWHM of
        the peaks; PyMca's default is 30).
    snip_iterations : int
        SNIP passes.
    smooth_width : int or "auto"
        Savitzky-Golay smoothing of the spectra over this many channels (odd, >= 3; 0: none)
        before the SNIP, as PyMca's fast fit smooths: a continuum of a few counts per channel is
        otherwise clipped to its lower envelope (about 1-2 % too high areas on
        :mod:`pyscatter.datasets_xrf` maps; 11 channels brings them under 0.6 %). Default
        ``"auto"``: the peaks' FWHM in the middle of the fit range, in channels (recorded as
        the number it gives).
    store_background : bool
        Also write the fitted background of every spectrum (``fit_background``, positions ×
        channels, float32): as large as the spectra.
    **kwargs
        Execution options of :class:`~pyscatter.processes.base.ScatterProcess`.
    """

    process_name = "XrfFit"
    factory = "pyscatter.processes.xrf_worker:build_fit"
    nexus_signal = "area"

    def __init__(
        self,
        h5_main: h5py.Dataset,
        *,
        elements: Sequence[str] = (),
        excitation: float | None = None,
        families: Sequence[str] = ("K", "L", "M"),
        energy_range: Sequence[float] | None = None,
        fit_range: Sequence[float] | None = None,
        snip_width: int = 30,
        snip_iterations: int = 1,
        smooth_width: int | str = "auto",
        store_background: bool = False,
        noise: float = 0.1,
        fano: float = 0.114,
        epsilon: float = 0.00385,
        escape: bool = False,
        detector: str = "Si",
        mca_calibration: Sequence[float] | None = None,
        dead_time: str = "auto",
        normalize: str = "none",
        monitor: str = "auto",
        **kwargs: Any,
    ) -> None:
        if excitation is None:
            raise InputError("xrf-fit: give the excitation energy in keV (excitation=17.0)")
        params = self._common(
            h5_main, elements=elements, excitation=excitation, families=families,
            energy_range=energy_range, noise=noise, fano=fano, epsilon=epsilon, escape=escape,
            detector=detector, mca_calibration=mca_calibration, dead_time=dead_time,
            normalize=normalize, monitor=monitor,
        )  # fmt: skip
        if not isinstance(store_background, bool):
            raise InputError(f"store_background must be true or false; got {store_background!r}")
        fit = _range(fit_range, "fit_range") or params["energy_range_keV"]
        inside = int(((self._energy >= fit[0]) & (self._energy <= fit[1])).sum())
        if inside < len(self._groups) + 2:
            raise InputError(
                f"fit_range [{fit[0]:g}, {fit[1]:g}] keV holds {inside} channels for "
                f"{len(self._groups)} line groups"
            )
        params.update(
            fit_range_keV=fit,
            snip_width=_positive_int(snip_width, "snip_width (channels)"),
            snip_iterations=_positive_int(snip_iterations, "snip_iterations"),
            smooth_width=_smooth(smooth_width, self._energy, self._response, fit),
            store_background=store_background,
        )
        super().__init__(h5_main, params, **kwargs)

    def _outputs(self) -> list[Output]:
        dims = (self._line_dim(),)
        one = (Dim("value", "1", np.zeros(1)),)
        outs = [
            Output("area", "Line group area", "counts", dims, dtype=np.float64),
            Output("area_sigma", "Line group area sigma", "counts", dims, dtype=np.float64),
            Output(
                "chi2_reduced", "Reduced chi-square", "1", one, np.float64, "Chi2_Spectroscopic_"
            ),
        ]
        if self.parameters["store_background"]:
            channel = Dim("energy", "keV", self._energy)
            outs.append(
                Output("fit_background", "Fitted background", "counts", (channel,),
                       np.float32, "Background_Spectroscopic_")
            )  # fmt: skip
        return outs

    def _bytes_per_position(self) -> int:
        # spectra as read, float64 working copies (spectrum, background, residual), outputs
        n = self._source.shape[1]
        return int(n * (self._source.dtype.itemsize + 8 * 6) + 24 * len(self._groups) + 8)
