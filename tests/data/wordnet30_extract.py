"""Regenerate tests/data/wordnet30 from Debian's WordNet 3.0 (apt-get install wordnet-base):

    PYTHONPATH=. python tests/data/wordnet30_extract.py /usr/share/wordnet

It holds the synsets of the shipped lexicon and of its overrides, every noun sense of every
AudioSet label's names and words and of the lexicon's candidates, a few the tests name, and all
synsets above them.
"""

import csv
import json
import sys
import tempfile
from pathlib import Path

from interleave.shard.build import SHIPPED_LEXICON
from interleave.shard.rules import parse_label
from interleave.shard.wordnet import extract_wordnet, open_wordnet, prepare_wordnet

HERE = Path(__file__).parent
EXTRA = ("ticktock.n.01", "chicken.n.01", "chicken.n.02", "cock.n.04")  # named by tests/shard/test_lexicon.py


def main(source: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        wn = open_wordnet(prepare_wordnet(source, tmp))
        lexicon = json.loads(SHIPPED_LEXICON.read_text(encoding="utf-8"))
        names = {e["synset"] for e in lexicon["entries"]} | {o["synset"] for o in lexicon["overrides"].values() if "synset" in o}
        words = set()
        with (HERE / "audioset_class_labels_indices.csv").open(encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                found, qualifiers = parse_label(row["display_name"])
                for part in found + qualifiers:
                    words |= {part, *part.split()}
        for entry in lexicon["entries"]:
            words.update(entry["synonyms"] + entry["hypernyms"])
        extract_wordnet(wn, sorted(names | set(EXTRA)), sorted(words), source, HERE / "wordnet30")


if __name__ == "__main__":
    main(sys.argv[1])
