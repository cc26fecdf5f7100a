"""The CPU demo's synthetic dataset: honest, learnable clips of a few AudioSet classes.

Every clip is rendered from scratch with plain numpy (no downloads): one synthesis function
per class, each drawing its own frequency, rhythm, duration (2-4 s), onset, level and a little
background noise from a seeded :class:`numpy.random.Generator`, so no two clips are alike but
each one sounds like what its AudioSet label says. Each clip gets two records with the output
``"Labels: <display_name>"``: an interleaved one (the instruction holds one ``[AUDIO]``) and an
LTU-style one (no placeholder). The same parameters always give byte-identical files.

The held-out clips also make the demo's SHARD (``shard.jsonl``): synonym, hypernym and identity
queries assembled from the committed lexicon ``interleave/demo_lexicon.json`` (WordNet 3.0 plus
curated overrides, each with its reason; see :mod:`interleave.shard`).

Run ``python -m interleave.demo DIR`` to write the data set, or call :func:`ensure_demo_data`.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

from interleave import AUDIO_PLACEHOLDER
from interleave.audio import SAMPLE_RATE
from interleave.errors import InterleaveError
from interleave.files import write_text_atomic
from interleave.shard import assemble_queries, read_lexicon, shard_counts, write_report, write_shard

# Sized so that `make demo` (two epochs of SmolLM2-135M on 2 CPU cores) stays under 10 minutes.
TRAIN_PER_CLASS = 16
HELDOUT_PER_CLASS = 4

DEMO_CLASSES: tuple[str, ...] = (
    "Sine wave",
    "Beep, bleep",
    "Siren",
    "White noise",
    "Pink noise",
    "Tick",
    "Drum",
    "Whistle",
    "Heart sounds, heartbeat",
    "Dial tone",
    "Buzz",
    "Chirp tone",
)

# Bump when the synthesis changes, so that ensure_demo_data regenerates stale data sets.
FORMAT_VERSION = 2
# Held-out clips per class the demo SHARD asks about. The paper uses 4 per word; 1 keeps each of
# the demo's three evaluation points (108 queries x 4 repeats, plus the text control) near 20 s each.
SHARD_CLIPS_PER_WORD = 1
# Regenerate with the real WordNet: python -m interleave.shard wordnet --from /usr/share/wordnet --out W;
# python -m interleave.shard lexicon --wordnet W --words data/demo/classes.txt
#   --overrides interleave/demo_lexicon.json --out interleave/demo_lexicon.json  (its "overrides" say why)
DEMO_LEXICON = Path(__file__).with_name("demo_lexicon.json")
MIN_SECONDS, MAX_SECONDS = 2.0, 4.0
COMPLETE_MARKER = ".complete"

INTERLEAVED_TEMPLATES: tuple[str, ...] = (
    f"What is the sound in {AUDIO_PLACEHOLDER}?",
    f"Identify the sound event in {AUDIO_PLACEHOLDER}.",
    f"Label {AUDIO_PLACEHOLDER} with its sound class.",
    f"Listen to {AUDIO_PLACEHOLDER} and name the sound you hear.",
    f"Which sound class best describes {AUDIO_PLACEHOLDER}?",
    f"Name the sound class of {AUDIO_PLACEHOLDER}.",
)
PLAIN_TEMPLATES: tuple[str, ...] = (
    "What is the sound in the audio?",
    "Classify the sound events in the audio clip.",
    "Identify the sound event in the audio clip.",
    "What sound can be heard in this recording?",
    "Label the audio clip with its sound class.",
)

Synth = Callable[[np.random.Generator, int], np.ndarray]


# --- signal helpers ---------------------------------------------------------------------


def _time(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.float64) / SAMPLE_RATE


def _loguniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _bandpass(x: np.ndarray, low: float, high: float) -> np.ndarray:
    """Zero every FFT bin outside ``[low, high]`` Hz (a brick-wall filter, fine for noise)."""
    spectrum = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(len(x), 1.0 / SAMPLE_RATE)
    spectrum[(freqs < low) | (freqs > high)] = 0.0
    return np.fft.irfft(spectrum, n=len(x))


def _tone_from_freq(freq: np.ndarray, phase0: float = 0.0) -> np.ndarray:
    """Phase of a tone whose instantaneous frequency (Hz, per sample) is ``freq``."""
    return phase0 + 2 * np.pi * np.cumsum(freq) / SAMPLE_RATE


def _ramp(n: int, ramp: int) -> np.ndarray:
    """A window of length ``n`` with raised-cosine ramps of ``ramp`` samples at both ends."""
    env = np.ones(n)
    ramp = min(ramp, n // 2)
    if ramp > 0:
        rise = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
        env[:ramp] = rise
        env[n - ramp :] = rise[::-1]
    return env


def _place(out: np.ndarray, event: np.ndarray, start: int, gain: float = 1.0) -> None:
    """Add ``event`` into ``out`` at sample ``start``, cut at the end of ``out``."""
    if start >= len(out):
        return
    stop = min(len(out), start + len(event))
    out[start:stop] += gain * event[: stop - start]


def _onsets(rng: np.random.Generator, n: int, period: float, jitter: float, first: float) -> list[int]:
    """Sample indices of events every ``period`` s (relative jitter), starting at ``first`` s."""
    times, t = [], first
    while t * SAMPLE_RATE < n:
        times.append(int(t * SAMPLE_RATE))
        t += period * (1.0 + rng.uniform(-jitter, jitter))
    return times


# --- one synthesis function per class ---------------------------------------------------
# Each takes the generator and the number of samples of the event and returns a float64 signal
# of that length with arbitrary scale; render_clip adds onset, background noise and level.


def synth_sine_wave(rng: np.random.Generator, n: int) -> np.ndarray:
    """A steady pure sinusoid, 200-1500 Hz (log-uniform; higher steady tones are "Whistle")."""
    freq = _loguniform(rng, 200.0, 1500.0)
    return np.sin(2 * np.pi * freq * _time(n) + rng.uniform(0, 2 * np.pi))


def synth_beep(rng: np.random.Generator, n: int) -> np.ndarray:
    """Regular short electronic tone bursts near 1 kHz separated by silent gaps."""
    freq = rng.uniform(800.0, 1300.0)
    beep_s, gap_s = rng.uniform(0.08, 0.3), rng.uniform(0.1, 0.45)
    third = rng.uniform(0.0, 0.15)  # a cheap speaker's odd harmonic
    length = int(beep_s * SAMPLE_RATE)
    t = _time(length)
    burst = (np.sin(2 * np.pi * freq * t) + third * np.sin(2 * np.pi * 3 * freq * t)) * _ramp(length, 48)
    out = np.zeros(n)
    for start in _onsets(rng, n, beep_s + gap_s, 0.02, rng.uniform(0.0, 0.1)):
        _place(out, burst, start)
    return out


def synth_siren(rng: np.random.Generator, n: int) -> np.ndarray:
    """An emergency siren: slow wail, fast yelp, or two-tone hi-lo, with a few harmonics."""
    t = _time(n)
    mode = rng.integers(3)
    low, high = rng.uniform(500.0, 800.0), rng.uniform(1200.0, 1700.0)
    if mode == 0:  # wail: slow rise and fall
        period = rng.uniform(1.2, 3.0)
        shape = 0.5 - 0.5 * np.cos(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
        freq = low + (high - low) * shape
    elif mode == 1:  # yelp: fast rising sawtooth sweeps
        period = rng.uniform(0.15, 0.4)
        shape = np.mod(t / period + rng.uniform(0, 1), 1.0)
        freq = low + (high - low) * shape
    else:  # hi-lo: two alternating tones
        period = rng.uniform(0.8, 1.6)
        lo_tone, hi_tone = rng.uniform(400.0, 600.0), rng.uniform(650.0, 950.0)
        half = np.mod(t / period + rng.uniform(0, 1), 1.0) < 0.5
        freq = np.where(half, hi_tone, lo_tone)
    phase = _tone_from_freq(freq, rng.uniform(0, 2 * np.pi))
    h2, h3 = rng.uniform(0.1, 0.4), rng.uniform(0.05, 0.25)
    return np.sin(phase) + h2 * np.sin(2 * phase) + h3 * np.sin(3 * phase)


def synth_white_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """Gaussian white noise: flat spectrum."""
    return rng.standard_normal(n)


def synth_pink_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """Pink (1/f) noise: white noise shaped in the FFT domain by 1/sqrt(f)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
    scale = np.zeros_like(freqs)
    scale[1:] = 1.0 / np.sqrt(freqs[1:])
    return np.fft.irfft(spectrum * scale, n=n)


def synth_tick(rng: np.random.Generator, n: int) -> np.ndarray:
    """Regular clock-like clicks (2-6 per second): short decaying high resonances."""
    rate = rng.uniform(2.0, 6.0)
    freq = rng.uniform(2000.0, 5000.0)
    tau = rng.uniform(0.001, 0.003)
    length = int(0.03 * SAMPLE_RATE)
    t = _time(length)
    click = np.exp(-t / tau) * (np.sin(2 * np.pi * freq * t) + 0.5 * rng.standard_normal(length))
    tock = rng.uniform(0.6, 1.0)  # tick-tock: every other click a little softer
    out = np.zeros(n)
    for i, start in enumerate(_onsets(rng, n, 1.0 / rate, 0.02, rng.uniform(0.0, 1.0 / rate))):
        _place(out, click, start, 1.0 if i % 2 == 0 else tock)
    return out


def synth_drum(rng: np.random.Generator, n: int) -> np.ndarray:
    """Drum hits: a low tone whose pitch drops quickly, plus a short noise attack, decaying."""
    period = rng.uniform(0.25, 0.8)
    f_start, f_end = rng.uniform(120.0, 220.0), rng.uniform(50.0, 90.0)
    tau, noise_tau = rng.uniform(0.08, 0.25), rng.uniform(0.01, 0.03)
    noise_level = rng.uniform(0.1, 0.4)
    out = np.zeros(n)
    for start in _onsets(rng, n, period, 0.03, rng.uniform(0.0, 0.2)):
        length = int(min(period, 0.6) * SAMPLE_RATE)
        t = _time(length)
        freq = f_end + (f_start - f_end) * np.exp(-t / 0.04)
        body = np.sin(_tone_from_freq(freq)) * np.exp(-t / tau)
        attack = _bandpass(rng.standard_normal(length), 100.0, 5000.0) * np.exp(-t / noise_tau)
        _place(out, (body + noise_level * attack) * _ramp(length, 32), start, rng.uniform(0.7, 1.0))
    return out


def synth_whistle(rng: np.random.Generator, n: int) -> np.ndarray:
    """A human whistle: a high tone (1.5-4 kHz) with vibrato, slight glide and breath noise."""
    t = _time(n)
    base = _loguniform(rng, 1500.0, 4000.0)
    glide = base * rng.uniform(-0.15, 0.15) * t / t[-1]
    vibrato = base * rng.uniform(0.01, 0.03) * np.sin(2 * np.pi * rng.uniform(4.0, 7.0) * t)
    freq = base + glide + vibrato
    tone = np.sin(_tone_from_freq(freq, rng.uniform(0, 2 * np.pi)))
    breath = _bandpass(rng.standard_normal(n), 0.8 * base, 1.3 * base)
    breath *= rng.uniform(0.05, 0.15) / (np.std(breath) + 1e-12)
    swell = 0.8 + 0.2 * np.sin(2 * np.pi * rng.uniform(0.3, 1.0) * t + rng.uniform(0, 2 * np.pi))
    return swell * tone + breath


def synth_heartbeat(rng: np.random.Generator, n: int) -> np.ndarray:
    """Heart sounds: 'lub-dub' pairs of low thumps (40-80 Hz) at 50-100 beats per minute."""
    period = 60.0 / rng.uniform(50.0, 100.0)
    lub_f, dub_f = rng.uniform(40.0, 65.0), rng.uniform(55.0, 80.0)
    gap = rng.uniform(0.25, 0.35)
    dub_gain = rng.uniform(0.6, 0.9)
    length = int(0.15 * SAMPLE_RATE)
    t = _time(length)
    env = np.exp(-(((t - 0.04) / 0.02) ** 2))

    def thump(freq: float) -> np.ndarray:
        noise = _bandpass(rng.standard_normal(length), 20.0, 150.0)
        return (np.sin(2 * np.pi * freq * t) + 0.3 * noise / (np.std(noise) + 1e-12)) * env

    out = np.zeros(n)
    for start in _onsets(rng, n, period, 0.03, rng.uniform(0.0, period)):
        _place(out, thump(lub_f), start)
        _place(out, thump(dub_f), start + int(gap * SAMPLE_RATE), dub_gain)
    return out


def synth_dial_tone(rng: np.random.Generator, n: int) -> np.ndarray:
    """A telephone dial tone: continuous 350 + 440 Hz (North America, UK) over a phone line.

    Only the dual-tone kind is rendered: a single 425 Hz dial tone would be indistinguishable
    from the "Sine wave" class. Variation: slight frequency error, tone balance, line
    distortion and the 300-3400 Hz telephone band.
    """
    t = _time(n)
    f1, f2 = 350.0 * rng.uniform(0.99, 1.01), 440.0 * rng.uniform(0.99, 1.01)
    x = np.sin(2 * np.pi * f1 * t + rng.uniform(0, 2 * np.pi))
    x += rng.uniform(0.8, 1.2) * np.sin(2 * np.pi * f2 * t + rng.uniform(0, 2 * np.pi))
    drive = rng.uniform(0.0, 1.0)
    if drive > 0.0:
        x = np.tanh((1.0 + 2.0 * drive) * x / 2.0)
    return _bandpass(x, 300.0, 3400.0)


def synth_buzz(rng: np.random.Generator, n: int) -> np.ndarray:
    """An electrical buzz: a harmonic-rich sawtooth or square wave at 100-250 Hz (band-limited)."""
    t = _time(n)
    f0 = rng.uniform(100.0, 250.0)
    square = bool(rng.integers(2))
    cutoff = rng.uniform(2500.0, 5000.0)
    out = np.zeros(n)
    k = 1
    while k * f0 < cutoff:
        if not square or k % 2 == 1:
            out += np.sin(2 * np.pi * k * f0 * t) / k
        k += 1
    flutter = 1.0 + rng.uniform(0.0, 0.2) * np.sin(2 * np.pi * rng.uniform(2.0, 10.0) * t)
    return out * flutter


def synth_chirp_tone(rng: np.random.Generator, n: int) -> np.ndarray:
    """Repeated fast exponential frequency sweeps (up or down) between ~150 Hz and ~6 kHz."""
    f_lo, f_hi = _loguniform(rng, 100.0, 400.0), _loguniform(rng, 2500.0, 7000.0)
    sweep_s, gap_s = rng.uniform(0.05, 0.5), rng.uniform(0.0, 0.3)
    downward = bool(rng.integers(2))
    length = int(sweep_s * SAMPLE_RATE)
    t = _time(length)
    ratio = f_hi / f_lo
    phase = 2 * np.pi * f_lo * sweep_s / np.log(ratio) * (ratio ** (t / sweep_s) - 1.0)
    sweep = np.sin(phase)
    if downward:
        sweep = sweep[::-1]
    sweep *= _ramp(length, 48)
    out = np.zeros(n)
    for start in _onsets(rng, n, sweep_s + gap_s, 0.0, rng.uniform(0.0, 0.1)):
        _place(out, sweep, start)
    return out


SYNTHESIZERS: dict[str, Synth] = {
    "Sine wave": synth_sine_wave,
    "Beep, bleep": synth_beep,
    "Siren": synth_siren,
    "White noise": synth_white_noise,
    "Pink noise": synth_pink_noise,
    "Tick": synth_tick,
    "Drum": synth_drum,
    "Whistle": synth_whistle,
    "Heart sounds, heartbeat": synth_heartbeat,
    "Dial tone": synth_dial_tone,
    "Buzz": synth_buzz,
    "Chirp tone": synth_chirp_tone,
}


def render_clip(label: str, rng: np.random.Generator) -> np.ndarray:
    """One float32 clip of ``label``: 2-4 s, random onset, faint background noise, peak 0.3-0.9."""
    if label not in SYNTHESIZERS:
        raise InterleaveError(f"no demo synthesizer for class {label!r}")
    n = int(rng.uniform(MIN_SECONDS, MAX_SECONDS) * SAMPLE_RATE)
    lead = int(rng.uniform(0.0, 0.25) * SAMPLE_RATE)
    tail = int(rng.uniform(0.0, 0.25) * SAMPLE_RATE)
    event = SYNTHESIZERS[label](rng, n - lead - tail)
    event = event * _ramp(len(event), int(0.005 * SAMPLE_RATE))
    clip = np.zeros(n)
    clip[lead : lead + len(event)] = event
    rms = float(np.sqrt(np.mean(event**2))) or 1.0
    snr_db = rng.uniform(35.0, 50.0)
    clip += rms * 10 ** (-snr_db / 20.0) * rng.standard_normal(n)
    clip *= rng.uniform(0.3, 0.9) / np.max(np.abs(clip))
    return clip.astype(np.float32)


# --- the data set -----------------------------------------------------------------------


def slug(label: str) -> str:
    """File-name form of a label: "Heart sounds, heartbeat" -> "heart_sounds_heartbeat"."""
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")


def _params(train_per_class: int, heldout_per_class: int, seed: int) -> dict[str, Any]:
    return {
        "train_per_class": int(train_per_class),
        "heldout_per_class": int(heldout_per_class),
        "seed": int(seed),
        "classes": list(DEMO_CLASSES),
        "shard_clips_per_word": SHARD_CLIPS_PER_WORD,
        "format": FORMAT_VERSION,
    }


def _summary(out_dir: Path, params: dict[str, Any]) -> dict[str, Any]:
    """Counts of a data set written with ``params``."""
    n_classes = len(params["classes"])
    train, heldout = n_classes * params["train_per_class"], n_classes * params["heldout_per_class"]
    return {
        "out_dir": str(out_dir),
        "classes": n_classes,
        "train_clips": train,
        "heldout_clips": heldout,
        "clips": train + heldout,
        "train_records": 2 * train,
        "heldout_records": 2 * heldout,
        "records": 2 * (train + heldout),
        "shard_queries": _shard_query_count(params["heldout_per_class"]),
        "seed": params["seed"],
    }


def _shard_query_count(heldout_per_class: int) -> int:
    """Queries of the demo SHARD: per clip one identity query and a yes and a no per candidate."""
    clips = min(SHARD_CLIPS_PER_WORD, heldout_per_class)
    return sum(clips * (1 + 2 * (len(e.synonyms) + len(e.hypernyms))) for e in read_lexicon(DEMO_LEXICON))


def _readme(params: dict[str, Any], summary: dict[str, Any]) -> str:
    classes = "\n".join(f"  - {label}" for label in DEMO_CLASSES)
    return f"""Synthetic toy data for the interleave CPU demo -- NOT real recordings.

Every clip was rendered from scratch with numpy by interleave/demo.py (one synthesis function
per class) and stands for one AudioSet class, named by its exact AudioSet display_name:
{classes}

Each clip is 16 kHz mono 16-bit PCM WAV, 2-4 s long, with random frequency, rhythm, onset,
level (peak 0.3-0.9) and faint background noise drawn from a generator seeded by
(seed, split, class, clip index). Same parameters -> byte-identical files.

Each clip has two records with output "Labels: <class>" (task cla_label, dataset demo):
an interleaved one (the instruction holds one {AUDIO_PLACEHOLDER}) and an LTU-style one
(no placeholder; the audio goes where LTU's prompt puts it).

  train.jsonl    {summary['train_clips']} clips, {summary['train_records']} records
  heldout.jsonl  {summary['heldout_clips']} clips, {summary['heldout_records']} records
                 (validation loss and label generation)
  shard.jsonl    {summary['shard_queries']} SHARD queries (synonym, hypernym, identity) about up to
                 {SHARD_CLIPS_PER_WORD} held-out clips per class, from interleave/demo_lexicon.json
                 (WordNet 3.0 plus curated overrides); shard.report.json has the counts
  classes.txt    one label per line

Parameters: train_per_class={params['train_per_class']} \
heldout_per_class={params['heldout_per_class']} seed={params['seed']}
Regenerate: python -m interleave.demo DIR --train-per-class {params['train_per_class']} \
--heldout-per-class {params['heldout_per_class']} --seed {params['seed']} --force
"""


def _split_records(out_dir: Path, split: str, split_id: int, per_class: int, seed: int) -> list[dict[str, str]]:
    """Render and write the clips of one split; return its records (two per clip)."""
    audio_dir = out_dir / "audio" / split
    audio_dir.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, str]] = []
    for class_index, label in enumerate(DEMO_CLASSES):
        name = slug(label)
        for k in range(per_class):
            rng = np.random.default_rng([seed, split_id, class_index, k])
            clip = render_clip(label, rng)
            rel = f"audio/{split}/{name}_{k}.wav"
            soundfile.write(out_dir / rel, clip, SAMPLE_RATE, subtype="PCM_16", format="WAV")
            output = f"Labels: {label}"
            common = {"output": output, "task": "cla_label", "dataset": "demo"}
            interleaved = INTERLEAVED_TEMPLATES[rng.integers(len(INTERLEAVED_TEMPLATES))]
            plain = PLAIN_TEMPLATES[rng.integers(len(PLAIN_TEMPLATES))]
            records.append({"id": f"{split}-{name}-{k}-i", "audio": rel, "instruction": interleaved, **common})
            records.append({"id": f"{split}-{name}-{k}-n", "audio": rel, "instruction": plain, **common})
    return records


def _clear(out_dir: Path) -> None:
    """Remove what a previous (possibly crashed) run left, marker first."""
    (out_dir / COMPLETE_MARKER).unlink(missing_ok=True)
    if (out_dir / "audio").is_dir():
        shutil.rmtree(out_dir / "audio")
    for name in ("train.jsonl", "heldout.jsonl", "shard.jsonl", "shard.report.json", "classes.txt", "README.txt"):
        (out_dir / name).unlink(missing_ok=True)


def make_demo_data(
    out_dir: str | Path, train_per_class: int = TRAIN_PER_CLASS, heldout_per_class: int = HELDOUT_PER_CLASS, seed: int = 0
) -> dict[str, Any]:
    """Write the demo data set into ``out_dir`` (clearing an old one) and return counts.

    Files: ``audio/{train,heldout}/<slug>_<k>.wav``, ``train.jsonl``, ``heldout.jsonl``,
    ``shard.jsonl`` and ``shard.report.json`` (the demo SHARD about the held-out clips),
    ``classes.txt``, ``README.txt`` and, written last, the marker ``.complete`` holding the
    parameters as JSON.
    """
    if train_per_class < 1 or heldout_per_class < 1:
        raise InterleaveError(
            f"demo data needs at least one clip per class and split, got train_per_class={train_per_class}, "
            f"heldout_per_class={heldout_per_class}"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _clear(out_dir)
    params = _params(train_per_class, heldout_per_class, seed)
    train = _split_records(out_dir, "train", 0, train_per_class, seed)
    heldout = _split_records(out_dir, "heldout", 1, heldout_per_class, seed)
    for name, records in (("train.jsonl", train), ("heldout.jsonl", heldout)):
        write_text_atomic(out_dir / name, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    _write_shard(out_dir, heldout_per_class, seed)
    summary = _summary(out_dir, params)
    write_text_atomic(out_dir / "classes.txt", "".join(label + "\n" for label in DEMO_CLASSES))
    write_text_atomic(out_dir / "README.txt", _readme(params, summary))
    write_text_atomic(out_dir / COMPLETE_MARKER, json.dumps(params, indent=2) + "\n")
    return summary


def _write_shard(out_dir: Path, heldout_per_class: int, seed: int) -> None:
    """Write the demo SHARD about the held-out clips, and its report, from the committed lexicon."""
    entries = read_lexicon(DEMO_LEXICON)
    if [e.label for e in entries] != list(DEMO_CLASSES):
        raise InterleaveError(f"{DEMO_LEXICON} must hold exactly the demo classes, in order: {list(DEMO_CLASSES)}")
    clips = {
        label: [out_dir / "audio" / "heldout" / f"{slug(label)}_{k}.wav" for k in range(heldout_per_class)]
        for label in DEMO_CLASSES
    }
    queries = assemble_queries(entries, clips, seed, SHARD_CLIPS_PER_WORD)
    write_shard(queries, out_dir / "shard.jsonl")
    report = {
        "shard": "shard.jsonl",
        "parameters": {"seed": seed, "clips_per_word": SHARD_CLIPS_PER_WORD, "lexicon": "interleave/demo_lexicon.json"},
        "counts": shard_counts(queries),
        "words": [
            {"label": e.label, "status": "included", "word": e.word, "synset": e.synset, "clips": heldout_per_class,
             **({"override": e.override} if e.override else {})}
            for e in entries
        ],
    }  # fmt: skip
    write_report(out_dir / "shard.report.json", report)


def _is_complete(out_dir: Path, params: dict[str, Any]) -> bool:
    marker = out_dir / COMPLETE_MARKER
    try:
        found = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    files_there = all((out_dir / name).is_file() for name in ("train.jsonl", "heldout.jsonl", "shard.jsonl"))
    return found == params and files_there


def ensure_demo_data(
    out_dir: str | Path,
    *,
    train_per_class: int = TRAIN_PER_CLASS,
    heldout_per_class: int = HELDOUT_PER_CLASS,
    seed: int = 0,
    force: bool = False,
) -> Path:
    """Make sure ``out_dir`` holds a complete demo data set with these parameters; return it.

    Does nothing when the ``.complete`` marker matches; otherwise (or with ``force``)
    regenerates and reports one line on stderr.
    """
    out_dir = Path(out_dir)
    if not force and _is_complete(out_dir, _params(train_per_class, heldout_per_class, seed)):
        return out_dir
    summary = make_demo_data(out_dir, train_per_class, heldout_per_class, seed)
    print(
        f"[interleave] wrote demo data: {summary['clips']} clips, {summary['records']} records -> {out_dir}",
        file=sys.stderr,
    )
    return out_dir


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m interleave.demo DIR [--train-per-class N] ... [--force]``."""
    parser = argparse.ArgumentParser(
        prog="python -m interleave.demo", description="Write the synthetic demo data set (AudioSet-labelled toy clips)."
    )
    parser.add_argument("out_dir", type=Path, help="folder to write (train.jsonl, heldout.jsonl, audio/, ...)")
    parser.add_argument("--train-per-class", type=int, default=TRAIN_PER_CLASS, help=f"training clips per class (default {TRAIN_PER_CLASS})")
    parser.add_argument("--heldout-per-class", type=int, default=HELDOUT_PER_CLASS, help=f"held-out clips per class (default {HELDOUT_PER_CLASS})")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--force", action="store_true", help="regenerate even if a matching data set exists")
    args = parser.parse_args(argv)
    try:
        ensure_demo_data(
            args.out_dir,
            train_per_class=args.train_per_class,
            heldout_per_class=args.heldout_per_class,
            seed=args.seed,
            force=args.force,
        )
    except InterleaveError as err:
        parser.error(str(err))
    params = _params(args.train_per_class, args.heldout_per_class, args.seed)
    print(json.dumps(_summary(args.out_dir, params), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
