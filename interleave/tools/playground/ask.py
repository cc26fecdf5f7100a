"""What the playground serves and how it answers: the model a config describes (with a checkpoint,
the newest of the config's run, or none), and one question about clips answered in both layouts
exactly as `ShardEvaluation` answers a query.

The same path as evaluation: the data module's template and collator (`Collator.encode`, left
padding), the encoder features of `interleave.eval.evaluate.audio_features`, answers from
`interleave.model.generation.sample_answers` with each answer seeded as evaluation seeds it
(`answer_seed(seed, 0, layout, 0, repeat)`: a seed reproduces what `ShardEvaluation(seed=...,
full_answers=True)` gives a one-query SHARD at epoch 0; its default mode stops each yes/no answer
at its verdict, a prefix of the same answer with the same verdict), P(yes) from `yes_probability`, verdicts from `parse_answer` with the run's parser. No Gradio here.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import soundfile
import torch

from interleave import AUDIO_PLACEHOLDER
from interleave.checkpoints import intact_checkpoints, load_weights
from interleave.data.collate import Collator, stack_clips
from interleave.data.prompts import count_placeholders
from interleave.data.records import Record
from interleave.encoders.audio import FBANK_SECONDS, SAMPLE_RATE, load_fbank, read_head
from interleave.errors import AudioError, InterleaveError, RecordError
from interleave.eval.answers import parse_answer
from interleave.eval.evaluate import EvalInputs, answer_seed, clip_features
from interleave.eval.query import Query
from interleave.eval.settings import EvalSettings
from interleave.eval.tasks import CONDITIONS, LABEL, TASKS
from interleave.model.fitting import fitting_state
from interleave.model.generation import Sampling, sample_answers, yes_probability

# Clips one prompt may hold (each where its [AUDIO] stands, issue 19); a bound for the page, not the model.
MAX_CLIPS = 3  # the page's clip inputs (playground.CLIP_SLOTS)
LAYOUTS = (
    "interleaved",
    "noninterleaved",
)  # the page's two prompts: conditions of the registry (audio where [AUDIO] stands; LTU's)
# The registry's one-clip questions (yes/no ones first, as the page lists them), or the user's own.
TEMPLATES = (
    "free text",
    *sorted((n for n, t in TASKS.items() if t.clips == 1), key=lambda n: TASKS[n].scoring == LABEL),
)
MAX_REPEATS = 64  # answers per question: more would only fill the server's memory
LTU_STANDS_FOR = "this audio"  # what replaces [AUDIO] when a free-text prompt is asked in LTU's layout


class PlaygroundError(InterleaveError):
    """A question the playground cannot ask; the message is shown in the page as it is."""


@dataclass(frozen=True)
class Limits:
    """What the server takes of one uploaded clip: its size (checked before anything is decoded) and
    its duration (from its header); of a clip within them only what the encoder hears is decoded."""

    max_bytes: int = 50 * 2**20  # --max-upload-mb (MB of 2^20 bytes); 10 s of WAV is about 1.7 MB
    max_seconds: float = 300.0  # --max-clip-seconds


@dataclass
class Served:
    """The model the page asks, and how ShardEvaluation would ask it (the config's settings)."""

    model: Any  # interleave.model.AudioLLM, in eval mode
    inputs: EvalInputs  # the data module's collation (left-padded, answer-free) and channel
    settings: EvalSettings = field(default_factory=EvalSettings)  # the config's ShardEvaluation's, if any
    precision: Callable[[], Any] = nullcontext  # the trainer's precision context (bf16 autocast, ...)
    serving: str = "the zero-shot model"  # which weights: said in the page and in every answer
    initial: dict[str, torch.Tensor] = field(default_factory=dict)  # the zero-shot trainable weights
    note: str = ""  # why the checkpoint asked for at start-up is not served, if it is not
    roots: list[Path] = field(default_factory=list)  # the folders whose checkpoints the page may load
    limits: Limits = field(default_factory=Limits)  # what one upload may cost

    @property
    def collator(self) -> Collator:
        return self.inputs.collator


NOT_LISTED = "That checkpoint is not on this server's list: pick one from the list (Refresh updates it)"


@dataclass(frozen=True)
class Question:
    """One question about `clips`: `prompt` holds one [AUDIO] per clip; `ltu_prompt` (no [AUDIO])
    is the same question in LTU's layout, derived from `prompt` when empty."""

    prompt: str
    clips: list[str]
    ltu_prompt: str = ""
    sampling: Sampling = field(default_factory=Sampling)
    repeats: int = 4
    seed: int = 0
    score: bool = False  # also P(yes) against P(no)
    yes_no: bool = True  # parse each answer into a verdict


def build_served(
    config: str | list[str],
    ckpt: str | None = None,
    device: str = "cpu",
    roots: list[str] | tuple = (),
    limits: Limits | None = None,
    overrides: list[str] | tuple = (),
) -> Served:
    """The model and data module of `config` (one or several configs, in order, then train.py's
    `overrides` such as `--paths.qwen2_audio=DIR`) as `train.py` builds them, with the checkpoint `ckpt`
    loaded ("none": the zero-shot model; None: the newest intact checkpoint of the config's run
    folders, else the zero-shot model). A checkpoint that cannot be loaded leaves the zero-shot
    model served and the reason in `note`. The page may load the checkpoints under the config's
    run folders and `roots` (`listed_checkpoints`)."""
    from callbacks.shard_eval import ShardEvaluation, eval_inputs
    from interleave.cli import build_run

    configs = [config] if isinstance(config, str | Path) else list(config)
    run = build_run([a for c in configs for a in ("--config", str(c))] + list(overrides))
    model, data = run.model, run.datamodule
    model.to(device).eval()
    evaluation = next((c for c in run.trainer.callbacks if isinstance(c, ShardEvaluation)), None)
    served = Served(
        model,
        eval_inputs(data),
        EvalSettings() if evaluation is None else evaluation.settings,
        precision=run.trainer.precision_plugin.val_step_context,
        initial={k: v.detach().clone() for k, v in model.trainable_parameters().items()},
        roots=checkpoint_roots(run.trainer) + [Path(r) for r in roots],
        limits=limits or Limits(),
    )
    found = newest_checkpoint(run_folders(run.trainer)) if ckpt is None else None
    if ckpt is None and found is None:
        served.serving = "the zero-shot model (no checkpoint found in the config's run folders)"
    try:  # a checkpoint that does not fit is said in the page, over the zero-shot model, not a dead server
        if found is not None:
            load_checkpoint(served, str(found))
            served.serving = f"checkpoint {found} (the newest of the config's run)"
        elif ckpt is not None and ckpt.lower() != "none":
            load_checkpoint(served, ckpt)
    except InterleaveError as err:
        served.note = f"{err}; serving {served.serving} instead"
    return served


def _run_places(trainer: Any) -> tuple[list[Path], Path | None]:
    """Each ModelCheckpoint's own folder, and the logger's root folder (None without a logger)."""
    own = [Path(c.dirpath) for c in trainer.checkpoint_callbacks if getattr(c, "dirpath", None)]
    root = getattr(trainer.logger, "root_dir", None) if trainer.logger is not None else None
    return own, Path(root) if root else None


def run_folders(trainer: Any) -> list[Path]:
    """Where the config's runs keep checkpoints: each ModelCheckpoint's own folder, and
    `version_N/checkpoints` under the logger's (`runs/demo/version_0/checkpoints` for the demo)."""
    own, root = _run_places(trainer)
    return own + (sorted(root.glob("version_*/checkpoints")) if root is not None else [])


def checkpoint_roots(trainer: Any) -> list[Path]:
    """The folders of the config's runs: each ModelCheckpoint's own folder and the logger's (all its
    `version_N`, including those written after the page started)."""
    own, root = _run_places(trainer)
    return own + ([root] if root is not None else [])


def listed_checkpoints(roots: list[Path]) -> list[str]:
    """Every `.ckpt` under `roots`, newest first, as the real path it resolves to (symlinks and `..`
    resolved); one that resolves outside every root (a symlink leading out) is not listed."""
    resolved = [Path(os.path.realpath(r)) for r in roots]
    found: dict[str, float] = {}
    for root in resolved:
        for folder, _, files in os.walk(root):  # symlinked folders are not followed
            for name in files:
                if not name.endswith(".ckpt"):
                    continue
                real = Path(os.path.realpath(os.path.join(folder, name)))
                try:
                    if real.is_file() and any(real.is_relative_to(r) for r in resolved):
                        found[str(real)] = real.stat().st_mtime
                except OSError:
                    continue
    return sorted(found, key=lambda p: (-found[p], p))


def load_listed(served: Served, choice: str) -> str:
    """The page's Load: one of `listed_checkpoints` (listed again now), or "" / "none" for the
    zero-shot model. Any other path (missing, a directory, a file outside the roots, a symlink that
    leads out) gets NOT_LISTED, the same words whatever it is, and nothing is opened."""
    choice = (choice or "").strip()
    if choice and choice.lower() != "none" and choice not in listed_checkpoints(served.roots):
        raise PlaygroundError(NOT_LISTED)
    return load_checkpoint(served, choice)


def newest_checkpoint(folders: list[Path]) -> Path | None:
    """The most recently written checkpoint of `folders` that loads (a torn one is passed over)."""
    found = [p for folder in folders if folder.is_dir() for p in intact_checkpoints(folder)]
    return max(found, key=lambda p: p.stat().st_mtime, default=None)


def load_checkpoint(served: Served, path: str) -> str:
    """Load a training checkpoint's weights into the served model through the project's safe
    loader, after checking that every tensor fits the config's model (nothing is changed if one
    does not); an empty `path` or "none" restores the zero-shot weights. Returns what is served."""
    model = served.model
    if not path.strip() or path.strip().lower() == "none":
        model.load_state_dict(served.initial, strict=False)
        served.serving = "the zero-shot model"
        return served.serving
    model.load_state_dict(fitting_state(model, load_weights(Path(path.strip())), path), strict=False)
    served.serving = f"checkpoint {path.strip()}"
    return served.serving


def template_prompts(template: str, word: str, table: dict[str, dict[str, str]]) -> tuple[str, str]:
    """(interleaved, LTU layout) instructions of one of Table 1's questions about `word`, rendered
    as the evaluation renders a query (`Condition.render`); free text has none."""
    if template not in TEMPLATES or template == "free text":
        return "", ""
    query = Query(id="playground", task=template, label="", word=word, audio="", candidate=word)
    return tuple(CONDITIONS[layout].render(query, table) for layout in LAYOUTS)  # type: ignore[return-value]


def check_question(question: Question) -> None:
    """Refuse what cannot be asked, with a message for the page: no prompt, a clip count that does
    not match the placeholders, more clips than a prompt may hold, a clip that cannot be read."""
    if not question.prompt.strip():
        raise PlaygroundError("Write a prompt (or pick a template): one [AUDIO] where each clip goes.")
    n, k = count_placeholders(question.prompt), len(question.clips)
    if k == 0:
        raise PlaygroundError("Add a clip: upload or record one.")
    if n != k:
        raise PlaygroundError(
            f"The prompt has {n} {AUDIO_PLACEHOLDER} placeholder(s) but {k} clip(s) were given: "
            f"write one {AUDIO_PLACEHOLDER} per clip, where that clip goes."
        )
    if k > MAX_CLIPS:
        raise PlaygroundError(f"{k} clips in one prompt: the page takes at most {MAX_CLIPS}.")
    if count_placeholders(question.ltu_prompt):
        raise PlaygroundError(f"The LTU-layout prompt must hold no {AUDIO_PLACEHOLDER}: its audio goes first.")
    s = question.sampling
    if (
        s.max_new_tokens < 1
        or not 1 <= question.repeats <= MAX_REPEATS
        or (s.do_sample and not (s.temperature > 0 and 0 < s.top_p <= 1))
    ):
        raise PlaygroundError(
            f"Sampling needs at least 1 new token, 1 to {MAX_REPEATS} answers, a temperature "
            "above 0 and a top-p in (0, 1]."
        )


def read_clips(
    clips: list[str], channel: str, folder: Path, limits: Limits | None = None, heard: float = FBANK_SECONDS
) -> list[dict[str, Any]]:
    """Each clip's name, duration, fbank (what the encoder sees) and `path`: a copy in `folder` of
    what the encoder hears (16 kHz, one channel, float WAV), the only samples decoded. A clip over
    the limits or unreadable is refused by name; the size is checked before anything is decoded."""
    limits = limits or Limits()
    out = []
    for i, path in enumerate(clips, 1):
        name = Path(path).name
        try:
            size = os.stat(path).st_size
            if size > limits.max_bytes:
                raise PlaygroundError(
                    f"Clip {i} ({name}) is {size / 2**20:.1f} MB, more than this server takes "
                    f"({limits.max_bytes / 2**20:g} MB)."
                )
        except OSError:
            pass  # said by read_head, as every unreadable clip is
        try:
            waveform, seconds = read_head(path, heard, channel)  # type: ignore[arg-type]
            if seconds > limits.max_seconds:
                raise PlaygroundError(
                    f"Clip {i} ({name}) lasts {seconds:.0f} s, longer than this server takes "
                    f"({limits.max_seconds:g} s); the model hears only its first {heard:.2f} s: "
                    "cut the clip."
                )
            heard_copy = folder / f"clip{i}.wav"
            soundfile.write(heard_copy, waveform.numpy(), SAMPLE_RATE, subtype="FLOAT")
            fbank = load_fbank(heard_copy)  # what the evaluation reads, with every check it makes
        except AudioError as err:
            raise PlaygroundError(f"Clip {i} ({name}): {err.reason}.") from None
        out.append(
            {
                "name": name,
                "seconds": round(seconds, 2),
                "fbank": fbank,
                "path": str(heard_copy),
                "heard": round(min(seconds, heard), 2),
            }
        )
    return out


def ltu_instruction(question: Question) -> str:
    return question.ltu_prompt.strip() or question.prompt.replace(AUDIO_PLACEHOLDER, LTU_STANDS_FOR)


@torch.no_grad()
def answer(
    served: Served, question: Question, instruction: str, layout: str, features: dict[str, torch.Tensor] | None = None
) -> dict[str, Any]:
    """One layout's answers, as `answer_queries` computes a query's: the prompt collated by the data
    module's collator (each clip's span as long as its features, for a family whose span follows
    the clip), `repeats` sampled answers seeded as evaluation seeds query 0 at epoch 0, P(yes)."""
    model, collator = served.model, served.collator
    device = next(model.parameters()).device
    record = Record(id="playground", audio=tuple(question.clips), instruction=instruction, where=f"the {layout} prompt")
    with served.precision():  # each clip through the encoder once (`features` keeps it for the other layout)
        heard = clip_features(
            model, list(question.clips), {} if features is None else features, channel=served.inputs.channel
        )
    lengths = [len(h) for h in heard] if model.audio_encoder.variable_length else None
    try:
        encoded = collator.encode(record, with_answer=False, lengths=lengths)
    except RecordError as err:
        return {
            "instruction": instruction,
            "error": f"The {layout} prompt cannot be asked: {err.reason} (the config's data.max_length).",
        }
    context = getattr(model.llm.config, "max_position_embeddings", None)
    if context is not None and len(encoded.input_ids) + question.sampling.max_new_tokens > context:
        return {
            "instruction": instruction,
            "error": f"The {layout} prompt needs {len(encoded.input_ids)} positions "
            f"and {question.sampling.max_new_tokens} new tokens, more than the LLM's context of {context}.",
        }
    tensors = {k: v.to(device) for k, v in collator.pad([encoded], "left").items()}
    with served.precision():
        audio = stack_clips(heard).to(device)
        seeds = [answer_seed(question.seed, 0, layout, 0, repeat) for repeat in range(question.repeats)]
        texts = sample_answers(
            model,
            tensors["input_ids"],
            tensors["attention_mask"],
            tensors["audio_mask"],
            None,
            question.repeats,
            question.sampling,
            seeds=seeds,
            features=audio,
        )[0]  # whole answers, to be read
        p_yes = (
            yes_probability(
                model,
                tensors["input_ids"],
                tensors["attention_mask"],
                tensors["audio_mask"],
                None,
                context=collator.template.render("?"),
                features=audio,
            )[0]
            if question.score
            else None
        )
    return {
        "instruction": instruction,
        "prompt": shown_prompt(collator, instruction),
        "answers": texts,
        "verdicts": [parse_answer(t, rules=served.settings.parser) for t in texts] if question.yes_no else None,
        "p_yes": p_yes,
    }


def shown_prompt(collator: Collator, instruction: str) -> str:
    """The text the LLM reads, with the audio span shown as [AUDIO] (first, in LTU's layout)."""
    text = collator.template.render(instruction)
    return text if AUDIO_PLACEHOLDER in text else f"{AUDIO_PLACEHOLDER} {text}"


def ask(served: Served, question: Question) -> dict[str, Any]:
    """Both layouts' answers to `question` and what makes them reproducible (model, seed, sampling);
    raises PlaygroundError for a question that cannot be asked. One layout's prompt that does not
    fit is reported in that layout's entry, the other is still answered."""
    check_question(question)
    with tempfile.TemporaryDirectory(prefix="interleave-playground-") as folder:
        clips = read_clips(
            question.clips, served.inputs.channel, Path(folder), served.limits, served.model.data_spec().heard_seconds
        )
        heard = replace(question, clips=[clip.pop("path") for clip in clips])  # what the encoder hears, decoded once
        features: dict[str, torch.Tensor] = {}  # each clip through the encoder once, for both layouts
        layouts = {"interleaved": answer(served, heard, question.prompt.strip(), "interleaved", features)}
        if len(question.clips) == 1:  # LTU's layout holds one clip, before the prompt
            layouts["noninterleaved"] = answer(served, heard, ltu_instruction(question), "noninterleaved", features)
        for clip, path in zip(clips, heard.clips):  # its span: 32 for LTU, its own length for a variable one
            clip["positions"] = len(features[path])
    return {
        "serving": served.serving,
        "clips": clips,
        "layouts": layouts,
        "seed": question.seed,
        "repeats": question.repeats,
        "sampling": asdict(question.sampling),
        "parser": served.settings.parser,
    }


def fbank_image(clips: list[dict[str, Any]]) -> Any:
    """Each clip's fbank [1024 frames, 128 mel bins] (`read_clips`), one row per clip, as an RGB
    array: time across, low bins at the bottom, the clip's end marked where padding begins (LTU
    pads or cuts every clip to 10.24 s)."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 2.3 * len(clips)), dpi=80)
    for i, clip in enumerate(clips, 1):
        axes = figure.add_subplot(len(clips), 1, i)
        axes.imshow(
            clip["fbank"].float().T.numpy(), origin="lower", aspect="auto", cmap="magma", extent=(0, 10.24, 0, 128)
        )
        if clip["seconds"] < 10.24:
            axes.axvline(clip["seconds"], color="white", linestyle="--", linewidth=1)
        axes.set(
            title=f"clip {i}: {clip['name']} ({clip['seconds']} s)", xlabel="seconds (10 ms frames)", ylabel="mel bin"
        )
    figure.tight_layout()
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def describe(result: dict[str, Any]) -> dict[str, str]:
    """Markdown of each layout's answers: the prompt as the LLM reads it, the answers with their
    verdicts, P(yes)."""
    out = {}
    for layout, entry in result["layouts"].items():
        if "error" in entry:
            out[layout] = f"**{entry['error']}**"
            continue
        lines = [f"```text\n{entry['prompt']}\n```"]
        for i, text in enumerate(entry["answers"], 1):
            verdict = "" if entry["verdicts"] is None else f" → **{entry['verdicts'][i - 1] or 'unparsed'}**"
            lines.append(f"{i}. {_quote(text)}{verdict}")
        if entry["verdicts"] is not None:
            lines.append(
                f"\nverdicts ({result['parser']} parser): "
                + ", ".join(
                    f"{v or 'unparsed'} × {entry['verdicts'].count(v)}" for v in dict.fromkeys(entry["verdicts"])
                )
            )
        if entry["p_yes"] is not None:
            lines.append(
                f"\nP(yes) = {entry['p_yes']:.3f} against P(no) = {1 - entry['p_yes']:.3f} (first answer token)"
            )
        out[layout] = "\n".join(lines)
    return out


def _quote(text: str) -> str:
    shown = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split()) or "(empty answer)"
    return "`" + shown.replace("`", "'") + "`"
