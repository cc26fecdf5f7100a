"""The demo's sounds: one synthesis function per AudioSet class, plain numpy, seeded.

Each draws its own frequency, rhythm, duration (2-4 s), onset, level and a little background
noise from a :class:`numpy.random.Generator`, so no two clips are alike but each one sounds like
what its AudioSet label says.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from interleave.encoders.audio import SAMPLE_RATE
from interleave.errors import InterleaveError

MIN_SECONDS, MAX_SECONDS = 2.0, 4.0

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
