"""Building a SHARD (paper, section 3) from AudioSet labels, a clip index and a lexicon.

Each AudioSet word gets ``n_synonyms`` synonyms and ``n_hypernyms`` hypernyms from WordNet (a
*lexicon*: by default the reviewed one shipped with the package, else one derived afresh) and a
few clips holding only that sound; every clip gives one identity query and, per
relation, one "yes" query per candidate balanced by one "no" query whose candidate belongs to
another word and that WordNet confirms is no synonym or hypernym of this word under any sense.
Everything is seeded: same inputs and seed, byte-identical file.
The command line is `interleave.shard.cli`.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from interleave.encoders.audio import load_fbank
from interleave.errors import AudioError, InterleaveError
from interleave.eval.format import RELATIONS, shard_counts, write_shard
from interleave.eval.query import Query, query_id, slug
from interleave.files import write_text_atomic
from interleave.progress import Progress
from interleave.shard.clips import ClipIndex, read_clip_index, read_labels
from interleave.shard.lexicon import DEFAULT_SOURCE_ROOTS, build_lexicon
from interleave.shard.lexicon_file import (
    json_text,
    lexicon_meta,
    read_lexicon,
    read_overrides,
    read_skipped,
    write_lexicon,
)
from interleave.shard.pairs import pair_queries
from interleave.shard.rules import (
    DEFAULT_ROOTS,
    DEFAULT_STOPLIST,
    Entry,
    Skipped,
    entry_problems,
    norm,
    resolve_conflicts,
)
from interleave.shard.wordnet import find_wordnet, open_wordnet

# The reviewed lexicon of AudioSet's labels (WordNet 3.0 with curated overrides), used by default.
SHIPPED_LEXICON = Path(__file__).with_name("audioset_lexicon.json")

# --- assembly ---------------------------------------------------------------------------


def negative_pool(entry: Entry, entries: Sequence[Entry], relation: str) -> list[str]:
    """Other words' ``relation`` candidates that WordNet does not relate to ``entry`` (sorted).

    One per id form (:func:`slug`), none with the id form of one of ``entry``'s own candidates:
    "rock'n'roll" and "rock 'n' roll" would give the same query id."""
    own = {slug(c) for c in entry.candidates(relation)}
    pool = {}
    for other in entries:
        if other.label == entry.label:
            continue
        for candidate in other.candidates(relation):
            if norm(candidate) not in entry.related and slug(candidate) not in own:
                pool.setdefault(slug(candidate), candidate)
    return [pool[key] for key in sorted(pool)]


def identity_queries(
    label: str, word: str, clips: Sequence[str | Path], seed: int, clips_per_word: int = 4
) -> list[Query]:
    """One identity query per clip of up to ``clips_per_word`` of ``clips`` (seeded pick, sorted):
    what :func:`assemble_queries` asks first about each clip, and all a word without a lexicon
    entry can be asked."""
    clips = sorted(os.path.abspath(c) for c in clips)
    chosen = sorted(random.Random(f"shard/{seed}/clips/{label}").sample(clips, min(clips_per_word, len(clips))))
    return [
        Query(id=query_id("identity", label, k), task="identity", label=label, word=word, audio=a)
        for k, a in enumerate(chosen)
    ]


def assemble_queries(
    entries: Sequence[Entry],
    clips_by_label: Mapping[str, Sequence[str | Path]],
    seed: int,
    clips_per_word: int = 4,
    pool_from: Sequence[Entry] | None = None,
) -> list[Query]:
    """SHARD queries of ``entries``: per word up to ``clips_per_word`` clips (seeded pick, sorted).

    Each clip gives one identity query and, per relation and positive candidate, a "yes" query
    and a "no" query whose candidate is drawn (seeded, without repeats within the clip) from the
    word's :func:`negative_pool` among ``pool_from`` (default: ``entries``). Raises
    InterleaveError for a word without clips or with too small a pool (the builder skips such
    words first, with a reason).
    """
    if clips_per_word < 1:
        raise InterleaveError(f"clips_per_word must be at least 1, got {clips_per_word}")
    queries: list[Query] = []
    for entry in entries:
        clips = sorted(os.path.abspath(c) for c in clips_by_label.get(entry.label, ()))
        if not clips:
            raise InterleaveError(f"no clips for {entry.label!r}")
        pools = {
            relation: negative_pool(entry, entries if pool_from is None else pool_from, relation)
            for relation in RELATIONS
        }
        for relation, pool in pools.items():
            if len(pool) < len(entry.candidates(relation)):
                raise InterleaveError(
                    f"{entry.label!r}: {len(pool)} unrelated {relation} candidate(s) of other words for "
                    f"{len(entry.candidates(relation))} negative queries per clip"
                )
        common = {"label": entry.label, "word": entry.word}
        for k, identity in enumerate(identity_queries(entry.label, entry.word, clips, seed, clips_per_word)):
            queries.append(identity)
            audio = identity.audio
            for relation in RELATIONS:
                positives = entry.candidates(relation)
                negatives = random.Random(f"shard/{seed}/{relation}/{entry.label}/{k}").sample(
                    pools[relation], len(positives)
                )
                for positive, negative in zip(positives, negatives):
                    for candidate, truth in ((positive, "yes"), (negative, "no")):
                        queries.append(
                            Query(
                                query_id(relation, entry.label, k, candidate),
                                relation,
                                audio=audio,
                                candidate=candidate,
                                truth=truth,
                                **common,
                            )
                        )
    return queries


# --- building a SHARD -------------------------------------------------------------------


def report_path(shard: str | Path) -> Path:
    """Where a SHARD file's report goes: ``shard.jsonl`` -> ``shard.report.json``."""
    shard = Path(shard)
    return shard.with_name(shard.stem + ".report.json")


def write_report(path: str | Path, report: Mapping[str, Any]) -> Path:
    path = Path(path)
    write_text_atomic(path, json_text(report) + "\n")
    return path


def _read_words(path: Path, labels: Mapping[str, str]) -> list[str]:
    """Display names, one per line (a mid is accepted); unknown names are errors with file:line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InterleaveError(f"cannot read word list {path}: {err}") from err
    names = set(labels.values())
    words, problems = [], []
    for number, line in enumerate(lines, start=1):
        token = line.strip()
        if not token or token.startswith("#"):
            continue
        name = token if token in names else labels.get(token)
        if name is None:
            problems.append(f"{path}:{number}: {token!r} is no AudioSet display name or mid")
        elif name not in words:
            words.append(name)
    if problems:
        raise InterleaveError(f"{len(problems)} problem(s) in word list {path}:\n  " + "\n  ".join(problems))
    return words


def _drop_poor_pools(entries: list[Entry]) -> tuple[list[Entry], list[Skipped]]:
    """Leave out words whose negative pools are too small, until every remaining one has enough."""
    skipped: list[Skipped] = []
    while True:
        poor = {}
        for entry in entries:
            for relation in RELATIONS:
                size, needed = len(negative_pool(entry, entries, relation)), len(entry.candidates(relation))
                if size < needed and entry.label not in poor:
                    poor[entry.label] = (
                        f"{size} unrelated {relation} candidate(s) among the other words, {needed} needed"
                    )
        if not poor:
            return entries, skipped
        skipped += [Skipped(label, reason) for label, reason in poor.items()]
        entries = [e for e in entries if e.label not in poor]


def audio_problem(path: str) -> str | None:
    """Why the evaluation could not use this clip (empty, undecodable, non-finite fbank), or None."""
    try:
        load_fbank(path)
    except AudioError as err:
        return err.reason
    return None


def readable_queries(
    entries: list[Entry],
    index: ClipIndex,
    seed: int,
    clips_per_word: int,
    problem: Callable[[str], str | None] = audio_problem,
    progress: Progress | None = None,
) -> tuple[list[Query], list[Entry], list[Skipped]]:
    """Assemble the queries, decoding each chosen clip; an unreadable one moves to ``index.unreadable``
    and the words are assembled again without it (a word short of clips, or of negatives, is left
    out). Only chosen clips are decoded, each once, so a large index costs no more than the SHARD.
    ``progress`` grows by the clips of each round and counts each clip decoded."""
    verdicts: dict[str, str | None] = {}
    skipped: list[Skipped] = []
    while True:
        queries = assemble_queries(entries, index.by_label, seed, clips_per_word)
        chosen = {q.audio for q in queries}
        new = sorted(chosen - set(verdicts))
        if progress is not None:
            progress.add_total(len(new))
        for audio in new:
            verdicts[audio] = problem(audio)
            if progress is not None:
                progress.update(1)
        bad = {audio for audio in chosen if verdicts[audio]}
        if not bad:
            return queries, entries, skipped
        for label, clips in index.by_label.items():
            for audio in [c for c in clips if os.path.abspath(c) in bad]:
                index.unreadable.append({"audio": audio, "label": label, "reason": verdicts[os.path.abspath(audio)]})
                clips.remove(audio)
        short = {e.label for e in entries if len(index.by_label.get(e.label, [])) < clips_per_word}
        skipped += [
            Skipped(
                label, f"{len(index.by_label.get(label, []))} readable single-label clip(s), {clips_per_word} needed"
            )
            for label in sorted(short)
        ]
        entries, poor = _drop_poor_pools([e for e in entries if e.label not in short])
        skipped += poor


def _word_row(label: str, entry: Entry | None, reason: str | None, clips: int) -> dict[str, Any]:
    """One word's line in a SHARD report."""
    if entry is None:
        return {"label": label, "status": "skipped", "reason": reason}
    row = {"label": label, "status": "included", "word": entry.word, "synset": entry.synset, "clips": clips}
    return {**row, "override": entry.override} if entry.override else row


def _stored_entries(
    path: str | Path, labels: Sequence[str], n_synonyms: int, n_hypernyms: int, stoplist: Sequence[str]
) -> tuple[list[Entry], list[Skipped]]:
    """Entries of ``labels`` from a lexicon file, cut to the asked numbers of candidates; a label
    the file skips keeps the file's reason, an entry that breaks the quality rules is skipped."""
    stored = {e.label: e for e in read_lexicon(path)}
    reasons = {s.label: s.reason for s in read_skipped(path)}
    entries, skipped = [], []
    for label in labels:
        entry = stored.get(label)
        if entry is None and label in reasons:
            skipped.append(Skipped(label, f"lexicon: {reasons[label]}"))
        elif entry is None:
            skipped.append(Skipped(label, f"not in lexicon {path}"))
        elif len(entry.synonyms) < n_synonyms or len(entry.hypernyms) < n_hypernyms:
            skipped.append(
                Skipped(label, f"lexicon gives {len(entry.synonyms)} synonym(s) and {len(entry.hypernyms)} hypernym(s)")
            )
        else:
            entry = replace(entry, synonyms=entry.synonyms[:n_synonyms], hypernyms=entry.hypernyms[:n_hypernyms])
            problems = entry_problems(entry, stoplist)
            if problems:
                skipped.append(Skipped(label, "lexicon entry breaks the rules: " + "; ".join(problems)))
            else:
                entries.append(entry)
    return entries, skipped


def build_shard(
    labels_csv: str | Path,
    clips: str | Path,
    out: str | Path,
    *,
    wordnet: str | Path | None = None,
    lexicon: str | Path | None = None,
    words: str | Path | None = None,
    overrides: str | Path | None = None,
    seed: int = 0,
    clips_per_word: int = 4,
    n_synonyms: int = 2,
    n_hypernyms: int = 2,
    lexicon_out: str | Path | None = None,
    stoplist: Sequence[str] | None = None,
    pairs: int = 0,
) -> dict[str, Any]:
    """Build a SHARD file from AudioSet labels, a clip index and WordNet (or a stored lexicon).

    Writes ``out``, its report (:func:`report_path`) and, if asked, the lexicon; returns the
    report. The lexicon is ``lexicon``, else derived from WordNet when ``wordnet`` (a folder, or
    "" for nltk's data paths) or ``overrides`` is given, else the shipped AudioSet lexicon.
    Words are those of ``words`` (display names or mids, one per line) or else every label, in
    the labels CSV's order. A word needs ``clips_per_word`` single-label clips, ``n_synonyms``
    synonyms, ``n_hypernyms`` hypernyms, a sense and id no earlier word has, and enough unrelated
    negatives; otherwise it is skipped with its reason in the report (conflicts are settled
    before any clip is decoded). ``pairs`` adds up to that many "yes" and as many "no" queries of
    the ``pair`` task (`interleave.shard.pairs`). Raises InterleaveError (after writing the report)
    if no word is left.
    """
    if clips_per_word < 1 or n_synonyms < 1 or n_hypernyms < 1:
        raise InterleaveError("clips per word, synonyms and hypernyms must each be at least 1")
    if lexicon is not None and (wordnet is not None or overrides is not None):
        raise InterleaveError("a stored lexicon replaces WordNet: give either --lexicon or --wordnet/--overrides")
    if lexicon is None and wordnet is None and overrides is None:
        lexicon = SHIPPED_LEXICON
    labels = read_labels(labels_csv)
    index = read_clip_index(clips, labels)
    names = list(dict.fromkeys(labels.values()))
    requested = _read_words(Path(words), labels) if words is not None else names
    multi = Counter(label for clip in index.multi_label for label in clip["labels"])
    skipped: list[Skipped] = []
    with_clips = []
    for label in requested:
        found = len(index.by_label.get(label, []))
        if found >= clips_per_word:
            with_clips.append(label)
        else:
            reason = f"{found} single-label clip(s), {clips_per_word} needed ({multi[label]} multi-label clip(s) not eligible)"
            skipped.append(Skipped(label, reason))
    params: dict[str, Any] = {
        "labels": str(labels_csv), "clips": str(clips), "words": str(words) if words else None,
        "seed": seed, "clips_per_word": clips_per_word, "n_synonyms": n_synonyms, "n_hypernyms": n_hypernyms,
    }  # fmt: skip
    if pairs:
        params["pairs"] = pairs
    if lexicon is not None:
        entries, lacking = _stored_entries(lexicon, with_clips, n_synonyms, n_hypernyms, stoplist or DEFAULT_STOPLIST)
        params["lexicon"] = str(lexicon)
    else:
        folder = Path(wordnet) if wordnet is not None and str(wordnet) not in ("", ".") else find_wordnet()
        wn = open_wordnet(folder)
        curated = read_overrides(overrides) if overrides is not None else {}
        unknown = [label for label in curated if label not in names]
        if unknown:
            raise InterleaveError(
                f"override file {overrides} names labels not in {labels_csv}: {', '.join(map(repr, unknown))}"
            )
        with Progress(len(with_clips), "words", "[interleave] shard build: WordNet") as progress:
            entries, lacking = build_lexicon(
                wn,
                with_clips,
                curated,
                n_synonyms=n_synonyms,
                n_hypernyms=n_hypernyms,
                stoplist=stoplist or DEFAULT_STOPLIST,
                progress=progress,
            )
        params.update(
            wordnet=str(folder), wordnet_version=wn.get_version(), overrides=str(overrides) if overrides else None
        )
        params.update(
            roots=list(DEFAULT_ROOTS),
            source_roots=list(DEFAULT_SOURCE_ROOTS),
            stoplist=list(stoplist or DEFAULT_STOPLIST),
        )
    entries, conflicts = resolve_conflicts(entries)
    if lexicon is None and lexicon_out is not None:
        write_lexicon(
            entries,
            lexicon_out,
            lexicon_meta(wn, n_synonyms, n_hypernyms, curated, stoplist or DEFAULT_STOPLIST),
            [*lacking, *conflicts],
        )
    lacking += conflicts
    entries, poor = _drop_poor_pools(entries)
    with Progress(0, "clips", "[interleave] shard build: decoding") as progress:
        queries, entries, unreadable = readable_queries(entries, index, seed, clips_per_word, progress=progress)
    skipped += lacking + poor + unreadable
    queries += pair_queries(entries, queries, pairs, seed)
    reasons = {s.label: s.reason for s in skipped}
    included = {e.label: e for e in entries}
    report = {
        "shard": str(out),
        "parameters": params,
        "counts": {
            **shard_counts(queries),
            "words_requested": len(requested),
            "words_included": len(entries),
            "words_skipped": len(skipped),
            "clips_single_label": sum(len(v) for v in index.by_label.values()),
            "clips_multi_label": len(index.multi_label),
            "clips_missing_audio": len(index.missing),
            "clips_unreadable_audio": len(index.unreadable),
            "unknown_labels": len(index.unknown_labels),
        },
        "words": [_word_row(w, included.get(w), reasons.get(w), len(index.by_label.get(w, []))) for w in requested],
        "multi_label_clips": index.multi_label,
        "missing_audio": index.missing,
        "unreadable_audio": index.unreadable,
        "unknown_labels": index.unknown_labels,
    }
    write_report(report_path(out), report)
    if not queries:
        raise InterleaveError(f"no word could be included in {out}; reasons in {report_path(out)}")
    write_shard(queries, out)
    return report
