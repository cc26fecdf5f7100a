"""Frozen-encoder features on disk: computed once per clip, memory-mapped when read.

The encoder is frozen, so a clip's pooled features [audio_tokens, D] (a variable-length kind's:
[its own positions, D]) are a function of the audio
file, the encoder's weights and the feature settings (the encoder's kind, input features and
pooling, `audio_tokens` and the audio channel) alone; a trained
encoder (`model.train_encoder: true`) changes them at every step, so the cache refuses one.
The cache keys each clip by its identity, its resolved path, size and modification time (and
a probe's `Variant` name), inside a folder named by a fingerprint of the weights and settings:
another encoder or changed settings never read stale features, and a changed clip has another
key. Each entry is a safetensors file (memory-mapped on read) that also records that identity,
the fingerprint and a CRC32 of its tensor, and every read (`FeatureCache.get`, under training,
evaluation and `interleave cache` alike) checks them all against the request: an entry that
holds another clip's features (one entry file copied over another's, by a sync tool or by hand),
a probe's in place of the clip's, another encoder's, a torn write or flipped bits is damaged:
never used; removed, reported once by name with what was wrong, and computed again (by `ensure`,
which a run's set-up and `interleave cache` call, and by the SHARD evaluation). The check reads
only the entry and a `stat` of the clip (which the key needs anyway), never the audio itself.

`interleave cache --config CONFIG [overrides]` (`interleave.tools.fill_cache`) fills the cache for
every clip of a run's training, validation, test and SHARD sets; `data.feature_cache: DIR` makes training and
evaluation read it (and fill what is missing first): batches then carry the features under their
own key, `audio_features`, never under `audio` (the encoder's inputs).
"""

from __future__ import annotations

import hashlib
import json
import logging
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from interleave import NUM_AUDIO_TOKENS
from interleave.encoders import audio
from interleave.encoders.audio import Channel, WaveformTransform
from interleave.encoders.base import Encoder, stack_clips
from interleave.errors import InterleaveError
from interleave.files import atomic_path

if TYPE_CHECKING:
    from interleave.progress import Progress

# Bump when the feature code or the entry format changes in a way the settings below miss
# (3: entries record the clip's identity and the fingerprint, and reads check them).
FEATURE_VERSION = 3

log = logging.getLogger("interleave.cache")


def feature_settings(encoder: Encoder, channel: Channel = "first") -> dict[str, Any]:
    """What besides the weights decides the features: the encoder's `settings()` (kind, input
    features, pooling, audio_tokens) and `channel` (which audio channel, see audio.load_waveform)."""
    return {
        "version": FEATURE_VERSION,
        "channel": channel,
        "sample_rate": audio.SAMPLE_RATE,
        "encoder": encoder.settings(),
    }


def require_frozen(encoder: Encoder) -> None:
    """Refuse to cache the features of an encoder that trains: they would be stale after one step."""
    if not getattr(encoder, "frozen", True):
        raise InterleaveError(
            "data.feature_cache cannot be used with model.train_encoder: true: the cache stores "
            "frozen-encoder features, and a trained encoder's features change at every optimizer step, "
            "so cached ones would be stale; unset data.feature_cache (or keep the encoder frozen)"
        )


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


def _whose(variant: str) -> str:
    return f"the {variant!r} probe's" if variant else "the clip's own"


@dataclass(frozen=True)
class ClipIdentity:
    """What a cache key is made of: the clip's resolved path, size and modification time (one
    `stat`, no read of the audio) and the `Variant` name ("" for the clip's own features)."""

    audio: str
    size: int
    mtime_ns: int
    variant: str = ""

    @classmethod
    def of(cls, audio_path: str | Path, variant: str = "") -> ClipIdentity:
        path = Path(audio_path).resolve()
        stat = path.stat()
        return cls(str(path), stat.st_size, stat.st_mtime_ns, variant)

    def key(self) -> str:
        named = f"{self.audio}\0{self.size}\0{self.mtime_ns}" + (f"\0{self.variant}" if self.variant else "")
        return hashlib.sha1(named.encode()).hexdigest()

    def metadata(self) -> dict[str, str]:
        return {"audio": self.audio, "size": str(self.size), "mtime_ns": str(self.mtime_ns), "variant": self.variant}

    def mismatch(self, meta: dict[str, str]) -> str | None:
        """What an entry's recorded identity `meta` says against this one, or None if it is this clip's."""
        if meta.get("audio") != self.audio:
            return f"it holds the features of {meta.get('audio') or 'an unnamed clip'}"
        if (held := meta.get("variant", "")) != self.variant:
            return f"it holds {_whose(held)} features, not {_whose(self.variant)}"
        if (meta.get("size"), meta.get("mtime_ns")) != (str(self.size), str(self.mtime_ns)):
            return (
                f"it holds the features of another version of the clip (size {meta.get('size')}, mtime_ns "
                f"{meta.get('mtime_ns')}; the file is now size {self.size}, mtime_ns {self.mtime_ns})"
            )
        return None


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
def compute_features(
    encoder: Encoder, paths: list[str], batch_size: int = 8, channel: Channel = "first", variant: Variant | None = None
) -> Iterator[tuple[str, torch.Tensor]]:
    """(path, features [audio_tokens, D] on the CPU) for each clip, through the encoder in batches
    (its own input features; `channel`: which audio channel, see audio.load_waveform; `variant`:
    the clip's waveform transformed first). A variable-length kind's clip keeps its own positions."""
    device = next(encoder.parameters()).device
    transform = None if variant is None else variant.transform
    for start in range(0, len(paths), batch_size):
        chunk = paths[start : start + batch_size]
        inputs = stack_clips([encoder.load_inputs(p, channel, transform) for p in chunk]).to(device)
        for path, features, n in zip(chunk, encoder(inputs).cpu(), encoder.positions(inputs).tolist()):
            yield path, features[:n]


class FeatureCache:
    """Features of one encoder and feature settings (by fingerprint) under `root`.

    `channel` is the audio channel setting the fingerprint was made with (`fingerprint(encoder,
    channel)`); `ensure` computes missing features with it. `FeatureCache.of` makes both agree.
    `audio_tokens`: every entry's rows; None for a variable-length kind (each clip its own).
    """

    def __init__(
        self,
        root: str | Path,
        encoder_fingerprint: str,
        channel: Channel = "first",
        audio_tokens: int | None = NUM_AUDIO_TOKENS,
    ) -> None:
        self.folder = Path(root) / encoder_fingerprint
        self.fingerprint = encoder_fingerprint
        self.channel = channel
        self.audio_tokens = audio_tokens

    @classmethod
    def of(cls, root: str | Path, encoder: Encoder, channel: Channel = "first") -> FeatureCache:
        """The cache of `encoder`'s features with this channel setting; refuses an encoder that trains."""
        require_frozen(encoder)
        return cls(
            root, fingerprint(encoder, channel), channel, None if encoder.variable_length else encoder.audio_tokens
        )

    def _entry_of(self, identity: ClipIdentity) -> Path:
        key = identity.key()
        return self.folder / key[:2] / f"{key}.safetensors"

    def entry(self, audio_path: str | Path, variant: str = "") -> Path:
        """The entry of a clip (by its `ClipIdentity`: resolved path, size and mtime), or of its
        `variant` (a `Variant.name`)."""
        return self._entry_of(ClipIdentity.of(audio_path, variant))

    def get(self, audio_path: str | Path, variant: str = "") -> torch.Tensor | None:
        """The cached features, or None if absent. An entry that is not this clip's (another clip's,
        another variant's, another version's, another encoder's) or that is damaged (unreadable,
        checksum, shape) is removed and raises `DamagedEntry`, saying which entry and what was wrong."""
        identity = ClipIdentity.of(audio_path, variant)
        entry = self._entry_of(identity)
        if not entry.is_file():
            return None
        try:
            with safe_open(str(entry), framework="pt") as handle:
                meta = handle.metadata() or {}
                features = handle.get_tensor("features")
        except Exception as err:  # any unreadable entry is as good as absent; it is rebuilt
            problem: str | None = f"it cannot be read (a torn write?): {err}"
        else:
            problem = self._problem(identity, meta, features)
        if problem is not None:
            entry.unlink(missing_ok=True)
            raise DamagedEntry(entry, identity, problem)
        return features

    def _problem(self, identity: ClipIdentity, meta: dict[str, str], features: torch.Tensor) -> str | None:
        if meta.get("fingerprint") != self.fingerprint:
            return f"it was written for another encoder or feature settings (fingerprint {meta.get('fingerprint')})"
        if (mismatch := identity.mismatch(meta)) is not None:
            return mismatch
        if meta.get("crc32") != _crc(features):
            return "its checksum does not match its features (flipped bits or a torn write)"
        if self.audio_tokens is not None and features.shape[0] != self.audio_tokens:
            return f"it holds {features.shape[0]} audio tokens per clip, not {self.audio_tokens}"
        return None

    def put(self, audio_path: str | Path, features: torch.Tensor, variant: str = "") -> None:
        """Write an entry atomically: a crash leaves the old entry or none, never half of one. The
        entry records the clip's identity and the fingerprint, which `get` checks."""
        features = features.detach().to(torch.float32).cpu().contiguous()
        identity = ClipIdentity.of(audio_path, variant)
        meta = {"crc32": _crc(features), "fingerprint": self.fingerprint} | identity.metadata()
        with atomic_path(self._entry_of(identity)) as tmp:
            save_file({"features": features}, str(tmp), metadata=meta)

    def lookup(self, audio_path: str | Path, stats: CacheStats | None = None, variant: str = "") -> torch.Tensor | None:
        """`get`, with a damaged entry as absent (removed, to be rebuilt) and reported once: added to
        `stats.damaged` when the caller keeps stats (the caller reports each: `interleave cache` and
        a run's set-up do), else logged here as a warning."""
        try:
            return self.get(audio_path, variant)
        except DamagedEntry as err:
            if stats is not None:
                stats.damaged.append(str(err))
            else:
                log.warning("damaged feature cache entry removed: %s", err)
            return None

    def ensure(
        self, encoder: Encoder, paths: Iterable[str | Path], batch_size: int = 8, progress: Progress | None = None
    ) -> CacheStats:
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
    """A cache entry that cannot be trusted (another clip's or variant's features, another encoder's,
    a torn write, bit rot, a wrong shape): `str()` names the entry, the clip asked for and what was wrong."""

    def __init__(self, entry: Path, identity: ClipIdentity, problem: str) -> None:
        asked = identity.audio + (f", probe {identity.variant!r}" if identity.variant else "")
        super().__init__(f"{entry} (the entry of {asked}): {problem}")
        self.entry, self.identity, self.problem = entry, identity, problem
