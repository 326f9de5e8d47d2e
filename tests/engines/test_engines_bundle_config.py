"""The example train.json of docs/engines.md parses with MONAI's ConfigParser and trains."""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from monai.bundle import ConfigParser

DOC = Path(__file__).resolve().parents[2] / "docs" / "engines.md"


def _json_blocks() -> list[dict]:
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", DOC.read_text(), flags=re.S)]


def test_docs_train_json_instantiates_cyclegan_trainer_and_runs_two_iterations(tmp_path):
    (config,) = [b for b in _json_blocks() if isinstance(b.get("trainer"), dict)]  # the example train.json
    parser = ConfigParser(config)
    parser["bundle_root"] = str(tmp_path)
    parser["max_epochs"] = 1
    parser.parse()
    trainer = parser.get_parsed_content("trainer")
    assert type(trainer).__name__ == "CycleGANTrainer"
    assert len(trainer.data_loader) == 2  # 20 samples x 0.2 / batch 2
    parser.get_parsed_content("run")
    assert trainer.state.iteration == 2 and trainer.state.epoch == 1
    assert {"G/total", "D_A/total", "D_B/total"} <= set(trainer.state.metrics)
    assert all(torch.isfinite(torch.tensor(v)) for v in trainer.state.metrics.values())
    ckpts = sorted(p.name for p in (tmp_path / "runs" / "checkpoints").iterdir())
    assert ckpts == ["checkpoint_2.pt", "weights_epoch0001.pt"]
    assert list((tmp_path / "runs" / "tensorboard").glob("events.out.tfevents.*"))
    # constant phase of the 100 + 100 schedule: unchanged learning rate after one epoch
    assert trainer.optimizers["G"].param_groups[0]["lr"] == 0.002


def test_docs_multi_gpu_override_is_the_bundles_and_redeclares_nothing():
    (override,) = [b for b in _json_blocks() if "trainer#distributed" in b]
    assert override["trainer#distributed"] is True
    assert override["device"] == "$ctharmonize.engines.init_distributed()"
    bundle = json.loads((DOC.parents[1] / "bundles" / "multipath_cyclegan_ct_harmonization" / "configs" /
                         "multi_gpu_train.json").read_text())
    assert {k: bundle[k] for k in override} == override  # the documented recipe is what the bundle ships
    assert not {"imports", "initialize", "run"} & (set(override) | set(bundle))
