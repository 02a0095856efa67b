"""What a training shows: epochs counted from 1, the steps really left, plain lines in a log."""

from types import SimpleNamespace

import distill.training.bars as bars


def _trainer(epoch=0, max_epochs=3, batches=11, step=0, max_steps=-1):
    return SimpleNamespace(
        current_epoch=epoch,
        max_epochs=max_epochs,
        num_training_batches=batches,
        global_step=step,
        max_steps=max_steps,
        is_global_zero=True,
        callback_metrics={},
    )


def test_steps_left_counts_the_epochs_still_to_come():
    # 3 epochs of 11 batches: after the first batch 32 remain; in the last epoch's 5th, 6
    assert bars.steps_left(_trainer(epoch=0, step=1), batch_idx=0) == 32
    assert bars.steps_left(_trainer(epoch=2, step=27), batch_idx=4) == 6
    assert bars.steps_left(_trainer(epoch=0, step=1, max_steps=10), batch_idx=0) == 9


def test_the_bar_says_epoch_3_of_3_on_the_last_of_three():
    bar = bars.EpochBar()
    bar._trainer = _trainer(epoch=2)  # Lightning sets it when the bar is attached
    assert bar._get_train_description(2).strip() == "Epoch 3/3"


def test_a_log_gets_plain_lines_with_the_epoch_and_time_left(monkeypatch):
    said = []
    monkeypatch.setattr(bars, "_say", said.append)
    lines = bars.TrainingLines(every=0.0)
    trainer = _trainer(epoch=1, step=15)
    lines.on_train_start(trainer, None)
    lines.on_train_batch_end(trainer, None, None, None, batch_idx=3)
    assert said and said[0].startswith("train: epoch 2/3, step 4/11 (36%), 0:00, about 0:00 left")


def test_no_terminal_means_no_bar(monkeypatch):
    monkeypatch.setattr(bars, "console", SimpleNamespace(is_terminal=False))
    callbacks, bar = bars.progress_callbacks(True)
    assert not bar and any(isinstance(c, bars.TrainingLines) for c in callbacks)
    assert bars.progress_callbacks(False) == ([], False)
