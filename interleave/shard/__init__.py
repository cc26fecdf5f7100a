"""SHARD, the Synonym and Hypernym Audio Reasoning Dataset (paper, section 3).

Rooms: `format` (the SHARD file), `answers` (yes/no/unparsed from a generated answer), `evaluate`
(queries -> Table 1 prompts -> answers -> metrics) are what training and evaluation use;
`wordnet`, `lexicon`, `build` and `cli` build a SHARD offline and are the only ones that import
nltk. Importing this package imports the first two only.
"""

from interleave.shard.answers import PARSERS, parse_answer
from interleave.shard.format import ANSWERS, RELATIONS, Query, read_shard, shard_counts, write_shard
from interleave.shard.tasks import TASKS

__all__ = ["ANSWERS", "PARSERS", "RELATIONS", "TASKS", "Query", "parse_answer", "read_shard", "shard_counts", "write_shard"]
