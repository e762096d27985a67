"""Azimuthal integration of every frame of a scan: I(q), or a cake I(chi, q), with sigma."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pyscatter.errors import InputError
from pyscatter.geometry import integrator_from_config
from pyscatter.io.usid import Dim, main_datasets
from pyscatter.processes.base import Output, ScatterProcess
from pyscatter.processes.execution import release_memory
from pyscatter.processes.integration_worker import integrator_options, make_function

UNITS = ("q_nm^-1", "q_A^-1", "2th_deg", "2th_rad", "r_mm")
ERROR_MODELS = (None, "poisson", "azimuthal")
ENGINES = ("batched", "pyfai")
DEFAULT_METHOD = ("bbox", "csr", "cython")
_UNIT_LABELS = {
    "q_nm^-1": ("q", "1/nm"),
    "q_A^-1": ("q", "1/A"),
    "2th_deg": ("2theta", "deg"),
    "2th_rad": ("2theta", "rad"),
    "r_mm": ("r", "mm"),
}


def load_geometry(poni: str | Path | dict | None, h5_main: h5py.Dataset) -> dict[str, Any]:
    """pyFAI geometry config: from a PONI file or dict, else the one recorded in the file."""
    import pyFAI

    if poni is None:
        for obj in (h5_main, h5_main.parent, h5_main.parent.parent):
            if "geometry" in obj.attrs:
                return json.loads(obj.attrs["geometry"])
        raise InputError(
            f"{h5_main.file.filename}: no geometry recorded with {h5_main.name}; "
            "give a PONI file (--poni FILE)"
        )
    if isinstance(poni, dict):
        return pyFAI.load(poni).get_config()
    path = Path(poni)
    if not path.is_file():
        raise InputError(f"PONI file not found: {path}")
    try:
        return pyFAI.load(str(path)).get_config()
    except Exception as err:
        raise InputError(f"{path}: not a PONI file pyFAI can read ({err})") from err


def _per_position(h5_main: h5py.Dataset, name: str, what: str) -> str:
    """Absolute path of a per-position dataset named relative to the channel or measurement."""
    n = h5_main.shape[0]
    for base in (h5_main.parent, h5_main.parent.parent, h5_main.file):
        obj = base.get(name)
        if isinstance(obj, h5py.Dataset):
            if obj.shape != (n,):
                raise InputError(
                    f"{what} {obj.name} has shape {obj.shape}; expected one value per position ({n},)"
                )
            return obj.name
    raise InputError(f"{what} {name!r}: no such dataset beside {h5_main.name}")


def normalization_parameters(h5_main, monitor, transmission, exposure_time) -> dict[str, Any]:
    """Resolve monitor/transmission/exposure options into dataset paths and a constant."""
    paths: list[str] = []
    constant = 1.0
    if monitor == "auto":
        recorded = h5_main.parent.parent.attrs.get("monitor")
        if "Monitor" in h5_main.parent:
            paths.append(_per_position(h5_main, "Monitor", "monitor"))
        elif recorded is not None:
            name = str(recorded)
            paths.append(
                _per_position(h5_main, name if "/" in name else f"Counters/{name}", "monitor")
            )
        else:
            raise InputError(
                f"monitor='auto': {h5_main.file.filename} records no monitor; give a dataset "
                "path (e.g. Counters/I0) or translate with --monitor"
            )
    elif monitor is not None:
        paths.append(_per_position(h5_main, monitor, "monitor"))
    for what, value in (("transmission", transmission), ("exposure_time", exposure_time)):
        if value is None:
            continue
        if isinstance(value, str):
            paths.append(_per_position(h5_main, value, what))
        elif float(value) <= 0:
            raise InputError(f"{what} must be positive; got {value}")
        else:
            constant *= float(value)
    digest = hashlib.sha256()
    for path in paths:  # the values, so that changed monitor readings are new parameters
        digest.update(np.ascontiguousarray(h5_main.file[path][()]).tobytes())
    return {
        "normalization_datasets": paths,
        "normalization_constant": None if constant == 1.0 else constant,
        "normalization_sha256": digest.hexdigest() if paths else None,
    }


def recorded_dummy(h5_main: h5py.Dataset, delta_dummy: float | None):
    """(dummy, delta_dummy) recorded with the measurement (ESRF ``Dummy``/``DDummy``), or Nones."""
    for obj in (h5_main, h5_main.parent, h5_main.parent.parent):
        if "dummy" in obj.attrs:
            dummy = float(obj.attrs["dummy"])
            if dummy == 0:  # ESRF convention: Dummy 0 means no dummy pixels
                return None, None
            recorded = obj.attrs.get("delta_dummy")
            delta = delta_dummy if delta_dummy is not None else recorded
            return dummy, None if delta is None else float(delta)
    return None, delta_dummy


def frame_shape(h5_main: h5py.Dataset) -> tuple[int, int]:
    """(rows, cols) of the frames of an image main dataset."""
    spec = h5_main.file[h5_main.attrs["Spectroscopic_Indices"]]
    labels = [x.decode() if isinstance(x, bytes) else str(x) for x in spec.attrs["labels"]]
    if labels != ["Row", "Col"]:
        raise InputError(
            f"{h5_main.name} has spectroscopic dims {labels}; azimuthal integration needs "
            "detector images (Row, Col)"
        )
    inds = spec[()]
    return int(inds[0].max()) + 1, int(inds[1].max()) + 1


def _sha(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


class AzimuthalIntegration(ScatterProcess):
    """Integrate every frame azimuthally with pyFAI's geometry and sparse matrices.

    Parameters
    ----------
    h5_main : h5py.Dataset
        Image main dataset (positions × Row·Col), e.g. ``Raw_Data``.
    npt : int
        Radial bins.
    unit : str
        pyFAI radial unit, one of ``q_nm^-1``, ``q_A^-1``, ``2th_deg``, ``2th_rad``, ``r_mm``.
    npt_azim : int, optional
        Azimuthal bins of a 2-D cake (chi × q); ``None`` for 1-D I(q).
    poni : path or dict, optional
        Geometry; default: the geometry recorded in the file by the translator.
    mask : ndarray, optional
        (rows, cols), nonzero = masked; combined with the mask recorded in the file.
    use_file_mask : bool
        Use the ``Mask`` dataset recorded beside the source (default True).
    dummy, delta_dummy : float, optional
        Pixels whose value equals ``dummy`` (within ``delta_dummy``) are ignored. Default: the
        value the translator recorded (ESRF ``Dummy``/``DDummy``, or ``--dummy``), if any.
    correct_solid_angle : bool
    polarization_factor : float, optional
        pyFAI's polarization factor in [-1, 1]; ``None`` for no correction.
    dark, flat : ndarray, optional
        (rows, cols); stored in the results group so the file alone reproduces the result.
    error_model : {None, "poisson", "azimuthal"}
        Writes ``Intensity_Sigma`` when set.
    method : sequence of str
        pyFAI method (split, algorithm, implementation); default ``("bbox", "csr", "cython")``.
    engine : {"batched", "pyfai"}
        ``"batched"`` applies pyFAI's sparse matrix to a block of frames at once (fast default);
        ``"pyfai"`` calls ``integrate1d_ng``/``integrate2d_ng`` frame by frame.
    radial_range, azimuth_range : (float, float), optional
    monitor : str, optional
        Normalise each position by a monitor: ``"auto"`` for the one the translator recorded
        (``Monitor``, or the counter named by the measurement's ``monitor`` attribute), or the
        path of a per-position dataset. The raw frames are never changed: this is a parameter.
    transmission, exposure_time : float or str, optional
        Further normalisation, a constant or the path of a per-position dataset. The result is
        divided by monitor × transmission × exposure_time, as pyFAI's ``normalization_factor``.
    **kwargs
        Execution options of :class:`~pyscatter.processes.base.ScatterProcess`.
    """

    process_name = "AzimuthalIntegration"
    block_input_mb = 64
    factory = "pyscatter.processes.integration_worker:build"

    def __init__(
        self,
        h5_main: h5py.Dataset,
        *,
        npt: int = 1000,
        unit: str = "q_nm^-1",
        npt_azim: int | None = None,
        poni: str | Path | dict | None = None,
        mask: np.ndarray | None = None,
        use_file_mask: bool = True,
        dummy: float | None = None,
        delta_dummy: float | None = None,
        correct_solid_angle: bool = True,
        polarization_factor: float | None = None,
        dark: np.ndarray | None = None,
        flat: np.ndarray | None = None,
        error_model: str | None = None,
        method: Sequence[str] = DEFAULT_METHOD,
        engine: str = "batched",
        radial_range: tuple[float, float] | None = None,
        azimuth_range: tuple[float, float] | None = None,
        monitor: str | None = None,
        transmission: float | str | None = None,
        exposure_time: float | str | None = None,
        **kwargs: Any,
    ) -> None:
        shape = frame_shape(h5_main)
        if unit not in UNITS:
            raise InputError(f"unsupported unit {unit!r}; expected one of {', '.join(UNITS)}")
        if error_model not in ERROR_MODELS:
            raise InputError(
                f"unsupported error_model {error_model!r}; expected one of "
                f"{', '.join(str(m) for m in ERROR_MODELS)}"
            )
        if engine not in ENGINES:
            raise InputError(f"unsupported engine {engine!r}; expected one of {', '.join(ENGINES)}")
        if int(npt) < 1 or (npt_azim is not None and int(npt_azim) < 1):
            raise InputError(f"npt and npt_azim must be positive; got {npt}, {npt_azim}")
        if polarization_factor is not None and not -1 <= polarization_factor <= 1:
            raise InputError(f"polarization_factor must lie in [-1, 1]; got {polarization_factor}")
        self._extra = {}
        for name, arr in (("Mask", mask), ("Dark", dark), ("Flat", flat)):
            if arr is not None:
                arr = np.asarray(arr)
                if arr.shape != shape:
                    raise InputError(
                        f"{name.lower()} has shape {arr.shape}; the detector frames are {shape}"
                    )
                self._extra[name] = (arr != 0).astype(np.uint8) if name == "Mask" else arr
        if dummy is None:  # the detector's invalid-pixel value the translator recorded
            dummy, delta_dummy = recorded_dummy(h5_main, delta_dummy)
        geometry = load_geometry(poni, h5_main)
        self._shape = shape
        file_mask = h5_main.parent.get("Mask") if use_file_mask else None
        params = {
            "npt": int(npt),
            "unit": unit,
            "npt_azim": None if npt_azim is None else int(npt_azim),
            "geometry": json.dumps(geometry, sort_keys=True),
            "frame_shape": list(shape),
            "mask_file_dataset": None if file_mask is None else file_mask.name,
            "mask_sha256": None if "Mask" not in self._extra else _sha(self._extra["Mask"]),
            "dark_sha256": None if "Dark" not in self._extra else _sha(self._extra["Dark"]),
            "flat_sha256": None if "Flat" not in self._extra else _sha(self._extra["Flat"]),
            "dummy": dummy,
            "delta_dummy": delta_dummy,
            "correct_solid_angle": bool(correct_solid_angle),
            "polarization_factor": polarization_factor,
            "error_model": error_model,
            "method": list(method),
            "engine": engine,
            **normalization_parameters(h5_main, monitor, transmission, exposure_time),
            "radial_range": None if radial_range is None else list(map(float, radial_range)),
            "azimuth_range": None if azimuth_range is None else list(map(float, azimuth_range)),
        }
        super().__init__(h5_main, params, **kwargs)

    @classmethod
    def default_source(cls, h5: h5py.File) -> h5py.Dataset:
        raws = [d for d in main_datasets(h5) if d.name.endswith("/Raw_Data")]
        if not raws:
            raise InputError(f"{h5.filename}: no Raw_Data main dataset; translate the data first")
        return raws[0]

    def _worker_parameters(self) -> str:
        params = dict(self.parameters, source=self._source.name)
        group = getattr(self, "h5_results_grp", None)
        masks = [params["mask_file_dataset"]] if params["mask_file_dataset"] else []
        params["dark_dataset"] = params["flat_dataset"] = None
        if group is not None:
            if "Mask" in group:
                masks.append(group["Mask"].name)
            params["dark_dataset"] = group["Dark"].name if "Dark" in group else None
            params["flat_dataset"] = group["Flat"].name if "Flat" in group else None
        params["mask_datasets"] = masks
        return json.dumps(params, sort_keys=True)

    def _setup_extra(self, group: h5py.Group) -> None:
        for name, arr in self._extra.items():
            group.create_dataset(name, data=arr)

    def _local_function(self):
        """Built once in this process from the in-memory mask, dark and flat."""
        if getattr(self, "_local", None) is None:
            params = dict(self.parameters, source=self._source.name)
            h5 = self._source.file
            mask_path = params["mask_file_dataset"]
            options = integrator_options(
                h5, dict(params, mask_datasets=[mask_path] if mask_path else [])
            )
            if "Mask" in self._extra:
                base = options["mask"]
                extra = self._extra["Mask"] != 0
                options["mask"] = extra if base is None else (base | extra)
            options["dark"] = self._extra.get("Dark")
            options["flat"] = self._extra.get("Flat")
            ai = integrator_from_config(params["geometry"])
            self._local = make_function(ai, params, options)
            release_memory()
        return self._local

    def _axes(self):
        func = self._local_function()
        return func.radial, func.azimuthal

    def _outputs(self) -> list[Output]:
        if getattr(self, "_outputs_cache", None) is None:
            radial, azimuthal = self._axes()
            label, units = _UNIT_LABELS[self.parameters["unit"]]
            dims = [Dim(label, units, radial)]
            if self.parameters["npt_azim"] is not None:
                dims.insert(0, Dim("chi", "deg", azimuthal))
            outs = [Output("Intensity", "Intensity", "a.u.", tuple(dims))]
            if self.parameters["error_model"] is not None:
                outs.append(Output("Intensity_Sigma", "Intensity sigma", "a.u.", tuple(dims)))
            self._outputs_cache = outs
        return self._outputs_cache

    def _bytes_per_position(self) -> int:
        n_pix = self._shape[0] * self._shape[1]
        width = self.parameters["npt"] * (self.parameters["npt_azim"] or 1)
        # the raw frame (twice when the next block is read ahead), its float32 copy, and (with
        # sigma) a second float32 product; outputs
        raw = self._source.dtype.itemsize * self._read_buffers()
        per_pixel = raw + 4 + (4 if self.parameters["error_model"] else 0)
        return n_pix * per_pixel + width * 8
