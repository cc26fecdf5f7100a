"""`python -m interleave.export` was a command: it stops, naming the one that replaced it (see `interleave.moved`)."""

from interleave.moved import refuse

if __name__ == "__main__":
    refuse("interleave.export")
