"""`python -m interleave.data` was a command: it stops, naming the one that replaced it."""

from interleave.moved import refuse

refuse("interleave.data")
