"""Sector integration: radial profiles I(q) in angular sectors of every frame, with sigma."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pyscatter.errors import InputError
from pyscatter.io.usid import Dim
from pyscatter.processes.base import Output
from pyscatter.processes.integration import DEFAULT_METHOD, UNITS
from pyscatter.processes.profiles import UNIT_LABELS, DetectorProcess

_DIM_NAMES = {"q_nm^-1": "q", "q_A^-1": "q", "2th_deg": "2theta", "2th_rad": "2theta", "r_mm": "r"}


class SectorIntegration(DetectorProcess):
    """Radial integration I(q) of every frame in ``n_sectors`` angular sectors.

    Sector k is centred at ``offset_deg + k·360/n_sectors`` (wrapped into (-180°, 180°],
    pyFAI's chi convention) and spans ``width_deg``. Each is pyFAI's 1-D CSR integration with
    that azimuth range: with the default bbox splitting a pixel belongs to a sector when its
    azimuthal extent overlaps the range (pyFAI's rule), so adjacent sectors share their
    boundary pixels. A sector crossing ±180° is the union of its two parts (their sums add);
    ``width_deg = 360`` is the whole circle.

    q bins where no valid pixel falls are NaN in ``Intensity`` and ``Intensity_Sigma``.

    Parameters
    ----------
    h5_main : h5py.Dataset
        Image main dataset (positions × Row·Col), e.g. ``Raw_Data``.
    n_sectors : int
        Number of sectors (>= 1).
    width_deg : float, optional
        Angular width of each sector in (0, 360]; default ``360 / n_sectors`` (sectors tile the
        circle).
    offset_deg : float
        Centre of the first sector (degrees).
    npt : int
        Radial bins.
    unit : str
        pyFAI radial unit: ``q_nm^-1``, ``q_A^-1``, ``2th_deg``, ``2th_rad``, ``r_mm``.
    radial_range : (float, float), optional
        Common radial range of all sectors in ``unit``; default the range of pyFAI's full 1-D
        integration of the unmasked detector (the same bins as AzimuthalIntegration with the
        same ``npt``). Recorded in the parameters. A range given here is integrated with a
        guard bin on each side, so that its first and last bins hold only their own pixels
        (pyFAI alone adds pixels from up to one bin below the range to the first bin).
    poni, mask, use_file_mask, dummy, delta_dummy, correct_solid_angle, polarization_factor, \
error_model, method
        As in :class:`~pyscatter.processes.profiles.AzimuthalProfiles` (1-D CSR method).
    **kwargs
        Execution options of :class:`~pyscatter.processes.base.ScatterProcess`.

    Notes
    -----
    Outputs ``Intensity`` and ``Intensity_Sigma`` have spectroscopic dims (sector, q): the
    ``sector`` values are the centre angles in degrees, in sector order.
    """

    process_name = "SectorIntegration"
    factory = "pyscatter.processes.sectors_worker:build"
    method_dim = 1

    def __init__(
        self,
        h5_main: h5py.Dataset,
        *,
        n_sectors: int = 8,
        width_deg: float | None = None,
        offset_deg: float = 0.0,
        npt: int = 300,
        unit: str = "q_nm^-1",
        radial_range: tuple[float, float] | None = None,
        poni: str | Path | dict | None = None,
        mask: np.ndarray | None = None,
        use_file_mask: bool = True,
        dummy: float | None = None,
        delta_dummy: float | None = None,
        correct_solid_angle: bool = True,
        polarization_factor: float | None = None,
        error_model: str = "poisson",
        method: Sequence[str] = DEFAULT_METHOD,
        **kwargs: Any,
    ) -> None:
        from pyscatter.processes.sectors_worker import sector_centers, sector_ranges

        if unit not in UNITS:
            raise InputError(f"unsupported unit {unit!r}; expected one of {', '.join(UNITS)}")
        if int(n_sectors) != n_sectors or int(n_sectors) < 1:
            raise InputError(f"n_sectors must be a positive integer; got {n_sectors!r}")
        if int(npt) != npt or int(npt) < 1:
            raise InputError(f"npt must be a positive integer; got {npt!r}")
        n_sectors = int(n_sectors)
        width = 360.0 / n_sectors if width_deg is None else float(width_deg)
        if not 0 < width <= 360:
            raise InputError(f"width_deg must lie in (0, 360] degrees; got {width_deg!r}")
        if not math.isfinite(float(offset_deg)):
            raise InputError(f"offset_deg must be a finite angle; got {offset_deg!r}")
        if radial_range is not None:
            try:
                lo, hi = (float(v) for v in radial_range)
            except (TypeError, ValueError):
                raise InputError(f"radial_range must be (min, max); got {radial_range!r}") from None
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise InputError(
                    f"radial_range must be finite with min < max; got {radial_range!r}"
                )
            radial_range = (lo, hi)
        centres = sector_centers(n_sectors, float(offset_deg))
        params = {
            "n_sectors": n_sectors,
            "width_deg": width,
            "offset_deg": float(offset_deg),
            "npt": int(npt),
            "unit": unit,
            "radial_range": None if radial_range is None else list(radial_range),
            "guard_bins": radial_range is not None,
            "sectors": [
                {
                    "center": float(c),
                    "ranges": None
                    if (r := sector_ranges(float(c), width)) is None
                    else [list(x) for x in r],
                }
                for c in centres
            ],
        }
        super().__init__(
            h5_main,
            params,
            poni=poni,
            mask=mask,
            use_file_mask=use_file_mask,
            dummy=dummy,
            delta_dummy=delta_dummy,
            correct_solid_angle=correct_solid_angle,
            polarization_factor=polarization_factor,
            error_model=error_model,
            method=method,
            **kwargs,
        )

    def _resolve_parameters(
        self, params: dict[str, Any], mask: np.ndarray | None
    ) -> dict[str, Any]:
        if params["radial_range"] is not None:
            return params
        from pyscatter.processes.sectors_worker import default_radial_range

        lo, hi = default_radial_range(
            self._integrator(params),
            self._shape,
            unit=params["unit"],
            method=params["method"],
            mask=mask,
        )
        return dict(params, radial_range=[lo, hi])

    def _make_function(self, params: dict[str, Any], mask: np.ndarray | None):
        from pyscatter.processes.sectors_worker import make_function

        return make_function(params, mask, self._integrator(params))

    def _outputs(self) -> list[Output]:
        if getattr(self, "_outputs_cache", None) is None:
            radial = self._local_function().radial
            unit = self.parameters["unit"]
            centres = np.array([s["center"] for s in self.parameters["sectors"]])
            dims = (
                Dim("sector", "deg", centres),
                Dim(_DIM_NAMES[unit], UNIT_LABELS[unit], radial),
            )
            self._outputs_cache = [
                Output("Intensity", "Intensity", "a.u.", dims),
                Output("Intensity_Sigma", "Intensity sigma", "a.u.", dims),
            ]
        return self._outputs_cache
