"""Bounded load test of `spadapt serve` on loopback: single-adapter vs mixed-adapter traffic.

Creates N sparse adapters on the real MiniLM (builtin:minilm; bottleneck, density 0.2, random
masks, randomly perturbed weights and heads, so every adapter answers differently), starts the
server as a subprocess on a free 127.0.0.1 port, and sends a fixed number of /v1/classify
requests from concurrent clients, first all to one adapter, then spread round-robin over all N
(same texts, same order). Reports p50/p99 latency, throughput, 4xx/5xx counts, rows per forward
and the mixed/single throughput ratio; writes benchmarks/results/serve_load.json. Stops by
itself: fixed request count, a wall-clock limit per phase, the server killed at the end.

    python benchmarks/load_test.py --requests 400 --concurrency 16 --adapters 8

Passes (exit 0) when there are no 5xx and mixed throughput >= 0.8 x single throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

RESULTS = Path(__file__).resolve().parent / "results" / "serve_load.json"


def make_adapters(root: Path, count: int) -> dict[str, Path]:
    """`count` perturbed sparse bottleneck adapters on MiniLM, saved under `root`."""
    import torch
    from transformers import AutoTokenizer

    import spadapt
    from spadapt.assets import resolve_model
    from spadapt.tasks import ClassificationTask

    path = str(resolve_model("builtin:minilm"))
    task = ClassificationTask(AutoTokenizer.from_pretrained(path), ["negative", "positive"])
    dirs = {}
    for index in range(count):
        config = spadapt.AdapterConfig(method="bottleneck", bottleneck=64, density=0.2,
                                       scorer="random", seed=index, labels=task.labels)
        model = spadapt.attach(task.load_base(path), config, f"a{index}")
        generator = torch.Generator().manual_seed(index)
        with torch.no_grad():
            for parameter in model.parameters():
                if parameter.requires_grad:
                    parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.05)
        dirs[f"a{index}"] = model.save_adapter(root / f"a{index}", base_model="builtin:minilm")
    return dirs


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(dirs: dict[str, Path], port: int, args) -> subprocess.Popen:
    command = [sys.executable, "-m", "spadapt.cli", "serve", "--model", "builtin:minilm",
               "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
               "--max-batch-size", str(args.max_batch_size),
               "--max-batch-wait-ms", str(args.max_batch_wait_ms),
               "--max-resident-adapters", str(max(args.adapters, 1))]
    for name, directory in dirs.items():
        command += ["--adapter", f"{name}={directory}"]
    return subprocess.Popen(command)


def wait_healthy(url: str, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with code {process.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"the server was not healthy after {timeout:.0f} s")


def scrape(url: str) -> dict[str, float]:
    from spadapt.serve.metrics import parse_text

    return parse_text(httpx.get(f"{url}/metrics", timeout=10).text)


async def run_phase(url: str, plan: list[tuple[str, list[str]]], concurrency: int,
                    limit_s: float) -> dict:
    """Send every request of `plan` with at most `concurrency` in flight; latency per request."""
    latencies, statuses, failures = [], [], 0
    semaphore = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        async def one(adapter: str, texts: list[str]) -> None:
            nonlocal failures
            async with semaphore:
                start = time.perf_counter()
                try:
                    response = await client.post("/v1/classify",
                                                 json={"adapter": adapter, "texts": texts})
                    statuses.append(response.status_code)
                except httpx.HTTPError:
                    failures += 1
                    return
                latencies.append(time.perf_counter() - start)

        start = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(one(a, t) for a, t in plan)), limit_s)
        elapsed = time.perf_counter() - start
    quantiles = statistics.quantiles(latencies, n=100, method="inclusive") if latencies else []
    return {
        "requests": len(plan), "texts": sum(len(t) for _, t in plan),
        "ok": statuses.count(200), "status_4xx": sum(400 <= s < 500 for s in statuses),
        "status_5xx": sum(s >= 500 for s in statuses), "transport_errors": failures,
        "seconds": round(elapsed, 3),
        "throughput_rps": round(len(latencies) / elapsed, 2),
        "throughput_texts_per_s": round(sum(len(t) for _, t in plan) / elapsed, 2),
        "latency_p50_ms": round(quantiles[49] * 1000, 1) if quantiles else None,
        "latency_p99_ms": round(quantiles[98] * 1000, 1) if quantiles else None,
    }


def batch_stats(before: dict, after: dict) -> dict:
    forwards = after["spadapt_batch_size_count"] - before["spadapt_batch_size_count"]
    rows = after["spadapt_batch_size_sum"] - before["spadapt_batch_size_sum"]
    adapters = after["spadapt_batch_adapters_sum"] - before["spadapt_batch_adapters_sum"]
    return {"forwards": int(forwards), "rows_per_forward": round(rows / max(forwards, 1), 2),
            "adapters_per_forward": round(adapters / max(forwards, 1), 2),
            "mixed_forwards": int(after["spadapt_mixed_batches_total"]
                                  - before["spadapt_mixed_batches_total"])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per phase")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--adapters", type=int, default=8, help="adapters in the mixed phase")
    parser.add_argument("--texts-per-request", type=int, default=4)
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--max-batch-wait-ms", type=float, default=5.0)
    parser.add_argument("--phase-timeout", type=float, default=600.0,
                        help="seconds before a phase is abandoned")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not (1 <= args.requests <= 100_000 and 1 <= args.concurrency <= 256
            and 1 <= args.adapters <= 64):
        parser.error("keep --requests <= 100000, --concurrency <= 256, --adapters <= 64")

    from spadapt.data import read_rotten_tomatoes

    corpus = [e.text for e in read_rotten_tomatoes()]
    rng = random.Random(args.seed)
    texts = [rng.sample(corpus, args.texts_per_request) for _ in range(args.requests)]
    names = [f"a{i}" for i in range(args.adapters)]
    plans = {"single": [(names[0], t) for t in texts],
             "mixed": [(names[i % len(names)], t) for i, t in enumerate(texts)]}

    with tempfile.TemporaryDirectory(prefix="spadapt-load-") as tmp:
        print(f"creating {args.adapters} adapters on MiniLM ...", flush=True)
        dirs = make_adapters(Path(tmp), args.adapters)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        process = start_server(dirs, port, args)
        try:
            wait_healthy(url, process, timeout=180)
            asyncio.run(run_phase(url, [(n, texts[0]) for n in names], len(names), 120))  # warm
            phases = {}
            for mode, plan in plans.items():
                before = scrape(url)
                print(f"{mode}: {len(plan)} requests, {args.concurrency} in flight ...",
                      flush=True)
                phases[mode] = asyncio.run(run_phase(url, plan, args.concurrency,
                                                     args.phase_timeout))
                phases[mode].update(batch_stats(before, scrape(url)))
            final = scrape(url)
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    ratio = phases["mixed"]["throughput_rps"] / max(phases["single"]["throughput_rps"], 1e-9)
    five_xx = sum(p["status_5xx"] for p in phases.values())
    result = {
        "benchmark": "spadapt serve load test (loopback, /v1/classify)",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": platform.python_version()},
        "model": "builtin:minilm",
        "adapters": {"count": args.adapters, "method": "bottleneck", "bottleneck": 64,
                     "density": 0.2},
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "phases": phases,
        "server": {"resident_adapters": final.get("spadapt_resident_adapters"),
                   "cache_misses": final.get("spadapt_adapter_cache_misses_total")},
        "mixed_over_single_throughput": round(ratio, 3),
        "status_5xx": five_xx,
        "passed": five_xx == 0 and ratio >= 0.8,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for mode, phase in phases.items():
        print(f"{mode:>6}: {phase['throughput_rps']:7.2f} req/s  p50 {phase['latency_p50_ms']} ms"
              f"  p99 {phase['latency_p99_ms']} ms  5xx {phase['status_5xx']}  "
              f"rows/forward {phase['rows_per_forward']}  adapters/forward "
              f"{phase['adapters_per_forward']}")
    print(f"mixed/single throughput {ratio:.3f}; 5xx {five_xx}; "
          f"{'PASS' if result['passed'] else 'FAIL'}; wrote {args.out}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
