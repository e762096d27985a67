"""Line groups (xraylib), detector width and design matrix of the XRF fit."""

from __future__ import annotations

import numpy as np
import pytest
import xraylib
from scipy.stats import norm

from pyscatter.errors import InputError
from pyscatter.kernels.xrf_lines import (
    DetectorResponse,
    LineGroup,
    design_matrix,
    escape_lines,
    line_groups,
)

ENERGY = 0.01 * np.arange(2048)


def test_fe_k_group_is_xraylib_lines_and_rates():
    (fe,) = line_groups(["Fe"], excitation_keV=17.0)
    assert fe.name == "Fe_K" and fe.family == "K"
    assert fe.ratios.sum() == pytest.approx(1.0, abs=1e-12)
    kl3 = fe.lines.index("KL3")
    kl2 = fe.lines.index("KL2")
    assert fe.energies_keV[kl3] == xraylib.LineEnergy(26, xraylib.KL3_LINE)
    # one K vacancy: the ratios within the group are the radiative rates
    expected = xraylib.RadRate(26, xraylib.KL2_LINE) / xraylib.RadRate(26, xraylib.KL3_LINE)
    assert fe.ratios[kl2] / fe.ratios[kl3] == pytest.approx(expected, rel=1e-9)
    assert np.all(np.diff(fe.energies_keV) >= 0)


def test_families_excitation_and_explicit_family():
    names = [g.name for g in line_groups(["Fe", "Pb"], excitation_keV=17.0)]
    assert names == ["Fe_K", "Pb_L", "Pb_M"]
    assert [g.name for g in line_groups(["Pb_L"], excitation_keV=17.0)] == ["Pb_L"]
    # below the L1 (15.86 keV) and L2 (15.20 keV) edges only L3 lines are excited
    (pb,) = line_groups(["Pb_L"], excitation_keV=14.0)
    assert all(line.startswith("L3") for line in pb.lines)
    l3m5 = xraylib.CS_FluorLine_Kissel(82, xraylib.L3M5_LINE, 14.0)
    l3m4 = xraylib.CS_FluorLine_Kissel(82, xraylib.L3M4_LINE, 14.0)
    i5, i4 = pb.lines.index("L3M5"), pb.lines.index("L3M4")
    assert pb.ratios[i4] / pb.ratios[i5] == pytest.approx(l3m4 / l3m5, rel=1e-9)
    # Fe K is not excited below its edge (7.112 keV)
    assert [g.name for g in line_groups(["Ca"], excitation_keV=7.0)] == ["Ca_K"]
    with pytest.raises(InputError, match="'Fe' has no line"):
        line_groups(["Fe", "Ca"], excitation_keV=7.0)


def test_energy_range_and_min_ratio():
    (zn,) = line_groups(["Zn"], excitation_keV=17.0, energy_range_keV=(1.5, 9.0))
    assert zn.name == "Zn_K"
    assert zn.energies_keV.max() <= 9.0 and zn.ratios.sum() == pytest.approx(1.0)
    (pb,) = line_groups(["Pb_L"], excitation_keV=17.0, min_ratio=0.05)
    assert len(pb.lines) < len(line_groups(["Pb_L"], excitation_keV=17.0)[0].lines)


@pytest.mark.parametrize(
    ("elements", "kwargs", "match"),
    [
        (["Xx"], {}, "unknown element 'Xx'"),
        (["Fe_X"], {}, "unknown family 'X'"),
        (["C"], {}, "'C' has no line"),
        (["Pb_K"], {}, "'Pb_K' has no line"),
        (["Fe", "Fe_K"], {}, "Fe_K asked twice"),
        (["Fe"], {"families": ("Q",)}, "unknown family 'Q'"),
        (["Fe"], {"energy_range_keV": (5.0, 2.0)}, "energy_range_keV"),
        (["Fe"], {"min_ratio": 1.5}, "min_ratio"),
    ],
)
def test_bad_elements(elements, kwargs, match):
    with pytest.raises(InputError, match=match):
        line_groups(elements, excitation_keV=17.0, **kwargs)


def test_bad_excitation():
    with pytest.raises(InputError, match="excitation_keV"):
        line_groups(["Fe"], excitation_keV=-1.0)


def test_fwhm():
    r = DetectorResponse(noise_keV=0.08, fano=0.12, epsilon_keV=0.0036)
    e = np.array([1.0, 6.4, 20.0])
    expected = np.sqrt(0.08**2 + 2.3548200450309493**2 * 0.12 * 0.0036 * e)
    assert np.allclose(r.fwhm_keV(e), expected, rtol=1e-12)
    with pytest.raises(InputError, match="fano"):
        DetectorResponse(fano=-1.0)
    with pytest.raises(InputError, match="unknown element"):
        DetectorResponse(escape=True, detector="Qq")


def test_design_column_is_channel_integrated_gaussians():
    group = LineGroup("X", "K", np.array([5.0, 5.3]), np.array([0.7, 0.3]))
    resp = DetectorResponse()
    a = design_matrix(ENERGY, [group], resp)
    edges = np.concatenate(([-0.005], ENERGY + 0.005))
    sig = resp.fwhm_keV(group.energies_keV) / 2.3548200450309493
    expected = sum(
        w * np.diff(norm.cdf(edges, loc=e, scale=s))
        for e, w, s in zip(group.energies_keV, group.ratios, sig, strict=True)
    )
    assert np.allclose(a[:, 0], expected, rtol=0, atol=1e-14)
    assert a[:, 0].sum() == pytest.approx(1.0, abs=1e-12)
    # centroid and variance: sum of the lines' (channel width^2 / 12 adds to a Gaussian's)
    mean = (a[:, 0] * ENERGY).sum()
    assert mean == pytest.approx(0.7 * 5.0 + 0.3 * 5.3, abs=1e-9)
    var = (a[:, 0] * (ENERGY - mean) ** 2).sum()
    expected_var = (group.ratios * (sig**2 + (group.energies_keV - mean) ** 2)).sum() + 0.01**2 / 12
    assert var == pytest.approx(expected_var, rel=1e-6)


def test_design_cut_at_spectrum_end():
    groups = line_groups(["Fe", "Zn"], excitation_keV=17.0)
    a = design_matrix(ENERGY[:700], groups, DetectorResponse())  # up to 6.99 keV
    # the same channels of a longer axis: a line's area outside the spectrum is lost, not moved
    assert np.array_equal(a, design_matrix(ENERGY, groups, DetectorResponse())[:700])
    kalpha = groups[0].ratios[groups[0].energies_keV < 6.5].sum()  # Fe Kβ at 7.06 keV: half out
    assert kalpha < a[:, 0].sum() < 1 - 0.4 * (1 - kalpha)
    assert a[:, 1].sum() < 1e-6  # Zn K at 8.6 keV: outside


def test_escape_peaks():
    groups = line_groups(["Fe"], excitation_keV=17.0)
    plain = design_matrix(ENERGY, groups, DetectorResponse())
    esc = design_matrix(ENERGY, groups, DetectorResponse(escape=True))
    assert esc[:, 0].sum() == pytest.approx(1.0, abs=1e-12)
    shifts, fractions = escape_lines(DetectorResponse(escape=True), groups[0].energies_keV)
    assert shifts[0] == pytest.approx(1.74, abs=0.01)  # Si Kα
    lost = (groups[0].ratios[:, None] * fractions).sum()
    assert 1e-3 < lost < 1e-2  # a few per mil for Fe K in Si
    # the escape peak of Fe Kα is at 6.40 - 1.74 = 4.66 keV
    window = (ENERGY > 4.5) & (ENERGY < 4.8)
    assert (esc - plain)[window, 0].sum() == pytest.approx(
        (groups[0].ratios[:2] * fractions[:2, 0]).sum(), rel=0.05
    )
    # no escape below the Si K edge (1.839 keV)
    assert escape_lines(DetectorResponse(escape=True), [1.5])[1].sum() == 0


def test_bad_energy_axis():
    groups = line_groups(["Fe"], excitation_keV=17.0)
    with pytest.raises(InputError, match="increase"):
        design_matrix(ENERGY[::-1], groups, DetectorResponse())
    with pytest.raises(InputError, match="energy_keV"):
        design_matrix(np.zeros((3, 3)), groups, DetectorResponse())
    with pytest.raises(InputError, match="groups"):
        design_matrix(ENERGY, [], DetectorResponse())
