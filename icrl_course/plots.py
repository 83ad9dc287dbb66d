"""Plotly figures for trials: in-context learning curves and maps with the paths agents walked.

Why figures: "does it learn in context?" is a question about the *shape* of a
curve (success per episode index, several agents side by side, with the
uncertainty over maps), and "how does it explore?" is a question about paths
on a map. Both are quicker to see than to read from a table. The map itself is
drawn by ``icrl_course.envs.map_figure``; this module adds what trials bring.
plotly is imported when a figure is made, so the rest of the library works without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
import pandas as pd

from icrl_course.envs import ACTION_NAMES, LakeMap, map_figure
from icrl_course.trials import Trial, TrialResults, per_episode

if TYPE_CHECKING:
    import plotly.graph_objects as go

PALETTE = ("#636EFA", "#EF553B", "#00CC96", "#AB63FA", "#FFA15A", "#19D3F3", "#FF6692", "#B6E880", "#FF97FF", "#FECB52")
"""Colours given to agents and trajectories in order (plotly's default qualitative palette)."""

METRIC_LABELS = {"success": "success rate", "return": "mean return", "length": "mean episode length",
                 "fell_in_hole": "share fallen into a hole", "timed_out": "share timed out"}


def _as_table(results) -> pd.DataFrame:
    """One tidy table from ``TrialResults``, a table, or a list or ``{name: ...}`` mapping of them."""
    if isinstance(results, TrialResults):
        return results.table
    if isinstance(results, pd.DataFrame):
        return results
    if isinstance(results, Mapping):
        return pd.concat([_as_table(r).assign(agent=name) for name, r in results.items()], ignore_index=True)
    if isinstance(results, Sequence):
        return pd.concat([_as_table(r) for r in results], ignore_index=True)
    raise TypeError(f"results must be TrialResults, a DataFrame, or a list/dict of them; got {type(results).__name__}")


def _rgba(colour: str, alpha: float) -> str:
    colour = colour.lstrip("#")
    r, g, b = (int(colour[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r}, {g}, {b}, {alpha})"


def learning_curve(results, metric: str = "success", confidence: float = 0.95, n_boot: int = 2000,
                   seed: int | np.random.Generator | None = 0, title: str | None = None) -> go.Figure:
    """The in-context learning curve: ``metric`` per episode, one line and confidence band per agent.

    ``results`` is ``TrialResults``, a results table, or a list (agents named
    by their ``agent`` column) or ``{name: results}`` mapping of them. Episodes
    are numbered from 1 on the x axis; the band is the bootstrap interval over
    maps from ``icrl_course.trials.per_episode``.
    """
    import plotly.graph_objects as go

    summary = per_episode(_as_table(results), metric, confidence, n_boot, seed)
    fig = go.Figure()
    for i, (agent, rows) in enumerate(summary.groupby("agent", sort=False)):
        colour = PALETTE[i % len(PALETTE)]
        x = rows["episode"].to_numpy() + 1
        fig.add_trace(go.Scatter(
            x=np.concatenate([x, x[::-1]]), y=np.concatenate([rows["high"], rows["low"][::-1]]),
            fill="toself", fillcolor=_rgba(colour, 0.2), line=dict(width=0), hoverinfo="skip",
            legendgroup=agent, showlegend=False,
        ))
        fig.add_trace(go.Scatter(
            x=x, y=rows["mean"], mode="lines+markers", name=agent, legendgroup=agent, line=dict(color=colour),
            customdata=np.stack([rows["low"], rows["high"], rows["n_maps"]], axis=1),
            hovertemplate=(f"{agent}<br>episode %{{x}}: %{{y:.2f}}<br>{confidence:.0%} CI "
                           "[%{customdata[0]:.2f}, %{customdata[1]:.2f}] over %{customdata[2]} maps<extra></extra>"),
        ))
    label = METRIC_LABELS.get(metric, metric)
    fig.update_layout(title=title or f"{label} per episode ({confidence:.0%} bootstrap CI over maps)",
                      xaxis_title="episode", yaxis_title=label, template="plotly_white", hovermode="x unified")
    if metric in ("success", "fell_in_hole", "timed_out"):
        fig.update_yaxes(range=[-0.02, 1.02])
    return fig


def episode_path(trial: Trial, k: int) -> np.ndarray:
    """The states episode ``k`` of ``trial`` visited, in order: its start, then where each step landed."""
    episode = trial.episode_slice(k)
    if len(episode) == 0:
        raise ValueError(f"trial has no episode {k}: it holds episodes 0..{trial.num_episodes - 1}")
    return np.concatenate([episode.obs[:1], episode.next_obs])


def trajectories_figure(lake_map: LakeMap, trajectories: Sequence[Sequence[int]], names: Sequence[str] | None = None,
                        title: str | None = None) -> go.Figure:
    """The map with one or more paths drawn on it, each a sequence of visited states.

    Paths are shifted slightly apart so that overlapping ones stay visible; a
    circle marks where each starts and a cross where it ends. Hovering a point
    gives the step number and the state.
    """
    import plotly.graph_objects as go

    names = list(names) if names is not None else [f"path {i + 1}" for i in range(len(trajectories))]
    if len(names) != len(trajectories):
        raise ValueError(f"{len(names)} names for {len(trajectories)} trajectories: give one name per trajectory")
    fig = map_figure(lake_map, title=title)
    spread = 0.25
    for i, (path, name) in enumerate(zip(trajectories, names)):
        path = np.asarray(path, dtype=np.int64)
        if path.size and (path.min() < 0 or path.max() >= lake_map.n_states):
            raise ValueError(f"trajectory {name!r} has a state outside 0..{lake_map.n_states - 1} for this map")
        offset = (i - (len(trajectories) - 1) / 2) * spread / max(len(trajectories) - 1, 1)
        rows, cols = np.divmod(path, lake_map.ncol)
        colour = PALETTE[i % len(PALETTE)]
        symbols = ["circle"] + ["circle-open"] * max(len(path) - 2, 0) + (["x"] if len(path) > 1 else [])
        fig.add_trace(go.Scatter(
            x=cols + offset, y=rows + offset, mode="lines+markers", name=name,
            line=dict(color=colour, width=3), marker=dict(color=colour, size=10, symbol=symbols),
            customdata=np.stack([np.arange(len(path)), path], axis=1),
            hovertemplate=f"{name}<br>step %{{customdata[0]}}: state %{{customdata[1]}}<extra></extra>",
        ))
    fig.update_layout(showlegend=True, legend=dict(orientation="h", yanchor="top", y=-0.15))
    fig.update_layout(height=fig.layout.height + 60)
    return fig


def trial_figure(trial: Trial, episodes: Sequence[int] | None = None, title: str | None = None) -> go.Figure:
    """A trial's map with the paths of chosen episodes (default: the first and the last).

    Each path's legend entry says how the episode ended.
    """
    if episodes is None:
        episodes = sorted({0, trial.num_episodes - 1})
    names = []
    for k in episodes:
        episode = trial.episode_slice(k)
        end = "goal" if episode.rewards[-1] > 0 else "hole" if episode.terminated[-1] else "time out"
        moves = " ".join(ACTION_NAMES[a] for a in episode.actions[:6]) + (" ..." if len(episode) > 6 else "")
        names.append(f"episode {k + 1}: {len(episode)} steps, {end} ({moves})")
    return trajectories_figure(trial.lake_map, [episode_path(trial, k) for k in episodes], names, title)
