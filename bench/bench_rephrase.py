"""Benchmark: records/s of `interleave rephrase --backend openai` against a local
chat-completions mock that answers after a fixed delay, at concurrency 1 and 32.

    .venv/bin/python bench/bench_rephrase.py [--delay 0.02] [--records-c1 200] [--records-c32 2000]

The mock runs in its own process (so it does not share the client's GIL). Figures, the command,
the machine and the date go into bench/RESULTS.md, replacing this benchmark's earlier section.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from interleave.tools.rephrase.cli import _parser, build  # noqa: E402

RESULTS = REPO / "bench" / "RESULTS.md"
START, END = "<!-- bench_rephrase:start -->", "<!-- bench_rephrase:end -->"
KEY_ENV = "BENCH_REPHRASE_KEY"


def serve(port_queue: multiprocessing.Queue, delay: float) -> None:
    """A chat-completions endpoint answering a valid interleaved prompt after `delay` seconds."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            time.sleep(delay)
            content = json.dumps({"revised_prompt": "Regarding [AUDIO], list the labels and their acoustic features."})
            data = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.request_queue_size = 128
    port_queue.put(server.server_address[1])
    server.serve_forever()


def make_input(path: Path, n: int) -> None:
    kinds = [("open-ended question", "as_strong_train"), ("cla_label", "as_20k"), ("cla_label_des", "as_strong_train")]
    with path.open("w") as f:
        objs = (
            {
                "instruction": f"What can be heard in the audio clip? ({i})",
                "input": "",
                "audio_id": f"/a/{i}.flac",
                "dataset": kinds[i % 3][1],
                "task": kinds[i % 3][0],
                "output": f"answer {i}",
            }
            for i in range(n)
        )
        f.write("[\n" + ",\n".join(json.dumps(o) for o in objs) + "\n]")


def measure(url: str, workdir: Path, records: int, concurrency: int) -> dict:
    inp = workdir / f"in_{records}.json"
    if not inp.exists():
        make_input(inp, records)
    out = workdir / f"out_c{concurrency}.jsonl"
    args = _parser().parse_args(
        [
            "--input",
            str(inp),
            "--out",
            str(out),
            "--size",
            str(records),
            "--backend",
            "openai",
            "--base-url",
            url,
            "--model",
            "mock",
            "--api-key-env",
            KEY_ENV,
            "--concurrency",
            str(concurrency),
            "--timeout",
            "10",
        ]
    )
    stats = build(args)
    assert stats["written"] == records and stats["rejected"] == 0, stats
    return {
        "concurrency": concurrency,
        "records": records,
        "seconds": stats["seconds"],
        "records_per_s": round(records / stats["seconds"], 1),
    }


def write_results(section: str) -> None:
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmarks\n"
    if START in text and END in text:
        text = text[: text.index(START)] + section + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    RESULTS.write_text(text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--delay", type=float, default=0.02, help="seconds the mock waits before answering")
    p.add_argument("--records-c1", type=int, default=200)
    p.add_argument("--records-c32", type=int, default=2000)
    p.add_argument("--no-write", action="store_true", help="print only, leave RESULTS.md alone")
    ns = p.parse_args()
    os.environ[KEY_ENV] = "bench-dummy-key"
    ports: multiprocessing.Queue = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(ports, ns.delay), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{ports.get(timeout=30)}/v1"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            rows = [measure(url, Path(tmp), ns.records_c1, 1), measure(url, Path(tmp), ns.records_c32, 32)]
    finally:
        server.terminate()
        server.join()
    ideal = 1 / ns.delay
    command = "python bench/bench_rephrase.py " + " ".join(sys.argv[1:])
    lines = [
        START,
        "## rephrase: records/s against a local chat-completions mock",
        "",
        f"- command: `{command.strip()}`",
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} CPUs "
        "(shared with other work while measured)",
        f"- mock: a separate process, answers every request after {ns.delay * 1000:.0f} ms; client: urllib, "
        "one connection per request, output flushed per record, fsynced every 64",
        "",
        "| concurrency | records | seconds | records/s | ideal (concurrency / delay) |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r['concurrency']} | {r['records']} | {r['seconds']:.2f} | {r['records_per_s']} | "
        f"{r['concurrency'] * ideal:.0f} |"
        for r in rows
    ]
    speedup = rows[1]["records_per_s"] / rows[0]["records_per_s"]
    lines += ["", f"Speed-up from 1 to 32 in flight: {speedup:.1f}x.", END]
    section = "\n".join(lines)
    print(section)
    if not ns.no_write:
        write_results(section)


if __name__ == "__main__":
    main()
