"""Generation from an AudioLLM, both paths in one place.

`generate`: Hugging Face `generate` on the merged embeddings (greedy or sampled, one answer per
prompt or `num_return_sequences`), for validation, `predict` and anything HF's options cover.
`sample_answers`: SHARD's path, `repeats` sampled answers per prompt that share one prefill
(the prompt runs once and its KV cache is repeated), with LTU's sampling settings (`Sampling`).
`yes_probability`: the deterministic scoring mode, P(yes) against P(no) for the first answer token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from transformers import RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper, TopPLogitsWarper

from interleave.collate import tokens_with_audio

if TYPE_CHECKING:  # the model calls these functions; they only read it
    from interleave.model import AudioLLM


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

    def next_tokens(self, history: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """One token per row: sampled from `candidates`, or the argmax without sampling."""
        if not self.do_sample:
            if self.repetition_penalty != 1.0:
                logits = RepetitionPenaltyLogitsProcessor(self.repetition_penalty)(history, logits)
            return logits.argmax(dim=-1)
        values, indices = self.candidates(history, logits)
        choice = torch.multinomial(torch.softmax(values, dim=-1), num_samples=1)
        return indices.gather(1, choice).squeeze(1)


@torch.no_grad()
def generate(
    model: AudioLLM,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    audio_mask: torch.Tensor,
    audio: torch.Tensor | None,
    **generate_kwargs: Any,
) -> list[str]:
    """Decoded continuations of left-padded prompts through Hugging Face `generate`;
    `generate_kwargs` go to it (for example `max_new_tokens`, `do_sample`,
    `num_return_sequences`, whose answers come out grouped per prompt)."""
    embeds = model.merge_embeddings(input_ids, audio_mask, audio)
    out = model.llm.generate(
        inputs_embeds=embeds,
        attention_mask=attention_mask,
        pad_token_id=model.tokenizer.pad_token_id,
        eos_token_id=_eos_ids(model),
        **generate_kwargs,
    )
    return model.tokenizer.batch_decode(out, skip_special_tokens=True)


def _eos_ids(model: AudioLLM) -> list[int]:
    ids = model.llm.generation_config.eos_token_id
    ids = [ids] if isinstance(ids, int) else list(ids or [])
    if model.tokenizer.eos_token_id is not None:
        ids.append(model.tokenizer.eos_token_id)
    return sorted(set(ids))


@torch.no_grad()
def sample_answers(
    model: AudioLLM,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    audio_mask: torch.Tensor,
    audio: torch.Tensor | None,
    repeats: int,
    sampling: Sampling,
) -> list[list[str]]:
    """`repeats` answers to each left-padded prompt, the repeats sharing one prefill.

    HF `generate(num_return_sequences=n)` copies each prompt n times before its first forward
    pass; here the prompt runs once and its KV cache is repeated. Sampling follows HF's chain
    (`Sampling.candidates`: repetition penalty over the prompt's text tokens and the answer, as
    LTU's `generate` saw them; then temperature, top-k, top-p), then multinomial or argmax.
    """
    llm = model.llm
    out, positions = prefill(model, input_ids, attention_mask, audio_mask, audio, use_cache=True)
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

    eos = torch.tensor(_eos_ids(model), device=input_ids.device)
    rows = torch.arange(len(history), device=input_ids.device)  # the answer each live row writes
    answers: list[list[int]] = [[] for _ in range(len(history))]
    for _ in range(sampling.max_new_tokens):
        token = sampling.next_tokens(history, logits)
        for row, value in zip(rows.tolist(), token.tolist()):
            answers[row].append(value)
        finished = torch.isin(token, eos)
        if bool(finished.all()):
            break
        if bool(finished.any()):  # finished rows leave the batch, so they cost nothing more
            keep = (~finished).nonzero().squeeze(1)
            cache.batch_select_indices(keep)
            rows, token, history, mask, position = rows[keep], token[keep], history[keep], mask[keep], position[keep]
        history = torch.cat([history, token[:, None]], dim=1)
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        position = position + 1
        out = llm(input_ids=token[:, None], attention_mask=mask, position_ids=position, past_key_values=cache, use_cache=True)
        logits = out.logits[:, -1].float()
    texts = model.tokenizer.batch_decode(answers, skip_special_tokens=True)
    return [texts[i : i + repeats] for i in range(0, len(texts), repeats)]


def prefill(
    model: AudioLLM, input_ids: torch.Tensor, attention_mask: torch.Tensor, audio_mask: torch.Tensor,
    audio: torch.Tensor | None, use_cache: bool,
) -> tuple[Any, torch.Tensor]:
    """One forward pass of left-padded prompts: the LLM output (logits only where the answer
    starts, the KV cache if asked) and the position ids, counted from each row's first token."""
    embeds = model.merge_embeddings(input_ids, audio_mask, audio)
    positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    out = model.llm(inputs_embeds=embeds, attention_mask=attention_mask, position_ids=positions,
                    use_cache=use_cache, logits_to_keep=1)
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
    model: AudioLLM, input_ids: torch.Tensor, attention_mask: torch.Tensor, audio_mask: torch.Tensor,
    audio: torch.Tensor | None, context: str = "",
) -> list[float]:
    """P(yes) / (P(yes) + P(no)) for the first answer token, from one forward pass of each prompt:
    the deterministic scoring mode, reported beside the sampled answers, never instead of them.
    `context` is the text the prompts end with, so the answer's first tokens are found as they follow it."""
    out, _ = prefill(model, input_ids, attention_mask, audio_mask, audio, use_cache=False)
    probs = torch.softmax(out.logits[:, -1].float(), dim=-1)
    yes = probs[:, answer_token_ids(model.tokenizer, ("Yes", "yes", "YES"), context)].sum(-1)
    no = probs[:, answer_token_ids(model.tokenizer, ("No", "no", "NO"), context)].sum(-1)
    return (yes / (yes + no).clamp(min=1e-12)).tolist()
