"""Latency helpers and the workspace report, on tiny models and hand-written evaluation records."""

import json
import os

import torch
from torch import nn

from distill.evaluate.report import eval_rows
from distill.evaluate.speed import compare_latency, compare_training_step
from distill.storage.torch_files import parameter_count
from distill.workspace import Workspace


def test_compare_latency_times_every_model_in_turns():
    models = {"small": nn.Conv2d(3, 4, 3), "big": nn.Sequential(*[nn.Conv2d(3, 3, 3, padding=1)] * 8)}
    ms = compare_latency(models, 16, rounds=3, per_round=2)
    assert set(ms) == {"small", "big"} and all(v > 0 for v in ms.values())


def test_compare_latency_keeps_each_models_fastest_round():
    import time

    calls = []

    def slowed_by_a_neighbour_at_first(x):  # warm-up (3 calls) and the first round run 20 ms a call, then 1 ms
        calls.append(1)
        time.sleep(0.02 if len(calls) <= 5 else 0.001)

    ms = compare_latency({"model": slowed_by_a_neighbour_at_first}, 8, rounds=3, per_round=2)
    assert ms["model"] < 5  # a mean or a first-round reading would be 20 ms


def test_a_training_step_is_timed_on_copies_and_leaves_the_scored_models_as_they_were():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(7))
    net(torch.rand(2, 3, 8, 8))  # the lazy layer takes its shape
    net.eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    ms = compare_training_step({"net": net, "same": net}, torch.rand(4, 3, 8, 8) * 5, rounds=2)
    assert set(ms) == {"net", "same"} and all(v > 0 for v in ms.values())
    assert not net.training and all(p.grad is None for p in net.parameters())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # BatchNorm's statistics too


def test_a_parameter_shared_under_two_names_counts_once():
    conv = nn.Conv2d(3, 4, 3)
    net = nn.Sequential(conv, nn.ReLU())
    net.alias = conv  # the same module reachable twice
    assert parameter_count(net) == 4 * 3 * 9 + 4


def _record(ws, folder, dataset, path, accuracy):
    out = ws.dir("eval") / folder
    out.mkdir(parents=True)
    result = {
        "model": "mini_xception",
        "describe": {"spec": "mini_xception"},
        "scores": {"accuracy": accuracy, "uar": accuracy, "macro_f1": accuracy},
        "facts": {"bytes_on_disk": 10, "state_dict_bytes": 10, "cpu_latency_ms_batch1": 1.0},
    }
    (out / "eval.json").write_text(json.dumps({"dataset": dataset, "dataset_path": path, "results": [result]}))
    os.utime(out / "eval.json", (int(folder), int(folder)))  # the order they were made in


def test_two_sets_of_one_reader_are_two_datasets_and_the_newest_score_wins(tmp_path):
    ws = Workspace(tmp_path / "w")
    _record(ws, "1", "a (csv)", "/data/a", 0.1)
    _record(ws, "2", "b (csv)", "/data/b", 0.2)
    _record(ws, "3", "a (csv)", "/data/a", 0.3)
    rows = {r["dataset"]: r["accuracy"] for r in eval_rows(ws.all("eval"))}
    assert rows == {"a (csv)": 0.3, "b (csv)": 0.2}
