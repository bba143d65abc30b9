"""CausalLMTask: labels mask the prompt and padding, the loss is the response-token mean,
truncation keeps a response token, exact match of greedy generations (a tiny Llama that
memorises four answers), and one real run on SmolLM2 + chatterbot_qa (marked real)."""

from __future__ import annotations

import copy

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

import spadapt
from spadapt.data import PromptExample, load_dataset
from spadapt.tasks import CausalLMTask
from spadapt.train import TrainConfig, train

WORDS = ["[PAD]", "[EOS]", "[UNK]", "Question", "Answer", ":", "?", "what", "is", "the",
         "capital", "of", "france", "spain", "italy", "colour", "sky", "paris", "madrid",
         "rome", "blue", "it", "big", "city", "a"]
PAD, EOS = 0, 1

FACTS = [
    PromptExample("what is the capital of france ?", "paris"),
    PromptExample("spain ?", "madrid is a big city"),
    PromptExample("what is the colour of the sky ?", "blue"),
    PromptExample("italy", "rome"),
]


def tiny_tokenizer(pad: bool = True) -> PreTrainedTokenizerFast:
    """A whitespace word-level tokenizer over WORDS, without a chat template."""
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    special = {"eos_token": "[EOS]", "unk_token": "[UNK]"}
    if pad:
        special["pad_token"] = "[PAD]"
    return PreTrainedTokenizerFast(tokenizer_object=backend, **special)


def tiny_llama(seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(WORDS), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=64, pad_token_id=PAD, bos_token_id=None,
                         eos_token_id=EOS)
    return LlamaForCausalLM(config).eval()


def ids(text: str) -> list[int]:
    return [WORDS.index(w) for w in text.split()]


def test_labels_mask_prompt_and_padding_exactly() -> None:
    task = CausalLMTask(tiny_tokenizer(), max_length=32)
    batch = task.collate(FACTS[:2])
    prompts = [ids("Question : what is the capital of france ? Answer :"),
               ids("Question : spain ? Answer :")]
    responses = [ids("paris") + [EOS], ids("madrid is a big city") + [EOS]]
    width = max(len(p) + len(r) for p, r in zip(prompts, responses, strict=True))
    for row, (prompt, response) in enumerate(zip(prompts, responses, strict=True)):
        padding = width - len(prompt) - len(response)
        assert batch["input_ids"][row].tolist() == prompt + response + [PAD] * padding
        assert batch["attention_mask"][row].tolist() == [1] * (width - padding) + [0] * padding
        assert batch["labels"][row].tolist() == [-100] * len(prompt) + response + \
            [-100] * padding


def test_collate_loss_is_the_mean_over_response_tokens() -> None:
    task = CausalLMTask(tiny_tokenizer(), max_length=32)
    model = tiny_llama()
    batch = task.collate(FACTS)
    with torch.no_grad():
        output = model(**batch)
    log_probs = torch.log_softmax(output.logits.double(), dim=-1)
    terms = []
    for row, example in enumerate(FACTS):
        start = len(ids(task.format_prompt(example.prompt).replace(":", " : ")))
        targets = ids(example.response) + [EOS]
        for offset, target in enumerate(targets):
            terms.append(-log_probs[row, start + offset - 1, target])
    expected = torch.stack(terms).mean()
    assert float(output.loss) == pytest.approx(float(expected), rel=1e-5)
    loss, count = task.response_loss(model, FACTS, batch_size=3)  # batching must not matter
    assert count == len(terms)
    assert loss == pytest.approx(float(expected), rel=1e-5)


def test_truncation_keeps_the_prompt_start_and_at_least_one_response_token() -> None:
    task = CausalLMTask(tiny_tokenizer(), max_length=8)
    prompt, response = task.encode(PromptExample("italy", "madrid is a big city"))
    assert prompt == ids("Question : italy Answer :")  # 5 tokens: the prompt's start is kept
    assert response == ids("madrid is a")  # cut from the end, EOS gone
    long = PromptExample("what is the capital of the capital of france ?", "paris")
    prompt, response = task.encode(long)
    assert prompt == ids("the capital of france ? Answer :")  # 7: cut from the left
    assert response == ids("paris")
    batch = task.collate([long, FACTS[3]])
    assert batch["input_ids"].shape[1] == 8
    assert (batch["labels"][0] != -100).sum() == 1
    with pytest.raises(ValueError, match="max_length"):
        CausalLMTask(tiny_tokenizer(), max_length=1)


def test_prompt_format_pad_token_and_chat_template() -> None:
    tokenizer = tiny_tokenizer(pad=False)
    task = CausalLMTask(tokenizer)
    assert tokenizer.pad_token == "[EOS]"  # set by the task
    assert task.format_prompt("italy") == "Question: italy\nAnswer: "
    tokenizer.chat_template = ("{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} "
                               "{% endfor %}{% if add_generation_prompt %}it : {% endif %}")
    assert task.format_prompt("italy") == "user : italy it : "
    assert task.collate([FACTS[3]])["labels"][0].tolist() == [-100] * 5 + ids("rome") + [EOS]


def test_memorised_answers_match_exactly_and_training_mode_is_restored() -> None:
    task = CausalLMTask(tiny_tokenizer(), max_length=32, max_new_tokens=8)
    model = tiny_llama()
    config = TrainConfig(learning_rate=1e-2, epochs=1, batch_size=4, eval_batch_size=4,
                         warmup_ratio=0.0, weight_decay=0.0, early_stopping_patience=None,
                         checkpoint_every=0, progress=False, log_csv=False,
                         log_tensorboard=False)
    result = train(model, task, FACTS * 150, FACTS, config)  # 150 steps
    metrics = result.final_metrics
    assert metrics["exact_match"] == 1.0, metrics
    assert metrics["accuracy"] == metrics["macro_f1"] == metrics["exact_match_strict"] == 1.0
    assert metrics["rouge_l"] == 1.0
    assert metrics["loss"] < 0.05
    assert metrics["perplexity"] == pytest.approx(torch.tensor(metrics["loss"]).exp().item())
    assert "confusion_matrix" not in metrics

    wrong = [PromptExample(e.prompt, e.response + " city") for e in FACTS]
    model.train()
    metrics = task.evaluate(model, wrong, batch_size=3)
    assert model.training
    assert metrics["exact_match"] == metrics["exact_match_strict"] == 0.0
    assert 0 < metrics["rouge_l"] < 1  # the answer is part of the reference
    model.eval()
    upper = [PromptExample(e.prompt, e.response.upper()) for e in FACTS]
    metrics = task.evaluate(model, upper, batch_size=4)
    assert not model.training
    scores = (metrics["exact_match_strict"], metrics["exact_match"], metrics["rouge_l"])
    assert scores == (0.0, 1.0, 1.0)  # only the strict match minds the case

    # Through an AdaptedModel: generation follows the active adapter, and disabling it
    # gives the base's answers back.
    adapted = spadapt.attach(copy.deepcopy(model), spadapt.AdapterConfig(bottleneck=8))
    with torch.no_grad():
        for _, module in adapted.adapter_modules("default"):
            for parameter in module.parameters():
                parameter.add_(torch.randn_like(parameter))
    assert task.evaluate(adapted, FACTS)["exact_match"] < 1.0
    with adapted.disable_adapter():
        assert task.evaluate(adapted, FACTS)["exact_match"] == 1.0


@pytest.mark.real
def test_smollm2_on_chatterbot_learns_with_a_sparse_delta() -> None:
    from transformers import AutoTokenizer

    from spadapt.assets import resolve_model

    path = resolve_model("builtin:smollm2")
    task = CausalLMTask(AutoTokenizer.from_pretrained(path, local_files_only=True),
                        max_length=64, max_new_tokens=16)
    data = load_dataset("builtin:chatterbot_qa")
    assert data.task == "causal_lm"
    model = spadapt.attach(task.load_base(str(path)), spadapt.AdapterConfig(
        method="sparse_delta", density=0.001))
    evaluation = data.eval[:8]
    before = task.evaluate(model, evaluation, batch_size=8)
    config = TrainConfig(learning_rate=1e-2, max_steps=4, epochs=1, batch_size=4,
                         eval_batch_size=8, max_length=64, warmup_ratio=0.0,
                         early_stopping_patience=None, checkpoint_every=0, progress=False,
                         log_csv=False, log_tensorboard=False)
    after = train(model, task, data.train[:16], evaluation, config).final_metrics
    print(f"\nSmolLM2 chatterbot_qa, 8 eval examples: before {before}\nafter {after}")
    for key in ("loss", "perplexity", "exact_match", "exact_match_strict", "rouge_l", "accuracy",
                "macro_f1"):
        assert key in before and key in after
    assert after["loss"] < before["loss"]


def test_eval_and_predict_commands_on_a_causal_lm_adapter(tmp_path) -> None:
    """`spadapt eval` / `predict` on an adapter without labels: the same metrics and answers as
    the task computes in-process, on a local base-model folder; clear errors otherwise."""
    import json

    from typer.testing import CliRunner

    from spadapt.cli import app

    base_dir = tmp_path / "base"
    tiny_llama().save_pretrained(base_dir)
    tiny_tokenizer().save_pretrained(base_dir)
    model = spadapt.attach(tiny_llama(), spadapt.AdapterConfig(bottleneck=8, density=0.5,
                                                               scorer="random"))
    with torch.no_grad():
        for _, module in model.adapter_modules("default"):
            for parameter in module.parameters():
                parameter.add_(torch.randn(parameter.shape) * 0.5)
    adapter = model.save_adapter(tmp_path / "adapter", base_model=str(base_dir))
    data = tmp_path / "facts.jsonl"
    data.write_text("".join(json.dumps({"question": e.prompt, "answer": e.response}) + "\n"
                            for e in FACTS))
    task = CausalLMTask(tiny_tokenizer(), max_length=512)
    model.eval()
    expected = task.evaluate(model, FACTS)
    answers = task.generate(model, [e.prompt for e in FACTS[:2]])
    base_loss = task.evaluate(tiny_llama(), FACTS)["loss"]
    assert abs(expected["loss"] - base_loss) > 1e-3  # so matching below means it was loaded

    runner = CliRunner()
    result = runner.invoke(app, ["eval", "--adapter", str(adapter), "--data", str(data),
                                 "--prompt-column", "question", "--response-column", "answer"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["rows"] == len(FACTS) and metrics["rejected_rows"] == 0
    for key in ("loss", "perplexity", "exact_match", "exact_match_strict", "rouge_l"):
        assert metrics[key] == pytest.approx(expected[key], rel=1e-5), key

    result = runner.invoke(app, ["predict", "--adapter", str(adapter),
                                 "--text", FACTS[0].prompt, "--text", FACTS[1].prompt])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows == [{"prompt": e.prompt, "response": a} for e, a in zip(FACTS[:2], answers,
                                                                          strict=True)]

    result = runner.invoke(app, ["eval", "--adapter", str(adapter), "--data", str(data)])
    assert result.exit_code == 2
    assert "prompt" in result.output and "question" in result.output  # names what it found
