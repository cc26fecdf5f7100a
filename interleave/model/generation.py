"""Generation from an AudioLLM, both paths in one place.

`generate`: Hugging Face `generate` on the merged embeddings (greedy or sampled, one answer per
prompt or `num_return_sequences`), for validation, `predict` and anything HF's options cover.
`sample_answers`: SHARD's path, `repeats` sampled answers per prompt that share one prefill
(the prompt runs once and its KV cache is repeated), with LTU's sampling settings (`Sampling`);
each answer draws from its own random stream, and may stop as soon as its verdict is settled.
`yes_probability`: the deterministic scoring mode, P(yes) against P(no) for the first answer token.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from transformers import RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper, TopPLogitsWarper

from interleave.data.collate import tokens_with_audio


class AudioTextModel(Protocol):
    """What generation reads of a model (`interleave.model.AudioLLM` is one; it calls these functions,
    which only read it): the LLM, its tokenizer, and the token embeddings with each clip's audio
    embeddings put in at its span of `audio_mask`."""

    llm: Any
    tokenizer: Any

    def merge_embeddings(
        self,
        input_ids: torch.Tensor,
        audio_mask: torch.Tensor,
        audio: torch.Tensor | None = None,
        *,
        features: torch.Tensor | None = None,
    ) -> torch.Tensor: ...


@dataclass(frozen=True)
class Sampling:
    """How answers are generated; the defaults are LTU's evaluation settings, with a short cap."""

    max_new_tokens: int = 32
    do_sample: bool = True
    temperature: float = 0.1
    top_p: float = 0.95
    top_k: int = 500
    repetition_penalty: float = 1.1

    def candidates(self, history: torch.Tensor, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores and token ids [rows, k] of the tokens sampling may pick: HF's repetition penalty
        and temperature, then top-k by `torch.topk` and HF's top-p over those k only. Same tokens
        and probabilities as HF's chain over the whole vocabulary (outside the top k, top-p sees
        -inf), at a small fraction of the cost: top-p sorts k scores per row, not 49k."""
        if self.repetition_penalty != 1.0:
            logits = RepetitionPenaltyLogitsProcessor(self.repetition_penalty)(history, logits)
        logits = TemperatureLogitsWarper(self.temperature)(history, logits)
        k = min(self.top_k, logits.shape[-1]) if self.top_k > 0 else logits.shape[-1]
        values, indices = torch.topk(logits, k)
        return TopPLogitsWarper(self.top_p)(history, values), indices

    def next_tokens(
        self, history: torch.Tensor, logits: torch.Tensor, uniform: torch.Tensor | None = None
    ) -> torch.Tensor:
        """One token per row: sampled from `candidates`, or the argmax without sampling.

        A row's token is drawn by inverting its distribution's CDF at `uniform` (one number in
        [0, 1) per row, float64; drawn here when None), so what a row draws depends on its own
        number only, never on which other rows share the batch."""
        if not self.do_sample:
            if self.repetition_penalty != 1.0:
                logits = RepetitionPenaltyLogitsProcessor(self.repetition_penalty)(history, logits)
            return logits.argmax(dim=-1)
        values, indices = self.candidates(history, logits)
        cdf = torch.softmax(values.double(), dim=-1).cumsum(dim=-1)
        if uniform is None:
            uniform = torch.rand(len(cdf), dtype=torch.float64, device=cdf.device)
        total = cdf[:, -1]
        target = torch.minimum(
            uniform.to(cdf.device, torch.float64) * total, torch.nextafter(total, torch.zeros_like(total))
        )
        choice = (cdf <= target[:, None]).sum(dim=-1, keepdim=True)  # the first token whose CDF passes the target
        return indices.gather(1, choice).squeeze(1)


def uniform_streams(seeds: list[int], steps: int) -> torch.Tensor:
    """[len(seeds), steps] float64 numbers in [0, 1): row i is answer i's random stream, drawn from
    its own generator seeded with `seeds[i]`, so it is the same whatever else is answered with it."""
    rows = [torch.rand(steps, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)) for seed in seeds]
    return torch.stack(rows) if rows else torch.zeros(0, steps, dtype=torch.float64)


@torch.no_grad()
def generate(
    model: AudioTextModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    audio_mask: torch.Tensor,
    audio: torch.Tensor | None = None,
    *,
    features: torch.Tensor | None = None,
    **generate_kwargs: Any,
) -> list[str]:
    """Decoded continuations of left-padded prompts through Hugging Face `generate`;
    `generate_kwargs` go to it (for example `max_new_tokens`, `do_sample`,
    `num_return_sequences`, whose answers come out grouped per prompt). The clips come as encoder
    inputs `audio` or cached `features` (`AudioLLM.merge_embeddings`)."""
    embeds = model.merge_embeddings(input_ids, audio_mask, audio, features=features)
    out = model.llm.generate(
        inputs_embeds=embeds,
        attention_mask=attention_mask,
        pad_token_id=model.tokenizer.pad_token_id,
        eos_token_id=_eos_ids(model),
        **generate_kwargs,
    )
    return model.tokenizer.batch_decode(out, skip_special_tokens=True)


def _eos_ids(model: AudioTextModel) -> list[int]:
    ids = model.llm.generation_config.eos_token_id
    ids = [ids] if isinstance(ids, int) else list(ids or [])
    if model.tokenizer.eos_token_id is not None:
        ids.append(model.tokenizer.eos_token_id)
    return sorted(set(ids))


@torch.no_grad()
def sample_answers(
    model: AudioTextModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    audio_mask: torch.Tensor,
    audio: torch.Tensor | None,
    repeats: int,
    sampling: Sampling,
    seeds: list[int] | None = None,
    settle: list[Callable[[str], Any] | None] | None = None,
    cut: list[bool] | None = None,
    features: torch.Tensor | None = None,
) -> list[list[str]]:
    """`repeats` answers to each left-padded prompt, the repeats sharing one prefill; the clips come
    as encoder inputs `audio` or cached `features` (`AudioLLM.merge_embeddings`).

    HF `generate(num_return_sequences=n)` copies each prompt n times before its first forward
    pass; here the prompt runs once and its KV cache is repeated. Sampling follows HF's chain
    (`Sampling.candidates`: repetition penalty over the prompt's text tokens and the answer, as
    LTU's `generate` saw them; then temperature, top-k, top-p), then the inverse CDF or argmax.

    Each answer (prompt-major: prompt i's repeat j is answer `i * repeats + j`) samples from its
    own random stream (`uniform_streams`): from `seeds[answer]` when given, else one draw from
    torch's global generator. Its tokens therefore depend on its own stream and its own logits
    only: not on the batch around it, nor on which answers stop when.

    `settle`, one entry per prompt: a function of an answer's text so far that returns its
    verdict once no continuation can change it (`interleave.eval.answers.settled_answer`), or None. An
    answer whose verdict is settled stops there, before its EOS (rows that stop leave the batch and
    cost nothing more). `cut`, when given, is filled with one flag per answer: stopped at its verdict.
    Answers are decoded without `clean_up_tokenization_spaces`, so an answer's text so far is the
    start of its whole text (less an unfinished UTF-8 character at its end, which `settle` never sees).
    """
    llm = model.llm
    out, positions = prefill(model, input_ids, attention_mask, audio_mask, audio, use_cache=True, features=features)
    cache = out.past_key_values
    cache.batch_repeat_interleave(repeats)
    logits = out.logits[:, -1].float().repeat_interleave(repeats, dim=0)
    mask = attention_mask.repeat_interleave(repeats, dim=0)
    position = positions[:, -1:].repeat_interleave(repeats, dim=0)
    # Audio and padding positions hold the pad id, which must not be penalised (it may be EOS):
    # they get the row's last text token instead, a repeat that the penalty ignores.
    text = (attention_mask.bool() & ~audio_mask).repeat_interleave(repeats, dim=0)
    history = input_ids.repeat_interleave(repeats, dim=0)
    history = torch.where(text, history, history[:, -1:])

    n, steps = len(history), sampling.max_new_tokens
    device = input_ids.device
    if seeds is not None and len(seeds) != n:
        raise ValueError(f"sample_answers: {len(seeds)} seeds for {n} answers")
    streams = None
    if sampling.do_sample:
        streams = (
            uniform_streams(seeds, steps) if seeds is not None else torch.rand(n, steps, dtype=torch.float64)
        ).to(device)
    checks = [None] * n if settle is None else [settle[row // repeats] for row in range(n)]
    stopped = [False] * n
    eos = torch.tensor(_eos_ids(model), device=device)
    rows = torch.arange(n, device=device)  # the answer each live row writes
    answers: list[list[int]] = [[] for _ in range(n)]
    for step in range(steps):
        token = sampling.next_tokens(history, logits, None if streams is None else streams[rows, step])
        live = rows.tolist()
        for row, value in zip(live, token.tolist()):
            answers[row].append(value)
        finished = torch.isin(token, eos)
        if step + 1 < steps:
            for i in _settled_rows(model.tokenizer, answers, live, checks, finished.tolist()):
                finished[i], stopped[live[i]] = True, True
        if bool(finished.all()):
            break
        if bool(finished.any()):  # finished rows leave the batch, so they cost nothing more
            keep = (~finished).nonzero().squeeze(1)
            cache.batch_select_indices(keep)
            rows, token, history, mask, position = rows[keep], token[keep], history[keep], mask[keep], position[keep]
        history = torch.cat([history, token[:, None]], dim=1)
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        position = position + 1
        out = llm(
            input_ids=token[:, None], attention_mask=mask, position_ids=position, past_key_values=cache, use_cache=True
        )
        logits = out.logits[:, -1].float()
    if cut is not None:
        cut[:] = stopped
    texts = _decode(model.tokenizer, answers)
    return [texts[i : i + repeats] for i in range(0, len(texts), repeats)]


def _decode(tokenizer: Any, answers: list[list[int]]) -> list[str]:
    return tokenizer.batch_decode(answers, skip_special_tokens=True, clean_up_tokenization_spaces=False)


def _settled_rows(
    tokenizer: Any, answers: list[list[int]], live: list[int], checks: list, finished: list[bool]
) -> list[int]:
    """Positions (in the live batch) of the rows whose verdict is now settled."""
    ask = [i for i, row in enumerate(live) if checks[row] is not None and not finished[i]]
    texts = _decode(tokenizer, [answers[live[i]] for i in ask])
    # An unfinished UTF-8 character decodes as U+FFFD at the end; the next token may complete it.
    return [i for i, text in zip(ask, texts) if checks[live[i]](text.rstrip("\ufffd")) is not None]


def prefill(
    model: AudioTextModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    audio_mask: torch.Tensor,
    audio: torch.Tensor | None,
    use_cache: bool,
    features: torch.Tensor | None = None,
) -> tuple[Any, torch.Tensor]:
    """One forward pass of left-padded prompts: the LLM output (logits only where the answer
    starts, the KV cache if asked) and the position ids, counted from each row's first token."""
    embeds = model.merge_embeddings(input_ids, audio_mask, audio, features=features)
    positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    out = model.llm(
        inputs_embeds=embeds,
        attention_mask=attention_mask,
        position_ids=positions,
        use_cache=use_cache,
        logits_to_keep=1,
    )
    return out, positions


def answer_token_ids(tokenizer: Any, words: tuple[str, ...], context: str = "") -> list[int]:
    """First token of each spelling of an answer word (e.g. "Yes", "yes") as it starts right after
    `context` (the prompt's end) in the whole string: SentencePiece reads "Yes" alone as "▁Yes" but
    "Response:\nYes" ends in "Yes", the token the model actually writes first."""
    ids = set()
    for word in words:
        tokens, (cut,), _ = tokens_with_audio(tokenizer, context + word, [len(context)])
        ids.add(tokens[cut])
    return sorted(ids)


@torch.no_grad()
def yes_probability(
    model: AudioTextModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    audio_mask: torch.Tensor,
    audio: torch.Tensor | None,
    context: str = "",
    features: torch.Tensor | None = None,
) -> list[float]:
    """P(yes) / (P(yes) + P(no)) for the first answer token, from one forward pass of each prompt:
    the deterministic scoring mode, reported beside the sampled answers, never instead of them.
    `context` is the text the prompts end with, so the answer's first tokens are found as they follow it.
    The clips come as encoder inputs `audio` or cached `features` (`AudioLLM.merge_embeddings`)."""
    out, _ = prefill(model, input_ids, attention_mask, audio_mask, audio, use_cache=False, features=features)
    probs = torch.softmax(out.logits[:, -1].float(), dim=-1)
    yes = probs[:, answer_token_ids(model.tokenizer, ("Yes", "yes", "YES"), context)].sum(-1)
    no = probs[:, answer_token_ids(model.tokenizer, ("No", "no", "NO"), context)].sum(-1)
    return (yes / (yes + no).clamp(min=1e-12)).tolist()
