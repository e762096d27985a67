"""Figures of pyscatter results (matplotlib): maps, director maps, profile fits, I(q)
waterfalls, detector frames in q-space.

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
from pyscatter.plot.scattering import plot_frame, plot_waterfall

__all__ = [
    "colour_scale",
    "director_colours",
    "plot_director_map",
    "plot_frame",
    "plot_map",
    "plot_profile_fit",
    "plot_waterfall",
    "write_orientation_figures",
]
