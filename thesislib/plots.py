"""Figure defaults for the book: holoviews + bokeh for interactive figures, matplotlib for static ones.

Call :func:`setup` once at the top of a notebook. The bokeh JavaScript is inlined
into the notebook output, so the built HTML book is interactive with no network
access (and a downloaded page keeps working). Figures with sliders go through
:func:`with_slider`, which embeds every frame so that the sliders work in the book.
"""

from __future__ import annotations

import holoviews as hv
import matplotlib as mpl
import panel as pn

#: A figure's default size in the book, in pixels (bokeh) — matches the book's text width.
WIDTH, HEIGHT = 640, 400


def setup(inline: bool = True) -> None:
    """Load holoviews' bokeh backend and set defaults: titled, labelled, with hover tools."""
    hv.extension("bokeh", inline=inline, logo=False)
    hv.opts.defaults(
        hv.opts.Scatter(width=WIDTH, height=HEIGHT, tools=["hover"], size=6, show_grid=True),
        hv.opts.Points(width=WIDTH, height=HEIGHT, tools=["hover"], size=6, show_grid=True),
        hv.opts.Curve(width=WIDTH, height=HEIGHT, tools=["hover"], show_grid=True),
        hv.opts.Bars(width=WIDTH, height=HEIGHT, tools=["hover"], show_grid=True),
        hv.opts.HeatMap(width=WIDTH, height=HEIGHT, tools=["hover"], colorbar=True),
        hv.opts.Histogram(width=WIDTH, height=HEIGHT, tools=["hover"]),
        hv.opts.Overlay(width=WIDTH, height=HEIGHT),
    )
    mpl.rcParams.update(
        {
            "figure.figsize": (7.0, 4.2),
            "figure.dpi": 110,
            "axes.grid": True,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "savefig.bbox": "tight",
        }
    )


def with_slider(figure: hv.core.Dimensioned, widget_location: str = "top") -> pn.viewable.Viewable:
    """A HoloMap-based ``figure`` with its sliders, every frame embedded in the page.

    The sliders then work in the static HTML book, with no Python kernel behind it.
    """
    return pn.panel(figure, widget_location=widget_location).embed(max_states=500)


def static(model: object) -> pn.viewable.Viewable:
    """A bokeh ``model`` (a layout with JavaScript callbacks) embedded for the static HTML book.

    Its widgets work through their ``CustomJS`` callbacks, with no Python kernel behind the page.
    """
    return pn.pane.Bokeh(model).embed(max_states=1)
