"""`spadapt serve` over real HTTP on loopback: classify and completions equal the library's
offline outputs, concurrent mixed-adapter requests equal sequential ones (and share batches),
the LRU cache swaps adapters in and out, adapters load and unload at run time, a broken adapter
fails only its own requests, and every kind of bad input gets its 4xx JSON error."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import sys
import threading
import time
import types

import httpx
import pytest
import torch
import typer
import uvicorn
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    BertModel,
    LlamaConfig,
    LlamaForCausalLM,
)

import spadapt
from spadapt.assets import resolve_model
from spadapt.predict import predict_texts
from spadapt.serve import ServeConfig, cache, create_app
from spadapt.serve.metrics import parse_text
from spadapt.storage import AdapterTask
from spadapt.tasks import CausalLMTask, ClassificationTask

TEXTS = ["a gripping, beautiful film", "dull and far too long", "I laughed, then I cried",
         "the plot makes no sense at all", "fine"]
ADAPTERS = {  # name -> (AdapterConfig fields, labels)
    "sent": (dict(method="bottleneck", placement="pfeiffer", bottleneck=8, density=0.5,
                  seed=1), ["neg", "pos"]),
    "spam": (dict(method="bottleneck", placement="houlsby", bottleneck=4, density=0.3,
                  seed=2), ["ham", "spam"]),
    "topic": (dict(method="sparse_delta", density=0.05, seed=3), ["world", "sport", "tech"]),
}
KEY = "s3cret"


# Models and adapters ----------------------------------------------------------------------------
def _perturb(model, scale: float, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.add_(torch.randn(parameter.shape, generator=generator) * scale)


def _classifier(folder, labels):
    return AutoModelForSequenceClassification.from_pretrained(
        folder, num_labels=len(labels), ignore_mismatched_sizes=True).eval()


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    """(base folder, {adapter name: adapter dir}) for a tiny BERT with MiniLM's tokenizer."""
    root = tmp_path_factory.mktemp("bert")
    tokenizer = AutoTokenizer.from_pretrained(resolve_model("builtin:minilm"))
    torch.manual_seed(0)
    base = BertForSequenceClassification(BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=64, num_labels=2))
    base.save_pretrained(root / "base")
    tokenizer.save_pretrained(root / "base")
    dirs = {}
    for index, (name, (fields, labels)) in enumerate(ADAPTERS.items()):
        model = spadapt.attach(_classifier(root / "base", labels),
                               spadapt.AdapterConfig(**fields, labels=labels), name)
        _perturb(model, 0.5, seed=index)
        dirs[name] = model.save_adapter(root / name, base_model=str(root / "base"))
    return root / "base", dirs


def _offline_classify(base_dir, adapter_dir, labels, texts) -> list[dict]:
    """The library's answer: the adapter loaded on a fresh base, `predict_texts`."""
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    model = spadapt.load_adapter(_classifier(base_dir, labels), adapter_dir).eval()
    return predict_texts(model, ClassificationTask(tokenizer, labels, max_length=512), texts)


@pytest.fixture(scope="module")
def expected(bert):
    base_dir, dirs = bert
    return {name: _offline_classify(base_dir, dirs[name], ADAPTERS[name][1], TEXTS)
            for name in ADAPTERS}


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    """(base folder, sparse_delta adapter dir) for a tiny Llama with SmolLM2's tokenizer."""
    root = tmp_path_factory.mktemp("llama")
    tokenizer = AutoTokenizer.from_pretrained(resolve_model("builtin:smollm2"))
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id)).save_pretrained(root / "base")
    tokenizer.save_pretrained(root / "base")
    model = spadapt.attach(AutoModelForCausalLM.from_pretrained(root / "base").eval(),
                           spadapt.AdapterConfig(method="sparse_delta", density=0.05, seed=4),
                           "chat")
    _perturb(model, 2.0, seed=9)
    return root / "base", model.save_adapter(root / "chat", base_model=str(root / "base"))


# A real server on a loopback port ------------------------------------------------------------
class Running:
    """uvicorn serving `create_app(config)` in a thread on a free 127.0.0.1 port."""

    def __init__(self, config: ServeConfig) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.app = create_app(config)
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "server did not start"
            time.sleep(0.02)
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def stop(self) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.sock.close()

    def metrics(self) -> dict[str, float]:
        return parse_text(self.client.get("/metrics").text)


@pytest.fixture(scope="module")
def server(bert):
    base_dir, dirs = bert
    running = Running(ServeConfig(
        model=str(base_dir), adapters={n: str(d) for n, d in dirs.items()},
        max_batch_wait_ms=50, max_texts=8, max_text_chars=200, max_body_bytes=100_000))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def small_cache(bert):
    base_dir, dirs = bert
    running = Running(ServeConfig(model=str(base_dir),
                                  adapters={n: str(d) for n, d in dirs.items()},
                                  max_resident_adapters=2, max_batch_wait_ms=20))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def lm_server(llama):
    base_dir, adapter_dir = llama
    running = Running(ServeConfig(model=str(base_dir), adapters={"chat": str(adapter_dir)},
                                  api_key=KEY, max_new_tokens=12, max_length=64,
                                  max_batch_wait_ms=50))
    running.client.headers["Authorization"] = f"Bearer {KEY}"
    yield running
    running.stop()


def _assert_same(got: dict, want: list[dict], texts=TEXTS) -> None:
    assert len(got["results"]) == len(texts)
    for result, reference in zip(got["results"], want, strict=True):
        assert result["label"] == reference["label"]
        assert result["probabilities"].keys() == reference["probabilities"].keys()
        for label, p in reference["probabilities"].items():
            assert result["probabilities"][label] == pytest.approx(p, abs=1e-5)


def _classify(client, adapter: str, texts=TEXTS) -> httpx.Response:
    return client.post("/v1/classify", json={"adapter": adapter, "texts": texts})


# Outputs ----------------------------------------------------------------------------------------
def test_classify_over_http_equals_the_library(server, expected) -> None:
    answers = {}
    for name in ADAPTERS:
        response = _classify(server.client, name)
        assert response.status_code == 200, response.text
        assert response.json()["labels"] == ADAPTERS[name][1]
        _assert_same(response.json(), expected[name])
        answers[name] = [r["probabilities"] for r in response.json()["results"]]
    assert answers["sent"] != answers["spam"]  # the adapters really differ


def test_predict_command_against_the_server(server, expected) -> None:
    from typer.testing import CliRunner

    from spadapt.cli import app

    name = next(iter(ADAPTERS))
    args = ["predict", "--server", server.url, "--adapter", name]
    for text in TEXTS:
        args += ["--text", text]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["text"] for r in rows] == list(TEXTS)
    _assert_same({"results": rows}, expected[name])
    unknown = CliRunner().invoke(app, ["predict", "--server", server.url, "--adapter", "nope",
                                       "--text", "hello"])
    assert unknown.exit_code == 2 and "404" in unknown.stderr


def test_models_lists_adapters_with_their_base_and_health(server, bert) -> None:
    base_dir, _ = bert
    models = server.client.get("/v1/models").json()["data"]
    assert models[0]["id"] == str(base_dir) and models[0]["parent"] is None
    by_id = {m["id"]: m for m in models[1:]}
    assert set(by_id) == set(ADAPTERS)
    assert all(m["parent"] == str(base_dir) and m["task"] == "classification"
               for m in by_id.values())
    assert by_id["topic"]["labels"] == ["world", "sport", "tech"]
    health = server.client.get("/healthz").json()
    assert health["status"] == "ok" and health["known_adapters"] == 3


async def _fire(url: str, requests: list[tuple[str, list[str]]], headers=None) -> list:
    async with httpx.AsyncClient(base_url=url, timeout=60, headers=headers) as client:
        return await asyncio.gather(*(
            client.post("/v1/classify", json={"adapter": a, "texts": t}) for a, t in requests))


def test_mixed_adapters_in_flight_equal_one_at_a_time(server) -> None:
    requests = [(name, TEXTS[i % 5: i % 5 + 1 + i % 3])
                for i in range(24) for name in [list(ADAPTERS)[i % 3]]]
    sequential = [_classify(server.client, a, t).json() for a, t in requests]
    mixed_before = server.metrics()["spadapt_mixed_batches_total"]
    responses = asyncio.run(_fire(server.url, requests))
    for response, alone in zip(responses, sequential, strict=True):
        assert response.status_code == 200, response.text
        _assert_same(response.json(), [
            {"label": r["label"], "probabilities": r["probabilities"]} for r in alone["results"]],
            texts=alone["results"])
    metrics = server.metrics()
    assert metrics["spadapt_mixed_batches_total"] > mixed_before
    assert metrics["spadapt_batch_adapters_max"] >= 2
    assert metrics['spadapt_requests_total{method="POST",route="/v1/classify",status="200"}'] >= 48


def test_lru_cache_serves_more_adapters_than_fit(small_cache, expected) -> None:
    names = list(ADAPTERS)
    for name in names + names[::-1]:
        response = _classify(small_cache.client, name)
        assert response.status_code == 200, response.text
        _assert_same(response.json(), expected[name])
    responses = asyncio.run(_fire(small_cache.url, [(names[i % 3], TEXTS) for i in range(9)]))
    for i, response in enumerate(responses):
        assert response.status_code == 200, response.text
        _assert_same(response.json(), expected[names[i % 3]])
    metrics = small_cache.metrics()
    assert metrics["spadapt_resident_adapters"] <= 2
    assert metrics["spadapt_adapter_cache_misses_total"] >= 4
    assert metrics["spadapt_adapter_evictions_total"] >= 2
    assert metrics["spadapt_adapter_cache_hits_total"] >= 1


# Run-time adapters --------------------------------------------------------------------------
def test_load_and_unload_at_run_time(server, bert, expected) -> None:
    _, dirs = bert
    response = server.client.post("/v1/adapters", json={"name": "late@2",
                                                        "path": str(dirs["sent"])})
    assert response.status_code == 201, response.text
    assert response.json()["id"] == "late@2" and response.json()["resident"]
    assert "late@2" in {m["id"] for m in server.client.get("/v1/models").json()["data"]}
    _assert_same(_classify(server.client, "late@2").json(), expected["sent"])
    again = server.client.post("/v1/adapters", json={"name": "late@2", "path": str(dirs["spam"])})
    assert again.status_code == 409 and again.json()["error"]["type"] == "adapter_exists"
    assert server.client.delete("/v1/adapters/late@2").json()["deleted"] is True
    assert _classify(server.client, "late@2").status_code == 404
    assert server.client.delete("/v1/adapters/late@2").status_code == 404
    _assert_same(_classify(server.client, "sent").json(), expected["sent"])


def _corrupt_copy(source, target):
    shutil.copytree(source, target)
    data = bytearray((target / "adapter.safetensors").read_bytes())
    data[-3] ^= 0xFF
    (target / "adapter.safetensors").write_bytes(bytes(data))
    return target


def test_failing_load_does_not_disturb_other_adapters(small_cache, bert, expected,
                                                      tmp_path) -> None:
    _, dirs = bert
    broken = _corrupt_copy(dirs["spam"], tmp_path / "broken")
    response = small_cache.client.post("/v1/adapters", json={"name": "broken",
                                                             "path": str(broken)})
    assert response.status_code == 422, response.text
    assert "sha256" in response.json()["error"]["message"]
    assert "broken" not in {m["id"] for m in small_cache.client.get("/v1/models").json()["data"]}

    # An adapter that loads, then breaks on disk while evicted: its requests fail on demand,
    # in the same batches as requests for good adapters, which still get the right answers.
    fragile = tmp_path / "fragile"
    shutil.copytree(dirs["sent"], fragile)
    assert small_cache.client.post("/v1/adapters", json={"name": "fragile",
                                                         "path": str(fragile)}).status_code == 201
    _corrupt_copy(dirs["sent"], tmp_path / "spoiled")
    shutil.copy(tmp_path / "spoiled" / "adapter.safetensors", fragile / "adapter.safetensors")
    for name in ("spam", "topic"):  # evict "fragile"
        assert _classify(small_cache.client, name).status_code == 200
    failures = small_cache.metrics()["spadapt_adapter_load_failures_total"]
    requests = [("fragile", TEXTS), ("spam", TEXTS), ("topic", TEXTS), ("sent", TEXTS)] * 2
    responses = asyncio.run(_fire(small_cache.url, requests))
    for (name, _), response in zip(requests, responses, strict=True):
        if name == "fragile":
            assert response.status_code == 422
            assert response.json()["error"]["type"] == "adapter_load_error"
        else:
            assert response.status_code == 200, response.text
            _assert_same(response.json(), expected[name])
    assert small_cache.metrics()["spadapt_adapter_load_failures_total"] > failures
    assert small_cache.client.delete("/v1/adapters/fragile").status_code == 200


def test_a_row_that_breaks_the_forward_fails_only_its_own_request(small_cache, expected,
                                                                   monkeypatch) -> None:
    base = small_cache.app.state.server.base
    classify = base.classify

    def fragile(model, texts, routes):  # stands in for a bug that some input triggers
        if "BOOM" in texts:
            raise RuntimeError("simulated bug")
        return classify(model, texts, routes)

    monkeypatch.setattr(base, "classify", fragile)
    requests = [("sent", TEXTS), ("spam", ["BOOM"]), ("sent", TEXTS), ("spam", TEXTS)] * 2
    responses = asyncio.run(_fire(small_cache.url, requests))
    for (name, texts), response in zip(requests, responses, strict=True):
        if texts == ["BOOM"]:
            _error(response, 500, "internal_error")
        else:
            assert response.status_code == 200, response.text
            _assert_same(response.json(), expected[name])


def test_task_and_head_width_come_from_the_directory(server, bert, tmp_path) -> None:
    """Saved without labels on a 3-way classifier: a classifier of width 3 (labels from the
    base's id2label), not a causal-LM adapter; saved on a headless encoder: refused."""
    base_dir, _ = bert
    fields = dict(method="bottleneck", placement="pfeiffer", bottleneck=4, density=0.5, seed=5)
    unnamed = spadapt.attach(_classifier(base_dir, ["a", "b", "c"]),
                             spadapt.AdapterConfig(**fields), "unnamed")
    _perturb(unnamed, 0.5, seed=5)
    directory = unnamed.save_adapter(tmp_path / "unnamed", base_model=str(base_dir))
    response = server.client.post("/v1/adapters", json={"name": "unnamed",
                                                        "path": str(directory)})
    try:
        assert response.status_code == 201, response.text
        labels = response.json()["labels"]
        assert response.json()["task"] == "classification" and len(labels) == 3
        _assert_same(_classify(server.client, "unnamed").json(),
                     _offline_classify(base_dir, directory, labels, TEXTS))
    finally:
        server.client.delete("/v1/adapters/unnamed")

    bare = spadapt.attach(BertModel.from_pretrained(base_dir), spadapt.AdapterConfig(**fields),
                          "bare")
    directory = bare.save_adapter(tmp_path / "bare", base_model=str(base_dir))
    message = _error(server.client.post("/v1/adapters", json={"name": "bare",
                                                              "path": str(directory)}),
                     400, "wrong_task")
    assert "'bare'" in message and "no head" in message
    assert "not a causal language model" in message
    assert "bare" not in {m["id"] for m in server.client.get("/v1/models").json()["data"]}


# Completions ----------------------------------------------------------------------------------
def _offline_lm(llama):
    base_dir, adapter_dir = llama
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    model = spadapt.load_adapter(AutoModelForCausalLM.from_pretrained(base_dir).eval(),
                                 adapter_dir)
    return tokenizer, model


def test_completions_over_http_equal_offline_greedy_generation(lm_server, llama) -> None:
    tokenizer, model = _offline_lm(llama)
    prompt = "The capital of France is"
    ids = tokenizer(prompt, return_tensors="pt")
    with torch.no_grad():
        output = model.generate(**ids, max_new_tokens=10, do_sample=False,
                                pad_token_id=tokenizer.pad_token_id,
                                eos_token_id=tokenizer.eos_token_id)
    new = output[0, ids["input_ids"].shape[1]:].tolist()
    new = new[: new.index(tokenizer.eos_token_id)] if tokenizer.eos_token_id in new else new
    want = tokenizer.decode(new, skip_special_tokens=True)
    with model.disable_adapter(), torch.no_grad():
        base_output = model.generate(**ids, max_new_tokens=10, do_sample=False,
                                     pad_token_id=tokenizer.pad_token_id)
    assert base_output[0].tolist() != output[0].tolist()  # the adapter changes the answer

    response = lm_server.client.post("/v1/completions", json={
        "model": "chat", "prompt": prompt, "max_tokens": 10, "temperature": 0})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "text_completion" and body["model"] == "chat"
    assert body["choices"][0]["text"] == want
    assert body["usage"]["prompt_tokens"] == ids["input_ids"].shape[1]
    base = lm_server.client.post("/v1/completions", json={"model": "", "prompt": prompt,
                                                          "max_tokens": 10}).json()
    new = base_output[0, ids["input_ids"].shape[1]:].tolist()
    new = new[: new.index(tokenizer.eos_token_id)] if tokenizer.eos_token_id in new else new
    assert base["choices"][0]["text"] == tokenizer.decode(new, skip_special_tokens=True)

    question = "What is the capital of France?"
    chat = lm_server.client.post("/v1/chat/completions", json={
        "model": "chat", "messages": [{"role": "user", "content": question}],
        "max_tokens": 8})
    assert chat.status_code == 200, chat.text
    offline = CausalLMTask(tokenizer, max_new_tokens=8).generate(model, [question])
    assert chat.json()["choices"][0]["message"] == {"role": "assistant", "content": offline[0]}
    models = {m["id"]: m for m in lm_server.client.get("/v1/models").json()["data"]}
    assert models["chat"]["task"] == "causal_lm"
    assert models["chat"]["parent"] == str(llama[0])


def _complete(client, **fields) -> dict:
    response = client.post("/v1/completions", json={"model": "chat", "prompt": "hello",
                                                    "max_tokens": 10, **fields})
    assert response.status_code == 200, response.text
    return response.json()


def test_sampling_is_seeded_per_choice_and_a_tiny_top_p_is_greedy(lm_server) -> None:
    client = lm_server.client
    three = _complete(client, temperature=1.0, seed=7, n=3)
    assert [c["index"] for c in three["choices"]] == [0, 1, 2]
    texts = [c["text"] for c in three["choices"]]
    assert [c["text"] for c in _complete(client, temperature=1.0, seed=7, n=3)["choices"]] \
        == texts  # the same seed, the same texts
    for i, text in enumerate(texts):  # choice i is the request seeded seed + i
        assert _complete(client, temperature=1.0, seed=7 + i)["choices"][0]["text"] == text
    assert len(set(texts)) > 1  # sampled, not greedy
    greedy = _complete(client)["choices"][0]["text"]
    assert _complete(client, temperature=1.0, top_p=1e-9, seed=3)["choices"][0]["text"] == \
        greedy


def _events(client, path: str, body: dict) -> list:
    with client.stream("POST", path, json=body) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    return [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]


def test_streamed_answers_equal_the_answers(lm_server) -> None:
    client = lm_server.client
    body = {"model": "chat", "prompt": "The capital of France is", "max_tokens": 12}
    answer = client.post("/v1/completions", json=body).json()["choices"][0]
    chunks = _events(client, "/v1/completions", {**body, "stream": True})
    assert len(chunks) > 2 and all(c["object"] == "text_completion" for c in chunks)
    assert "".join(c["choices"][0]["text"] for c in chunks) == answer["text"]
    assert [c["choices"][0]["finish_reason"] for c in chunks][-1] == answer["finish_reason"]
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])

    stop = answer["text"][4:6]  # a stop string inside the answer cuts the stream there too
    cut = client.post("/v1/completions", json={**body, "stop": stop}).json()["choices"][0]
    assert cut["finish_reason"] == "stop" and cut["text"] == answer["text"][
        : answer["text"].find(stop)]
    streamed = _events(client, "/v1/completions", {**body, "stop": stop, "stream": True})
    assert "".join(c["choices"][0]["text"] for c in streamed) == cut["text"]
    assert streamed[-1]["choices"][0]["finish_reason"] == "stop"

    chat = {"model": "chat", "messages": [{"role": "user", "content": "Hi there"}],
            "max_tokens": 8, "n": 2, "temperature": 0.8, "seed": 11}
    whole = client.post("/v1/chat/completions", json=chat).json()["choices"]
    chunks = _events(client, "/v1/chat/completions", {**chat, "stream": True})
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    for index in (0, 1):
        mine = [c["choices"][0] for c in chunks if c["choices"][0]["index"] == index]
        assert mine[0]["delta"]["role"] == "assistant"
        assert "".join(c["delta"].get("content", "") for c in mine) == \
            whole[index]["message"]["content"]
        assert mine[-1]["finish_reason"] == whole[index]["finish_reason"]


def test_the_openai_client_against_the_server(lm_server) -> None:
    import openai

    client = openai.OpenAI(base_url=f"{lm_server.url}/v1", api_key=KEY, max_retries=0)
    prompt = "The capital of France is"
    want = _complete(lm_server.client, prompt=prompt, max_tokens=8)["choices"][0]["text"]
    got = client.completions.create(model="chat", prompt=prompt, max_tokens=8)
    assert got.choices[0].text == want
    streamed = client.completions.create(model="chat", prompt=prompt, max_tokens=8,
                                         stream=True)
    assert "".join(chunk.choices[0].text for chunk in streamed) == want
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    chat = client.chat.completions.create(model="chat", messages=messages, max_tokens=8)
    answer = chat.choices[0].message.content
    assert chat.choices[0].message.role == "assistant"
    streamed = client.chat.completions.create(model="chat", messages=messages, max_tokens=8,
                                              stream=True)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in streamed) == answer
    seeded = [client.chat.completions.create(model="chat", messages=messages, max_tokens=8,
                                             temperature=1.0, seed=5).choices[0].message.content
              for _ in range(2)]
    assert seeded[0] == seeded[1]
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="ghost", prompt=prompt, max_tokens=4)
    with pytest.raises(openai.BadRequestError, match="max_tokens"):
        client.completions.create(model="chat", prompt=prompt, max_tokens=500)


def test_completions_in_flight_together_equal_one_at_a_time(lm_server) -> None:
    prompts = ["hello", "The capital of France is, as everyone knows,", "one two three", "x"]
    requests = [{"model": model, "prompt": prompt, "max_tokens": 5 + i % 4}
                for i, (prompt, model) in enumerate((p, m) for p in prompts
                                                    for m in ("chat", ""))]
    alone = [lm_server.client.post("/v1/completions", json=r).json() for r in requests]
    before = lm_server.metrics()

    async def together() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=lm_server.url, timeout=60,
                                     headers={"Authorization": f"Bearer {KEY}"}) as client:
            return await asyncio.gather(*(client.post("/v1/completions", json=r)
                                          for r in requests))

    responses = asyncio.run(together())
    for response, reference in zip(responses, alone, strict=True):
        assert response.status_code == 200, response.text
        assert response.json()["choices"] == reference["choices"]
    after = lm_server.metrics()
    assert after["spadapt_batch_size_sum"] - before["spadapt_batch_size_sum"] == len(requests)
    forwards = after["spadapt_batch_size_count"] - before["spadapt_batch_size_count"]
    assert forwards < len(requests)  # requests shared generate calls


def test_streamed_and_plain_requests_in_flight_share_forwards(lm_server) -> None:
    requests = [{"model": model, "prompt": prompt, "max_tokens": 6, "stream": stream}
                for prompt in ("hello", "one two three") for model in ("chat", "")
                for stream in (True, False)]
    alone = [_complete(lm_server.client, **{**r, "stream": False})["choices"][0]["text"]
             for r in requests]
    before = lm_server.metrics()

    async def one(client: httpx.AsyncClient, body: dict) -> str:
        if not body["stream"]:
            return (await client.post("/v1/completions", json=body)).json()["choices"][0][
                "text"]
        async with client.stream("POST", "/v1/completions", json=body) as response:
            lines = [line async for line in response.aiter_lines() if line]
        assert lines[-1] == "data: [DONE]"
        return "".join(json.loads(line.removeprefix("data: "))["choices"][0]["text"]
                       for line in lines[:-1])

    async def together() -> list[str]:
        async with httpx.AsyncClient(base_url=lm_server.url, timeout=60,
                                     headers={"Authorization": f"Bearer {KEY}"}) as client:
            return await asyncio.gather(*(one(client, r) for r in requests))

    assert asyncio.run(together()) == alone
    after = lm_server.metrics()
    assert after["spadapt_batch_size_sum"] - before["spadapt_batch_size_sum"] == len(requests)
    forwards = after["spadapt_batch_size_count"] - before["spadapt_batch_size_count"]
    assert forwards < len(requests)  # streamed rows shared generate calls with the others


def test_an_adapter_without_a_head_on_a_causal_lm_serves_completions(lm_server, llama,
                                                                     monkeypatch) -> None:
    _, adapter_dir = llama
    monkeypatch.setattr(cache, "read_adapter_task", lambda path: AdapterTask("adapter"))
    response = lm_server.client.post("/v1/adapters", json={"name": "bare",
                                                           "path": str(adapter_dir)})
    assert response.status_code == 201, response.text
    try:
        assert response.json()["task"] == "causal_lm"
        answers = [lm_server.client.post("/v1/completions", json={
            "model": model, "prompt": "The capital of France is", "max_tokens": 6}).json()
            for model in ("bare", "chat")]
        assert answers[0]["choices"] == answers[1]["choices"]
    finally:
        lm_server.client.delete("/v1/adapters/bare")


# Bad input ------------------------------------------------------------------------------------
def _error(response: httpx.Response, status: int, type: str | None = None) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"]
    if type is not None:
        assert error["type"] == type
    return error["message"]


def test_every_bad_classify_input_gets_its_4xx(server) -> None:
    client = server.client
    raw = client.post("/v1/classify", content=b'{"adapter": "sent", "texts": [',
                      headers={"Content-Type": "application/json"})
    assert "JSON" in _error(raw, 400, "invalid_json")
    assert "'nope'" in _error(_classify(client, "nope"), 404, "adapter_not_found")
    assert "empty" in _error(_classify(client, "sent", []), 400)
    assert "texts[1]" in _error(_classify(client, "sent", ["ok", "  "]), 400)
    assert "limit is 8" in _error(_classify(client, "sent", ["x"] * 9), 400)
    assert "limit is 200" in _error(_classify(client, "sent", ["x" * 201]), 400)
    _error(client.post("/v1/classify", json={"adapter": "sent", "texts": "one"}), 422)
    _error(client.post("/v1/classify", json={"adapter": "sent", "texts": [1]}), 422)
    _error(client.post("/v1/classify", json={"adapter": "sent", "text": ["a"]}), 422)
    _error(client.post("/v1/classify", json=["not", "an", "object"]), 422)
    _error(client.post("/v1/classify", content=b"", headers={"Content-Type": "application/json"}),
           422)
    deep = b'{"adapter": "sent", "texts": ' + b"[" * 40_000 + b"]" * 40_000 + b"}"
    _error(client.post("/v1/classify", content=deep,
                       headers={"Content-Type": "application/json"}), 400)
    surrogate = b'{"adapter": "sent", "texts": ["ok", "\\ud800"]}'
    assert "texts[1]" in _error(client.post("/v1/classify", content=surrogate, headers={
        "Content-Type": "application/json"}), 400)
    big = {"adapter": "sent", "texts": ["x" * 150_000]}
    _error(client.post("/v1/classify", json=big), 413, "request_too_large")
    _error(_classify(client, ""), 400, "wrong_task")
    _error(client.post("/v1/completions", json={"model": "sent", "prompt": "hi"}), 400,
           "wrong_task")
    _error(client.post("/v1/completions", json={"model": "", "prompt": "hi"}), 400,
           "wrong_task")
    _error(client.get("/v1/nowhere"), 404, "not_found")
    _error(client.post("/v1/adapters", json={"path": "/definitely/not/here"}), 400,
           "adapter_load_error")
    _error(client.post("/v1/adapters", json={}), 400)
    _error(client.post("/v1/adapters", json={"name": "a/b", "path": "/x"}), 400)
    _error(client.delete("/v1/adapters/nope"), 404)
    statuses = parse_text(client.get("/metrics").text)
    assert not any('status="5' in key for key in statuses)


def test_every_bad_completion_input_and_api_key_gets_its_4xx(lm_server, llama) -> None:
    client = lm_server.client
    anonymous = httpx.Client(base_url=lm_server.url, timeout=30)
    try:
        assert anonymous.get("/healthz").status_code == 200
        _error(anonymous.get("/v1/models"), 401, "authentication_error")
        _error(anonymous.post("/v1/completions", json={"model": "chat", "prompt": "hi"}), 401)
        _error(anonymous.post("/v1/completions", content=b"{bad json"), 401)
        _error(anonymous.get("/v1/models", headers={"Authorization": "Bearer wrong"}), 401)
        _error(anonymous.get("/v1/models", headers={"Authorization": KEY}), 401)
    finally:
        anonymous.close()
    _error(client.post("/v1/classify", json={"adapter": "chat", "texts": ["hi"]}), 400,
           "wrong_task")
    _error(client.post("/v1/completions", json={"model": "ghost", "prompt": "hi"}), 404)
    _error(client.post("/v1/completions", json={"model": "chat", "prompt": ""}), 400)
    _error(client.post("/v1/completions", json={"model": "chat", "prompt": []}), 400)
    _error(client.post("/v1/completions", json={"model": "chat", "prompt": "hi",
                                                "max_tokens": 13}), 400)
    _error(client.post("/v1/completions", json={"model": "chat", "prompt": "hi",
                                                "max_tokens": 0}), 400)
    _error(client.post("/v1/completions", json={"model": "chat", "prompt": "hi", "n": 17}), 400)
    _error(client.post("/v1/completions", json={"model": "chat", "prompt": "hi",
                                                "temperature": 2.5}), 400)
    _error(client.post("/v1/completions", json={"model": "chat", "prompt": "hi",
                                                "top_p": 0}), 400)
    _error(client.post("/v1/completions", json={"model": "chat", "prompt": "word " * 80,
                                                "max_tokens": 4, "stream": True}), 400,
           "context_length_exceeded")  # refused before the stream starts
    _error(client.post("/v1/completions", json={"model": "chat", "prompt": "word " * 80,
                                                "max_tokens": 4}), 400, "context_length_exceeded")
    _error(client.post("/v1/chat/completions", json={"model": "chat", "messages": []}), 422)
    _error(client.post("/v1/chat/completions", json={
        "model": "chat", "messages": [{"role": "wizard", "content": "hi"}]}), 422)
    _error(client.post("/v1/completions", content=b"{bad json",
                       headers={"Content-Type": "application/json"}), 400, "invalid_json")
    statuses = parse_text(client.get("/metrics").text)
    assert not any('status="5' in key for key in statuses)


def test_the_api_key_guards_every_route_but_healthz(lm_server) -> None:
    anonymous = httpx.Client(base_url=lm_server.url, timeout=30)
    try:
        for path in ("/metrics", "/openapi.json", "/docs", "/redoc"):
            response = anonymous.get(path)
            _error(response, 401, "authentication_error")
            assert response.headers["WWW-Authenticate"] == "Bearer"
    finally:
        anonymous.close()
    schema = lm_server.client.get("/openapi.json").json()
    assert "/v1/completions" in schema["paths"]
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert lm_server.client.get("/docs").status_code == 200
    metrics = lm_server.client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    samples = parse_text(metrics.text)
    assert samples['spadapt_requests_total{method="GET",route="/metrics",status="401"}'] >= 1


# Registry references and the command ------------------------------------------------------------
def test_registry_references_resolve_at_start_and_on_first_use(bert, expected,
                                                               monkeypatch) -> None:
    base_dir, dirs = bert

    class FakeRegistry:  # spadapt.registry.Registry(root).resolve("NAME[@V]") -> adapter dir
        def __init__(self, root) -> None:
            assert str(root) == "/registry-root"

        def resolve(self, reference: str):
            if reference in ("spam", "sent@1"):
                return dirs[reference.partition("@")[0]]
            raise spadapt.SpadaptError(f"no adapter {reference!r} in the registry")

    module = types.ModuleType("spadapt.registry")
    module.Registry = FakeRegistry
    monkeypatch.setitem(sys.modules, "spadapt.registry", module)
    running = Running(ServeConfig(model=str(base_dir), adapters={"spam": "registry:spam"},
                                  registry="/registry-root"))
    try:
        _assert_same(_classify(running.client, "spam").json(), expected["spam"])
        _assert_same(_classify(running.client, "sent@1").json(), expected["sent"])
        ids = {m["id"]: m for m in running.client.get("/v1/models").json()["data"]}
        assert ids["sent@1"]["source"] == "registry:sent@1"
        assert "registry" in _error(_classify(running.client, "ghost@3"), 404)
        loaded = running.client.post("/v1/adapters", json={"registry": "sent@1", "name": "s1"})
        assert loaded.status_code == 201, loaded.text
        _error(running.client.post("/v1/adapters", json={"registry": "nope@1"}), 404)
    finally:
        running.stop()


def test_serve_command_refuses_bad_options_with_exit_code_2(bert, tmp_path) -> None:
    from typer.testing import CliRunner

    from spadapt.cli.serve import serve_command

    base_dir, _ = bert
    app = typer.Typer()
    app.command()(serve_command)
    runner = CliRunner()
    missing = runner.invoke(app, ["--model", str(base_dir), "--adapter", f"x={tmp_path}/none"])
    assert missing.exit_code == 2 and "adapter_config.json" in missing.output
    bare = runner.invoke(app, ["--model", str(base_dir), "--adapter", "x@1"])
    assert bare.exit_code == 2 and "--registry" in bare.output
    batch = runner.invoke(app, ["--model", str(base_dir), "--max-batch-size", "0"])
    assert batch.exit_code == 2 and "max_batch_size" in batch.output


def test_adapters_from_the_real_registry(bert, expected, tmp_path) -> None:
    registry = pytest.importorskip("spadapt.registry")
    base_dir, dirs = bert
    store = registry.Registry(tmp_path / "registry")
    store.push(dirs["spam"], "spam")
    store.push(dirs["sent"], "spam")  # version 2 of "spam" is the sentiment adapter
    running = Running(ServeConfig(model=str(base_dir), registry=str(tmp_path / "registry"),
                                  adapters={"spam@1": "registry:spam@1"}))
    try:
        _assert_same(_classify(running.client, "spam@1").json(), expected["spam"])
        _assert_same(_classify(running.client, "spam@2").json(), expected["sent"])
        _error(_classify(running.client, "spam@3"), 404, "adapter_not_found")
    finally:
        running.stop()


def test_row_sampler_draws_each_row_from_its_own_nucleus() -> None:
    from spadapt.serve.runner import RowSampler, Sampling

    torch.manual_seed(0)
    scores = torch.randn(3, 50)
    samplings = [Sampling(), Sampling(0.5, 0.6, seed=3), Sampling(2.0, 1.0, seed=4)]
    out = RowSampler(samplings)(None, scores.clone())
    torch.testing.assert_close(out[0], scores[0])  # greedy rows pass through
    for row, sampling in ((1, samplings[1]), (2, samplings[2])):
        probabilities = torch.softmax(scores[row] / sampling.temperature, dim=-1)
        ordered, order = torch.sort(probabilities, descending=True)
        keep = order[: int((ordered.cumsum(0) - ordered < sampling.top_p).sum())]
        nucleus = torch.zeros_like(probabilities)
        nucleus[keep] = probabilities[keep]
        want = torch.multinomial(nucleus, 1, generator=torch.Generator().manual_seed(
            sampling.seed)).item()
        assert torch.isfinite(out[row]).sum() == 1 and out[row, want] == 0.0
        if row == 1:
            assert want in keep.tolist() and len(keep) < 50
