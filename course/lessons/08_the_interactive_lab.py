# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 8 — The interactive lab: draw a map, watch the model think, break it
#
# Lesson 7 measured the paper's five claims on hundreds of maps. This lesson hands you the
# instruments instead: five small tools, each a thin view over library functions you already know
# (`run_trials` and its play protocols, lesson 7's `experiments`, `envs.scenarios`), so that what
# you see here is exactly what those functions compute. Each section ends with questions that you answer **by
# playing**, not by reading: what breaks the model first, and why?
#
# **You will be able to**
# - build a Frozen Lake map tile by tile and tell at a glance whether it is solvable, how long its
#   shortest route is and which split (train, val, test) it belongs to;
# - replay a trial step by step with the Q-values the model acted on and the tokens it had read;
# - find, with a few sliders, where the shipped model stops learning in context (map size, hole
#   density, slipperiness, episode length), against the explorer;
# - hand the model two partial episodes and see whether it stitches them into a shortest route;
# - change the map in the middle of a trial and watch who recovers: the model, an explorer that
#   never forgets, or one that forgets when surprised.
#
# **Prerequisites**: lessons 1 (maps), 2 (baselines, `run_trials`), 3 (compact tokens) and 5 (the
# shipped checkpoint `paper-small`); lesson 7 gives the numbers these tools let you probe.
#
# **Time**: about 45 minutes of playing. Every tool answers in a few seconds on a laptop CPU.
#
# The tools need a live kernel: run the notebook (JupyterLab, VS Code, or Voilà, below) rather than
# reading it on a static page. For a classroom projector, serve it as a stand-alone page:
#
# ```bash
# pip install -c constraints-cpu.txt -e ".[voila]"
# voila notebooks/08_the_interactive_lab.ipynb
# ```

# %%
import torch

from icrl_course import widgets as lab
from icrl_course.checkpoints import available

torch.set_num_threads(1)  # the small model acts fastest on one thread
print("shipped checkpoints:", available())
print("agents in the lab:", list(lab.agent_factories()))

# %% [markdown]
# ## 1. The map editor
#
# Click a tile to cycle it **F → H → G → S**. The line under the grid says at once whether the map
# is solvable (every start must reach a goal), how many moves its shortest route takes (the course's
# maps need at least 4, `min_hops`), and which split its digest puts it in: a map in the **test**
# split can never have been trained on. The route is drawn on the right, and the rows sit in the
# text box for copy and paste (edit the text and the grid follows). *random map* draws from any of
# the presets, with a seed.

# %%
editor = lab.MapEditor()
editor

# %% [markdown]
# **Play**
# 1. Put a hole on the drawn route. Does the route go round it, get longer, or vanish?
# 2. Make a map that is solvable but "too easy" (`min_hops` refused). Why would training maps of
#    that kind teach a model little?
# 3. Draw ten random maps from *paper 3-5 x 3-5*: how many land in the test split? (About one in
#    five should: the split is a function of the digest, `envs.split_of`.)
# 4. Add a second start tile far from the goal. What does the status line say if one start is walled
#    in, and why must every start reach a goal?

# %% [markdown]
# ## 2. The trial player
#
# Pick an agent and a map (a held-out test map, or the editor's map above) and press *play trial*.
# The player runs one trial with `run_trials` and records, at every step, the values the agent acted
# on (`icrl_course.playback`). Step through it with the buttons or the slider, or press ▶ to
# watch. You see where the agent stands, this episode's path so far, its four Q-values as triangles
# around it and as bars (the action it took is outlined), the last tokens of its context, most
# recent last, and its success per episode beside the explorer's on the same map and seed.

# %%
player = lab.TrialPlayer(editor=editor)
player.run()
player

# %% [markdown]
# **Play**
# 1. With *ICRL paper-small*, find the first step of episode 2 after an episode that fell into a
#    hole. Look at the Q-value of the move that led into the hole last time: is it lower now? Which
#    token of the context tells the model where the hole was (`ended_at`)?
# 2. Switch to *ICRL paper-small (context reset)*, the ablation whose context is wiped every
#    episode. Does its success per episode climb? Why not?
# 3. Choose *q-learning*: its values are its table at the current cell. How many episodes does it
#    need on a map where the explorer needs two?
# 4. Play the editor's map after you put a hole where the model's route went. How many episodes
#    does the model need to find another way?

# %% [markdown]
# ## 3. The out-of-distribution probe
#
# The shipped model was trained on 3-5 x 3-5 maps with hole density 0.2, 25-step episodes, no
# slipping (read from its checkpoint: `lab.training_conditions("paper-small")`). Move the sliders (the
# size sliders take a range: 6-6 is exactly six rows), press *evaluate*: the probe draws fresh
# **test-split** maps of that kind and runs lesson 7's out-of-distribution protocol on them
# (`experiments.play`: the model and the explorer on the same maps with the same seed;
# `experiments.summarise`: means with 95% bootstrap intervals over maps and the **paired**
# difference to the explorer). It draws both learning curves; the right-hand figure keeps every
# setting you tried, coloured by the ratio of the model's mean success to the explorer's, with the
# training range marked: where does "out of distribution" start to hurt?

# %%
print(lab.training_conditions("paper-small"))
probe = lab.OODProbe()
probe

# %% [markdown]
# **Play**
# 1. Grow the maps one size at a time from 5-5 to 8-8 (rows and columns). Where does the ratio fall below 0.5? The model
#    names a cell by its distances to the four walls, capped (lesson 3): which cells of a 7 x 7 map
#    get names it never saw in training?
# 2. Keep the training sizes and raise the hole density. Does the model or the explorer suffer more? Why might a
#    prior over maps help on familiar densities and hurt on unfamiliar ones?
# 3. Tick *slippery*. Both curves drop: compare their ratio with the non-slippery one.
# 4. On 6-6 x 6-6 maps, try 15-step and 50-step episodes. Is it the map or the time limit that breaks it?
# 5. Change the seed and evaluate again: how much does the ratio move? (That is why lesson 7 reports
#    intervals, not single numbers.)

# %% [markdown]
# ## 4. The stitching lab
#
# Stitching is the paper's most surprising claim: give the model two partial episodes, neither of
# which goes from the start to the goal, and it walks the shortest route made of the beginning of
# one and the end of the other. The lab starts on the paper's hand-made map (6 x 4: one episode
# from tile 2 to the goal, one from the start into the hole at tile 11). Choose which recorded
# episode your clicks extend, click tiles in order, and the line below checks the stitching property
# at once (`envs.scenarios.stitching_problems`, a breadth-first search, whoever drew the case).
# *play from the start* gives the episodes to the model, to its context-reset ablation and to the
# explorer as a `run_trials` prefix and draws each one's first greedy episode.

# %%
# NBVAL_CHECK_OUTPUT
from icrl_course.envs.scenarios import paper_stitching_case, stitching_problems

case = paper_stitching_case()
print(case.lake_map)
print("recorded episodes:", case.episodes, "| stitched route:", case.stitched)
print("problems:", stitching_problems(case))

# %%
stitching = lab.StitchingLab(editor=editor)
stitching.run()
stitching

# %% [markdown]
# **Play**
# 1. On the paper's map, does the model take the stitched route (5 moves)? Does the ablation, which
#    sees no recorded episode when its own starts? What does the explorer do with the same prefix,
#    and is that "stitching" too?
# 2. The paper's map has 6 rows, outside the model's training range. Switch to a *generated case*
#    (3-5 x 3-5 maps built by `stitching_cases`): does the model stitch more or less often there?
#    Try five of them.
# 3. Clear episode 2 and draw an episode that walks into the hole one tile earlier. Is it still a
#    stitching case? What does the model do now?
# 4. Draw a case of your own on the editor's map (it must have exactly one start).

# %% [markdown]
# ## 5. The non-stationary lab
#
# After episode k, every trial continues on a changed map: a new map of the same shape, the same map
# with the goal moved, or a hole dropped on the route that worked (`envs.scenarios.switch_pairs`).
# The agents are not told (`run_trials(..., switch=(k, new_maps))`): the model keeps its context,
# the explorer its memory, which is now wrong. The *forgetful explorer* wipes its memory the moment
# the map contradicts it. The dashed line marks the switch.

# %%
nonstationary = lab.NonStationaryLab()
nonstationary

# %% [markdown]
# **Play**
# 1. *goal moved*, switch after episode 6: who recovers first? How many episodes does the model need
#    to reach its pre-switch success again?
# 2. *hole on route*: the route that worked now ends in a hole. Which agent keeps falling in, and
#    why does the forgetful explorer not?
# 3. *new map*: is this harder or easier for the model than *goal moved*? Its context now describes
#    a different map: does it help or hurt?
# 4. Move the switch to episode 1 and to episode 10. Does a longer context make the model slower to
#    adapt?

# %% [markdown]
# ## Recap
#
# - Every tool in the lab is a thin view over library functions: the map editor over `LakeMap`, the
#   trial player over `run_trials` and `playback`, the probe and the non-stationary lab over lesson
#   7's `experiments`, the stitching lab over `run_trials`' `prefix` protocol and `envs.scenarios`.
#   What you saw is what lesson 7's experiments compute.
# - The model's Q-values change with its context, step by step; wipe the context and the change is
#   gone.
# - Out of distribution, find which axis breaks the model first; the explorer, which has no prior,
#   is the yardstick that tells "the task got harder" from "the model stopped learning".
# - Stitching and adapting to a changed map are claims about the context: the context-reset
#   ablation and the two explorers tell what the context adds.
# - The same views run as a stand-alone page: `voila notebooks/08_the_interactive_lab.ipynb`.
