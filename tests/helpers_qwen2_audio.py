"""A tiny random-weight Qwen2-Audio saved as the hub leaves the released one, built offline.

`save_tiny_qwen2_audio(folder)` writes a `Qwen2AudioForConditionalGeneration` built from
transformers' config classes (a Whisper-style tower of 128 mel bins, a Linear projector, a Qwen2
LLM) with its `Qwen2AudioProcessor`: a `WhisperFeatureExtractor` of 128 bins and a Qwen2-style
byte-level BPE tokenizer trained here with the family's special tokens, and the released chat
template (`QWEN2_AUDIO_CHAT_TEMPLATE`, Qwen2-Audio-7B-Instruct's) written where the hub has it.
`reference_logits` runs the transformers model itself on raw waveforms and a conversation: what
the framework's own path must equal.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from tests.conftest import CORPUS, QWEN2_SPLIT

SAMPLE_RATE = 16000
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"]

# Qwen2-Audio-7B-Instruct's chat template as released (its tokenizer_config.json / chat_template.json).
QWEN2_AUDIO_CHAT_TEMPLATE = (
    "{% set audio_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n"
    "{% else %}"
    "{% for content in message['content'] %}"
    "{% if 'audio' in content or 'audio_url' in content %}"
    "{% set audio_count.value = audio_count.value + 1 %}"
    "Audio {{ audio_count.value }}: <|audio_bos|><|AUDIO|><|audio_eos|>\n"
    "{% elif 'text' in content %}"
    "{{ content['text'] }}"
    "{% endif %}"
    "{% endfor %}"
    "<|im_end|>\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}"
    "<|im_start|>assistant\n"
    "{% endif %}"
)

CHAT_CORPUS = CORPUS + [
    "system\nYou are a helpful assistant.\nuser\nAudio 1: Audio 2: What's that sound?\nassistant\n",
    "Is the first clip similar to the second one? Which one is louder? A dog barks, a siren wails.",
]

TINY_TOWER = dict(num_mel_bins=128, d_model=32, encoder_layers=2, encoder_attention_heads=4, encoder_ffn_dim=64)
TINY_QWEN2 = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=4096,
    tie_word_embeddings=False,
)


def build_qwen2_audio_tokenizer():
    """A Qwen2-style byte-level BPE tokenizer (Qwen2's split, no BOS) holding Qwen2-Audio's special
    tokens; EOS `<|im_end|>`, pad `<|endoftext|>` as the released tokenizer has them."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT), "isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=500, special_tokens=SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CHAT_CORPUS * 4, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", additional_special_tokens=SPECIAL[3:]
    )


def save_tiny_qwen2_audio(folder: Path, seed: int = 0, template_in: str = "chat_template.jinja") -> Path:
    """Write a tiny random-weight Qwen2-Audio folder (config, safetensors, processor, tokenizer, chat
    template in `template_in`: `chat_template.jinja`, `chat_template.json` or `tokenizer_config.json`)."""
    from transformers import (
        Qwen2AudioConfig,
        Qwen2AudioEncoderConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        Qwen2Config,
        WhisperFeatureExtractor,
    )

    tokenizer = build_qwen2_audio_tokenizer()
    config = Qwen2AudioConfig(
        audio_config=Qwen2AudioEncoderConfig(**TINY_TOWER),
        text_config=Qwen2Config(
            vocab_size=len(tokenizer),
            bos_token_id=None,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            **TINY_QWEN2,
        ),
        audio_token_index=tokenizer.convert_tokens_to_ids("<|AUDIO|>"),
    )
    torch.manual_seed(seed)
    model = Qwen2AudioForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = None
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    extractor = WhisperFeatureExtractor(feature_size=128)
    processor = Qwen2AudioProcessor(
        feature_extractor=extractor, tokenizer=tokenizer, chat_template=QWEN2_AUDIO_CHAT_TEMPLATE
    )
    processor.save_pretrained(folder)
    _move_template(folder, template_in)
    return folder


def _move_template(folder: Path, where: str) -> None:
    """Keep the chat template in one of the three places a hub folder may hold it."""
    jinja, as_json = folder / "chat_template.jinja", folder / "chat_template.json"
    template = QWEN2_AUDIO_CHAT_TEMPLATE
    for path in (jinja, as_json):
        path.unlink(missing_ok=True)
    tok_config = folder / "tokenizer_config.json"
    fields = json.loads(tok_config.read_text())
    fields.pop("chat_template", None)
    if where == "chat_template.jinja":
        jinja.write_text(template)
    elif where == "chat_template.json":
        as_json.write_text(json.dumps({"chat_template": template}))
    elif where == "tokenizer_config.json":
        fields["chat_template"] = template
    else:
        raise ValueError(where)
    tok_config.write_text(json.dumps(fields, indent=2))


def clip(seconds: float, seed: int = 0, freq: float = 440.0) -> np.ndarray:
    """A 16 kHz float32 waveform: a tone with a little noise (no two seeds alike)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.3 * np.sin(2 * np.pi * freq * t) + 0.05 * rng.standard_normal(t.shape)).astype(np.float32)


def conversation(texts_and_clips: list) -> list[dict]:
    """A user turn: `texts_and_clips` in order (a str is text, anything else an audio item)."""
    content = [
        {"type": "text", "text": x} if isinstance(x, str) else {"type": "audio", "audio": x} for x in texts_and_clips
    ]
    return [{"role": "user", "content": content}]


def processor_inputs(folder: Path, batch: list[tuple[list, str | None]], side: str = "right") -> dict:
    """The processor's own inputs for one-turn conversations (each its items and an optional
    answer, written after the assistant's turn start and ended with `<|im_end|>`), padded on
    `side`; the waveforms are the audio items, in order."""
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(folder)
    texts, audios = [], []
    for items, answer in batch:
        text = processor.apply_chat_template(conversation(items), add_generation_prompt=True, tokenize=False)
        texts.append(text if answer is None else f"{text}{answer}<|im_end|>")
        audios += [x for x in items if not isinstance(x, str)]
    processor.tokenizer.padding_side = side
    return processor(text=texts, audio=audios or None, sampling_rate=SAMPLE_RATE, return_tensors="pt", padding=True)


def reference_logits(folder: Path, inputs: dict) -> torch.Tensor:
    """`Qwen2AudioForConditionalGeneration`'s logits (float32) on the processor's inputs."""
    from transformers import Qwen2AudioForConditionalGeneration

    model = Qwen2AudioForConditionalGeneration.from_pretrained(folder, dtype=torch.float32).eval()
    with torch.no_grad():
        return model(**inputs).logits
