"""SHARD evaluation throughput at equal work: the project's evaluator against an LTU-style loop.

Both sides answer the same `--queries` queries of the demo SHARD (drawn with a fixed seed from
every task: synonym, hypernym, identity and the two-clip pair), `--repeats` times each, with the
same model (SmolLM2-135M-Instruct and the demo's frozen encoder), the same cap and the same sampling code
(`interleave.model.generation.sample_answers`, LTU's settings), every answer from the same random
stream (`interleave.eval.evaluate.answer_seed`): so the two sides write the same answers, up to
floating-point differences between batched and single rows.
- LTU-style: one answer at a time, the clip loaded and the encoder run again for every answer,
  each answer generated to EOS or the cap (LTU's loop; its cap is 400).
- full answers: `answer_queries` with `full_answers=True`: batches of `--batch-size` queries, the
  repeats sharing one prefill, features once per clip, every answer to EOS or the cap.
- default mode: what `callbacks.ShardEvaluation` does by default: the same, but a yes/no answer
  stops as soon as its parsed verdict is settled (`interleave.eval.answers.settled_answer`).
For each cap in `--caps` (400 and the demo's 12 by default) it prints `full answers: N.Nx` and
`default mode: N.Nx`, checks that both modes give every answer the same verdict, and writes the
figures to bench/RESULTS.md (target: default mode >= 20x at cap 400). The evaluator runs before
and after the LTU-style loop and the two timings are averaged, so a machine busy with other work
in one phase weighs on both sides alike. It also times one decode step of the LLM at 1, 8 and
`--repeats` x `--batch-size` rows, which bounds what batching can save per token on the machine.

    .venv/bin/python bench/bench_eval.py [--queries 32] [--repeats 4] [--caps 400 12] [--batch-size 32]

The benchmark case (issue 37; `--benchmark-only` runs it alone): the demo's multiple-choice benchmark
(`benchmark.json`, MMAU's format), its `--benchmark-items` items asked with the clip by both scorings
of `interleave.eval.benchmarks.evaluate.ask`: ranked (each choice's log-likelihood, one shared prefill
per question) and generated (`--repeats` sampled answers at the demo's cap, MMAU's rule, the majority
judged); items/s of each (features computed beforehand, so both time the LLM alone) and how often the
two pick the same choice. Written to its own section of bench/RESULTS.md.

A released model (`--qwen2-audio DIR`, a Qwen2-Audio folder, or `--released DIR`, a folder of any
supported family: Qwen2-Audio, Audio Flamingo 3): the evaluator (`model.pretrained: DIR`, greedy,
one answer per query) against what the model cards and lmms-eval do, transformers' released class
(`Qwen2AudioForConditionalGeneration`, `AudioFlamingo3ForConditionalGeneration`) `generate` one
query at a time on the same ids (the processor's: the chat layout with the family's audio token at
each span) and the extractor's features (AF3's per 30-s window); it prints the speed-up and how many
answers are the same on both sides, and writes them to bench/RESULTS.md.

    .venv/bin/python bench/bench_eval.py --qwen2-audio DIR [--queries 32] [--caps 12] [--batch-size 32]
    .venv/bin/python bench/bench_eval.py --released DIR
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.results import write_section  # noqa: E402
from interleave.data.collate import Collator  # noqa: E402
from interleave.data.records import Record  # noqa: E402
from interleave.encoders.audio import load_fbank  # noqa: E402
from interleave.eval.benchmarks.evaluate import GENERATED, RANKED, BenchmarkConfig, RunSettings, ask  # noqa: E402
from interleave.eval.benchmarks.items import fixed_subset, read_benchmark  # noqa: E402
from interleave.eval.evaluate import EvalInputs, answer_queries, answer_seed  # noqa: E402
from interleave.eval.format import read_shard
from interleave.eval.query import Query  # noqa: E402
from interleave.eval.settings import EvalSettings  # noqa: E402
from interleave.eval.tasks import CONDITIONS, TASKS  # noqa: E402
from interleave.model.generation import Sampling, sample_answers  # noqa: E402
from interleave.model.module import AudioLLM  # noqa: E402
from interleave.model.pretrained import read_released  # noqa: E402
from interleave.tools.demo.benchmark import BENCHMARK_FILE  # noqa: E402
from interleave.tools.demo.cli import ensure_demo_data  # noqa: E402

CONDITION = "interleaved"
DECODE_CONTEXT = 128  # KV-cache length of the decode-step timing: about a SHARD prompt's


@dataclass
class Side:
    """One side's timing and answers (query-major, `repeats` per query) and their parsed values."""

    seconds: float
    answers: list[str]
    parsed: list[object]
    cut: int = 0


def draw_queries(shard: list[Query], n: int, seed: int = 0) -> list[Query]:
    """`n` queries of the SHARD in an order shuffled with `seed`: the first of each task, then the
    next ones in that order, so every task is among them."""
    order = random.Random(seed).sample(shard, len(shard))
    firsts = [next(q for q in order if q.task == t) for t in TASKS if any(q.task == t for q in order)]  # every task
    chosen = {id(q) for q in firsts + [q for q in order if q not in firsts][: max(n - len(firsts), 0)]}
    return [q for q in order if id(q) in chosen]


def ltu_style(model: AudioLLM, queries: list[Query], settings: EvalSettings, inputs: EvalInputs) -> Side:
    """LTU's loop through the project's sampler: per answer, load the clip, run the encoder on it,
    generate that one answer alone to EOS or the cap, from the evaluator's random stream for it."""
    collator, answers = inputs.collator, []
    start = time.perf_counter()
    for index, query in enumerate(queries):
        prompt = CONDITIONS[CONDITION].render(query, settings.table)
        encoded = collator.pad([collator.encode(Record(id=query.id, audio=query.clips, instruction=prompt))], "left")
        for repeat in range(settings.repeats):
            fbank = torch.stack([load_fbank(clip) for clip in query.clips])
            seed = answer_seed(settings.seed, 0, CONDITION, index, repeat)
            answers += sample_answers(
                model,
                encoded["input_ids"],
                encoded["attention_mask"],
                encoded["audio_mask"],
                fbank,
                1,
                settings.sampling,
                seeds=[seed],
            )[0]
    seconds = time.perf_counter() - start
    return Side(seconds, answers, parse_like_evaluator(queries, answers, settings))


def parse_like_evaluator(queries: list[Query], answers: list[str], settings: EvalSettings) -> list[object]:
    from interleave.eval.answers import parse_answer
    from interleave.labels import contains_label

    per = settings.repeats
    return [
        contains_label(a, q.label) if TASKS[q.task].scoring == "label" else parse_answer(a, settings.parser)
        for i, q in enumerate(queries)
        for a in answers[i * per : (i + 1) * per]
    ]


def evaluator(model: AudioLLM, queries: list[Query], settings: EvalSettings, inputs: EvalInputs) -> Side:
    """`answer_queries` as the callback runs it, features computed afresh (once per clip)."""
    start = time.perf_counter()
    rows = answer_queries(model, queries, CONDITION, settings, inputs, {})
    seconds = time.perf_counter() - start
    return Side(
        seconds,
        [a for r in rows for a in r.answers],
        [p for r in rows for p in r.parsed],
        sum(sum(r.cut or []) for r in rows),
    )


def released_features(model: AudioLLM, waves: list) -> tuple[dict[str, torch.Tensor], list[int]]:
    """The released class's audio inputs for a query's clips, as its processor makes them, and each
    clip's span: Qwen2-Audio's one log-mel per clip (`feature_attention_mask`), Audio Flamingo 3's
    one per 30-s window (`input_features_mask`), a clip's windows' positions added."""
    from transformers import WhisperFeatureExtractor

    from interleave.encoders.audio import SAMPLE_RATE

    extractor = WhisperFeatureExtractor.from_pretrained(model.released.folder)
    kwargs = dict(sampling_rate=SAMPLE_RATE, return_attention_mask=True, padding="max_length", return_tensors="pt")

    def positions(mask: torch.Tensor) -> torch.Tensor:
        return ((mask.sum(-1) - 1) // 2 + 1 - 2) // 2 + 1

    if model.released.name == "audioflamingo3":
        chunks, counts = [], []
        for wave in waves:
            sizes = model.audio_encoder.windows(len(wave))
            starts = [sum(sizes[:k]) for k in range(len(sizes))]
            chunks += [wave[a : a + n] for a, n in zip(starts, sizes)]
            counts.append(len(sizes))
        features = extractor(chunks, **kwargs)
        per_window = positions(features["attention_mask"]).tolist()
        spans = [sum(per_window[sum(counts[:k]) : sum(counts[: k + 1])]) for k in range(len(counts))]
        return {"input_features": features["input_features"], "input_features_mask": features["attention_mask"]}, spans
    features = extractor(waves, **kwargs)
    spans = [int(n) for n in positions(features["attention_mask"])]
    return {"input_features": features["input_features"], "feature_attention_mask": features["attention_mask"]}, spans


def released_generate(model: AudioLLM, queries: list[Query], settings: EvalSettings, inputs: EvalInputs) -> Side:
    """transformers' own `generate` of the released class, one query at a time (greedy, the
    evaluator's cap): the query's ids as the framework lays them out (the processor's ids) with the
    family's audio token at the spans, each clip's features from the folder's feature extractor."""
    from transformers import AudioFlamingo3ForConditionalGeneration, Qwen2AudioForConditionalGeneration

    from interleave.encoders.audio import load_waveform

    folder = model.released.folder
    released_class = {
        "qwen2_audio": Qwen2AudioForConditionalGeneration,
        "audioflamingo3": AudioFlamingo3ForConditionalGeneration,
    }[model.released.name]
    released = released_class.from_pretrained(folder, dtype=torch.float32).eval()
    audio_id = model.tokenizer.convert_tokens_to_ids(model.released.family.audio_token)
    collator, answers = inputs.collator, []
    start = time.perf_counter()
    for query in queries:
        features, spans = released_features(model, [load_waveform(clip).numpy() for clip in query.clips])
        record = Record(id=query.id, audio=query.clips, instruction=CONDITIONS[CONDITION].render(query, settings.table))
        encoded = collator.pad([collator.encode(record, lengths=spans)], "left")
        ids = encoded["input_ids"].masked_fill(encoded["audio_mask"], audio_id)
        with torch.no_grad():
            out = released.generate(
                input_ids=ids,
                attention_mask=encoded["attention_mask"],
                **features,
                max_new_tokens=settings.sampling.max_new_tokens,
                do_sample=False,
            )
        answers.append(model.tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True))
    seconds = time.perf_counter() - start
    return Side(seconds, answers, parse_like_evaluator(queries, answers, settings))


def released_section(folder: Path, queries: list[Query], batch_size: int, cap: int) -> tuple[str, Side, Side]:
    """The released-model case: the evaluator against transformers' generate one query at a time."""
    model = AudioLLM(pretrained=str(folder)).eval()
    collator = Collator.of_spec(model.data_spec(), max_length=4096, padding_side="left", with_answer=False)
    settings = EvalSettings(
        sampling=Sampling(max_new_tokens=cap, do_sample=False, repetition_penalty=1.0),
        repeats=1,
        batch_size=batch_size,
        full_answers=True,
    )
    inputs = EvalInputs(collator)
    evaluator(model, queries[:2], settings, inputs)  # warm-up
    ours = evaluator(model, queries, settings, inputs)
    theirs = released_generate(model, queries, settings, inputs)
    same = sum(a == b for a, b in zip(ours.answers, theirs.answers))
    n = len(queries)
    family, cls = {
        "qwen2_audio": ("Qwen2-Audio", "Qwen2AudioForConditionalGeneration"),
        "audioflamingo3": ("Audio Flamingo 3", "AudioFlamingo3ForConditionalGeneration"),
    }[model.released.name]
    body = "\n".join(
        [
            "## A released model: interleave's evaluator vs transformers' generate() one query at a time",
            "",
            f"{n} demo SHARD queries (interleaved prompts) on the {family} folder {folder} (`model.pretrained`), "
            f"greedy (no repetition penalty), cap {cap} new tokens. transformers: `{cls}.generate` one query at a "
            "time (what the model cards and lmms-eval do), on the processor's ids and features. Evaluator: "
            f"`answer_queries` in batches of {batch_size} queries, features once per clip.",
            "",
            "| side | seconds | queries/s | speed-up |",
            "| --- | ---: | ---: | ---: |",
            f"| transformers generate(), one query at a time | {theirs.seconds:.1f} | {n / theirs.seconds:.2f} | 1.0x |",
            f"| evaluator | {ours.seconds:.1f} | {n / ours.seconds:.2f} | **{theirs.seconds / ours.seconds:.1f}x** |",
            "",
            f"Answers identical on both sides: {same}/{n}.",
            "",
        ]
    )
    return body, ours, theirs


def mean_tokens(model: AudioLLM, answers: list[str]) -> float:
    return sum(answer_tokens(model, a) for a in answers) / max(len(answers), 1)


def answer_tokens(model: AudioLLM, answer: str) -> int:
    return len(model.tokenizer(answer, add_special_tokens=False)["input_ids"])


@torch.no_grad()
def decode_step_seconds(model: AudioLLM, rows: int, context: int = DECODE_CONTEXT, steps: int = 8) -> float:
    """Seconds of one decode step of the LLM (one new token per row over a `context`-token KV
    cache) at `rows` rows: what batching saves per token on this machine. The evaluator's
    batch shrinks as answers end, so its longest answers decode at the cost of few rows."""
    ids = torch.randint(3, model.tokenizer.vocab_size, (rows, context))
    cache = model.llm(input_ids=ids, use_cache=True).past_key_values
    token = ids[:, -1:]
    model.llm(input_ids=token, past_key_values=cache, use_cache=True)  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        model.llm(input_ids=token, past_key_values=cache, use_cache=True)
    return (time.perf_counter() - start) / steps


def measure(
    model: AudioLLM, queries: list[Query], base: EvalSettings, inputs: EvalInputs, cap: int
) -> dict[str, object]:
    """Both modes of the evaluator before and after the LTU-style loop, at one cap."""
    full = replace(base, sampling=replace(base.sampling, max_new_tokens=cap), full_answers=True)
    default = replace(full, full_answers=False)
    first = evaluator(model, queries, full, inputs), evaluator(model, queries, default, inputs)
    ltu = ltu_style(model, queries, full, inputs)
    second = evaluator(model, queries, full, inputs), evaluator(model, queries, default, inputs)
    t_full, t_default = (first[0].seconds + second[0].seconds) / 2, (first[1].seconds + second[1].seconds) / 2
    same_verdicts = sum(a == b for a, b in zip(first[0].parsed, first[1].parsed))
    if first[0].answers != second[0].answers or first[1].answers != second[1].answers:
        raise SystemExit("the evaluator gave other answers on its second run with the same seeds")
    return {
        "cap": cap,
        "ltu": ltu,
        "full": first[0],
        "default": first[1],
        "t_full": t_full,
        "t_default": t_default,
        "same_verdicts": same_verdicts,
        "same_answers": sum(a == b for a, b in zip(ltu.answers, first[0].answers)),
        "tokens_ltu": mean_tokens(model, ltu.answers),
        "tokens_full": mean_tokens(model, first[0].answers),
        "tokens_default": mean_tokens(model, first[1].answers),
        "longest": max(answer_tokens(model, a) for a in ltu.answers),
    }


def section(
    results: list[dict[str, object]],
    n: int,
    repeats: int,
    batch_size: int,
    counts: dict[str, int],
    steps: dict[int, float] | None = None,
) -> str:
    lines = [
        "## SHARD evaluation at equal work: interleave's evaluator vs an LTU-style loop",
        "",
        f"The same {n} demo SHARD queries (drawn with seed 0: {counts['synonym']} synonym, {counts['hypernym']} hypernym, "
        f"{counts['identity']} identity, {counts.get('pair', 0)} two-clip pair; interleaved prompts), "
        f"{repeats} sampled answers each, SmolLM2-135M-Instruct + the "
        "demo's frozen encoder (untrained projector), LTU's sampling (temperature 0.1, top-p 0.95, top-k 500, repetition "
        "penalty 1.1) through the project's sampler on both sides, every answer from the same seeded random stream. "
        f"LTU-style: one answer at a time, clip loaded and encoder run for every answer. Evaluator: batches of {batch_size} "
        "queries, repeats sharing one prefill, features once per clip; the full-answer mode generates every answer to EOS "
        "or the cap, the default mode stops a yes/no answer at its settled verdict (identity answers run to the end). "
        "Evaluator timings are the mean of a run before and one after the LTU-style loop.",
        "",
        "| cap | side | seconds | queries/s | mean answer tokens | speed-up |",
        "| ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        ltu, t_full, t_default = r["ltu"], r["t_full"], r["t_default"]
        lines += [
            f"| {r['cap']} | LTU-style loop | {ltu.seconds:.1f} | {n / ltu.seconds:.3f} | {r['tokens_ltu']:.1f} | 1.0x |",
            f"| {r['cap']} | full answers | {t_full:.1f} | {n / t_full:.3f} | {r['tokens_full']:.1f} | "
            f"**{ltu.seconds / t_full:.1f}x** |",
            f"| {r['cap']} | default mode ({r['default'].cut} of {len(ltu.answers)} answers stopped at their verdict) | "
            f"{t_default:.1f} | {n / t_default:.3f} | {r['tokens_default']:.1f} | **{ltu.seconds / t_default:.1f}x** |",
        ]
    lines.append("")
    for r in results:
        total = len(r["ltu"].answers)
        lines += [
            f"Cap {r['cap']} (target: default mode >= 20x at cap 400):",
            "",
            f"    full answers: {r['ltu'].seconds / r['t_full']:.1f}x",
            f"    default mode: {r['ltu'].seconds / r['t_default']:.1f}x",
            "",
            f"Verdicts identical in both modes: {r['same_verdicts']}/{total}; answers identical to the LTU-style "
            f"loop's: {r['same_answers']}/{total}. Longest answer: {r['longest']} tokens.",
            "",
        ]
        if steps:
            alone = r["longest"] * steps[min(steps)]
            lines += [
                f"The longest answer alone takes about {r['longest']} x {steps[min(steps)] * 1000:.0f} ms = {alone:.1f} s "
                f"of decoding on either side, so even with everything else free the evaluator could be at most "
                f"{r['ltu'].seconds / alone:.1f}x faster than the LTU-style loop in this run.",
                "",
            ]
    if steps:
        one, most = steps[min(steps)], max(steps)
        lines += [
            f"What batching can save here: one decode step of the LLM over a {DECODE_CONTEXT}-token cache takes "
            + ", ".join(f"{t * 1000:.0f} ms at {b} row{'s' if b > 1 else ''}" for b, t in sorted(steps.items()))
            + f", so a token costs at most {one / (steps[most] / most):.1f}x less in a batch of {most} than alone. "
            "The evaluator's batch shrinks as answers end, and the longest answer decodes alone on both sides.",
            "",
        ]
    return "\n".join(lines)


def benchmark_case(model: AudioLLM, data: Path, n: int, repeats: int, batch_size: int, cap: int) -> dict[str, object]:
    """The ranked scoring against the generated one on the same items of the demo's benchmark."""
    bench = read_benchmark(data / BENCHMARK_FILE)
    items = fixed_subset(bench.items, n, 0)
    inputs = EvalInputs(Collator(model.tokenizer, padding_side="left", with_answer=False))
    run = RunSettings(sampling=Sampling(max_new_tokens=cap), repeats=repeats, batch_size=batch_size)
    features: dict[str, torch.Tensor] = {}
    config = BenchmarkConfig(name="demo_mc", file=str(data / BENCHMARK_FILE), controls=())
    ask(model, config, items[:2], run, inputs, features)  # warm-up
    ask(model, config, items, run, inputs, features)  # every clip's features, before either side is timed
    sides = {}
    for scoring in (RANKED, GENERATED):
        start = time.perf_counter()
        rows, metrics, _ = ask(model, replace(config, scorings=(scoring,)), items, run, inputs, features)
        sides[scoring] = (time.perf_counter() - start, rows, metrics[f"val/bench/demo_mc/{scoring}/accuracy"])
    ranked, generated = sides[RANKED][1], sides[GENERATED][1]
    same = sum(a.chosen == b.chosen for a, b in zip(ranked, generated))
    no_choice = sum(b.chosen is None for b in generated)
    return {"items": len(items), "sides": sides, "same": same, "no_choice": no_choice}


def benchmark_section(r: dict[str, object], repeats: int, batch_size: int, cap: int) -> str:
    n, sides = r["items"], r["sides"]
    lines = [
        "## Benchmarks: the ranked scoring against the generated one, on the same items",
        "",
        f"The demo's multiple-choice benchmark (`benchmark.json`, MMAU's format, 4 choices an item): {n} items asked "
        f"with the clip, batches of {batch_size}, SmolLM2-135M-Instruct + the demo's frozen encoder (untrained "
        f"projector). Ranked: each choice's log-likelihood after the prompt (mean per answer token), one shared "
        f"prefill per question. Generated: {repeats} answers each at cap {cap}, LTU's sampling, each answer's choice by "
        "MMAU's rule, the majority judged. Clip features computed before either side is timed.",
        "",
        "| scoring | seconds | items/s | accuracy |",
        "| --- | ---: | ---: | ---: |",
    ]
    for scoring, (seconds, _, accuracy) in sides.items():
        lines.append(f"| {scoring} | {seconds:.1f} | {n / seconds:.2f} | {accuracy:.3f} |")
    lines += [
        "",
        f"Ranked is {sides[GENERATED][0] / sides[RANKED][0]:.1f}x faster. The two pick the same choice for "
        f"{r['same']}/{n} items; the generated answers name no choice for {r['no_choice']}/{n} items (a model "
        "that was never fine-tuned on the question writes free text that MMAU's rule does not read as a choice).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument(
        "--caps", type=int, nargs="+", default=[400, 12], help="new-token caps (LTU's 400, the demo's 12)"
    )
    parser.add_argument("--batch-size", type=int, default=32, help="queries per batch of the evaluator")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md as it is")
    parser.add_argument("--benchmark-items", type=int, default=24, help="items of the demo benchmark's case")
    parser.add_argument("--benchmark-only", action="store_true", help="run the benchmark case alone")
    parser.add_argument(
        "--qwen2-audio",
        type=Path,
        metavar="DIR",
        help="a released Qwen2-Audio folder: the evaluator against transformers' generate()",
    )
    parser.add_argument(
        "--released",
        type=Path,
        metavar="DIR",
        help="a released folder of any supported family (Qwen2-Audio, Audio Flamingo 3): the same case",
    )
    args = parser.parse_args()
    folder = args.released if args.released is not None else args.qwen2_audio
    if folder is not None:
        queries = draw_queries(read_shard(ensure_demo_data(Path("data/demo")) / "shard.jsonl"), args.queries)
        body, _, _ = released_section(folder, queries, args.batch_size, min(args.caps))
        print(body)
        if not args.no_write:  # one section per family (Qwen2-Audio's keeps its first name)
            family = read_released(folder).name
            write_section("bench_eval_released" + ("" if family == "qwen2_audio" else f"_{family}"), body)
        return
    if args.benchmark_only:
        load_start = os.getloadavg()[0]
        data = ensure_demo_data(Path("data/demo"))
        torch.manual_seed(0)
        model = AudioLLM(llm="builtin:smollm2-135m-instruct", encoder="small").eval()
        cap = min(args.caps)
        r = benchmark_case(model, data, args.benchmark_items, args.repeats, args.batch_size, cap)
        body = benchmark_section(r, args.repeats, args.batch_size, cap)
        body += f"\n\nLoad average (1 min) at the start and the end: {load_start:.2f}, {os.getloadavg()[0]:.2f}."
        print(body)
        if not args.no_write:
            write_section("bench_eval_benchmarks", body)
        return

    load_start = os.getloadavg()[0]
    data = ensure_demo_data(Path("data/demo"))
    queries = draw_queries(read_shard(data / "shard.jsonl"), args.queries)
    torch.manual_seed(0)
    model = AudioLLM(llm="builtin:smollm2-135m-instruct", encoder="small").eval()
    base = EvalSettings(sampling=Sampling(), repeats=args.repeats, batch_size=args.batch_size)
    inputs = EvalInputs(Collator(model.tokenizer, padding_side="left", with_answer=False))
    evaluator(model, queries[:2], replace(base, sampling=Sampling(max_new_tokens=4), repeats=1), inputs)  # warm-up
    results = []
    for cap in args.caps:
        r = measure(model, queries, base, inputs, cap)
        results.append(r)
        print(
            f"cap {cap}\nfull answers: {r['ltu'].seconds / r['t_full']:.1f}x\n"
            f"default mode: {r['ltu'].seconds / r['t_default']:.1f}x",
            flush=True,
        )
        if r["same_verdicts"] != len(r["full"].parsed):
            raise SystemExit(
                f"cap {cap}: the default mode changed {len(r['full'].parsed) - r['same_verdicts']} verdict(s)"
            )
    counts = {t: sum(q.task == t for q in queries) for t in TASKS}
    steps = {rows: decode_step_seconds(model, rows) for rows in (1, 8, args.repeats * args.batch_size)}
    body = section(results, len(queries), args.repeats, args.batch_size, counts, steps)
    body += f"\nLoad average (1 min) at the start and the end: {load_start:.2f}, {os.getloadavg()[0]:.2f}."
    print(body)
    if not args.no_write:
        write_section("bench_eval", body)
    cap = min(args.caps)
    r = benchmark_case(model, data, args.benchmark_items, args.repeats, args.batch_size, cap)
    body = benchmark_section(r, args.repeats, args.batch_size, cap)
    print(body)
    if not args.no_write:
        write_section("bench_eval_benchmarks", body)


if __name__ == "__main__":
    main()
