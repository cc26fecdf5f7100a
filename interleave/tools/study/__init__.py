"""`interleave study`: a study's conditions × seeds as runs, resumable, here or as Slurm jobs.

`cli` (the command, `--status`) and `file` (the study file, checked key by key).
"""
