"""RSoXS anisotropy: sectors parallel and perpendicular to the polarization, A(q) with σ.

From a cake I(χ, q) (``integrate --npt-azim N``; for an energy series each position is
integrated with its own geometry onto one q axis, NaN where it does not reach), per position
(:mod:`pyscatter.kernels.anisotropy`, one vectorised call per block):

``I_parallel``, ``I_parallel_sigma``
    Equal-weight mean of the finite chi bins within χ_pol ± w and χ_pol + 180° ± w.
``I_perpendicular``, ``I_perpendicular_sigma``
    The same within χ_pol ± 90° ± w.
``A``, ``A_sigma``
    ``(I∥ - I⊥) / (I∥ + I⊥)``, σ by linear propagation.

All are positions × q (the cake's radial axis, cut to ``q_range``). The polarization direction
χ_pol is the pyFAI chi (degrees) of the electric field: one number for the whole scan, or one
value per position read from a dataset of the file (a polarizer or EPU motor column), recorded
by path and SHA-256. pyFAI's ``polarization_factor`` = +1 (horizontal linear polarization) is
χ_pol = 0 (the field along the detector's X axis, where pyFAI's chi is 0, and its Thomson
factor is smallest at χ = 0 and 180°); ``polarization_factor`` = -1 is χ_pol = ±90°.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import h5py
import numpy as np

from pyscatter.errors import InputError
from pyscatter.io.results import results_by_start_time
from pyscatter.io.usid import Dim, dims_of
from pyscatter.processes.base import Output, ScatterProcess
from pyscatter.processes.decomposition import check_source

__all__ = ["MAX_WIDTH_DEG", "Anisotropy", "cake_axes", "polarization_values"]

#: Largest sector half width: at 45° the parallel and perpendicular sectors tile the circle.
MAX_WIDTH_DEG = 45.0

#: name -> (quantity, intensity-like units?)
OUTPUTS = {
    "I_parallel": ("Intensity parallel to the polarization", True),
    "I_parallel_sigma": ("Intensity parallel to the polarization sigma", True),
    "I_perpendicular": ("Intensity perpendicular to the polarization", True),
    "I_perpendicular_sigma": ("Intensity perpendicular to the polarization sigma", True),
    "A": ("Anisotropy (I_par - I_perp)/(I_par + I_perp)", False),
    "A_sigma": ("Anisotropy sigma", False),
}


def cake_axes(h5_main: h5py.Dataset) -> tuple[Dim, Dim]:
    """The (chi, radial) dims of a cake; an InputError saying why ``h5_main`` is not one."""
    dims = dims_of(h5_main, "Spectroscopic")
    names = [f"{d.name} [{d.units}]" for d in dims]
    if len(dims) != 2 or dims[0].name != "chi":
        raise InputError(
            f"{h5_main.name} is not a cake I(chi, q): its spectroscopic dims are {names}; "
            "the anisotropy needs an integration with azimuthal bins "
            "(pyscatter integrate FILE --npt-azim 360 --error-model poisson)"
        )
    chi, radial = dims
    if chi.units != "deg":
        raise InputError(f"{h5_main.name}: the chi axis is in {chi.units!r}; expected deg")
    if radial.values.size > 1 and not np.all(np.diff(radial.values) > 0):
        raise InputError(f"the {radial.name} axis of {h5_main.name} must be increasing")
    return chi, radial


def _sigma_dataset(h5_main: h5py.Dataset) -> h5py.Dataset:
    name = f"{h5_main.name.rsplit('/', 1)[-1]}_Sigma"
    sigma = h5_main.parent.get(name)
    if sigma is None or sigma.shape != h5_main.shape:
        raise InputError(
            f"{h5_main.name} has no {name} beside it: the anisotropy's σ comes from the cake's; "
            "integrate with an error model (--error-model poisson)"
        )
    return sigma


def polarization_values(dset: h5py.Dataset, n_positions: int) -> tuple[np.ndarray, str]:
    """The per-position χ_pol (degrees) of ``dset`` and its SHA-256 (float64 bytes)."""
    values = np.asarray(dset[()], dtype=np.float64)
    if values.ndim == 2 and 1 in values.shape:
        values = values.ravel()
    if values.ndim != 1 or values.size != n_positions:
        raise InputError(
            f"polarization_dataset {dset.name} has shape {dset.shape}; expected one value per "
            f"position ({n_positions},)"
        )
    if not np.all(np.isfinite(values)):
        raise InputError(f"polarization_dataset {dset.name} holds non-finite values")
    return values, hashlib.sha256(np.ascontiguousarray(values).tobytes()).hexdigest()


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise InputError(f"{name} must be a number (degrees); got {value!r}")
    if not np.isfinite(value):
        raise InputError(f"{name} must be finite; got {value!r}")
    return float(value)


def _q_range(value: Any, radial: Dim) -> list[float] | None:
    if value is None:
        return None
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise InputError(f"q_range must be two numbers [lo, hi]; got {value!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
        raise InputError(f"q_range must be finite with lo < hi; got {value!r}")
    inside = (radial.values >= lo) & (radial.values <= hi)
    if not inside.any():
        raise InputError(
            f"q_range [{lo:g}, {hi:g}] holds no bin of the {radial.name} axis "
            f"[{radial.values[0]:g}, {radial.values[-1]:g}] {radial.units}"
        )
    return [lo, hi]


class Anisotropy(ScatterProcess):
    """I∥(q), I⊥(q) and the anisotropy A(q) = (I∥ - I⊥)/(I∥ + I⊥) of every cake, with σ.

    Parameters
    ----------
    h5_main : h5py.Dataset
        A cake (positions × chi·q), an AzimuthalIntegration ``Intensity`` made with
        ``npt_azim``, with its ``Intensity_Sigma`` beside it.
    polarization : float, optional
        χ_pol, the pyFAI chi (degrees) of the electric field, for every position (default 0:
        horizontal polarization, pyFAI's ``polarization_factor`` > 0). Not with
        ``polarization_dataset``.
    polarization_dataset : str, optional
        Path (in the file) of a dataset with χ_pol of every position (degrees, pyFAI's chi),
        e.g. a polarizer or EPU motor column; recorded with its SHA-256.
    sector_width : float
        Half width w of each sector (degrees), in (0, 45].
    q_range : (float, float), optional
        Only the radial bins with ``lo <= q <= hi`` (default: the whole axis).
    **kwargs
        Execution options of :class:`~pyscatter.processes.base.ScatterProcess`.
    """

    process_name = "Anisotropy"
    factory = "pyscatter.processes.anisotropy_worker:build"
    nexus_signal = "A"

    def __init__(
        self,
        h5_main: h5py.Dataset,
        *,
        polarization: float | None = None,
        polarization_dataset: str | None = None,
        sector_width: float = 10.0,
        q_range: Sequence[float] | None = None,
        **kwargs: Any,
    ) -> None:
        check_source(h5_main)
        chi, radial = cake_axes(h5_main)
        sigma = _sigma_dataset(h5_main)
        width = _number(sector_width, "sector_width")
        if not 0.0 < width <= MAX_WIDTH_DEG:
            raise InputError(
                f"sector_width = {width:g} deg; expected a half width in (0, {MAX_WIDTH_DEG:g}]"
            )
        params: dict[str, Any] = {
            "sector_width": width,
            "q_range": _q_range(q_range, radial),
            "sigma_dataset": sigma.name,
            "polarization": None,
            "polarization_dataset": None,
            "polarization_sha256": None,
        }
        if polarization_dataset is not None and polarization is not None:
            raise InputError(
                f"polarization = {polarization!r} and polarization_dataset = "
                f"{polarization_dataset!r}; give one of them"
            )
        if polarization_dataset is not None:
            dset = h5_main.file.get(str(polarization_dataset))
            if not isinstance(dset, h5py.Dataset):
                raise InputError(
                    f"polarization_dataset {polarization_dataset!r} is not a dataset of "
                    f"{h5_main.file.filename}"
                )
            _, digest = polarization_values(dset, h5_main.shape[0])
            params.update(polarization_dataset=dset.name, polarization_sha256=digest)
        else:
            params["polarization"] = _number(0.0 if polarization is None else polarization,
                                             "polarization")  # fmt: skip
        self._axes = (chi, radial)
        super().__init__(h5_main, params, **kwargs)

    @classmethod
    def default_source(cls, h5: h5py.File) -> h5py.Dataset:
        """The latest AzimuthalIntegration cake (``Intensity`` with chi and q dims)."""
        for group in reversed(results_by_start_time(h5, "AzimuthalIntegration")):
            dset = group.get("Intensity")
            if dset is not None and len(dims_of(dset, "Spectroscopic")) == 2:
                return dset
        raise InputError(
            f"{h5.filename}: no cake I(chi, q) to compute the anisotropy from; integrate with "
            "azimuthal bins first (pyscatter integrate FILE --npt-azim 360 --error-model poisson)"
        )

    def _worker_parameters(self) -> str:
        """Parameters + the source's fingerprint (a worker's cached axes are per file)."""
        params = dict(self.parameters, source=self._source.name, fingerprint=self.fingerprint)
        return json.dumps(params, sort_keys=True)

    def q_dim(self) -> Dim:
        """The radial dim of the outputs: the cake's, cut to ``q_range``."""
        radial = self._axes[1]
        span = self.parameters["q_range"]
        if span is None:
            return radial
        keep = (radial.values >= span[0]) & (radial.values <= span[1])
        return Dim(radial.name, radial.units, radial.values[keep])

    def _outputs(self) -> list[Output]:
        units = str(self._source.attrs.get("units", "a.u."))
        dims = (self.q_dim(),)
        return [
            Output(name, quantity, units if intensity else "1", dims, dtype=np.float64)
            for name, (quantity, intensity) in OUTPUTS.items()
        ]

    def _bytes_per_position(self) -> int:
        # the cake and its sigma as read and as float64, a few boolean and float64 copies
        return int(self._source.shape[1] * (2 * self._source.dtype.itemsize + 8 * 8))

    def _setup_extra(self, group: h5py.Group) -> None:
        group.attrs["formulas"] = (
            "sectors: |d| <= w (parallel), 90 - |d| <= w (perpendicular), "
            "d = ((chi - chi_pol + 90) mod 180) - 90 at the chi-bin centres; "
            "I_s = mean of the finite bins (equal weights), sigma_s = sqrt(sum sigma_k^2) / n; "
            "A = (I_par - I_perp) / (I_par + I_perp), "
            "sigma_A = 2 sqrt(I_perp^2 sigma_par^2 + I_par^2 sigma_perp^2) / (I_par + I_perp)^2"
        )
        group.attrs["polarization_convention"] = (
            "chi_pol: pyFAI chi (degrees) of the electric field; pyFAI polarization_factor +1 "
            "(horizontal) is chi_pol = 0, -1 (vertical) is chi_pol = 90"
        )
