"""Multiple-choice audio benchmarks in MMAU's released format, evaluated beside the SHARD.

`items` reads and checks a benchmark file (every bad item named by index and field) and picks the
fixed seeded subset; `choices` judges a generated answer (MMAU's own rule, and a separate,
named letter-aware reading); `prompts` renders an item's question and choices per prompt layout;
`ranked` scores each choice by its log-likelihood after the prompt. docs/benchmarks.md says how a
run asks them.
"""
