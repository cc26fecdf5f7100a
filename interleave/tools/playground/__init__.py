"""`interleave playground`: a browser page (Gradio) asking a model about your clips, both
layouts side by side.

`cli` (the page, its sign-in, checkpoint roots, upload bounds and queue) and `ask` (what it
serves and one question answered on the evaluation's path; no Gradio there).
"""
