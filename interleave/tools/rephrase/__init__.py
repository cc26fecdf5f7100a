"""`interleave rephrase`: OpenAQA -> interleaved fine-tuning records (Appendix B), resumable.

`cli` (the command and its summary), `openaqa` (OpenAQA's source kinds, streaming, the seeded
selection) and `rewriters` (one instruction -> one interleaved prompt: templates, validation, backends).
"""
