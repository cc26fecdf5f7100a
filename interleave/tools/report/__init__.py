"""`interleave report`: runs' metrics files -> a Table-2-style Markdown and CSV table, with 95 % intervals,
`--compare`, `--plot`, the forgetting summary and `--study`.

`cli` (the command), `runs` (run folders, their points and metrics files), `table` (Table 2's
columns, rows, intervals), `study` (a study's conditions over seeds), `forgetting` (gain and
retention since epoch 00), `figure` (`--plot`), `pairs` (the two-clip task's lines) and
`reliance` (the probes' reliance table).
"""
