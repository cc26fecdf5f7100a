"""The CPU demo's synthetic dataset: honest, learnable clips of a few AudioSet classes.

Every clip is rendered from scratch with plain numpy (no downloads): one synthesis function
per class, each drawing its own frequency, rhythm, duration (2-4 s), onset, level and a little
background noise from a seeded :class:`numpy.random.Generator`, so no two clips are alike but
each one sounds like what its AudioSet label says. Each clip gets two records with the output
``"Labels: <display_name>"``: an interleaved one (the instruction holds one ``[AUDIO]``) and an
LTU-style one (no placeholder). A few records hold two clips ("Do [AUDIO] and [AUDIO] belong to
the same class?", output "Yes" or "No", task ``pair``; half each). The same parameters always
give byte-identical files.

The held-out clips also make the demo's SHARD (``shard.jsonl``): an identity query per clip of every
class, and synonym and hypernym queries for the classes whose entry in the committed lexicon
``interleave/tools/demo_lexicon.json`` passes the same quality rules as the shipped AudioSet
lexicon (WordNet 3.0 with curated overrides, each with its reason; the lexicon names why each
other class has none; see :mod:`interleave.shard`), and pair queries (two clips of one of those
classes, or one clip of each; :mod:`interleave.shard.pairs`).

Beside them (an additional file: the files above are byte for byte what they were before it),
``replay.jsonl`` holds yes/no records about the training clips, for replay in a mixture
(``data.train_files``, ``configs/study/demo_replay.yaml``): one per training clip, "Can you hear
siren in [AUDIO]?" or "Does [AUDIO] contain siren?" about its own class's word (answer "Yes") or
another class's (answer "No"), alternating so that half are "Yes" (one more when the count is
odd), the other word and the template drawn from a generator seeded by the demo's seed. The words
are each label's first name (``interleave.shard.rules.alternatives``); the prompts are not the
SHARD's (Table 1's) and the clips are the training clips, never the SHARD's held-out ones.

Run ``interleave demo DIR`` to write the data set (``make demo`` writes ``data/demo`` before it
trains on it with ``configs/demo.yaml``), or call :func:`ensure_demo_data`. Training reads the
files with the runtime's own data module, so the demo run imports neither this tool nor nltk.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

from interleave import AUDIO_PLACEHOLDER
from interleave.encoders.audio import SAMPLE_RATE
from interleave.errors import InterleaveError, report_errors
from interleave.eval.format import shard_counts, write_shard
from interleave.eval.query import slug
from interleave.files import write_text_atomic
from interleave.shard.build import assemble_queries, identity_queries, write_report
from interleave.shard.lexicon_file import read_lexicon, read_skipped
from interleave.shard.pairs import pair_queries
from interleave.shard.rules import alternatives
from interleave.tools.demo.benchmark import BENCHMARK_CLIPS_PER_CLASS, BENCHMARK_FILE, QUESTION, write_benchmark
from interleave.tools.demo.sounds import render_clip

# Sized so that `make demo` (two epochs of SmolLM2-135M on 2 CPU cores) stays under 10 minutes.
TRAIN_PER_CLASS = 16
HELDOUT_PER_CLASS = 4

DEMO_CLASSES: tuple[str, ...] = (
    "Sine wave",
    "Beep, bleep",
    "Siren",
    "White noise",
    "Pink noise",
    "Tick",
    "Drum",
    "Whistle",
    "Heart sounds, heartbeat",
    "Dial tone",
    "Buzz",
    "Chirp tone",
)

# Bump when the synthesis changes, so that ensure_demo_data regenerates stale data sets.
FORMAT_VERSION = 5  # 4: benchmark.json (issue 37); 5: retention.txt (issue 39)
# Two-clip records per split (issue 19), half "Yes" and half "No": a few, so the pair curve moves
# while the demo's time stays what it was. None where a split has one clip per class.
PAIR_RECORDS = {"train": 32, "heldout": 8}
PAIR_PROMPT = f"Do {AUDIO_PLACEHOLDER} and {AUDIO_PLACEHOLDER} belong to the same class?"
# Pair queries of each truth in the demo SHARD, about the held-out clips of the lexicon's classes.
SHARD_PAIRS = 4
# Held-out clips per class the demo SHARD asks about. The paper uses 4 per word; 1 keeps each of
# the demo's three evaluation points (108 queries x 4 repeats, plus the text control) near 20 s each.
SHARD_CLIPS_PER_WORD = 1
# Regenerate with the real WordNet: interleave shard wordnet --from /usr/share/wordnet --out W;
# interleave shard lexicon --wordnet W --words data/demo/classes.txt
#   --overrides interleave/tools/demo_lexicon.json --out interleave/tools/demo_lexicon.json  (its "overrides" say why;
#   its "skipped" why a class gets identity queries only)
DEMO_LEXICON = Path(__file__).with_name("demo_lexicon.json")
COMPLETE_MARKER = ".complete"
REPLAY_FILE = "replay.jsonl"
# The demo's retention text (issue 39): real human-written English, shipped beside this file with its
# provenance (demo_text.md: the opening of Shakespeare's Coriolanus, public domain, as char-rnn's
# tinyshakespeare holds it); `interleave demo` copies it into the data folder.
DEMO_TEXT = Path(__file__).with_name("demo_text.txt")
TEXT_FILE = "retention.txt"
REPLAY_TEMPLATES: tuple[str, ...] = (
    f"Can you hear {{word}} in {AUDIO_PLACEHOLDER}?",
    f"Does {AUDIO_PLACEHOLDER} contain {{word}}?",
)

INTERLEAVED_TEMPLATES: tuple[str, ...] = (
    f"What is the sound in {AUDIO_PLACEHOLDER}?",
    f"Identify the sound event in {AUDIO_PLACEHOLDER}.",
    f"Label {AUDIO_PLACEHOLDER} with its sound class.",
    f"Listen to {AUDIO_PLACEHOLDER} and name the sound you hear.",
    f"Which sound class best describes {AUDIO_PLACEHOLDER}?",
    f"Name the sound class of {AUDIO_PLACEHOLDER}.",
)
PLAIN_TEMPLATES: tuple[str, ...] = (
    "What is the sound in the audio?",
    "Classify the sound events in the audio clip.",
    "Identify the sound event in the audio clip.",
    "What sound can be heard in this recording?",
    "Label the audio clip with its sound class.",
)

# --- the data set -----------------------------------------------------------------------


def _params(train_per_class: int, heldout_per_class: int, seed: int) -> dict[str, Any]:
    return {
        "train_per_class": int(train_per_class),
        "heldout_per_class": int(heldout_per_class),
        "seed": int(seed),
        "classes": list(DEMO_CLASSES),
        "shard_clips_per_word": SHARD_CLIPS_PER_WORD,
        "format": FORMAT_VERSION,
    }


def _summary(out_dir: Path, params: dict[str, Any]) -> dict[str, Any]:
    """Counts of a data set written with ``params``."""
    n_classes = len(params["classes"])
    train, heldout = n_classes * params["train_per_class"], n_classes * params["heldout_per_class"]
    train_records = 2 * train + _pair_count("train", params["train_per_class"])
    heldout_records = 2 * heldout + _pair_count("heldout", params["heldout_per_class"])
    return {
        "out_dir": str(out_dir),
        "classes": n_classes,
        "train_clips": train,
        "heldout_clips": heldout,
        "clips": train + heldout,
        "train_records": train_records,
        "heldout_records": heldout_records,
        "records": train_records + heldout_records,
        "replay_records": n_classes * params["train_per_class"],
        "shard_queries": _shard_query_count(params["heldout_per_class"])
        + len(_shard_pairs(out_dir, params["heldout_per_class"], params["seed"])),
        "benchmark_items": len(DEMO_CLASSES) * min(BENCHMARK_CLIPS_PER_CLASS, params["heldout_per_class"]),
        "seed": params["seed"],
    }


def _shard_query_count(heldout_per_class: int) -> int:
    """Queries of the demo SHARD: per clip one identity query and a yes and a no per candidate."""
    clips = min(SHARD_CLIPS_PER_WORD, heldout_per_class)
    relations = sum(clips * 2 * (len(e.synonyms) + len(e.hypernyms)) for e in read_lexicon(DEMO_LEXICON))
    return clips * len(DEMO_CLASSES) + relations


def _readme(params: dict[str, Any], summary: dict[str, Any]) -> str:
    classes = "\n".join(f"  - {label}" for label in DEMO_CLASSES)
    return f"""Synthetic toy data for the interleave CPU demo -- NOT real recordings.

Every clip was rendered from scratch with numpy by interleave/tools/demo/sounds.py (one synthesis function
per class) and stands for one AudioSet class, named by its exact AudioSet display_name:
{classes}

Each clip is 16 kHz mono 16-bit PCM WAV, 2-4 s long, with random frequency, rhythm, onset,
level (peak 0.3-0.9) and faint background noise drawn from a generator seeded by
(seed, split, class, clip index). Same parameters -> byte-identical files.

Each clip has two records with output "Labels: <class>" (task cla_label, dataset demo):
an interleaved one (the instruction holds one {AUDIO_PLACEHOLDER}) and an LTU-style one
(no placeholder; the audio goes where LTU's prompt puts it). With two or more clips per class,
a few records (task pair) ask "{PAIR_PROMPT}" about two clips, answer Yes or No.

  train.jsonl    {summary["train_clips"]} clips, {summary["train_records"]} records
  heldout.jsonl  {summary["heldout_clips"]} clips, {summary["heldout_records"]} records
                 (validation loss and label generation)
  shard.jsonl    {summary["shard_queries"]} SHARD queries about up to {SHARD_CLIPS_PER_WORD} held-out clips per class: identity
                 for every class, synonym and hypernym for the classes interleave/tools/demo_lexicon.json
                 holds (WordNet 3.0 plus curated overrides); shard.report.json has the counts and reasons
  benchmark.json {summary["benchmark_items"]} multiple-choice items in MMAU's format about up to {BENCHMARK_CLIPS_PER_CLASS} held-out clips per
                 class ("{QUESTION}", the class and three others as choices)
  retention.txt  the opening of Shakespeare's Coriolanus (public domain), held-out text whose perplexity
                 the demo logs at every point (issue 39); its source: interleave/tools/demo/demo_text.md
  classes.txt    one label per line

Parameters: train_per_class={params["train_per_class"]} \
heldout_per_class={params["heldout_per_class"]} seed={params["seed"]}
Regenerate: interleave demo DIR --train-per-class {params["train_per_class"]} \
--heldout-per-class {params["heldout_per_class"]} --seed {params["seed"]} --force
"""


def _split_records(out_dir: Path, split: str, split_id: int, per_class: int, seed: int) -> list[dict[str, str]]:
    """Render and write the clips of one split; return its records (two per clip, then the pairs)."""
    audio_dir = out_dir / "audio" / split
    audio_dir.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, str]] = []
    for class_index, label in enumerate(DEMO_CLASSES):
        name = slug(label)
        for k in range(per_class):
            rng = np.random.default_rng([seed, split_id, class_index, k])
            clip = render_clip(label, rng)
            rel = f"audio/{split}/{name}_{k}.wav"
            soundfile.write(out_dir / rel, clip, SAMPLE_RATE, subtype="PCM_16", format="WAV")
            output = f"Labels: {label}"
            common = {"output": output, "task": "cla_label", "dataset": "demo"}
            interleaved = INTERLEAVED_TEMPLATES[rng.integers(len(INTERLEAVED_TEMPLATES))]
            plain = PLAIN_TEMPLATES[rng.integers(len(PLAIN_TEMPLATES))]
            records.append({"id": f"{split}-{name}-{k}-i", "audio": rel, "instruction": interleaved, **common})
            records.append({"id": f"{split}-{name}-{k}-n", "audio": rel, "instruction": plain, **common})
    return records + _pair_records(split, per_class, seed)


def _pair_count(split: str, per_class: int) -> int:
    return PAIR_RECORDS[split] if per_class >= 2 else 0


def _pair_records(split: str, per_class: int, seed: int) -> list[dict[str, Any]]:
    """The split's two-clip records: even ones two clips of one class ("Yes"), odd ones a clip of
    each of two classes ("No"), drawn from a seeded generator."""
    rng = random.Random(f"demo/{seed}/{split}/pairs")
    records = []
    for k in range(_pair_count(split, per_class)):
        first = rng.choice(DEMO_CLASSES)
        second = first if k % 2 == 0 else rng.choice([c for c in DEMO_CLASSES if c != first])
        a, b = (
            rng.sample(range(per_class), 2) if first == second else (rng.randrange(per_class), rng.randrange(per_class))
        )
        audio = [f"audio/{split}/{slug(first)}_{a}.wav", f"audio/{split}/{slug(second)}_{b}.wav"]
        records.append(
            {
                "id": f"{split}-pair-{k}",
                "audio": audio,
                "instruction": PAIR_PROMPT,
                "output": "Yes" if first == second else "No",
                "task": "pair",
                "dataset": "demo",
            }
        )
    return records


def _replay_records(per_class: int, seed: int) -> list[dict[str, Any]]:
    """The yes/no replay records, one per training clip (see the module docstring)."""
    rng = random.Random(f"demo/{seed}/replay")
    records = []
    for class_index, label in enumerate(DEMO_CLASSES):
        for k in range(per_class):
            yes = (class_index * per_class + k) % 2 == 0
            other = label if yes else rng.choice([c for c in DEMO_CLASSES if c != label])
            template = REPLAY_TEMPLATES[rng.randrange(len(REPLAY_TEMPLATES))]
            records.append(
                {
                    "id": f"replay-{slug(label)}-{k}",
                    "audio": f"audio/train/{slug(label)}_{k}.wav",
                    "instruction": template.format(word=alternatives(other)[0]),
                    "output": "Yes" if yes else "No",
                    "task": "yes_no",
                    "dataset": "demo",
                }
            )
    return records


def _clear(out_dir: Path) -> None:
    """Remove what a previous (possibly crashed) run left, marker first."""
    (out_dir / COMPLETE_MARKER).unlink(missing_ok=True)
    if (out_dir / "audio").is_dir():
        shutil.rmtree(out_dir / "audio")
    for name in (
        "train.jsonl",
        "heldout.jsonl",
        "shard.jsonl",
        "shard.report.json",
        BENCHMARK_FILE,
        "classes.txt",
        "README.txt",
        REPLAY_FILE,
        TEXT_FILE,
    ):
        (out_dir / name).unlink(missing_ok=True)


def make_demo_data(
    out_dir: str | Path,
    train_per_class: int = TRAIN_PER_CLASS,
    heldout_per_class: int = HELDOUT_PER_CLASS,
    seed: int = 0,
) -> dict[str, Any]:
    """Write the demo data set into ``out_dir`` (clearing an old one) and return counts.

    Files: ``audio/{train,heldout}/<slug>_<k>.wav``, ``train.jsonl``, ``heldout.jsonl``,
    ``shard.jsonl`` and ``shard.report.json`` (the demo SHARD about the held-out clips),
    ``benchmark.json`` (multiple-choice items in MMAU's format about them),
    ``classes.txt``, ``README.txt``, ``replay.jsonl`` (yes/no records about the training clips),
    ``retention.txt`` (the shipped held-out English text, ``demo_text.txt``) and,
    written last, the marker ``.complete`` holding the parameters as JSON.
    """
    if train_per_class < 1 or heldout_per_class < 1:
        raise InterleaveError(
            f"demo data needs at least one clip per class and split, got train_per_class={train_per_class}, "
            f"heldout_per_class={heldout_per_class}"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _clear(out_dir)
    params = _params(train_per_class, heldout_per_class, seed)
    train = _split_records(out_dir, "train", 0, train_per_class, seed)
    heldout = _split_records(out_dir, "heldout", 1, heldout_per_class, seed)
    for name, records in (("train.jsonl", train), ("heldout.jsonl", heldout)):
        write_text_atomic(out_dir / name, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    _write_shard(out_dir, heldout_per_class, seed)
    write_benchmark(out_dir, DEMO_CLASSES, heldout_per_class, seed)
    write_text_atomic(out_dir / TEXT_FILE, DEMO_TEXT.read_text(encoding="utf-8"))
    summary = _summary(out_dir, params)
    write_text_atomic(out_dir / "classes.txt", "".join(label + "\n" for label in DEMO_CLASSES))
    write_text_atomic(out_dir / "README.txt", _readme(params, summary))
    replay = _replay_records(train_per_class, seed)
    write_text_atomic(out_dir / REPLAY_FILE, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in replay))
    write_text_atomic(out_dir / COMPLETE_MARKER, json.dumps(params, indent=2) + "\n")
    return summary


def _write_shard(out_dir: Path, heldout_per_class: int, seed: int) -> None:
    """Write the demo SHARD about the held-out clips, and its report, from the committed lexicon:
    every class gets identity queries; the classes the lexicon holds, synonym and hypernym ones too."""
    entries, skipped = read_lexicon(DEMO_LEXICON), {s.label: s.reason for s in read_skipped(DEMO_LEXICON)}
    if sorted([*(e.label for e in entries), *skipped]) != sorted(DEMO_CLASSES):
        raise InterleaveError(f"{DEMO_LEXICON} must hold or skip each demo class exactly once: {list(DEMO_CLASSES)}")
    clips = {
        label: [out_dir / "audio" / "heldout" / f"{slug(label)}_{k}.wav" for k in range(heldout_per_class)]
        for label in DEMO_CLASSES
    }
    by_label = {e.label: e for e in entries}
    queries = []
    for label in DEMO_CLASSES:
        if label in by_label:
            queries += assemble_queries([by_label[label]], clips, seed, SHARD_CLIPS_PER_WORD, pool_from=entries)
        else:
            queries += identity_queries(label, alternatives(label)[0], clips[label], seed, SHARD_CLIPS_PER_WORD)
    queries += _shard_pairs(out_dir, heldout_per_class, seed)
    write_shard(queries, out_dir / "shard.jsonl")
    words = []
    for label in DEMO_CLASSES:
        entry = by_label.get(label)
        if entry is None:
            words.append({"label": label, "status": "identity only", "reason": skipped[label]})
        else:
            row = {
                "label": label,
                "status": "included",
                "word": entry.word,
                "synset": entry.synset,
                "clips": heldout_per_class,
            }
            words.append({**row, "override": entry.override} if entry.override else row)
    report = {
        "shard": "shard.jsonl",
        "parameters": {"seed": seed, "clips_per_word": SHARD_CLIPS_PER_WORD, "lexicon": "interleave/tools/demo_lexicon.json"},
        "counts": shard_counts(queries),
        "words": words,
    }  # fmt: skip
    write_report(out_dir / "shard.report.json", report)


def _shard_pairs(out_dir: Path, heldout_per_class: int, seed: int) -> list:
    """The demo SHARD's pair queries: about every held-out clip of the lexicon's classes."""
    entries = read_lexicon(DEMO_LEXICON)
    clips = [
        q
        for e in entries
        for q in identity_queries(
            e.label,
            e.word,
            [out_dir / "audio" / "heldout" / f"{slug(e.label)}_{k}.wav" for k in range(heldout_per_class)],
            seed,
            heldout_per_class,
        )
    ]
    return pair_queries(entries, clips, SHARD_PAIRS, seed)


def _is_complete(out_dir: Path, params: dict[str, Any]) -> bool:
    marker = out_dir / COMPLETE_MARKER
    try:
        found = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    files_there = all(
        (out_dir / name).is_file()
        for name in ("train.jsonl", "heldout.jsonl", "shard.jsonl", BENCHMARK_FILE, REPLAY_FILE, TEXT_FILE)
    )
    return found == params and files_there


def ensure_demo_data(
    out_dir: str | Path,
    *,
    train_per_class: int = TRAIN_PER_CLASS,
    heldout_per_class: int = HELDOUT_PER_CLASS,
    seed: int = 0,
    force: bool = False,
) -> Path:
    """Make sure ``out_dir`` holds a complete demo data set with these parameters; return it.

    Does nothing when the ``.complete`` marker matches; otherwise (or with ``force``)
    regenerates and reports one line on stderr.
    """
    out_dir = Path(out_dir)
    if not force and _is_complete(out_dir, _params(train_per_class, heldout_per_class, seed)):
        return out_dir
    summary = make_demo_data(out_dir, train_per_class, heldout_per_class, seed)
    print(
        f"[interleave] wrote demo data: {summary['clips']} clips, {summary['records']} records -> {out_dir}",
        file=sys.stderr,
    )
    return out_dir


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``interleave demo DIR [--train-per-class N] ... [--force]``."""
    parser = argparse.ArgumentParser(
        prog="interleave demo", description="Write the synthetic demo data set (AudioSet-labelled toy clips)."
    )
    parser.add_argument("out_dir", type=Path, help="folder to write (train.jsonl, heldout.jsonl, audio/, ...)")
    parser.add_argument(
        "--train-per-class",
        type=int,
        default=TRAIN_PER_CLASS,
        help=f"training clips per class (default {TRAIN_PER_CLASS})",
    )
    parser.add_argument(
        "--heldout-per-class",
        type=int,
        default=HELDOUT_PER_CLASS,
        help=f"held-out clips per class (default {HELDOUT_PER_CLASS})",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--force", action="store_true", help="regenerate even if a matching data set exists")
    args = parser.parse_args(argv)

    def run() -> None:
        ensure_demo_data(
            args.out_dir,
            train_per_class=args.train_per_class,
            heldout_per_class=args.heldout_per_class,
            seed=args.seed,
            force=args.force,
        )
        params = _params(args.train_per_class, args.heldout_per_class, args.seed)
        print(json.dumps(_summary(args.out_dir, params), indent=2))

    return report_errors(run)


if __name__ == "__main__":
    sys.exit(main())
