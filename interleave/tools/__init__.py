"""Offline tools, each a command of `interleave` and runnable with `python -m`: they build data,
caches and reports around a run, and nothing in the runtime imports them.

`dataset` (check a record file), `rephrase` + `openaqa` + `rewriters` (the interleaved fine-tuning
set), `demo` + `demo_sounds` (the CPU demo's data), `fill_cache` (a run's feature cache),
`report` (Table 2 from runs), `export` (a checkpoint for use outside Lightning), and `command`
(the `interleave` command itself). The SHARD builder is `interleave.shard.cli`.
"""
