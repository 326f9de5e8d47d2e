"""Kernel-classifier training of the CT kernel feature network on a tiny simulated datalist."""

import json

import numpy as np
import pytest
import torch

from ctharmonize.cli import main
from ctharmonize.engines import KernelCrops, train_kernel_features
from ctharmonize.errors import OutputExistsError
from ctharmonize.evaluation import kernel_feature_separation
from ctharmonize.io import write_volume
from ctharmonize.io.atomic import output_record_path
from ctharmonize.networks import CTKernelFeatures
from ctharmonize.simulation.phantom import generate_phantom
from ctharmonize.simulation.scan import simulate_scan

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
TINY = {"widths": [4, 8], "batch_size": 8, "crop_size": 16, "log_every": 0}


@pytest.fixture(scope="module")
def datalist(tmp_path_factory):
    """One Siemens (B30f, B50f) and one GE (STANDARD, BONE) subject, 64², 2 slices, with tissue labels;
    the same scans are listed as a train and a test split."""
    folder = tmp_path_factory.mktemp("kernels")
    data = []
    for seed, vendor in ((3, "siemens"), (4, "ge")):
        phantom = generate_phantom(seed=seed, size=64, slices=2)
        write_volume(phantom.volume(np.asarray(phantom.labels, dtype=np.float32)), folder / f"s{seed}_labels.nii.gz")
        for kernel, volume in simulate_scan(phantom, vendor=vendor, seed=seed).items():
            write_volume(volume, folder / f"s{seed}_{kernel}.nii.gz")
            for split in ("train", "test"):
                data.append({"image": f"s{seed}_{kernel}.nii.gz", "kernel": kernel, "vendor": vendor,
                             "subject": f"s{seed}", "split": split, "labels": f"s{seed}_labels.nii.gz"})
    path = folder / "datalist.json"
    path.write_text(json.dumps({"name": "tiny kernels", "data": data}))
    return path


def test_crops_are_class_balanced_and_inside_the_body(datalist):
    crops = KernelCrops(datalist, "train", crop_size=16, grid=2)
    assert len(crops.images) == 4 and sorted(crops.classes) == [0, 1, 2, 3]
    x, y = crops.sample(np.random.default_rng(0), 8)
    assert x.shape == (8, 1, 16, 16) and x.dtype == torch.float32 and sorted(y.tolist()) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert x.max() <= 1.0 and float((x <= -1.0).float().mean()) < 0.05  # crops stay inside the body


def test_training_reduces_the_loss_and_writes_atomically(datalist, tmp_path):
    out = tmp_path / "weights" / "kf.pt"
    model, info = train_kernel_features(datalist, out, iterations=60, lr=5e-3, seed=0, **TINY)
    assert info["final_loss"] < info["first_loss"] and len(info["losses"]) == 60
    assert out.is_file() and output_record_path(out).is_file()
    assert [p.name for p in out.parent.iterdir() if p.name.endswith(".tmp") or ".tmp." in p.name] == []
    loaded = CTKernelFeatures.pretrained(out)
    assert loaded.widths == [4, 8]
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    assert torch.allclose(loaded.logits(x), model.logits(x))
    # seeded: the same run gives the same weights
    again, _ = train_kernel_features(datalist, None, iterations=3, seed=1, **TINY)
    twice, _ = train_kernel_features(datalist, None, iterations=3, seed=1, **TINY)
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), twice.state_dict().values(), strict=True))


def test_refuses_to_overwrite_unless_asked(datalist, tmp_path):
    out = tmp_path / "kf.pt"
    train_kernel_features(datalist, out, iterations=2, **TINY)
    before = out.read_bytes()
    with pytest.raises(OutputExistsError):
        train_kernel_features(datalist, out, iterations=2, **TINY)
    assert out.read_bytes() == before
    train_kernel_features(datalist, out, iterations=2, seed=5, overwrite=True, **TINY)
    foreign = tmp_path / "foreign.pt"
    foreign.write_bytes(b"not ours")
    with pytest.raises(OutputExistsError):  # --overwrite replaces only ctharmonize's own outputs
        train_kernel_features(datalist, foreign, iterations=2, overwrite=True, **TINY)


def test_cli_command_and_separation_report(datalist, tmp_path, capsys):
    out = tmp_path / "cli.pt"
    assert main(["train-feature-net", "--datalist", str(datalist), "--out", str(out), "--iterations", "2",
                 "--batch-size", "4", "--crop-size", "16", "--quiet"]) == 0
    net = CTKernelFeatures.pretrained(out)
    result = kernel_feature_separation(net, datalist, "test", fit_split="train", crop_size=16, crops_per_volume=4)
    assert result["crops"] == 16 and len(result["sharpness_accuracy_per_stage"]) == 4
    assert 0.0 <= result["sharpness_accuracy"] <= 1.0 and result["between_within_ratio"] > 0
    assert 0.0 <= result["kernel_accuracy"] <= 1.0 and result["scans"] == 4
    assert sum(sum(row.values()) for row in result["confusion"].values()) == 16
