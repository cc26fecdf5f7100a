"""The SHARD evaluation as a run asks it: `query` (a query and its id), `tasks` (the task and
condition registry: Table 1's prompts, scoring, report columns, metric tags), `format` (the SHARD
file, read and written with every fault named), `answers` (yes / no / unparsed), `predictions` (a
saved answer row), `probes` (what the encoder hears instead of each clip) and `evaluate` (the
evaluation as a pure function of the model, the queries and its settings).

It reads the data side only through what it is given (`evaluate.EvalInputs`: collation, feature
cache, channel) and never imports nltk: building a SHARD is the offline builder's (`interleave.shard`).
"""
