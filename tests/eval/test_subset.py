"""`EvalSettings.max_queries_per_task`: a fixed subset of each task's queries, chosen by word and clip
(`interleave.eval.evaluate.capped_queries`), the same in every call, process and rank; checked when built."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from interleave.errors import InterleaveError
from interleave.eval.evaluate import SUBSET_RULE, EvalSettings, capped_queries, rank_share
from interleave.eval.query import Query, clip_of, query_id

REPO = Path(__file__).resolve().parents[2]
WORDS = ("Sine wave", "Siren", "Drum", "Whistle", "Tick")


def shard(words=WORDS, clips: int = 3) -> list[Query]:
    """The builder's layout: per word and clip an identity query and two yes + two no per relation."""
    out = []
    for w, label in enumerate(words):
        word = label.lower()
        for k in range(clips):
            audio = f"/a/{w}_{k}.wav"
            out.append(Query(query_id("identity", label, k), "identity", label, word, audio))
            for task in ("synonym", "hypernym"):
                for c, truth in enumerate(("yes", "no", "yes", "no")):
                    out.append(Query(query_id(task, label, k, f"cand{c}"), task, label, word, audio, f"cand{c}", truth))
    return out


def groups(q: Query) -> tuple[str, str]:
    """The bootstrap's units of a query: its word (label) and clip."""
    return q.label, clip_of(q.id, q.task, q.label) or q.id


@pytest.mark.parametrize("limit", [1, 2, 3, 4, 5, 7, 12, 60, 1000])
def test_at_most_n_queries_per_task_in_shard_order(limit):
    queries = shard()
    chosen = capped_queries(queries, limit)
    totals = Counter(q.task for q in queries)
    assert Counter(q.task for q in chosen) == {task: min(limit, n) for task, n in totals.items()}
    assert chosen == [q for q in queries if q in chosen]  # SHARD order, so chunks and indices follow the file


def test_none_keeps_every_query_and_records_no_subset():
    queries = shard()
    settings = EvalSettings()
    assert settings.max_queries_per_task is None
    assert settings.asked(queries) == queries and settings.subset(queries) is None
    # A cap no task reaches asks every query too: nothing to record, the run compares with a full one.
    assert EvalSettings(max_queries_per_task=60).asked(queries) == queries
    assert EvalSettings(max_queries_per_task=60).subset(queries) is None
    capped = EvalSettings(max_queries_per_task=4, seed=3)
    assert capped.subset(queries) == f"at most 4 queries per task, seed 3, {SUBSET_RULE}"
    assert capped.asked(queries) == capped_queries(queries, 4, 3)


def test_the_same_subset_at_every_call_whatever_the_files_order():
    queries = shard()
    first = capped_queries(queries, 5)
    assert all(capped_queries(queries, 5) == first for _ in range(3))  # every evaluated point
    shuffled = list(queries)
    random.Random(1).shuffle(shuffled)
    assert {q.id for q in capped_queries(shuffled, 5)} == {q.id for q in first}
    assert capped_queries(first, 5) == first  # a subset of itself
    # another seed, another subset (of the same size)
    other = capped_queries(queries, 5, seed=1)
    assert len(other) == len(first) and {q.id for q in other} != {q.id for q in first}


def test_chosen_by_word_then_clip_whole_clips_spread_over_the_words():
    queries = shard()
    # 4 queries a clip per relation: 20 take one whole clip of each of the 5 words
    chosen = capped_queries(queries, 20)
    for task in ("synonym", "hypernym"):
        units = Counter(groups(q) for q in chosen if q.task == task)
        assert len({word for word, _ in units}) == 5 and set(units.values()) == {4}
    assert len({groups(q) for q in chosen if q.task == "identity"}) == 15  # identity: 1 a clip, every clip
    # 6: one whole clip, then the next word's clip cut short with a yes and a no
    for task in ("synonym", "hypernym"):
        picked = [q for q in capped_queries(queries, 6) if q.task == task]
        units = Counter(groups(q) for q in picked)
        assert sorted(units.values()) == [2, 4] and len({word for word, _ in units}) == 2
        cut = next(unit for unit, n in units.items() if n == 2)
        assert sorted(q.truth for q in picked if groups(q) == cut) == ["no", "yes"]
    # 2: one clip's yes and no
    for task in ("synonym", "hypernym"):
        assert sorted(q.truth for q in capped_queries(queries, 2) if q.task == task) == ["no", "yes"]
    # 22 = 5 words x 4 + 2: every word's first clip, then a second clip of one word begun
    units = Counter(groups(q) for q in capped_queries(queries, 22) if q.task == "synonym")
    assert sorted(Counter(word for word, _ in units).values()) == [1, 1, 1, 1, 2]


def test_ids_outside_the_builders_scheme_are_each_their_own_clip():
    pairs = [
        Query(f"pair/{t}/{i}", "pair", w, w.lower(), f"/a/{i}.wav", "x", t, other_audio=f"/a/o{i}.wav")
        for i, (w, t) in enumerate([("Drum", "yes"), ("Drum", "no"), ("Siren", "yes"), ("Siren", "no")])
    ]
    chosen = capped_queries(pairs, 2)
    assert len(chosen) == 2 and {q.label for q in chosen} == {"Drum", "Siren"}  # a query a clip: the words spread


@pytest.mark.slow
def test_every_process_and_rank_chooses_the_same_subset(tmp_path):
    """No process state (Python's salted hash()) in the choice, so each DDP rank reads the same subset
    from the file before `answer_queries` splits it in chunks; the chunks cover it once."""
    queries = shard()
    script = (
        "import json, sys; from tests.helpers import shard; "
        "from interleave.eval.evaluate import capped_queries; "
        "print(json.dumps([q.id for q in capped_queries(shard(), 7, 2)]))"
    )
    found = []
    for salt in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": salt, "PYTHONPATH": str(REPO)}
        done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        found.append(json.loads(done.stdout))
    assert found[0] == found[1] == [q.id for q in capped_queries(queries, 7, 2)]
    chosen = capped_queries(queries, 7, 2)
    for world in (1, 2, 3):
        assert sum(rank_share(len(chosen), 4, rank, world) for rank in range(world)) == len(chosen)


@pytest.mark.parametrize("value", [0, -1, 2.5, True, "2"])
def test_a_bad_cap_is_refused_naming_the_setting(value):
    with pytest.raises(
        InterleaveError,
        match=r"max_queries_per_task must be a whole number of at least 1, "
        r"or null for every query; got",
    ):
        EvalSettings(max_queries_per_task=value)
