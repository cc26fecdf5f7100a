"""Ranked scoring: each choice's log-likelihood as the answer after the prompt; the highest wins.

No generation, so cheap enough for every evaluated point. A choice's row is the record the run's
collator makes of the prompt with the choice as its answer (`interleave.data.collate.Collator.encode`):
the whole prompt-plus-choice string tokenized as one (the project's whole-string rule), the
choice's tokens from `len(tokenize(prompt))` on (LTU's label rule). Its score is the sum of the
log-probabilities of those tokens (the EOS the collator appends is not scored: a choice is
judged as text, not as where the answer ends), divided by their number with `TOKEN_MEAN` (the
default: the mean log-probability per answer token, so a longer choice is not penalised for its
length) or not with `SUM`.

The choices of one question are batched: the tokens every choice row of a question has in common,
up to the token before the first scored one, run once (one prefill per question, left-padded
across the questions; its KV cache copied to each choice's row), then each row's own tokens,
left-padded, with only the last positions' logits kept. Only tokens that really are a prefix of
every row are shared: where whole-string tokenization changes a prompt token with the choice,
sharing stops before it. The same log-likelihoods as one choice at a time through the LLM's own
forward pass (`tests/eval/benchmarks/test_ranked.py`, to 1e-5).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from interleave.data.collate import IGNORE_INDEX, Collator, Encoded
from interleave.data.records import Record

if TYPE_CHECKING:
    from interleave.model.generation import AudioTextModel

TOKEN_MEAN, SUM = "token_mean", "sum"
NORMS = (TOKEN_MEAN, SUM)


@dataclass(frozen=True)
class Question:
    """One question as the ranked scoring asks it: the instruction (placeholders in place, or none
    for a text-only prompt), its choices, and its clips (placeholder order; empty: no audio)."""

    instruction: str
    choices: tuple[str, ...]
    clips: tuple[str, ...] = ()


def choice_rows(collator: Collator, question: Question) -> list[Encoded]:
    """One collated row per choice: the prompt with the choice as its answer (whole-string tokens)."""
    audio = bool(question.clips)
    return [
        collator.encode(
            Record(id="choice", audio=question.clips or ("",), instruction=question.instruction, output=choice),
            with_answer=True,
            with_audio=audio,
        )
        for choice in question.choices
    ]


def scored_positions(row: Encoded, eos: int | None) -> list[int]:
    """The positions of a row whose tokens are scored: its answer's labels, the appended EOS left out."""
    positions = [j for j, label in enumerate(row.labels) if label != IGNORE_INDEX]
    if positions and row.input_ids[positions[-1]] == eos and len(positions) > 1:
        positions = positions[:-1]
    return positions


def _shared(rows: list[Encoded], first_scored: int) -> int:
    """How many leading tokens every row has in common (ids and audio positions), before `first_scored`."""
    count = 0
    for column in zip(*[zip(r.input_ids, r.audio_mask) for r in rows]):
        if count >= first_scored or any(c != column[0] for c in column[1:]):
            break
        count += 1
    return count


def _left(values: list[torch.Tensor], width: int) -> torch.Tensor:
    """[N, width, ...] left-padded with zeros."""
    out = values[0].new_zeros((len(values), width, *values[0].shape[1:]))
    for i, v in enumerate(values):
        if len(v):
            out[i, width - len(v) :] = v
    return out


@torch.no_grad()
def choice_loglikelihoods(
    model: AudioTextModel,
    collator: Collator,
    questions: Sequence[Question],
    features: torch.Tensor | None = None,
    norm: str = TOKEN_MEAN,
    share_prefix: bool = True,
) -> list[list[float]]:
    """Each question's choice scores (`norm`: `TOKEN_MEAN` or `SUM` of the answer tokens' log-probabilities).

    `features`: the cached encoder features [clips, audio_tokens, width] of every question's clips,
    question by question in placeholder order (None for text-only questions). With `share_prefix`
    the tokens common to a question's choice rows run once; without, each row runs whole (the same figures).
    """
    if norm not in NORMS:
        raise ValueError(f"unknown length normalisation {norm!r}; expected one of {NORMS}")
    device = next(model.llm.parameters()).device
    rows, owner, row_features = [], [], []
    offset = 0
    for q, question in enumerate(questions):
        made = choice_rows(collator, question)
        rows += made
        owner += [q] * len(made)
        if question.clips:
            if features is None:
                raise ValueError("choice_loglikelihoods: questions with clips need their features")
            clip = features[offset : offset + len(question.clips)]
            row_features += [clip] * len(made)
            offset += len(question.clips)
    eos = model.tokenizer.eos_token_id
    scored = [scored_positions(r, eos) for r in rows]
    width = max(len(r.input_ids) for r in rows)
    ids = torch.tensor([r.input_ids + [collator.pad_id] * (width - len(r.input_ids)) for r in rows], device=device)
    audio_mask = torch.tensor([r.audio_mask + [False] * (width - len(r.audio_mask)) for r in rows], device=device)
    stacked = torch.cat(row_features).to(device) if row_features else None
    embeds = model.merge_embeddings(ids, audio_mask, features=stacked)  # each row's embeddings, right-padded
    firsts = {}
    for r, q in enumerate(owner):
        firsts.setdefault(q, []).append(r)
    keep = [
        max(_shared([rows[r] for r in firsts[q]], min(scored[r][0] for r in firsts[q])) - 1, 0)
        for q in range(len(questions))
    ]
    if not share_prefix or min(keep) < 1:
        keep = [0] * len(questions)
    cache, prefix_mask = None, torch.zeros(len(rows), 0, dtype=torch.long, device=device)
    if keep[0] > 0:
        width_p = max(keep)
        prefix = _left([embeds[firsts[q][0], : keep[q]] for q in range(len(questions))], width_p)
        mask = _left([torch.ones(k, dtype=torch.long, device=device) for k in keep], width_p)
        out = model.llm(
            inputs_embeds=prefix,
            attention_mask=mask,
            position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
            use_cache=True,
            logits_to_keep=1,
        )
        cache = out.past_key_values
        index = torch.tensor(owner, device=device)
        cache.batch_select_indices(index)
        prefix_mask = mask[index]
    starts = [keep[q] for q in owner]
    lengths = [len(r.input_ids) - s for r, s in zip(rows, starts)]
    width_c = max(lengths)
    tail = _left([embeds[r, s : s + n] for r, (s, n) in enumerate(zip(starts, lengths))], width_c)
    tail_mask = _left([torch.ones(n, dtype=torch.long, device=device) for n in lengths], width_c)
    positions = torch.tensor(
        [[max(s + j - (width_c - n), 0) for j in range(width_c)] for s, n in zip(starts, lengths)], device=device
    )
    # Logits only where a scored token is predicted: the last positions of the left-padded rows.
    need = max(len(r.input_ids) - (pos[0] - 1) for r, pos in zip(rows, scored))
    out = model.llm(
        inputs_embeds=tail,
        attention_mask=torch.cat([prefix_mask, tail_mask], dim=1),
        position_ids=positions,
        past_key_values=cache,
        use_cache=cache is not None,
        logits_to_keep=need,
    )
    logprobs = torch.log_softmax(
        out.logits.float(), dim=-1
    )  # [rows, need, vocab]; column k predicts token len - need + k + 1
    result: list[list[float]] = [[] for _ in questions]
    for r, (row, positions_r) in enumerate(zip(rows, scored)):
        total = sum(float(logprobs[r, j - 1 - (len(row.input_ids) - need), row.input_ids[j]]) for j in positions_r)
        result[owner[r]].append(total / len(positions_r) if norm == TOKEN_MEAN else total)
    return result


def ranked_choice(scores: Sequence[float]) -> int:
    """The choice with the highest score (the first of equal ones)."""
    return max(range(len(scores)), key=lambda i: (scores[i], -i))
