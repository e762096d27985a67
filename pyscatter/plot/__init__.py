"""Figures of pyscatter results (matplotlib): maps, director maps, profile fits.

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot (no global
state, any backend); save it with ``fig.savefig("map.png")``.
"""

from pyscatter.plot.maps import colour_scale, plot_map
from pyscatter.plot.orientation import (
    director_colours,
    plot_director_map,
    plot_profile_fit,
    write_orientation_figures,
)

__all__ = [
    "colour_scale",
    "director_colours",
    "plot_director_map",
    "plot_map",
    "plot_profile_fit",
    "write_orientation_figures",
]
