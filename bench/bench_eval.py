"""SHARD evaluation throughput: the project's evaluator against an LTU-style loop, in one run.

Both answer the same queries of the demo SHARD with the same model (SmolLM2-135M-Instruct and
the demo's frozen encoder) and LTU's sampling settings, each query `--repeats` times.
- LTU-style: one query and one repeat at a time, fbank and encoder recomputed for every answer,
  HF `generate` with up to 400 new tokens (LTU's evaluation loop).
- interleave: `interleave.shard.evaluate.answer_queries`, batches of 32 queries with left padding,
  the repeats sharing one prefill, features computed once per clip, stop at EOS or `--cap` tokens.
Writes queries/s of both and their ratio to bench/RESULTS.md (target: >= 20x).

    .venv/bin/python bench/bench_eval.py [--queries 32] [--repeats 4] [--cap 12] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.results import write_section  # noqa: E402
from interleave.audio import load_fbank  # noqa: E402
from interleave.collate import Collator  # noqa: E402
from interleave.generation import Sampling  # noqa: E402
from interleave.model import AudioLLM  # noqa: E402
from interleave.records import Record  # noqa: E402
from interleave.shard import read_shard  # noqa: E402
from interleave.shard.evaluate import EvalSettings, answer_queries, prompt_table, render_instruction  # noqa: E402
from interleave.tools.demo import ensure_demo_data  # noqa: E402

LTU = dict(do_sample=True, temperature=0.1, top_p=0.95, top_k=500, repetition_penalty=1.1)


def ltu_style(model: AudioLLM, queries, repeats: int) -> tuple[float, list[str]]:
    """LTU's loop: per answer, load the audio, run the encoder, generate alone up to 400 tokens."""
    collator = Collator(model.tokenizer, padding_side="left", with_answer=False)
    table, answers = prompt_table(), []
    start = time.perf_counter()
    for query in queries:
        prompt = render_instruction(query, "interleaved", table)
        encoded = collator.pad([collator.encode(Record(id=query.id, audio=query.audio, instruction=prompt))], "left")
        for _ in range(repeats):
            fbank = load_fbank(query.audio)[None]
            answers += model.generate(encoded["input_ids"], encoded["attention_mask"], encoded["audio_mask"], fbank,
                                      max_new_tokens=400, **LTU)
    return time.perf_counter() - start, answers


def ours(model: AudioLLM, queries, repeats: int, cap: int, batch_size: int) -> tuple[float, list[str]]:
    settings = EvalSettings(Collator(model.tokenizer, padding_side="left", with_answer=False), prompt_table(),
                            Sampling(max_new_tokens=cap), repeats=repeats, batch_size=batch_size)
    start = time.perf_counter()
    rows = answer_queries(model, list(queries), "interleaved", settings, {})
    return time.perf_counter() - start, [a for r in rows for a in r["answers"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--cap", type=int, default=12, help="new-token cap of the evaluator (the demo's)")
    parser.add_argument("--batch-size", type=int, default=32, help="queries per batch of the evaluator")
    args = parser.parse_args()

    data = ensure_demo_data(Path("data/demo"))
    shard = [q for q in read_shard(data / "shard.jsonl") if q.task != "identity"]
    queries = shard[: args.queries]
    torch.manual_seed(0)
    model = AudioLLM(llm="builtin:smollm2-135m-instruct", encoder="small").eval()
    ours(model, queries[:2], 1, 4, 2)  # warm-up
    # The evaluator runs before and after the LTU-style loop and the two timings are averaged,
    # so a machine busy with other work in one phase weighs on both sides alike.
    t_first, a_ours = ours(model, queries, args.repeats, args.cap, args.batch_size)
    t_ltu, a_ltu = ltu_style(model, queries, args.repeats)
    t_second, _ = ours(model, queries, args.repeats, args.cap, args.batch_size)
    t_ours = (t_first + t_second) / 2
    n = len(queries)
    ratio = t_ltu / t_ours
    tokens_ltu = sum(len(model.tokenizer(a)["input_ids"]) for a in a_ltu) / len(a_ltu)
    tokens_ours = sum(len(model.tokenizer(a)["input_ids"]) for a in a_ours) / len(a_ours)
    body = f"""## SHARD evaluation: interleave's evaluator vs an LTU-style loop

Same {n} demo SHARD queries (synonym/hypernym, interleaved prompts), {args.repeats} sampled answers each,
SmolLM2-135M-Instruct + the demo's frozen encoder, LTU's sampling (temperature 0.1, top-p 0.95,
top-k 500, repetition penalty 1.1).

| evaluator | seconds | queries/s | mean answer tokens |
| --- | ---: | ---: | ---: |
| LTU-style: one answer at a time, encoder recomputed, up to 400 new tokens | {t_ltu:.1f} | {n / t_ltu:.3f} | {tokens_ltu:.0f} |
| interleave: batch {args.batch_size}, shared prefill, features once per clip, cap {args.cap} tokens (mean of a run before and after) | {t_ours:.1f} | {n / t_ours:.3f} | {tokens_ours:.0f} |

Speed-up: **{ratio:.1f}x** (target >= 20x)."""
    print(body)
    write_section("bench_eval", body)


if __name__ == "__main__":
    main()
