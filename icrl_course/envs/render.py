"""Drawing maps: plotly figures that learners look at instead of reading letters.

Why here and not in ``plots``: the environment's own ``render_mode="plotly"``
needs a figure, and the library's dependencies point from ``envs`` outwards.
``icrl_course.plots`` builds trajectories and learning curves on top of this.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from icrl_course.envs.lake_map import LakeMap

if TYPE_CHECKING:
    import plotly.graph_objects as go

TILE_COLOURS = {"S": "#9ecae1", "F": "#eef6fb", "H": "#08306b", "G": "#41ab5d"}
TILE_LABELS = {"S": "start", "F": "frozen", "H": "hole", "G": "goal"}


def map_figure(lake_map: LakeMap, position: int | None = None, title: str | None = None, cell_px: int = 60) -> go.Figure:
    """A plotly figure of the map, row 0 at the top; ``position`` marks the agent's tile.

    plotly is imported here, not with the module, so environments work without it.
    """
    import plotly.graph_objects as go

    # All tiles in one layout update: plotly re-validates every shape on each add_shape, which made a
    # 5 x 5 map take seconds to draw and the lab's map editor lag behind its clicks.
    fig = go.Figure(layout=dict(shapes=[
        dict(type="rect", x0=c - 0.5, x1=c + 0.5, y0=r - 0.5, y1=r + 0.5,
             fillcolor=TILE_COLOURS[letter], line=dict(color="#6b7b8c", width=1), layer="below")
        for r, row in enumerate(lake_map.rows) for c, letter in enumerate(row)
    ]))
    letters = [(c, r, letter) for r, row in enumerate(lake_map.rows) for c, letter in enumerate(row)]
    fig.add_trace(go.Scatter(
        x=[c for c, _, _ in letters], y=[r for _, r, _ in letters], mode="text",
        text=[letter if letter != "F" else "" for _, _, letter in letters],
        textfont=dict(color=["white" if letter in "HG" else "#333" for _, _, letter in letters], size=16),
        hovertext=[f"state {r * lake_map.ncol + c} ({TILE_LABELS[letter]})" for c, r, letter in letters],
        hoverinfo="text", showlegend=False,
    ))
    if position is not None:
        r, c = lake_map.to_row_col(position)
        fig.add_trace(go.Scatter(x=[c], y=[r], mode="markers", marker=dict(size=22, color="#e6550d", symbol="circle"),
                                 name="agent", hovertext=f"agent at state {position}", hoverinfo="text"))
    fig.update_xaxes(range=[-0.5, lake_map.ncol - 0.5], showgrid=False, zeroline=False, tickvals=list(range(lake_map.ncol)), title="column")
    fig.update_yaxes(range=[lake_map.nrow - 0.5, -0.5], showgrid=False, zeroline=False, tickvals=list(range(lake_map.nrow)),
                     title="row", scaleanchor="x", scaleratio=1)
    fig.update_layout(width=cell_px * lake_map.ncol + 160, height=cell_px * lake_map.nrow + 120,
                      margin=dict(l=40, r=20, t=50 if title else 20, b=40), title=title, plot_bgcolor="white")
    return fig
