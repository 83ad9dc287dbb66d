"""The interactive lab: ipywidgets views over the library, for lesson 8 and a classroom projector.

Why widgets: the lessons show fixed figures; the lab lets a learner ask their
own question ("what if the hole sits here?", "what did it think at this
step?", "how large a map before it breaks?") and get the answer in a second.
Every view here is thin: it reads controls, calls the library (``run_trials``
and its play protocols, ``experiments``, ``playback``, ``envs``) and draws what
comes back with plotly ``FigureWidget``s. No RL logic lives in this module,
so what the lab shows is what the lessons' functions compute.

The five tools, each an ``ipywidgets.VBox`` to display:

``MapEditor``
    Click a tile to cycle it F -> H -> G -> S; live validity (solvable, moves
    on the shortest route, which split the map belongs to), the route drawn,
    the rows in a text box for copy and paste; preset maps.
``TrialPlayer``
    One agent's trial on one map, step by step: its position, the Q-values it
    acted on, the context it had read, its success per episode beside the explorer's.
``OODProbe``
    Map size, hole density, slipperiness and episode length as sliders; a
    small evaluation, ICRL against the explorer, with the training range marked.
``StitchingLab`` and ``NonStationaryLab``
    The stitching and map-switch protocols of ``run_trials`` on maps the
    learner draws or picks.

Each control is a public attribute and each action a method, so tests (and
curious learners) can drive a view without a browser: set ``.value``, call
the handler, read the figures.
"""

from __future__ import annotations

import html
from functools import lru_cache, partial
from typing import Callable, Sequence

import ipywidgets as w
import numpy as np
import plotly.graph_objects as go

from icrl_course import experiments
from icrl_course.baselines import ExplorerAgent, QLearningAgent, RandomAgent
from icrl_course.checkpoints import available, load_network
from icrl_course.envs import ACTION_NAMES, LakeMap, MapDistribution, MapError, split_of
from icrl_course.envs.distribution import DistributionError
from icrl_course.envs.render import TILE_COLOURS
from icrl_course.envs.scenarios import (SWITCH_KINDS, StitchingCase, paper_stitching_case, stitching_cases,
                                        stitching_problems, switch_pairs)
from icrl_course.evaluate import held_out_maps
from icrl_course.playback import Playback, play
from icrl_course.plots import PALETTE, episode_path, learning_curve, trajectories_figure
from icrl_course.runtime import full_or_smoke
from icrl_course.trials import Agent, run_trials

TILE_CYCLE = "FHGS"
"""Clicking a tile turns it into the next letter of this cycle (F -> H -> G -> S -> F)."""
TILE_TEXT_COLOURS = {"S": "black", "F": "black", "H": "white", "G": "white"}
MAP_PRESETS: dict[str, Callable[[], MapDistribution]] = {
    "paper's stitching map (6 x 4)": lambda: paper_stitching_case().lake_map,
    "paper 3-5 x 3-5 (training range)": MapDistribution.paper,
    "paper 6-7 x 6-7 (out of distribution)": MapDistribution.paper_ood,
    "paper 5 x 5, holes 0.3": partial(MapDistribution.paper, rows=(5, 5), cols=(5, 5), p_hole=0.3),
    "gymnasium 4 x 4": partial(MapDistribution.gymnasium, size=4),
    "gymnasium 8 x 8": partial(MapDistribution.gymnasium, size=8),
}
"""What the editor's presets give: a fixed map, or a distribution it draws a random map from."""
ICRL = "ICRL"
"""Prefix of the names under which shipped checkpoints appear in the lab's agent menus."""
ICRL_AGENT, EXPLORER = "icrl", experiments.EXPLORER
"""The names ``experiments`` gives the in-context learner and the explorer in its tables."""


# --------------------------------------------------------------------------- agents by name
@lru_cache(maxsize=8)
def _network(name: str):
    """A shipped checkpoint's network and spec, loaded once per process (agents share its frozen weights)."""
    return load_network(name)


def agent_factories(checkpoints: Sequence[str] | None = None) -> dict[str, Callable[[], Agent]]:
    """Every agent the lab offers, by menu name: a fresh agent per call.

    Each shipped checkpoint (``checkpoints.available()`` by default) comes
    twice, as the in-context learner and as its context-reset ablation; then
    the explorer, tabular Q-learning and random play.
    """
    def icrl(name: str, reset: bool, label: str) -> Agent:
        return _network(name)[0].agent(reset_context_every_episode=reset, name=label)

    factories: dict[str, Callable[[], Agent]] = {}
    for name in available() if checkpoints is None else checkpoints:
        factories[f"{ICRL} {name}"] = partial(icrl, name, False, f"{ICRL} {name}")
        factories[f"{ICRL} {name} (context reset)"] = partial(icrl, name, True, f"{ICRL} {name} (context reset)")
    factories.update({"explorer": ExplorerAgent, "q-learning": QLearningAgent, "random": RandomAgent})
    return factories


def training_conditions(checkpoint: str) -> dict:
    """The conditions a shipped checkpoint was trained under: map distribution, episode length, slipperiness."""
    from icrl_course.train.config import TrainConfig

    config = TrainConfig.from_dict(_network(checkpoint)[1]["train_config"])
    return {"distribution": config.map_distribution(), "max_episode_steps": config.max_episode_steps,
            "is_slippery": config.is_slippery, "episodes": config.episodes_per_trial}


# --------------------------------------------------------------------------- figures
def show_figure(target: go.FigureWidget, figure: go.Figure) -> None:
    """Replace everything ``target`` shows by ``figure`` (one batched update of the browser's copy)."""
    with target.batch_update():
        target.data = []
        target.add_traces(list(figure.data))
        target.layout = figure.layout


def _message(text: str, ok: bool = True) -> str:
    colour = "#2d6a2d" if ok else "#b00020"
    return f'<span style="color:{colour}">{html.escape(text)}</span>'


# --------------------------------------------------------------------------- 1. map editor
class MapEditor(w.VBox):
    """A clickable grid of tiles with live validity, the shortest route drawn and the rows as text.

    ``lake_map`` is the current map, or None while the tiles do not make one
    (no start or no goal); ``status`` says which. Callbacks registered with
    ``on_change`` receive the new ``LakeMap`` (or None) after every edit.
    """

    def __init__(self, rows: Sequence[str] = ("SFFF", "FHFH", "FFFH", "HFFG"), min_hops: int = 4, seed: int = 0):
        self.min_hops = min_hops
        self._letters = [list(r) for r in rows]
        self._callbacks: list[Callable[[LakeMap | None], None]] = []
        self._syncing = False
        self.lake_map: LakeMap | None = None
        self.grid = w.GridBox(layout=w.Layout(grid_gap="2px", grid_auto_rows="36px", height="fit-content"))
        self.text = w.Textarea(description="rows", layout=w.Layout(width="220px", height="150px"))
        self.text.add_class("icrl-map-text")
        self.status = w.HTML()
        self.status.add_class("icrl-map-status")
        self.figure = go.FigureWidget()
        self.preset = w.Dropdown(options=list(MAP_PRESETS), description="preset")
        self.seed = w.BoundedIntText(value=seed, min=0, max=2**31 - 1, description="seed", layout=w.Layout(width="160px"))
        self.draw = w.Button(description="random map", icon="random")
        self.draw.on_click(self.draw_random)
        self.text.observe(self._text_changed, names="value")
        super().__init__([
            w.HBox([self.preset, self.seed, self.draw]),
            w.HBox([w.VBox([self.grid, self.text]), self.figure]),
            self.status,
        ])
        self.add_class("icrl-map-editor")
        self.set_rows(["".join(r) for r in self._letters])

    # ---------------------------------------------------------------- editing
    def on_change(self, callback: Callable[[LakeMap | None], None]) -> None:
        """Call ``callback(lake_map)`` after every edit (``lake_map`` is None while the map is invalid)."""
        self._callbacks.append(callback)

    def click(self, row: int, col: int) -> None:
        """What clicking tile (row, col) does: the next letter of ``TILE_CYCLE``."""
        letter = self._letters[row][col]
        self._letters[row][col] = TILE_CYCLE[(TILE_CYCLE.index(letter) + 1) % len(TILE_CYCLE)]
        self._style_tile(row, col)
        self._refresh(text=True)

    def set_rows(self, rows: Sequence[str]) -> None:
        """Show the map given by ``rows`` (letters S/F/H/G); a new shape rebuilds the grid."""
        lake_map = LakeMap.from_rows(list(rows)) if not isinstance(rows, LakeMap) else rows
        self._letters = [list(r) for r in lake_map.rows]
        self._build_grid()
        self._refresh(text=True)

    def draw_random(self, _=None) -> None:
        """A random map from the chosen preset's distribution (any split), seeded by ``seed``."""
        preset = MAP_PRESETS[self.preset.value]()
        self.set_rows((preset if isinstance(preset, LakeMap) else preset.sample(seed=self.seed.value)).rows)

    # ---------------------------------------------------------------- view
    def _build_grid(self) -> None:
        ncol = len(self._letters[0])
        self.tiles = []
        for r, row in enumerate(self._letters):
            for c, _ in enumerate(row):
                tile = w.Button(layout=w.Layout(width="36px", height="36px", padding="0"), tooltip=f"row {r}, column {c}")
                tile.add_class("icrl-tile")
                tile.on_click(lambda _b, r=r, c=c: self.click(r, c))
                self.tiles.append(tile)
        self.grid.layout.grid_template_columns = f"repeat({ncol}, 36px)"
        self.grid.children = self.tiles
        for r, row in enumerate(self._letters):
            for c, _ in enumerate(row):
                self._style_tile(r, c)

    def _style_tile(self, row: int, col: int) -> None:
        letter = self._letters[row][col]
        tile = self.tiles[row * len(self._letters[0]) + col]
        tile.description = letter
        tile.style.button_color = TILE_COLOURS[letter]
        tile.style.text_color = TILE_TEXT_COLOURS[letter]

    def _text_changed(self, change) -> None:
        if self._syncing:
            return
        rows = [r.strip() for r in change["new"].strip().splitlines() if r.strip()]
        try:
            lake_map = LakeMap.from_rows(rows)
        except MapError as err:
            self.status.value = _message(f"not a map: {err}", ok=False)
            return
        if lake_map.shape != (len(self._letters), len(self._letters[0])):
            self._letters = [list(r) for r in lake_map.rows]
            self._build_grid()
        else:
            self._letters = [list(r) for r in lake_map.rows]
            for r in range(lake_map.nrow):
                for c in range(lake_map.ncol):
                    self._style_tile(r, c)
        self._refresh(text=False)

    def _refresh(self, text: bool) -> None:
        rows = ["".join(r) for r in self._letters]
        if text:
            self._syncing = True
            try:
                self.text.value = "\n".join(rows)
            finally:
                self._syncing = False
        try:
            self.lake_map = LakeMap.from_rows(rows)
        except MapError as err:  # no start or no goal yet: say so, keep the last figure
            self.lake_map = None
            self.status.value = _message(f"not a map yet: {err}", ok=False)
        else:
            self.status.value = self._validity(self.lake_map)
            path = self.lake_map.shortest_path()
            title = f"{self.lake_map.nrow} x {self.lake_map.ncol}, " + (
                f"shortest route {len(path) - 1} moves" if path else "no route from a start to a goal")
            show_figure(self.figure, trajectories_figure(self.lake_map, [path] if path else [],
                                                         ["shortest route"] if path else [], title=title))
        for callback in self._callbacks:
            callback(self.lake_map)

    def _validity(self, lake_map: LakeMap) -> str:
        hops = lake_map.shortest_path_length()
        cut_off = [s for s, d in zip(lake_map.starts, lake_map.start_distances()) if d is None]
        if hops is None:
            return _message("unsolvable: no start reaches a goal", ok=False)
        if cut_off:
            return _message(f"unsolvable: start(s) {cut_off} reach no goal (every start must)", ok=False)
        if hops < self.min_hops:
            return _message(f"solvable in {hops} moves, but shorter than min_hops={self.min_hops} "
                            f"(the training maps need at least {self.min_hops}); split {split_of(lake_map)}", ok=False)
        return _message(f"solvable: shortest route {hops} moves (min_hops {self.min_hops} ok); "
                        f"split {split_of(lake_map)}, digest {lake_map.digest}")


# --------------------------------------------------------------------------- 2. trial player
class TrialPlayer(w.VBox):
    """One agent's trial on one map, replayed step by step with the Q-values it acted on and its context.

    ``run`` plays a fresh trial (``playback.play``); the step slider, the
    play/step buttons and the episode slider move through it. The figures:
    ``map_figure`` (position, this episode's path so far, the four Q-values
    around the agent), ``q_figure`` (the same Q-values as bars, the action
    taken outlined), ``curve_figure`` (success per episode so far, the
    explorer's on the same map beside it); ``context`` shows the model's last tokens.
    """

    CONTEXT_ROWS = 8

    def __init__(self, maps: Sequence[LakeMap] | None = None, editor: MapEditor | None = None,
                 agents: dict[str, Callable[[], Agent]] | None = None, episodes: int = 10,
                 max_episode_steps: int = 25, seed: int = 0):
        self.factories = agents if agents is not None else agent_factories()
        self.maps = list(maps) if maps is not None else held_out_maps(full_or_smoke(12, 4), seed=seed)
        self.editor = editor
        self.max_episode_steps = max_episode_steps
        self.playback: Playback | None = None
        self.explorer: Playback | None = None
        options = [(f"test map {i + 1}: {m.nrow}x{m.ncol} ({m.digest[:6]})", i) for i, m in enumerate(self.maps)]
        if editor is not None:
            options.append(("the map editor's map", -1))
        self.agent = w.Dropdown(options=list(self.factories), description="agent")
        self.map_choice = w.Dropdown(options=options, description="map")
        self.episodes = w.BoundedIntText(value=episodes, min=1, max=50, description="episodes", layout=w.Layout(width="160px"))
        self.seed = w.BoundedIntText(value=seed, min=0, max=2**31 - 1, description="seed", layout=w.Layout(width="160px"))
        self.play_button = w.Button(description="play trial", icon="play", button_style="primary")
        self.play_button.on_click(self.run)
        self.step = w.IntSlider(min=0, max=0, description="step", continuous_update=True, layout=w.Layout(width="420px"))
        self.step.add_class("icrl-step-slider")
        self.episode = w.IntSlider(min=1, max=1, description="episode", continuous_update=False)
        self.autoplay = w.Play(interval=400, min=0, max=0, description="play")
        w.jslink((self.autoplay, "value"), (self.step, "value"))
        self.forward = w.Button(description="step", icon="step-forward", tooltip="next step")
        self.forward.add_class("icrl-step")
        self.backward = w.Button(description="back", icon="step-backward", tooltip="previous step")
        self.forward.on_click(lambda _: self.move(+1))
        self.backward.on_click(lambda _: self.move(-1))
        self.label = w.HTML()
        self.label.add_class("icrl-step-label")
        self.context = w.HTML()
        self.map_figure = go.FigureWidget()
        self.q_figure = go.FigureWidget(layout=dict(width=320, height=260, template="plotly_white",
                                                    title="Q-values it acted on", margin=dict(l=40, r=10, t=40, b=30)))
        self.curve_figure = go.FigureWidget(layout=dict(width=420, height=260, template="plotly_white",
                                                        title="success per episode, this map",
                                                        margin=dict(l=40, r=10, t=40, b=30)))
        self.step.observe(lambda change: self.show(change["new"]), names="value")
        self.episode.observe(self._episode_changed, names="value")
        super().__init__([
            w.HBox([self.agent, self.map_choice]),
            w.HBox([self.episodes, self.seed, self.play_button]),
            w.HBox([self.autoplay, self.backward, self.forward, self.step, self.episode]),
            self.label,
            w.HBox([self.map_figure, w.VBox([self.q_figure, self.curve_figure])]),
            self.context,
        ])
        self.add_class("icrl-trial-player")

    @property
    def lake_map(self) -> LakeMap:
        if self.map_choice.value == -1:
            if self.editor.lake_map is None or not self.editor.lake_map.is_solvable():
                raise MapError("the map editor's map is not solvable yet: give every start a route to a goal")
            return self.editor.lake_map
        return self.maps[self.map_choice.value]

    def run(self, _=None) -> None:
        """Play a fresh trial with the chosen agent, map, episodes and seed, and the explorer beside it."""
        try:
            lake_map = self.lake_map
        except MapError as err:
            self.label.value = _message(str(err), ok=False)
            return
        options = dict(episodes=self.episodes.value, seed=self.seed.value, max_episode_steps=self.max_episode_steps)
        self.playback = play(self.factories[self.agent.value](), lake_map, **options)
        self.explorer = play(ExplorerAgent(), lake_map, **options)
        steps = len(self.playback)
        base = trajectories_figure(lake_map, [], [])
        show_figure(self.map_figure, base)
        values = self.playback.values
        scale = dict(cmin=float(values.min()), cmax=float(values.max())) if values is not None else {}
        self.map_figure.add_scatter(x=[], y=[], mode="lines+markers", name="this episode so far",
                                    line=dict(color=PALETTE[0], width=3), marker=dict(size=8))
        self.map_figure.add_scatter(x=[], y=[], mode="markers", name="agent", marker=dict(size=22, color="#e6550d"))
        self.map_figure.add_scatter(x=[], y=[], mode="markers+text", name="Q-values", textposition="middle center",
                                    textfont=dict(size=9, color="black"),
                                    marker=dict(size=26, symbol=["triangle-left", "triangle-down", "triangle-right",
                                                                 "triangle-up"], colorscale="Viridis", **scale))
        self.map_figure.update_layout(showlegend=False)
        explorer_success = self.explorer.success().astype(float)
        with self.curve_figure.batch_update():
            self.curve_figure.data = []
            self.curve_figure.add_scatter(x=np.arange(1, len(explorer_success) + 1), y=explorer_success,
                                          mode="lines+markers", name="explorer", line=dict(color=PALETTE[1], dash="dot"))
            self.curve_figure.add_scatter(x=[], y=[], mode="lines+markers", name=self.agent.value,
                                          line=dict(color=PALETTE[0]))
            self.curve_figure.update_layout(xaxis_title="episode", yaxis=dict(range=[-0.05, 1.05], title="success"),
                                            legend=dict(orientation="h", y=-0.25))
        with self.q_figure.batch_update():
            self.q_figure.data = []
            self.q_figure.add_bar(x=list(ACTION_NAMES), y=[0.0] * 4, marker=dict(color=PALETTE[0]))
        self.episode.max = self.playback.trial.num_episodes
        self.autoplay.max = self.step.max = steps - 1
        if self.step.value == 0:
            self.show(0)
        self.step.value = 0
        self.episode.value = 1

    def move(self, delta: int) -> None:
        """One step forward (``delta=1``) or back (``-1``), stopping at the trial's ends."""
        self.step.value = int(np.clip(self.step.value + delta, self.step.min, self.step.max))

    def _episode_changed(self, change) -> None:
        if self.playback is not None and int(self.playback.trial.episode[self.step.value]) != change["new"] - 1:
            self.step.value = self.playback.first_step(change["new"] - 1)

    def show(self, t: int) -> None:
        """Draw step ``t``: where the agent stands, what it computed there, what it had read."""
        if self.playback is None:
            return
        trial, values = self.playback.trial, self.playback.values
        lake_map = trial.lake_map
        episode = int(trial.episode[t])
        first = self.playback.first_step(episode)
        path = np.concatenate([trial.obs[first:t + 1]])
        rows, cols = np.divmod(path, lake_map.ncol)
        r, c = lake_map.to_row_col(trial.obs[t])
        action = int(trial.actions[t])
        with self.map_figure.batch_update():
            self.map_figure.data[-3].update(x=cols, y=rows)
            self.map_figure.data[-2].update(x=[c], y=[r])
            if values is not None:
                q = values[t]
                self.map_figure.data[-1].update(x=[c - 0.36, c, c + 0.36, c], y=[r, r + 0.36, r, r - 0.36],
                                                marker=dict(color=q), text=[f"{v:.2f}" for v in q])
        with self.q_figure.batch_update():
            bars = self.q_figure.data[0]
            bars.y = values[t] if values is not None else [0.0] * 4
            bars.marker.line = dict(width=[3 if a == action else 0 for a in range(4)], color="black")
            self.q_figure.layout.title.text = (f"Q-values at step {t}" if values is not None
                                               else f"{self.agent.value} computes no Q-values")
        success = self.playback.success()[:episode + 1].astype(float)
        drawn = self.curve_figure.data[1].x
        if drawn is None or len(drawn) != len(success):  # redraw only when the episode changed
            self.curve_figure.data[1].update(x=np.arange(1, len(success) + 1), y=success)
        if self.episode.value != episode + 1:
            self.episode.value = episode + 1
        outcome = ("reached the goal" if trial.rewards[t] > 0 else "fell into a hole" if trial.terminated[t]
                   else "ran out of time" if trial.truncated[t] else f"landed on state {trial.next_obs[t]}")
        self.label.value = (f"<b>episode {episode + 1}, step {t - first + 1}</b> (trial step {t} of {len(trial) - 1}): "
                            f"at row {r}, column {c} (state {trial.obs[t]}), took <b>{ACTION_NAMES[action]}</b>, "
                            f"{outcome}")
        context = self.playback.context(t)
        if context is None:
            self.context.value = "<i>this agent reads no context</i>"
        else:
            shown = context.tail(self.CONTEXT_ROWS)
            self.context.value = (f"<b>the model's context: {len(context)} tokens, the last {len(shown)} shown, "
                                  f"most recent last</b>" + shown.to_html(index=True, border=0))


# --------------------------------------------------------------------------- 3. OOD probe
class OODProbe(w.VBox):
    """How far from its training maps does the in-context learner still learn? A small experiment per click.

    ``run`` draws ``maps`` test-split maps of the chosen sizes and hole
    density and runs lesson 7's out-of-distribution protocol on them
    (``experiments.play``: ICRL and the explorer, greedy, same maps, same
    seed; ``experiments.summarise``: means with bootstrap CIs and the paired
    difference to the explorer); it draws both learning curves, and a map of
    every setting tried so far with the training range marked.
    """

    def __init__(self, checkpoint: str = "paper-small", maps: int | None = None, episodes: int = 10, seed: int = 0):
        self.checkpoint = checkpoint
        self.training = training_conditions(checkpoint)
        trained = self.training["distribution"]
        self.rows = w.IntRangeSlider(value=trained.rows, min=3, max=9, description="rows")
        self.cols = w.IntRangeSlider(value=trained.cols, min=3, max=9, description="columns")
        self.p_hole = w.FloatSlider(value=trained.p_hole, min=0.0, max=0.5, step=0.05, description="hole density")
        self.slippery = w.Checkbox(value=self.training["is_slippery"], description="slippery")
        self.max_steps = w.IntSlider(value=self.training["max_episode_steps"], min=10, max=100, step=5,
                                     description="episode length")
        self.maps = w.IntSlider(value=maps or full_or_smoke(30, 6), min=2, max=100, description="maps")
        self.episodes = w.IntSlider(value=episodes, min=1, max=30, description="episodes")
        self.seed = w.BoundedIntText(value=seed, min=0, max=2**31 - 1, description="seed", layout=w.Layout(width="160px"))
        self.button = w.Button(description="evaluate", icon="flask", button_style="primary")
        self.button.on_click(self.run)
        self.status = w.HTML()
        self.curve_figure = go.FigureWidget()
        self.range_figure = go.FigureWidget()
        self.experiment: experiments.Experiment | None = None
        self.history: list[dict] = []
        self._draw_range()
        super().__init__([
            w.HBox([w.VBox([self.rows, self.cols, self.p_hole, self.slippery]),
                    w.VBox([self.max_steps, self.maps, self.episodes, w.HBox([self.seed, self.button])])]),
            self.status,
            w.HBox([self.curve_figure, self.range_figure]),
        ])
        self.add_class("icrl-ood-probe")

    def distribution(self) -> MapDistribution:
        """The maps the sliders describe: the training distribution with sizes and hole density replaced."""
        return MapDistribution.paper(rows=tuple(self.rows.value), cols=tuple(self.cols.value),
                                     p_hole=round(self.p_hole.value, 2), min_hops=self.training["distribution"].min_hops)

    def outside_training(self) -> list[str]:
        """Which settings lie outside what the checkpoint was trained on."""
        trained, out = self.training["distribution"], []
        for name, (lo, hi), (t_lo, t_hi) in (("rows", self.rows.value, trained.rows), ("columns", self.cols.value, trained.cols)):
            if lo < t_lo or hi > t_hi:
                out.append(f"{name} {lo}-{hi} (trained {t_lo}-{t_hi})")
        if round(self.p_hole.value, 2) != trained.p_hole:
            out.append(f"hole density {self.p_hole.value:.2f} (trained {trained.p_hole})")
        if self.slippery.value != self.training["is_slippery"]:
            out.append(f"slippery {self.slippery.value} (trained {self.training['is_slippery']})")
        if self.max_steps.value != self.training["max_episode_steps"]:
            out.append(f"episode length {self.max_steps.value} (trained {self.training['max_episode_steps']})")
        return out

    def condition(self) -> str:
        (r0, r1), (c0, c1) = self.rows.value, self.cols.value
        return (f"{r0}-{r1} x {c0}-{c1}, holes {self.p_hole.value:.2f}, {self.max_steps.value} steps"
                + (", slippery" if self.slippery.value else ""))

    def run(self, _=None) -> None:
        """Run the out-of-distribution protocol on fresh test-split maps of the chosen kind; update every figure."""
        try:
            maps = held_out_maps(self.maps.value, self.distribution(), seed=self.seed.value)
        except DistributionError as err:
            self.status.value = _message(f"cannot draw these maps: {err}", ok=False)
            return
        players = experiments.icrl_players({self.checkpoint: _network(self.checkpoint)[0]}) + [experiments.BASELINE_PLAYERS[EXPLORER]]
        condition = self.condition()
        table = experiments.play(players, maps, "out-of-distribution", condition, self.episodes.value, self.seed.value,
                                 self.max_steps.value, is_slippery=self.slippery.value)
        self.experiment = experiments.Experiment(table, experiments.summarise(table, ["success"], seed=self.seed.value))
        summary = self.experiment.summary.set_index("agent")
        icrl, explorer = summary.loc[ICRL_AGENT], summary.loc[EXPLORER]
        ratio = icrl["mean"] / explorer["mean"] if explorer["mean"] > 0 else float("nan")
        outside = self.outside_training()
        where = "out of distribution: " + ", ".join(outside) if outside else "inside the training range"
        show_figure(self.curve_figure, learning_curve(table, n_boot=500, title=f"{condition}: ICRL / explorer = {ratio:.2f}"))
        self.status.value = _message(
            f"{len(maps)} maps, {where}. Mean success: ICRL {icrl['mean']:.2f}, explorer {explorer['mean']:.2f}, "
            f"ratio {ratio:.2f}; ICRL - explorer {icrl['diff']:+.2f} [{icrl['diff_low']:+.2f}, {icrl['diff_high']:+.2f}] "
            "(paired 95% bootstrap CI over maps)", ok=not outside)
        self.history.append({"rows": self.rows.value, "cols": self.cols.value, "ratio": ratio, "condition": condition})
        self._draw_range()

    def _draw_range(self) -> None:
        trained = self.training["distribution"]
        fig = go.Figure()
        fig.add_shape(type="rect", x0=trained.cols[0] - 0.5, x1=trained.cols[1] + 0.5, y0=trained.rows[0] - 0.5,
                      y1=trained.rows[1] + 0.5, fillcolor="rgba(0, 204, 150, 0.15)", line=dict(color="#00CC96"))
        fig.add_annotation(x=(trained.cols[0] + trained.cols[1]) / 2, y=trained.rows[0] - 0.3, showarrow=False,
                           text="training range", font=dict(color="#00a070"))
        if self.history:
            fig.add_scatter(x=[sum(h["cols"]) / 2 for h in self.history], y=[sum(h["rows"]) / 2 for h in self.history],
                            mode="markers+text", text=[f"{h['ratio']:.2f}" for h in self.history],
                            textposition="top center", name="ICRL / explorer",
                            marker=dict(size=14, color=[h["ratio"] for h in self.history], colorscale="RdYlGn",
                                        cmin=0, cmax=1, showscale=True, colorbar=dict(title="ratio")),
                            hovertext=[h["condition"] for h in self.history])
        fig.update_layout(title="ICRL / explorer success, by map size", template="plotly_white", width=420,
                          height=380, xaxis=dict(title="columns", range=[2.5, 9.5], dtick=1),
                          yaxis=dict(title="rows", range=[2.5, 9.5], dtick=1))
        show_figure(self.range_figure, fig)


# --------------------------------------------------------------------------- 4. stitching lab
class StitchingLab(w.VBox):
    """Two partial episodes drawn by clicking tiles, checked for the stitching property, then played from the start.

    Pick a case (the paper's map, a generated one, or the editor's map with
    no episodes), choose which recorded episode your clicks extend, and click
    tiles in order. ``status`` runs ``envs.scenarios.stitching_problems`` on
    every change. ``run`` gives the episodes to ICRL, its context-reset
    ablation and the explorer as a ``run_trials`` prefix and draws each one's
    first greedy episode from the start.
    """

    EPISODES = ("episode 1", "episode 2")

    def __init__(self, checkpoint: str = "paper-small", editor: MapEditor | None = None, cases: int = 5,
                 max_episode_steps: int = 25, seed: int = 0):
        self.checkpoint, self.editor, self.max_episode_steps = checkpoint, editor, max_episode_steps
        self.cases = {"the paper's stitching map": paper_stitching_case()}
        self.cases.update({f"generated case {i + 1}": c for i, c in enumerate(stitching_cases(cases, seed=seed))})
        options = list(self.cases) + (["the map editor's map (draw both episodes)"] if editor is not None else [])
        self.case_choice = w.Dropdown(options=options, description="case", layout=w.Layout(width="380px"))
        self.drawing = w.ToggleButtons(options=self.EPISODES, description="clicks extend")
        self.clear = w.Button(description="clear this episode", icon="eraser")
        self.seed = w.BoundedIntText(value=seed, min=0, max=2**31 - 1, description="seed", layout=w.Layout(width="160px"))
        self.button = w.Button(description="play from the start", icon="play", button_style="primary")
        self.grid = w.GridBox(layout=w.Layout(grid_gap="2px", grid_auto_rows="36px", height="fit-content"))
        self.status = w.HTML()
        self.results = w.HTML()
        self.figure = go.FigureWidget()
        self.lake_map: LakeMap | None = None
        self.episodes: list[list[int]] = [[], []]
        self.case_choice.observe(lambda _: self.load_case(), names="value")
        self.clear.on_click(self.clear_episode)
        self.button.on_click(self.run)
        super().__init__([
            w.HBox([self.case_choice, self.seed, self.button]),
            w.HBox([self.drawing, self.clear]),
            w.HBox([self.grid, self.figure]),
            self.status, self.results,
        ])
        self.add_class("icrl-stitching-lab")
        self.load_case()

    def load_case(self) -> None:
        """Show the chosen case: its map as clickable tiles and its recorded episodes."""
        case = self.cases.get(self.case_choice.value)
        if case is None:
            if self.editor.lake_map is None:
                self.status.value = _message("the map editor holds no map yet", ok=False)
                return
            self.lake_map, self.episodes = self.editor.lake_map, [[], []]
        else:
            self.lake_map, self.episodes = case.lake_map, [list(e) for e in case.episodes]
        ncol = self.lake_map.ncol
        self.tiles = []
        for s, letter in enumerate(self.lake_map.flat):
            tile = w.Button(description=letter, layout=w.Layout(width="36px", height="36px", padding="0"),
                            tooltip=f"tile {s}")
            tile.style.button_color, tile.style.text_color = TILE_COLOURS[letter], TILE_TEXT_COLOURS[letter]
            tile.add_class("icrl-stitch-tile")
            tile.on_click(lambda _b, s=s: self.click(s))
            self.tiles.append(tile)
        self.grid.layout.grid_template_columns = f"repeat({ncol}, 36px)"
        self.grid.children = self.tiles
        self.results.value = ""
        self._refresh()

    @property
    def case(self) -> StitchingCase | None:
        """The drawn case (start: the map's start tile), or None when the map has several starts."""
        if self.lake_map is None or len(self.lake_map.starts) != 1:
            return None
        return StitchingCase(self.lake_map, self.lake_map.starts[0], tuple(tuple(e) for e in self.episodes), ())

    def click(self, tile: int) -> None:
        """Append ``tile`` to the episode being drawn."""
        self.episodes[self.EPISODES.index(self.drawing.value)].append(tile)
        self._refresh()

    def clear_episode(self, _=None) -> None:
        self.episodes[self.EPISODES.index(self.drawing.value)] = []
        self._refresh()

    def problems(self) -> list[str]:
        """What keeps the drawn episodes from being a stitching case (``envs.scenarios.stitching_problems``)."""
        case = self.case
        if case is None:
            return [f"the map has start tiles {list(self.lake_map.starts)}: a stitching case needs exactly one"]
        return stitching_problems(case)

    def _refresh(self, played: dict[str, Sequence[int]] | None = None) -> None:
        problems = self.problems()
        self.status.value = (_message("a stitching case: no episode goes from the start to the goal, but the start "
                                      "of one joined to the end of the other is a shortest route")
                             if not problems else _message("not a stitching case: " + "; ".join(problems), ok=False))
        drawn = [(f"recorded {name}: {' > '.join(map(str, e))}", e) for name, e in zip(self.EPISODES, self.episodes) if e]
        played = played or {}
        paths = [e for _, e in drawn] + [list(p) for p in played.values()]
        names = [n for n, _ in drawn] + [f"{agent}: first greedy episode" for agent in played]
        show_figure(self.figure, trajectories_figure(self.lake_map, paths, names,
                                                     title=f"{self.lake_map.nrow} x {self.lake_map.ncol}"))

    def agents(self) -> dict[str, Agent]:
        network = _network(self.checkpoint)[0]
        return {ICRL: network.agent(name=ICRL),
                f"{ICRL} (context reset)": network.agent(reset_context_every_episode=True, name=f"{ICRL} (context reset)"),
                "explorer": ExplorerAgent()}

    def run(self, _=None) -> None:
        """Give every agent the drawn episodes as its context and play one greedy episode from the start."""
        broken = [p for p in self.problems() if any(k in p for k in ("exactly one", "jumps from", "passes through"))]
        if broken:
            self.results.value = _message("fix the episodes first: " + "; ".join(broken), ok=False)
            return
        drawn = tuple(tuple(e) for e in self.episodes if len(e) >= 2)  # a lone tile is no move: nothing to record
        prefix = [StitchingCase(self.lake_map, self.lake_map.starts[0], drawn, ()).prefix()] if drawn else None
        shortest = self.lake_map.shortest_path_length()
        played, rows = {}, []
        for name, agent in self.agents().items():
            trial = run_trials(agent, [self.lake_map], episodes=1, seed=self.seed.value, prefix=prefix,
                               max_episode_steps=self.max_episode_steps, agent_name=name).trials[0]
            played[name] = episode_path(trial, 0)
            success = bool(trial.rewards.sum() > 0)
            ratio = f"{len(trial) / shortest:.2f}" if success and shortest else "-"
            rows.append(f"<tr><td>{html.escape(name)}</td><td>{'yes' if success else 'no'}</td><td>{len(trial)}</td>"
                        f"<td>{ratio}</td></tr>")
        self.results.value = ("<table><tr><th>agent</th><th>reached the goal</th><th>steps</th>"
                              f"<th>steps / shortest ({shortest})</th></tr>" + "".join(rows) + "</table>")
        self._refresh(played)


# --------------------------------------------------------------------------- 5. non-stationary lab
class NonStationaryLab(w.VBox):
    """The map changes under the agents after episode k: who notices, and how fast do they recover?

    ``run`` draws test-split maps, changes each as ``kind`` says
    (``envs.scenarios.switch_pairs``) and plays ICRL, the explorer that never
    forgets, the explorer that forgets when surprised and Q-learning with
    ``run_trials(..., switch=(k, new_maps))`` through ``experiments.play``;
    the curve marks the switch.
    """

    def __init__(self, checkpoint: str = "paper-small", maps: int | None = None, episodes: int = 12,
                 max_episode_steps: int = 25, seed: int = 0):
        self.checkpoint, self.max_episode_steps = checkpoint, max_episode_steps
        self.kind = w.Dropdown(options=SWITCH_KINDS, description="change")
        self.episodes = w.IntSlider(value=episodes, min=2, max=30, description="episodes")
        self.switch_at = w.IntSlider(value=episodes // 2, min=1, max=episodes - 1, description="switch after")
        self.maps = w.IntSlider(value=maps or full_or_smoke(30, 6), min=2, max=100, description="maps")
        self.seed = w.BoundedIntText(value=seed, min=0, max=2**31 - 1, description="seed", layout=w.Layout(width="160px"))
        self.button = w.Button(description="play", icon="play", button_style="primary")
        self.status = w.HTML()
        self.curve_figure = go.FigureWidget()
        self.before_figure = go.FigureWidget()
        self.after_figure = go.FigureWidget()
        self.table = None
        self.episodes.observe(self._episodes_changed, names="value")
        self.button.on_click(self.run)
        super().__init__([
            w.HBox([w.VBox([self.kind, self.episodes, self.switch_at]), w.VBox([self.maps, w.HBox([self.seed, self.button])])]),
            self.status,
            self.curve_figure,
            w.HBox([self.before_figure, self.after_figure]),
        ])
        self.add_class("icrl-nonstationary-lab")

    def _episodes_changed(self, change) -> None:
        self.switch_at.max = change["new"] - 1

    def players(self) -> list[experiments.Player]:
        """ICRL, the two explorers and Q-learning, as lesson 7's non-stationary experiment plays them."""
        return experiments.icrl_players({self.checkpoint: _network(self.checkpoint)[0]}) + [
            experiments.BASELINE_PLAYERS[name] for name in ("explorer", "forgetful explorer", "q-learning")]

    def run(self, _=None) -> None:
        """Play every agent on the same maps and switches with the same seed; draw the curves and one example."""
        maps = held_out_maps(self.maps.value, seed=self.seed.value)
        kept, new = switch_pairs(maps, self.kind.value, seed=self.seed.value)
        if not kept:
            self.status.value = _message(f"none of the {len(maps)} maps allows the change {self.kind.value!r}", ok=False)
            return
        k = self.switch_at.value
        self.table = experiments.play(self.players(), kept, "non-stationary", self.kind.value, self.episodes.value,
                                      self.seed.value, self.max_episode_steps, switch=(k, new))
        fig = learning_curve(self.table, n_boot=500, title=f"success per episode; {self.kind.value} after episode {k}")
        fig.add_vline(x=k + 0.5, line=dict(color="black", dash="dash"), annotation_text="switch")
        show_figure(self.curve_figure, fig)
        after = self.table[self.table["switched"]].groupby("agent", sort=False)["success"].mean()
        before = self.table[~self.table["switched"]].groupby("agent", sort=False)["success"].mean()
        self.status.value = _message(f"{len(kept)} maps; mean success before / after the switch: " + ", ".join(
            f"{a} {before[a]:.2f} / {after[a]:.2f}" for a in after.index))
        show_figure(self.before_figure, trajectories_figure(kept[0], [], [], title="example: before the switch"))
        show_figure(self.after_figure, trajectories_figure(new[0], [], [], title=f"after: {self.kind.value}"))
