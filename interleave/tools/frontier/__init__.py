"""`interleave frontier`: the config's SHARD evaluated at weights between a run's start and a
checkpoint, resumable per α: gain against retention.

`cli` (the command: the α's evaluated, resumably) and `table` (each α's figures with paired
bootstrap intervals; `frontier.md`, `.csv`, `.png`).
"""
