"""Write one benchmark's section of bench/RESULTS.md, keeping the other sections as they are."""

from __future__ import annotations

import datetime
import os
import platform
import re
import sys
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def machine() -> str:
    cpus = os.cpu_count()
    try:
        import torch

        threads = torch.get_num_threads()
        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    except ImportError:
        threads, gpu = "?", "?"
    return f"{platform.platform()}, {platform.processor() or platform.machine()}, {cpus} CPUs, torch threads {threads}, {gpu}"


def write_section(name: str, body: str) -> None:
    """Replace (or append) the block between `<!-- name:start -->` and `<!-- name:end -->` with
    `body`, stamped with the command, the machine and the date."""
    stamp = (
        f"Command: `{' '.join([Path(sys.executable).name, *sys.argv])}`  \n"
        f"Machine: {machine()}  \nDate: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M UTC}\n"
    )
    block = f"<!-- {name}:start -->\n{body.rstrip()}\n\n{stamp}<!-- {name}:end -->"
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    pattern = re.compile(rf"<!-- {re.escape(name)}:start -->.*?<!-- {re.escape(name)}:end -->", re.DOTALL)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(text, encoding="utf-8")
