"""Run by tests/test_train.py under `accelerate launch`: trains a sparse adapter on a tiny BERT
and saves it (main process only). Arguments: OUT BATCH_SIZE [fsdp|zero3]. Without either the
Accelerator is on CPU (DDP over gloo when launched with 2 processes); with one, the launch's
FSDP or DeepSpeed ZeRO-3 plugin shards the model and the state is gathered before saving."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from accelerate import Accelerator  # noqa: E402

import spadapt  # noqa: E402
from spadapt.train import TrainConfig, train  # noqa: E402
from train_fixtures import base_model, examples, task  # noqa: E402

out = Path(sys.argv[1])
batch_size = int(sys.argv[2])
sharded = sys.argv[3:] in (["fsdp"], ["zero3"])
accelerator = Accelerator() if sharded else Accelerator(cpu=True)
classification = task()
model = spadapt.attach(base_model(classification.tokenizer.vocab_size), spadapt.AdapterConfig(
    bottleneck=8, density=0.3, scorer="magnitude"))
config = TrainConfig(learning_rate=1e-2, epochs=2, batch_size=batch_size, progress=False,
                     early_stopping_patience=None, checkpoint_every=0, log_tensorboard=False)
result = train(model, classification, examples(64), examples(32, seed=1), config,
               out_dir=out / "run", accelerator=accelerator)
state = accelerator.get_state_dict(model) if sharded else None  # gathered from the shards
if accelerator.is_main_process:
    if state is not None:
        model = accelerator.unwrap_model(model)
        model.load_state_dict(state)
    model.save_adapter(out / "adapter")
    (out / "steps.txt").write_text(f"{result.steps} {accelerator.num_processes}\n")
accelerator.wait_for_everyone()
