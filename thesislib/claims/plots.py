"""The ledger's interactive forest plot (holoviews + bokeh).

Claims measure different quantities (radians, % error, dB, log ratios), so one
shared axis would squash most of them. The plot has **one panel per unit**: each
row is a claim's mean per-seed effect with its 95% interval, coloured by verdict;
a dashed line marks zero, a black tick each claim's margin (both ends of the
band for an equivalence claim). Hovering shows the claim, its n, interval and verdict.
Claims without a record at this profile have no effect and are left out (the
title counts them).
"""

from __future__ import annotations

import math

import holoviews as hv
import pandas as pd

from thesislib.claims.verdicts import COLOURS, NOT_RUN, VERDICTS

WIDTH = 640


def _unit_label(unit: str) -> str:
    return unit if unit else "(unitless)"


def forest_plot(table: pd.DataFrame) -> hv.Layout | hv.Div:
    """Forest plot of the ledger ``table`` (from :func:`thesislib.claims.ledger.build_ledger`)."""
    measured = table[table["effect"].notna()].copy()
    not_run = int((table["verdict"] == NOT_RUN).sum())
    if measured.empty:
        return hv.Div(f"<p>No claim has a record in these runs ({not_run} not run at this profile).</p>")
    measured["unit_label"] = measured["unit"].fillna("").map(_unit_label)
    measured["low"] = measured["interval"].map(lambda i: i[0] if i else None)
    measured["high"] = measured["interval"].map(lambda i: i[1] if i else None)
    measured["colour"] = measured["verdict"].map(COLOURS)
    panels = []
    for unit, group in measured.groupby("unit_label", sort=True):
        group = group.reset_index(drop=True)
        group["y"] = range(len(group) - 1, -1, -1)  # first claim on top
        ticks = list(zip(group["y"], group["id"], strict=True))
        hover = ["id", "verdict", "n", "low", "high", "effect_label"]
        with_interval = group.dropna(subset=["low", "high"])
        margins = []
        for row in group.itertuples():
            if row.expect == "equivalent":
                margins += [(-row.margin, row.y), (row.margin, row.y)]
            elif row.margin:
                margins.append((row.margin, row.y))
        segments = hv.Segments(
            with_interval, kdims=["low", "y", "high", "y"], vdims=["colour", "id", "verdict", "n"]
        ).opts(color="colour", line_width=3, tools=["hover"])
        points = hv.Scatter(group, kdims=["effect"], vdims=["y", "colour", *hover]).opts(
            color="colour", size=9, tools=["hover"], marker="circle", line_color="black"
        )
        # every panel shows zero and the margins, so the reader sees where each interval lies
        xs = [0.0, *group["effect"], *with_interval["low"], *with_interval["high"], *(x for x, _ in margins)]
        pad = 0.08 * (max(xs) - min(xs) or 1.0)
        overlay = hv.VLine(0).opts(color="grey", line_dash="dashed") * segments * points
        if margins:
            overlay = overlay * hv.Scatter(margins, "x", "y").opts(
                marker="dash", angle=math.pi / 2, size=14, color="black", tools=[]
            )
        panels.append(
            overlay.opts(
                width=WIDTH,
                height=70 + 32 * len(group),
                yticks=ticks,
                ylim=(-0.7, len(group) - 0.3),
                xlim=(min(xs) - pad, max(xs) + pad),
                xlabel=f"mean per-seed effect ({unit})",
                ylabel="",
                title=f"claims in {unit}",
                show_legend=False,
            )
        )
    legend = " · ".join(
        f'<span style="color:{COLOURS[v]};font-weight:bold">■ {v}</span>' for v in VERDICTS if v != NOT_RUN
    )
    header = hv.Div(
        f"<p>{legend}. {len(measured)} claims measured; {not_run} not run at this profile.</p>"
    ).opts(width=WIDTH, height=40)
    return hv.Layout([header, *panels]).cols(1).opts(shared_axes=False)
