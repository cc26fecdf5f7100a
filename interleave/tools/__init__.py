"""Offline tools, each a command of `interleave` and runnable with `python -m`: they build data,
caches and reports around a run, and nothing in the runtime imports them.

One sub-package per command with more than one module (`report`, `frontier`, `study`,
`playground`, `rephrase`, `demo`: each its `cli` and the modules only it uses); the commands of one
module (`dataset`: `interleave data check`, `fill_cache`: `interleave cache`, `export`); what two
commands share (`saved_answers`: a point's saved answers, `bootstrap`: the 95 % intervals); and
`command`, the `interleave` command itself. The SHARD builder is `interleave.shard.cli`.
"""
