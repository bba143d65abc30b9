"""What the generated BENCHMARKS.md sections share: a median with its range, a verdict, and the
line naming the machine and command a result was measured with."""

from __future__ import annotations


def range_text(summary: dict, digits: int = 3, unit: str = "") -> str:
    """"median (min–max)" of a common.Series summary or ratio_summary."""
    return (f"{summary['median']:.{digits}f}{unit} "
            f"({summary['min']:.{digits}f}–{summary['max']:.{digits}f})")


def verdict(value: float, limit: float, higher_is_better: bool = False) -> str:
    met = value >= limit if higher_is_better else value <= limit
    return "**met**" if met else "**missed**"


def machine_line(result: dict) -> str:
    m = result["machine"]
    threads = f"{m['torch_threads']} torch thread" + ("s" if m["torch_threads"] != 1 else "")
    return (f"{m['cpu']}, {threads}, torch {m['torch']}, "
            f"transformers {m['transformers']}, peft {m['peft']}, Python {m['python']}, "
            f"{m['date']}; `{result['command']}`")
