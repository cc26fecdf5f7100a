"""How one LTU instruction becomes one interleaved prompt: the paper's templates (Appendix B,
Tables 3 to 6), the validation rules every rewrite must pass, and three interchangeable
backends (an OpenAI-compatible endpoint, a local Hugging Face LM, a rule-based rewriter).

A backend is any object with `rewrite(instruction, kind, rng) -> str`; it raises `RewriteFailed`
for a failed attempt (the caller retries with a new sample) and `InterleaveError` for a fault no
retry can fix (a refused key, a wrong URL). `kind` is one of `KINDS`.
"""

from __future__ import annotations

import ast
import email.utils
import http.client
import json
import logging
import random
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Protocol

from interleave import AUDIO_PLACEHOLDER
from interleave.errors import InterleaveError

log = logging.getLogger("interleave.rephrase")

KINDS = ("label", "acoustic", "open-ended")

# Table 3: one of these is drawn per request and put into the system prompt.
DIVERSITY_INSTRUCTIONS = (
    "Use creative and varied language.",
    "Employ different sentence structures and word choices.",
    "Be innovative in your phrasing while maintaining clarity.",
    "Use diverse vocabulary and avoid repetitive patterns.",
    "Create unique formulations while keeping the core meaning.",
    "Vary your word choice and sentence construction.",
    "Express the same concept using different linguistic approaches.",
    "Be original in your expression while preserving the instruction\u2019s purpose.",
)

_IMPORTANT = (
    "IMPORTANT: {instruction} Make each instruction distinct and avoid formulaic responses. "
    "Use different words and sentence structures even when the meaning is similar."
)

# Tables 4, 5 and 6, verbatim; {instruction} is a Table 3 line, {prompt} the original instruction.
TEMPLATES: dict[str, tuple[str, str]] = {
    "label": (
        "You are an expert AI assistant specializing in revising prompts for multimodal language models. "
        "Your task is to rewrite a given prompt into a new, interleaved format.\n\n"
        "Your Rules:\n"
        "1. You must take the user's 'Old Prompt' and rephrase it into an abstract, interleaved instruction.\n"
        "2. The new prompt must contain the exact placeholder [AUDIO] one and only one time.\n"
        '3. The new prompt must avoid words that explicitly refer to a media file, such as "clip," '
        '"recording," or "audio file."\n'
        "4. The new prompt must be completely general and scenario-agnostic.\n"
        '5. Your final output must be a single JSON object with one key: "revised_prompt". '
        "Do not include any other text.\n\n" + _IMPORTANT,
        "I need to revise the following prompt for a simple audio classification task. "
        "The goal is to ask for a list of labels.\n\n"
        'Old Prompt: "{prompt}"\n\n'
        "Please revise it into a new, single-string interleaved prompt.\n\n"
        "Good Revision Examples:\n"
        '\u2022 "After you hear [AUDIO], what are the appropriate classification labels?"\n'
        '\u2022 "Listen to this: [AUDIO]. Now, list the corresponding tags."\n'
        '\u2022 "Consider [AUDIO]. What are its corresponding labels?"\n\n'
        'Provide your output as a single JSON object with the key "revised_prompt".',
    ),
    "acoustic": (
        "You are an expert AI assistant specializing in revising prompts for multimodal language models. "
        "Your task is to rewrite a given prompt into a new, interleaved format for a complex audio "
        "classification task that requires acoustic descriptions.\n\n"
        "Your Rules:\n"
        "1. You must take the user\u2019s \u2018Old Prompt\u2019 and rephrase it into an abstract, "
        "interleaved instruction.\n"
        "2. The new prompt must contain the exact placeholder [AUDIO] one and only one time.\n"
        "3. The prompt must explicitly ask for both a label AND a description of its acoustic features.\n"
        '4. The new prompt must avoid words that explicitly refer to a media file, such as "clip," '
        '"recording," or "audio file."\n'
        "5. The new prompt must be completely general and scenario-agnostic.\n"
        "6. Your final output must be a single JSON object with one key: revised_prompt, "
        "e.g. {{'revised_prompt': '...'}}.\n\n" + _IMPORTANT,
        "I need to revise the following prompt for a complex audio classification task. The goal is to "
        "ask for a list of labels, each with a description of its acoustic properties.\n\n"
        'Old Prompt: "{prompt}"\n\n'
        "Please revise it into a new, single-string interleaved prompt.\n\n"
        "Good Revision Examples:\n"
        '\u2022 "Listen to this: [AUDIO]. For each component you identify, list its label and describe '
        'its acoustic features."\n'
        '\u2022 "Regarding [AUDIO], what labels are suitable, and what are their key sound properties?"\n'
        '\u2022 "Analyze what you hear in [AUDIO]. Return a list of labels paired with their '
        'distinguishing acoustic qualities."\n\n'
        "Provide your output as a single JSON object with the key revised_prompt, "
        "e.g. {{'revised_prompt': '...'}}.",
    ),
    "open-ended": (
        "You are an expert AI assistant specializing in revising prompts for multimodal language models. "
        "Your task is to rewrite a given open-ended question into a new, interleaved format.\n\n"
        "Your Rules:\n"
        "1. You must take the user's 'Old Prompt' and rephrase it by naturally integrating the [AUDIO] "
        "placeholder into the question.\n"
        "2. The new prompt must preserve the full intent and meaning of the original question.\n"
        "3. The new prompt must contain the exact placeholder [AUDIO] one and only one time.\n"
        '4. The new prompt must avoid words that explicitly refer to a media file, such as "clip," '
        '"recording," or "audio file."\n'
        "5. The resulting prompt should be a single, grammatically correct, and natural-sounding question.\n"
        '6. Your final output must be a single JSON object with one key: "revised_prompt". '
        "Do not include any other text.\n\n" + _IMPORTANT,
        "I need to revise the following prompt for an open-ended audio question-answering task. The goal "
        "is to rephrase the question to include an audio placeholder.\n\n"
        'Old Prompt: "{prompt}"\n\n'
        "Please revise it into a new, single-string interleaved prompt.\n\n"
        "Good Revision Examples:\n"
        '\u2022 Old: "What other sound events, if any, can be heard in the audio clip?" -> '
        'New: "What other sound events, if any, can be heard in [AUDIO]?"\n'
        '\u2022 Old: "Based on the acoustic features, can you tell the type of vacuum cleaner?" -> '
        'New: "Based on [AUDIO], can you tell the type of vacuum cleaner?"\n'
        '\u2022 Old: "Describe the environment where this sound was likely recorded." -> '
        'New: "Based on what you hear in [AUDIO], describe the environment where it was likely recorded."\n\n'
        'Provide your output as a single JSON object with the key "revised_prompt".',
    ),
}

# Words for a media file that a rewrite must not contain (Appendix B's rule 3, plus "this audio").
MEDIA_WORDS = ("clip", "recording", "audio file", "audio clip", "this audio")

# The acoustic-feature check: a rewrite of a `cla_label_des` prompt must still ask for what the
# sounds are (one LABEL_CUES stem) and how they sound (one ACOUSTIC_CUES stem).
LABEL_CUES = (
    "label",
    "tag",
    "categor",
    "class",
    "identif",
    "name",
    "what sound",
    "which sound",
    "sound event",
    "sources",
    "what is",
    "what are",
    "list",
    "enumerate",
    "recogni",
)
ACOUSTIC_CUES = (
    "acoustic",
    "auditory",
    "sonic",
    "feature",
    "propert",
    "characteristic",
    "qualit",
    "trait",
    "timbre",
    "pitch",
    "tone",
    "texture",
    "describ",
    "descript",
    "sound like",
)


def messages(instruction: str, kind: str, diversity: str) -> list[dict[str, str]]:
    """The system and user chat messages of the paper's template for `kind`."""
    system, user = TEMPLATES[kind]
    return [
        {"role": "system", "content": system.format(instruction=diversity)},
        {"role": "user", "content": user.format(prompt=instruction)},
    ]


def draw_sampling(rng: random.Random) -> tuple[str, float]:
    """One diversity instruction (Table 3) and a temperature drawn uniformly from [0.7, 1.1]."""
    return rng.choice(DIVERSITY_INSTRUCTIONS), rng.uniform(0.7, 1.1)


def validate(prompt: str, kind: str, media_words: tuple[str, ...] = MEDIA_WORDS) -> str | None:
    """None if `prompt` obeys Appendix B's rules, else the reason it does not.

    Rules: non-empty; exactly one [AUDIO]; none of `media_words` (whole words, case-insensitive,
    the placeholder itself excluded); an `acoustic` prompt still asks for labels (a LABEL_CUES stem)
    and their acoustic properties (an ACOUSTIC_CUES stem).
    """
    if not prompt or not prompt.strip():
        return "empty"
    count = prompt.count(AUDIO_PLACEHOLDER)
    if count == 0:
        return "no_placeholder"
    if count > 1:
        return "multiple_placeholders"
    text = prompt.replace(AUDIO_PLACEHOLDER, " \x00 ").lower()
    for word in media_words:
        if re.search(rf"(?<![\w-]){re.escape(word.lower())}(?![\w-])", text):
            return "media_word"
    if kind == "acoustic":
        if not any(cue in text for cue in LABEL_CUES) or not any(cue in text for cue in ACOUSTIC_CUES):
            return "acoustic_request_missing"
    return None


class RewriteFailed(Exception):
    """One attempt produced no usable prompt; `reason` is a short code kept in the rejects file."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class Rewriter(Protocol):
    def rewrite(self, instruction: str, kind: str, rng: random.Random) -> str: ...


def parse_answer(content: str) -> str:
    """The `revised_prompt` of a model's JSON answer (code fences and single quotes tolerated)."""
    text = content.strip()
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        raise RewriteFailed("malformed_answer", "no JSON object in the answer")
    body = text[start : end + 1]
    try:
        obj = json.loads(body)
    except json.JSONDecodeError:
        try:
            obj = ast.literal_eval(body)  # Table 5 itself shows {'revised_prompt': '...'}
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise RewriteFailed("malformed_answer", "the answer is not valid JSON") from None
    value = obj.get("revised_prompt") if isinstance(obj, dict) else None
    if not isinstance(value, str):
        raise RewriteFailed("malformed_answer", "no string 'revised_prompt' in the answer")
    return value.strip()


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """`text` with every secret replaced by `***`."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


# ---------------------------------------------------------------------------------------------
# template: rule-based, no LLM

_NOUN = r"(?:audio[ -]?clip|audio[ -]?file|audio recording|sound clip|sound file|recording|clip|audio(?! (?:events?|features?|labels?|tags?|sources?|content|scene|clues?|characteristics|information|data|signal)))"
_MEDIA_PHRASE = re.compile(
    rf"\b(?:(?:the|this|that|a|an|given|provided|following|same)\s+)*{_NOUN}\b(?:\s+(?:given|provided))?",
    re.IGNORECASE,
)
_LISTEN = re.compile(
    r"^\s*(?:please\s+)?listen(?:\s+to)?\s+(?:the\s+|this\s+)?(?:sound|audio)?\s*(?:and|,|\.)\s*", re.IGNORECASE
)


@dataclass
class TemplateRewriter:
    """Deterministic rule-based rewriter: the first phrase naming the media ("in this audio clip",
    "the recording") becomes [AUDIO], later ones become "it"; a prompt naming none gets a lead-in
    ("Consider [AUDIO]. ..."); an acoustic-feature prompt that no longer asks for acoustic features
    gets that request appended. Same input, same output; the rng is unused."""

    media_words: tuple[str, ...] = MEDIA_WORDS

    def rewrite(self, instruction: str, kind: str, rng: random.Random) -> str:
        text = " ".join(instruction.split())
        seen = []

        def replace(match: re.Match) -> str:
            seen.append(match.group(0))
            return AUDIO_PLACEHOLDER if len(seen) == 1 else "it"

        result = _MEDIA_PHRASE.sub(replace, text)
        if not seen:
            result = _LISTEN.sub("", result) or result
            result = f"Consider {AUDIO_PLACEHOLDER}. {result[:1].upper()}{result[1:]}"
        if kind == "acoustic" and validate(result, kind, self.media_words) == "acoustic_request_missing":
            result = f"{result.rstrip()} For each label, describe its acoustic features."
        return result


# ---------------------------------------------------------------------------------------------
# openai: any OpenAI-compatible chat-completions endpoint

_RETRYABLE = {429, 500, 502, 503, 504, 520, 522, 524}


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass
class OpenAIRewriter:
    """Chat-completions client over urllib: paper templates, Table 3 diversity line, temperature in
    [0.7, 1.1], JSON answer. HTTP 429/5xx, timeouts and dropped connections are retried with
    exponential backoff and full jitter (Retry-After honoured); other 4xx stop the run."""

    base_url: str
    model: str
    api_key: str = field(default="", repr=False)
    timeout: float = 60.0
    max_retries: int = 6
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    json_mode: bool = True
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)

    def cancel(self) -> None:
        """Stop retrying: requests waiting for a retry give up at once (Ctrl-C)."""
        self._stop.set()

    def rewrite(self, instruction: str, kind: str, rng: random.Random) -> str:
        diversity, temperature = draw_sampling(rng)
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages(instruction, kind, diversity),
            "temperature": round(temperature, 4),
        }
        if self.json_mode:
            body["response_format"] = {"type": "json_object"}
        answer = self._post(json.dumps(body).encode("utf-8"), rng)
        try:
            content = answer["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise RewriteFailed("malformed_answer", "no choices[0].message.content in the response") from None
        if not isinstance(content, str):
            raise RewriteFailed("malformed_answer", "message content is not a string")
        return parse_answer(content)

    def _post(self, data: bytes, rng: random.Random) -> dict:
        url = self.base_url.rstrip("/") + "/chat/completions"
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        reason = "http_error"
        for attempt in range(self.max_retries + 1):
            if self._stop.is_set():
                raise RewriteFailed("cancelled")
            wait: float | None = None
            try:
                request = urllib.request.Request(url, data=data, headers=headers, method="POST")
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    raw = response.read()
                try:
                    return json.loads(raw)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    raise RewriteFailed("malformed_answer", "the response body is not JSON") from None
            except urllib.error.HTTPError as err:
                if err.code not in _RETRYABLE:
                    detail = self._redact(err.read(500).decode("utf-8", "replace"))
                    raise InterleaveError(f"{self._redact(url)}: HTTP {err.code} {err.reason}: {detail}") from None
                reason, wait = f"http_{err.code}", _retry_after(err.headers.get("Retry-After"))
                err.close()
            except TimeoutError:
                reason = "timeout"
            except urllib.error.URLError as err:
                if isinstance(err.reason, (TimeoutError, socket.timeout)):
                    reason = "timeout"
                elif isinstance(err.reason, ConnectionRefusedError) and attempt == self.max_retries:
                    raise InterleaveError(f"{self._redact(url)}: connection refused") from None
                else:
                    reason = "connection_error"
            except (ConnectionError, OSError, http.client.HTTPException):
                reason = "connection_error"
            if attempt == self.max_retries:
                break
            backoff = rng.uniform(0, min(self.backoff_max, self.backoff_base * 2**attempt))
            delay = max(wait, backoff) if wait is not None else backoff
            log.debug("retrying after %s in %.2fs", reason, delay)
            self._stop.wait(delay)
        raise RewriteFailed(reason, f"gave up after {self.max_retries + 1} requests")

    def _redact(self, text: str) -> str:
        return redact(text, (self.api_key,))


# ---------------------------------------------------------------------------------------------
# local: a Hugging Face causal LM on this machine


@dataclass
class LocalRewriter:
    """A local causal LM (an interleave.model.llm spec such as `builtin:smollm2-135m-instruct`, loaded on
    first use; or a model and tokenizer given directly) prompted with the same templates through
    the tokenizer's chat template. One generation at a time."""

    model: str = "builtin:smollm2-135m-instruct"
    max_new_tokens: int = 96
    llm: Any = field(default=None, repr=False)
    tokenizer: Any = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def rewrite(self, instruction: str, kind: str, rng: random.Random) -> str:
        import torch

        from interleave.model.llm import load_llm, load_tokenizer

        diversity, temperature = draw_sampling(rng)
        with self._lock:
            if self.tokenizer is None:
                self.tokenizer = load_tokenizer(self.model)
            if self.llm is None:
                self.llm = load_llm(self.model).eval()
            inputs = self.tokenizer.apply_chat_template(
                messages(instruction, kind, diversity),
                add_generation_prompt=True,
                return_tensors="pt",
                return_dict=True,
            )
            torch.manual_seed(rng.randrange(2**31))
            with torch.no_grad():
                out = self.llm.generate(
                    **inputs,
                    do_sample=True,
                    temperature=temperature,
                    max_new_tokens=self.max_new_tokens,
                    pad_token_id=self.tokenizer.pad_token_id,
                )
            text = self.tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        return parse_answer(text)


def make_rewriter(backend: str, **options: Any) -> Rewriter:
    """The backend named `template`, `openai` or `local`, built from its options."""
    if backend == "template":
        return TemplateRewriter(media_words=options.get("media_words", MEDIA_WORDS))
    if backend == "openai":
        if not options.get("model"):
            raise InterleaveError("--backend openai needs --model")
        keys = ("base_url", "model", "api_key", "timeout", "max_retries", "backoff_base", "backoff_max", "json_mode")
        return OpenAIRewriter(**{k: options[k] for k in keys if k in options})
    if backend == "local":
        return LocalRewriter(model=options.get("model") or "builtin:smollm2-135m-instruct")
    raise InterleaveError(f"unknown backend '{backend}'; known: template, openai, local")
