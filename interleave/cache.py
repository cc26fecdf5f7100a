"""Frozen-encoder features on disk: computed once per clip, memory-mapped when read.

The encoder is frozen, so a clip's pooled features [audio_tokens, D] are a function of the audio
file, the encoder's weights and the feature settings (the encoder's kind, input features and
pooling, `audio_tokens` and the audio channel) alone; a trained
encoder (`model.train_encoder: true`) changes them at every step, so the cache refuses one.
The cache keys each clip by its resolved path, size and modification time, inside a folder
named by a fingerprint of the weights and settings: another encoder or changed settings never
read stale features. Each entry is a safetensors file (memory-mapped on read) carrying a CRC32
of its tensor; a damaged entry is detected, counted and rebuilt, never used.

`interleave cache --config CONFIG [overrides]` (`interleave.tools.fill_cache`) fills the cache for
every clip of a run's training, validation, test and SHARD sets; `data.feature_cache: DIR` makes training and
evaluation read it (and fill what is missing first): batches then carry the features under their
own key, `audio_features`, never under `audio` (the encoder's inputs).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from interleave import NUM_AUDIO_TOKENS, audio
from interleave.audio import Channel, WaveformTransform
from interleave.encoder import Encoder
from interleave.errors import InterleaveError
from interleave.files import atomic_path

if TYPE_CHECKING:
    from interleave.progress import Progress

# Bump when the feature code changes in a way the settings below miss.
FEATURE_VERSION = 2


def feature_settings(encoder: Encoder, channel: Channel = "first") -> dict[str, Any]:
    """What besides the weights decides the features: the encoder's `settings()` (kind, input
    features, pooling, audio_tokens) and `channel` (which audio channel, see audio.load_waveform)."""
    return {"version": FEATURE_VERSION, "channel": channel, "sample_rate": audio.SAMPLE_RATE,
            "encoder": encoder.settings()}


def require_frozen(encoder: Encoder) -> None:
    """Refuse to cache the features of an encoder that trains: they would be stale after one step."""
    if not getattr(encoder, "frozen", True):
        raise InterleaveError(
            "data.feature_cache cannot be used with model.train_encoder: true: the cache stores "
            "frozen-encoder features, and a trained encoder's features change at every optimizer step, "
            "so cached ones would be stale; unset data.feature_cache (or keep the encoder frozen)")


def fingerprint(encoder: Encoder, channel: Channel = "first") -> str:
    """A short hash of the encoder's weights and the feature settings (the audio channel included)."""
    digest = hashlib.sha256(json.dumps(feature_settings(encoder, channel), sort_keys=True).encode())
    for name, tensor in sorted(encoder.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:20]


def _crc(tensor: torch.Tensor) -> str:
    return f"{zlib.crc32(tensor.contiguous().view(torch.uint8).numpy().tobytes()):08x}"


@dataclass
class CacheStats:
    hits: int = 0
    built: int = 0
    rebuilt: int = 0  # damaged entries found and replaced
    damaged: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.hits} cached, {self.built} computed, {self.rebuilt} damaged and rebuilt"


@dataclass(frozen=True)
class Variant:
    """A clip read otherwise than as recorded (the SHARD probes' silence and noise): the encoder's own
    feature path reads `transform(waveform)` instead of the clip's 16 kHz waveform, and the cache
    keeps those features under `name` (which names the probe and its seed), beside the clip's own."""

    name: str
    transform: WaveformTransform = field(compare=False)

    def key(self, audio_path: str) -> str:
        """The in-memory key of the clip's features under this variant (never the bare path)."""
        return f"{self.name}:{audio_path}"


@torch.no_grad()
def compute_features(encoder: Encoder, paths: list[str], batch_size: int = 8,
                     channel: Channel = "first", variant: Variant | None = None) -> Iterator[tuple[str, torch.Tensor]]:
    """(path, features [audio_tokens, D] on the CPU) for each clip, through the encoder in batches
    (its own input features; `channel`: which audio channel, see audio.load_waveform; `variant`:
    the clip's waveform transformed first)."""
    device = next(encoder.parameters()).device
    transform = None if variant is None else variant.transform
    for start in range(0, len(paths), batch_size):
        chunk = paths[start : start + batch_size]
        inputs = torch.stack([encoder.load_inputs(p, channel, transform) for p in chunk]).to(device)
        yield from zip(chunk, encoder(inputs).cpu())


class FeatureCache:
    """Features of one encoder and feature settings (by fingerprint) under `root`.

    `channel` is the audio channel setting the fingerprint was made with (`fingerprint(encoder,
    channel)`); `ensure` computes missing features with it. `FeatureCache.of` makes both agree.
    """

    def __init__(self, root: str | Path, encoder_fingerprint: str, channel: Channel = "first",
                 audio_tokens: int = NUM_AUDIO_TOKENS) -> None:
        self.folder = Path(root) / encoder_fingerprint
        self.fingerprint = encoder_fingerprint
        self.channel = channel
        self.audio_tokens = audio_tokens

    @classmethod
    def of(cls, root: str | Path, encoder: Encoder, channel: Channel = "first") -> "FeatureCache":
        """The cache of `encoder`'s features with this channel setting; refuses an encoder that trains."""
        require_frozen(encoder)
        return cls(root, fingerprint(encoder, channel), channel, encoder.audio_tokens)

    def entry(self, audio_path: str | Path, variant: str = "") -> Path:
        """The entry of a clip (by resolved path, size and mtime), or of its `variant` (a `Variant.name`)."""
        path = Path(audio_path).resolve()
        stat = path.stat()
        named = f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}" + (f"\0{variant}" if variant else "")
        key = hashlib.sha1(named.encode()).hexdigest()
        return self.folder / key[:2] / f"{key}.safetensors"

    def get(self, audio_path: str | Path, variant: str = "") -> torch.Tensor | None:
        """The cached features, or None if absent or damaged (a damaged entry is removed)."""
        entry = self.entry(audio_path, variant)
        if not entry.is_file():
            return None
        try:
            with safe_open(str(entry), framework="pt") as handle:
                meta = handle.metadata() or {}
                features = handle.get_tensor("features")
            if meta.get("crc32") != _crc(features) or features.shape[0] != self.audio_tokens:
                raise ValueError("checksum or shape mismatch")
        except Exception:  # any unreadable entry is as good as absent; it is rebuilt
            entry.unlink(missing_ok=True)
            raise DamagedEntry(str(entry)) from None
        return features

    def put(self, audio_path: str | Path, features: torch.Tensor, variant: str = "") -> None:
        """Write an entry atomically: a crash leaves the old entry or none, never half of one."""
        features = features.detach().to(torch.float32).cpu().contiguous()
        meta = {"crc32": _crc(features), "audio": str(audio_path)} | ({"variant": variant} if variant else {})
        with atomic_path(self.entry(audio_path, variant)) as tmp:
            save_file({"features": features}, str(tmp), metadata=meta)

    def lookup(self, audio_path: str | Path, stats: CacheStats | None = None, variant: str = "") -> torch.Tensor | None:
        try:
            return self.get(audio_path, variant)
        except DamagedEntry as err:
            if stats is not None:
                stats.damaged.append(str(err))
            return None

    def ensure(self, encoder: Encoder, paths: Iterable[str | Path], batch_size: int = 8,
               progress: Progress | None = None) -> CacheStats:
        """Compute and store the features of every clip not cached yet (or cached damaged).
        `progress` (an `interleave.progress.Progress` over the distinct clips) counts each cached
        clip as skipped and each computed one as done."""
        require_frozen(encoder)
        stats = CacheStats()
        todo = []
        for path in dict.fromkeys(str(p) for p in paths):
            if self.lookup(path, stats) is None:
                todo.append(path)
            else:
                stats.hits += 1
                if progress is not None:
                    progress.skip(1)
        stats.rebuilt = len(stats.damaged)
        stats.built = len(todo) - stats.rebuilt
        for path, features in compute_features(encoder, todo, batch_size, self.channel):
            self.put(path, features)
            if progress is not None:
                progress.update(1)
        return stats


class DamagedEntry(Exception):
    """A cache entry that cannot be trusted (torn write, bit rot, wrong shape)."""
