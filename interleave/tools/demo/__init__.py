"""`interleave demo`: the CPU demo's synthetic data set, its small SHARD and `replay.jsonl`.

`cli` (the command, with the demo lexicon `demo_lexicon.json` beside it) and `sounds` (one numpy
synthesiser per AudioSet class).
"""
