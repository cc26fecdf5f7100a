"""The SHARD builder (the Synonym and Hypernym Audio Reasoning Dataset, paper, section 3), offline.

`wordnet` (WordNet 3.0 through nltk's reader), `lexicon` (each word's sense, synonyms, hypernyms),
`rules` (the lexicon's quality rules without WordNet), `pairs` (the two-clip task), `build` (a SHARD
from AudioSet labels, clips and a lexicon) and `cli` (`interleave shard ...`). This folder is the only
one that imports nltk, and nothing in the runtime imports it. What a SHARD holds and how a run asks
it live in the runtime: `interleave.eval` (the file, the task registry, the evaluation).
"""
