"""The audio encoders: audio files to features the LLM reads, and the registry the config picks from.

`audio` (loading a clip, LTU's Kaldi fbank), `base` (the `Encoder` contract, `pool_frames`), one
module per kind (`cavmae`, `ast`, `whisper`, `qwen2_audio`, `audioflamingo3`) and `cache` (the on-disk cache of a frozen encoder's
features). This package's own code is the registry:

`model.encoder` is `KIND[:SIZE]`: `cavmae` (the default; sizes `cavmae`, `small`, `tiny`; the bare
`small` and `tiny` still mean CAV-MAE), `ast` (sizes `base`, `tiny`), `whisper` (`base`, `tiny`)
or `qwen2_audio` (`base`: Qwen2-Audio-7B's tower, `tiny`; its span follows the clip's length, 25
positions per second, and `model.pretrained` takes it from a released folder) or `audioflamingo3`
(`base`: Audio Flamingo 3's tower, `tiny`; 30-s windows, up to 20, joined into one span of 25
positions per second; `model.pretrained` takes it from a released folder). A size is a
random-weight architecture (`tiny`: the tests' size, not OpenAI's whisper-tiny);
`model.encoder_kwargs` overrides its fields (CAV-MAE's constructor arguments, or the HF config's
fields). `model.encoder_path` is a local Hugging Face folder (`save_pretrained` of an
`ASTModel`/`ASTForAudioClassification`, or of a Whisper model, with its
`preprocessor_config.json`; a released Qwen2-Audio folder for `qwen2_audio`): weights, config and feature settings all come from it.

Each kind uses the input features its checkpoint was trained with and meets `base.Encoder`'s
contract (see there). To add a kind: one module with its subclass of `Encoder` and its sizes
(`presets`), and one line in `ENCODERS`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from interleave import NUM_AUDIO_TOKENS
from interleave.encoders.ast import ASTEncoder
from interleave.encoders.audioflamingo3 import AudioFlamingo3Tower
from interleave.encoders.base import Encoder
from interleave.encoders.cavmae import PRESETS as CAVMAE_PRESETS
from interleave.encoders.cavmae import cavmae_encoder
from interleave.encoders.qwen2_audio import Qwen2AudioTower
from interleave.encoders.whisper import WhisperAudioEncoder
from interleave.errors import InterleaveError


class EncoderKind(NamedTuple):
    """One kind of `model.encoder`: its sizes (a size's name -> its random-weight architecture's
    fields) and what builds it, `build(path=, config=, audio_tokens=, frozen=)`."""

    sizes: dict[str, dict]
    build: Callable[..., Encoder]


ENCODERS: dict[str, EncoderKind] = {  # by the KIND of `model.encoder`
    "cavmae": EncoderKind(sizes=CAVMAE_PRESETS, build=cavmae_encoder),
    "ast": EncoderKind(sizes=ASTEncoder.presets, build=ASTEncoder),
    "whisper": EncoderKind(sizes=WhisperAudioEncoder.presets, build=WhisperAudioEncoder),
    "qwen2_audio": EncoderKind(sizes=Qwen2AudioTower.presets, build=Qwen2AudioTower),
    "audioflamingo3": EncoderKind(sizes=AudioFlamingo3Tower.presets, build=AudioFlamingo3Tower),
}
DEFAULT_SIZE = {"cavmae": "cavmae", "ast": "base", "whisper": "base", "qwen2_audio": "base", "audioflamingo3": "base"}


def _check_fields(kind: str, config: dict) -> None:
    """HF configs accept any keyword silently; a misspelt or another kind's field is refused here."""
    from transformers import ASTConfig, AudioFlamingo3EncoderConfig, Qwen2AudioEncoderConfig, WhisperConfig

    config_class = {
        "ast": ASTConfig,
        "whisper": WhisperConfig,
        "qwen2_audio": Qwen2AudioEncoderConfig,
        "audioflamingo3": AudioFlamingo3EncoderConfig,
    }[kind]
    known = set(config_class().to_dict())
    unknown = sorted(set(config) - known)
    if unknown:
        raise InterleaveError(
            f"model.encoder_kwargs: {unknown} are not fields of the {kind} encoder's config "
            "(left from another encoder kind?)"
        )


def parse_spec(spec: str) -> tuple[str, str]:
    """`KIND[:SIZE]` -> (kind, size); the bare CAV-MAE sizes `small` and `tiny` keep their old meaning."""
    kind, _, size = spec.partition(":")
    if not size and kind in CAVMAE_PRESETS and kind != "cavmae":
        kind, size = "cavmae", kind
    if kind not in ENCODERS:
        raise InterleaveError(f"unknown model.encoder {spec!r}: write KIND[:SIZE], KIND one of {sorted(ENCODERS)}")
    size = size or DEFAULT_SIZE[kind]
    if size not in ENCODERS[kind].sizes:
        raise InterleaveError(
            f"unknown size {size!r} for encoder {kind!r}; choose one of {sorted(ENCODERS[kind].sizes)}"
        )
    return kind, size


def build_encoder(
    spec: str = "cavmae",
    path: str | None = None,
    overrides: dict | None = None,
    audio_tokens: int = NUM_AUDIO_TOKENS,
    frozen: bool = True,
) -> Encoder:
    """The encoder `model.encoder` names: from `path` (a local HF folder) or random weights of the size
    with `overrides` (random weights come from the caller's seed)."""
    kind, size = parse_spec(spec)
    if path and overrides:
        raise InterleaveError(
            "set model.encoder_path or model.encoder_kwargs, not both: the folder's config decides the size"
        )
    config = None if path else {**ENCODERS[kind].sizes[size], **(overrides or {})}
    if kind != "cavmae" and config:
        _check_fields(kind, config)
    return ENCODERS[kind].build(path=path, config=config, audio_tokens=audio_tokens, frozen=frozen)
