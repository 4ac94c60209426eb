"""Imported once per run by the executor's forkserver: build the definitions every step forks with."""

import pipeline

# Resolving the repository here too (asset graph, jobs) leaves each forked step only its own work.
pipeline.defs.get_repository_def().get_all_jobs()
