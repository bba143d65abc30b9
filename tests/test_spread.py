"""Where an adapter keeps its values: counts by layer and module from stored names, shown by
`spadapt inspect` (a table, and a plot with --plot) and in the PoC's results."""

from __future__ import annotations

from typer.testing import CliRunner

import spadapt
from conftest import tiny_bert, tiny_gpt2, tiny_llama
from spadapt.cli import app
from spadapt.spread import HEAD_ROW, kept_spread, layer_and_module


def test_layers_and_modules_of_the_families_names() -> None:
    assert layer_and_module("bert.encoder.layer.3.output::down") == ("3", "output")
    assert layer_and_module("bert.encoder.layer.11.attention.self.query::delta") == \
        ("11", "attention.self.query")
    assert layer_and_module("model.layers.0.mlp.down_proj::delta") == ("0", "mlp.down_proj")
    assert layer_and_module("transformer.h.2.attn.c_attn::delta") == ("2", "attn.c_attn")
    assert layer_and_module("classifier::weight") == (HEAD_ROW, "classifier")


def _exported(model) -> dict[str, int]:
    return {name: t.values.numel() for name, t in model.export_adapter("default").items()}


def test_the_spread_counts_every_kept_value_once_in_layer_order() -> None:
    for base, config in ((tiny_bert(), dict(method="bottleneck", bottleneck=8, density=0.3)),
                         (tiny_llama(), dict(method="sparse_delta", density=0.05)),
                         (tiny_gpt2(), dict(method="sparse_delta", density=0.05))):
        model = spadapt.attach(base, spadapt.AdapterConfig(**config))
        values = _exported(model)
        spread = kept_spread(values)
        assert spread.total == sum(values.values()) == model.parameter_report()["nonzero"]
        numbered = [layer for layer in spread.layers if layer != HEAD_ROW]
        assert numbered == ["0", "1"]  # the tiny models' two layers, in order
        assert all(len(row) == len(spread.modules) for row in spread.counts)
        assert all(any(row) for row in spread.counts)  # no empty row


def test_inspect_prints_the_spread_and_draws_it(tmp_path) -> None:
    model = spadapt.attach(tiny_bert(), spadapt.AdapterConfig(method="sparse_delta",
                                                             density=0.05))
    directory = model.save_adapter(tmp_path / "adapter")
    plot = tmp_path / "spread.png"
    result = CliRunner().invoke(app, ["inspect", str(directory), "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    lines = result.output.split("kept values by layer and module:")[1].splitlines()
    header = lines[1].split()
    assert header[:2] == ["LAYER", "TOTAL"] and "ATTENTION.SELF.QUERY" in header
    rows = {line.split()[0]: line.split() for line in lines[2:] if line.strip()
            and not line.startswith("plot:")}
    spread = kept_spread(_exported(model))
    for layer, counts in zip(spread.layers, spread.counts, strict=True):
        assert rows[layer][1] == f"{sum(counts):,}"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
