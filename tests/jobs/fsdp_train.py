"""Run by tests/test_train.py under `accelerate launch --use_fsdp --num_processes 2`: the same
sparse adapter on the same tiny BERT as two_process_train.py, the frozen base sharded by
Accelerate's FSDP (original parameters kept, so only the adapter's values train)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from accelerate import Accelerator  # noqa: E402

import spadapt  # noqa: E402
from spadapt.train import TrainConfig, train  # noqa: E402
from train_fixtures import base_model, examples, task  # noqa: E402

out = Path(sys.argv[1])
batch_size = int(sys.argv[2])
accelerator = Accelerator()
classification = task()
model = spadapt.attach(base_model(classification.tokenizer.vocab_size), spadapt.AdapterConfig(
    bottleneck=8, density=0.3, scorer="magnitude"))
config = TrainConfig(learning_rate=1e-2, epochs=2, batch_size=batch_size, progress=False,
                     early_stopping_patience=None, checkpoint_every=0, log_tensorboard=False)
result = train(model, classification, examples(64), examples(32, seed=1), config,
               out_dir=out / "run", accelerator=accelerator)
state = accelerator.get_state_dict(model)  # gathered from the shards on the main process
if accelerator.is_main_process:
    unwrapped = accelerator.unwrap_model(model)
    unwrapped.load_state_dict(state)
    unwrapped.save_adapter(out / "adapter")
    (out / "steps.txt").write_text(f"{result.steps} {accelerator.num_processes}\n")
accelerator.wait_for_everyone()
