"""The adapter registry: push/list/show/pull/rm, versions, metrics, lineage, refused pushes,
names and references, the CLI, and concurrent pushes from several processes."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch
from typer.testing import CliRunner

import spadapt
from conftest import make_batch, output_of, tiny_bert, train_steps
from spadapt.cli.registry import registry_app
from spadapt.registry import Registry, RegistryError, parse_ref

runner = CliRunner()


def _save(path, labels=(), seed=0):
    config = spadapt.AdapterConfig(bottleneck=8, density=0.25, scorer="snip", seed=seed,
                                   labels=list(labels))
    batch = make_batch("bert")
    model = spadapt.attach(tiny_bert(), config, calibration=[batch])
    train_steps(model, batch, steps=2)
    model.save_adapter(path)
    return model, batch


@pytest.fixture(scope="module")
def adapters(tmp_path_factory):
    """Two trained tiny-BERT adapters (different content, same base) and the first model."""
    root = tmp_path_factory.mktemp("adapters")
    model, batch = _save(root / "a", labels=["neg", "pos", "mixed"])
    _save(root / "b", seed=1)
    return root / "a", root / "b", model, batch


@pytest.fixture
def registry(tmp_path):
    return Registry(tmp_path / "registry")


def test_push_list_show_pull_rm_round_trip(adapters, registry, tmp_path):
    a, b, model, batch = adapters
    first = registry.push(a, "sentiment", tags=["poc", "v0"])
    assert (first.ref, first.task, first.labels) == ("sentiment@1", "classification",
                                                     ["neg", "pos", "mixed"])
    assert first.sha256 == hashlib.sha256((a / "manifest.json").read_bytes()).hexdigest()
    assert first.size_bytes == sum(p.stat().st_size for p in a.iterdir())
    assert first.base_model_type == "bert" and first.base_fingerprint["weights_sha256"]
    assert first.tags == ["poc", "v0"] and first.metrics == {} and first.parent is None
    second = registry.push(b, "sentiment")  # saved without labels: the base's id2label
    assert (second.version, second.task, second.labels) == (
        2, "classification", ["LABEL_0", "LABEL_1", "LABEL_2"])
    assert [e.ref for e in registry.list()] == ["sentiment@1", "sentiment@2"]
    assert registry.show("sentiment") == second and registry.show("sentiment@1") == first
    assert Registry(registry.root).show("sentiment@1") == first  # read back from the database

    pulled = registry.pull("sentiment@1", tmp_path / "pulled")
    assert sorted(p.name for p in pulled.iterdir()) == sorted(p.name for p in a.iterdir())
    loaded = spadapt.load_adapter(tiny_bert(), pulled)
    assert torch.equal(output_of(loaded, batch), output_of(model, batch))
    assert registry.resolve("sentiment@1") == registry.blobs / first.sha256

    assert registry.remove("sentiment@1") == first
    assert [e.ref for e in registry.list()] == ["sentiment@2"]
    assert not (registry.blobs / first.sha256).exists()  # no other row used that blob
    assert registry.push(a, "sentiment").version == 3  # versions are never reused


def test_same_content_shares_a_blob_and_if_changed_skips(adapters, registry):
    a, _, _, _ = adapters
    one, two = registry.push(a, "x"), registry.push(a, "x")
    assert (one.version, two.version, one.sha256) == (1, 2, two.sha256)
    assert [p.name for p in registry.blobs.iterdir()] == [one.sha256]
    skipped = registry.push(a, "x", if_changed=True)
    assert skipped.unchanged and skipped.ref == "x@2"
    registry.remove("x@1")
    assert registry.resolve("x@2").is_dir()  # x@2 still uses the blob


def test_metrics_from_a_poc_run_layout_or_a_file(adapters, registry, tmp_path):
    a, _, _, _ = adapters
    run = tmp_path / "run"
    shutil.copytree(a, run / "sparse" / "adapter")
    shutil.copytree(a, run / "lora" / "adapter")
    results = {"methods": [
        {"name": "lora", "accuracy": 0.5, "adapter_dir": "lora/adapter"},
        {"name": "sparse", "accuracy": 0.719, "macro_f1": 0.709, "nonzero_params": 62440,
         "adapter_bytes": 285000, "train_seconds": 37.0, "history": [1, 2],
         "adapter_dir": "sparse/adapter"},
        {"name": "broken", "error": "failed"}]}
    (run / "results.json").write_text(json.dumps(results))
    entry = registry.push(run / "sparse" / "adapter", "s")
    assert entry.metrics == {"accuracy": 0.719, "macro_f1": 0.709, "nonzero_params": 62440,
                             "adapter_bytes": 285000, "train_seconds": 37.0}
    assert registry.push(run / "sparse" / "adapter", "s", metrics={}).metrics == {}
    flat = tmp_path / "eval.json"
    flat.write_text(json.dumps({"accuracy": 0.8, "rows": 10, "data": "x.csv"}))
    assert registry.push(a, "s", metrics=flat).metrics == {"accuracy": 0.8, "rows": 10}
    with pytest.raises(RegistryError, match="no method whose adapter_dir"):
        registry.push(a, "s", metrics=run / "results.json")


def test_lineage_parent_and_data_hash(adapters, registry, tmp_path):
    a, b, _, _ = adapters
    data = tmp_path / "train.csv"
    data.write_text("text,label\ngood,pos\n")
    base = registry.push(a, "base-task")
    child = registry.push(b, "tuned", parent="base-task", data_file=data)
    assert child.parent == "base-task@1"  # a bare name is recorded as its exact version
    assert child.data_sha256 == hashlib.sha256(data.read_bytes()).hexdigest()
    with pytest.raises(RegistryError, match="tuned@1"):
        registry.remove(base.ref)  # a parent of another entry
    with pytest.raises(RegistryError, match="no version 7; its versions are 1"):
        registry.push(b, "tuned", parent="base-task@7")
    with pytest.raises(RegistryError, match="does not exist"):
        registry.push(b, "tuned", data_file=tmp_path / "missing.csv")
    registry.remove(base.ref, force=True)
    assert registry.show("tuned").parent == "base-task@1"


def test_corrupt_adapter_is_refused_and_nothing_recorded(adapters, registry, tmp_path):
    corrupt = shutil.copytree(adapters[0], tmp_path / "corrupt")
    weights = corrupt / "adapter.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(RegistryError, match="refusing to push .*adapter.safetensors.*sha256"):
        registry.push(corrupt, "c")
    with pytest.raises(RegistryError, match="is not a directory"):
        registry.push(tmp_path / "nothing", "c")
    assert registry.list() == [] and list(registry.blobs.iterdir()) == []


def test_another_base_model_needs_new_base(adapters, registry, tmp_path):
    a, _, _, _ = adapters
    registry.push(a, "m")
    other = tmp_path / "other"
    manifest = json.loads((a / "manifest.json").read_text())
    manifest["base_model"]["weights_sha256"] = "0" * 64  # as if trained on other weights
    shutil.copytree(a, other)
    (other / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RegistryError, match="another base model"):
        registry.push(other, "m")
    assert registry.push(other, "m", new_base=True).version == 2


@pytest.mark.parametrize("name", ["../x", "a/b", "a\\b", "..", "", "__base__", "-x", "a" * 65,
                                  "a b", "x@1"])
def test_bad_names_are_refused(adapters, registry, name):
    with pytest.raises(RegistryError):
        registry.push(adapters[0], name)
    assert registry.list() == []


def test_references_parse_strictly_and_unknown_ones_list_what_exists(adapters, registry):
    assert parse_ref("a.b-c_1") == ("a.b-c_1", None) and parse_ref("a@12") == ("a", 12)
    for bad in ("a@0", "a@-1", "a@", "a@1.0", "a@x", "a@1@2", "@1"):
        with pytest.raises(RegistryError):
            parse_ref(bad)
    with pytest.raises(RegistryError, match="it is empty"):
        registry.show("nope")
    registry.push(adapters[0], "known")
    with pytest.raises(RegistryError, match="no adapter named 'nope'.*it has: known"):
        registry.show("nope@1")
    with pytest.raises(RegistryError, match="known has no version 2; its versions are 1"):
        registry.pull("known@2", "anywhere")
    with pytest.raises(RegistryError, match="exact version"):
        registry.remove("known")


def test_pull_refuses_to_overwrite_other_folders_and_detects_a_damaged_blob(
        adapters, registry, tmp_path):
    entry = registry.push(adapters[0], "p")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(RegistryError, match="not an adapter directory"):
        registry.pull("p", tmp_path / "busy")
    weights = registry.blobs / entry.sha256 / "adapter.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1])
    with pytest.raises(RegistryError, match="missing or corrupted"):
        registry.pull("p", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    registry.push(adapters[0], "p")  # a new push repairs the damaged blob
    assert registry.resolve("p@1").is_dir()


_PUSHER = textwrap.dedent("""
    import pathlib, sys, time
    import spadapt.storage  # import torch before the start signal, so the pushes overlap
    from spadapt.registry import Registry
    root, adapter, start = sys.argv[1:4]
    registry = Registry(root)
    print("ready", flush=True)
    while not pathlib.Path(start).exists():
        time.sleep(0.005)
    for _ in range(3):
        print(registry.push(adapter, "shared").version, flush=True)
""")


def test_concurrent_pushes_from_six_processes(adapters, tmp_path):
    """Six processes push 3 times each at once into a new registry: versions 1..18, exactly."""
    a, b, _, _ = adapters
    root, start = tmp_path / "registry", tmp_path / "start"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    processes = [subprocess.Popen([sys.executable, "-c", _PUSHER, str(root), str(d), str(start)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=env)
                 for d in (a, b) * 3]
    for process in processes:
        assert process.stdout.readline().strip() == "ready", process.stderr.read()
    start.touch()
    versions = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        versions += [int(line) for line in out.split()]
    assert sorted(versions) == list(range(1, 19))
    registry = Registry(root)
    entries = registry.list("shared")
    assert [e.version for e in entries] == list(range(1, 19))
    shas = {hashlib.sha256((d / "manifest.json").read_bytes()).hexdigest() for d in (a, b)}
    assert {e.sha256 for e in entries} == shas
    assert sorted(p.name for p in registry.blobs.iterdir()) == sorted(shas)  # no leftovers
    for entry in entries:
        assert registry.resolve(entry.ref).name == entry.sha256


_OPENER = textwrap.dedent("""
    import pathlib, sys
    from spadapt.registry import Registry
    folder = pathlib.Path(sys.argv[1])
    for line in sys.stdin:  # each line names a new registry, sent to every process at once
        Registry(folder / line.strip()).list()
        print("opened", flush=True)
""")


def test_processes_opening_a_new_registry_together_all_succeed(tmp_path):
    """Ten processes open the same new registry at once, forty times over; none may fail.

    SQLite refuses the switch to WAL mode with "database is locked", without waiting, when
    another connection is switching the same new file: without the retry this failed in most runs.
    """
    processes = [subprocess.Popen([sys.executable, "-c", _OPENER, str(tmp_path)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
                 for _ in range(10)]
    try:
        for number in range(40):
            for process in processes:
                process.stdin.write(f"registry{number}\n")
                process.stdin.flush()
            for process in processes:
                assert process.stdout.readline().strip() == "opened", process.stderr.read()
        for process in processes:
            process.stdin.close()
            assert process.wait(timeout=60) == 0, process.stderr.read()
    finally:
        for process in processes:
            process.kill()
            process.wait()


def test_cli_push_list_show_pull_rm(adapters, tmp_path):
    a, _, _, _ = adapters
    reg = ["--registry", str(tmp_path / "registry")]
    result = runner.invoke(registry_app, ["push", str(a), "--name", "cli", "--tag", "t1", *reg])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("pushed cli@1 (sha256 ")
    result = runner.invoke(registry_app, ["push", str(a), "--name", "cli", "--if-changed", *reg])
    assert result.exit_code == 0 and result.stdout.startswith("unchanged: cli@1"), result.output
    result = runner.invoke(registry_app, ["list", *reg])
    assert result.exit_code == 0, result.output
    header, row = result.stdout.splitlines()
    assert header.split()[:4] == ["ADAPTER", "TASK", "ACCURACY", "SIZE"]
    assert row.split()[:3] == ["cli@1", "classification", "-"] and row.endswith("t1")
    result = runner.invoke(registry_app, ["show", "cli", "--json", *reg])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["ref"] == "cli@1" and shown["tags"] == ["t1"]
    result = runner.invoke(registry_app, ["show", "cli@1", *reg])
    assert "adapter:     cli@1" in result.stdout and "task:        classification" in result.stdout
    result = runner.invoke(registry_app, ["pull", "cli", str(tmp_path / "out"), *reg])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "manifest.json").read_bytes() == (a / "manifest.json").read_bytes()
    result = runner.invoke(registry_app, ["rm", "cli@1", *reg])
    assert result.exit_code == 0 and result.stdout == "removed cli@1\n", result.output
    result = runner.invoke(registry_app, ["list", "--json", *reg])
    assert json.loads(result.stdout) == []


@pytest.mark.parametrize("args", [["push", "ADAPTER", "--name", "../evil"],
                                  ["show", "nobody"], ["pull", "x@0", "out"], ["rm", "x"],
                                  ["push", "MISSING", "--name", "ok"]])
def test_cli_bad_input_exits_2(adapters, tmp_path, args):
    args = [str(adapters[0]) if a == "ADAPTER" else str(tmp_path / "m") if a == "MISSING"
            else a for a in args]
    result = runner.invoke(registry_app, [*args, "--registry", str(tmp_path / "registry")])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and "Traceback" not in result.output
