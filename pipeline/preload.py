"""Imported once per run by the executor's forkserver: build the definitions every step forks with."""

import gc

import pipeline
from pipeline import load_log

load_log.quiet()  # the process that started the run has reported this load already
# Resolving the repository here too (asset graph, jobs) leaves each forked step only its own work.
pipeline.defs.get_repository_def().get_all_jobs()
# What the steps fork with moves to the permanent generation, as the gc docs advise before fork:
# a step's collections then neither scan it nor write to (and so copy) its pages.
gc.freeze()
