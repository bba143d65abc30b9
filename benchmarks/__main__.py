"""`python -m benchmarks PART [options]`; `python -m benchmarks all` runs every part in turn
(but the decoder's parts, `generate`, `generate_lr`, `levers`, `generation` and
`memory_model`, hours on a 2-core CPU: run them on their own; `step --model builtin:smollm2`
is the decoder's step part)."""

from __future__ import annotations

import argparse
import importlib

PARTS = ("step", "storage", "inference", "selection", "accuracy", "markdown")
ON_THEIR_OWN = ("generate", "generate_lr", "levers", "generation", "memory_model")  # not in `all`


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    commands = parser.add_subparsers(dest="part", required=True)
    modules = {}
    for part in (*PARTS, *ON_THEIR_OWN):
        module = importlib.import_module(f"benchmarks.{part}")
        modules[part] = module
        module.add_arguments(commands.add_parser(part, help=module.__doc__.splitlines()[0]))
    commands.add_parser("all", help="every part with its defaults, then BENCHMARKS.md")
    args = parser.parse_args()
    if args.part == "all":
        for part in PARTS:
            sub = argparse.ArgumentParser()
            modules[part].add_arguments(sub)
            print(f"== {part}", flush=True)
            modules[part].main(sub.parse_args([]))
        return
    modules[args.part].main(args)


if __name__ == "__main__":
    main()
