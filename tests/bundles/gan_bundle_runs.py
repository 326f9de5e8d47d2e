"""Running a bundle in tests: ``python -m monai.bundle`` subprocesses (inference commands, training, torchrun with
gloo) and the checks that a CycleGAN-style bundle (G_AB, G_BA, D_A, D_B) trains identically on 2 ranks."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

__all__ = ["REPO", "bundle_inference_commands", "copy_bundle_with_weights", "free_port", "losses_dump", "run_bundle",
           "split_scan", "subprocess_env", "torchrun_launcher", "train_two_gloo_ranks"]

REPO = Path(__file__).resolve().parents[2]


def copy_bundle_with_weights(bundle: Path, root: Path, inference: dict[str, Any], network: torch.nn.Module) -> Path:
    """``bundle``'s configs and LICENSE copied to ``root``, ``inference`` items set in its inference.json,
    ``network``'s weights as models/model.pt, and no trained spacing range in its metadata (test data of any
    spacing runs as is)."""
    shutil.copytree(bundle / "configs", root / "configs")
    shutil.copy(bundle / "LICENSE", root)
    config = json.loads((bundle / "configs" / "inference.json").read_text())
    (root / "configs" / "inference.json").write_text(json.dumps({**config, **inference}))
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    meta.pop("trained_pixel_spacing_mm", None)
    (root / "configs" / "metadata.json").write_text(json.dumps(meta))
    (root / "models").mkdir()
    torch.save(network.state_dict(), root / "models" / "model.pt")
    return root


def subprocess_env() -> dict[str, str]:
    """One thread, no warnings: the environment of every bundle subprocess."""
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun_launcher(nproc: int = 2) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", f"--master_port={free_port()}"]


def run_bundle(configs: list[str], *args: str, launcher: list[str] | None = None, cwd: Path = REPO,
               timeout: int = 300) -> str:
    """``monai.bundle run`` of ``configs`` (merged in order); asserts success, returns stdout + stderr."""
    cmd = [*(launcher or [sys.executable]), "-m", "monai.bundle", "run", "--config_file", repr(configs), *args]
    res = subprocess.run(cmd, cwd=cwd, env=subprocess_env(), capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res.stdout + res.stderr


def bundle_inference_commands(root: Path, image: str, out_nifti: Path, ts: Path, cwd: Path) -> dict[str, str]:
    """``monai.bundle`` run (``image`` → ``out_nifti``), ckpt_export of ``network_hu`` (→ ``ts``) and
    verify_net_in_out of the bundle at ``root``, in parallel; asserts each succeeds, returns their logs."""
    config = ["--config_file", str(root / "configs" / "inference.json")]
    meta = ["--meta_file", str(root / "configs" / "metadata.json")]
    commands = {
        "run": ["run", *config, *meta, "--input_path", image, "--output_path", str(out_nifti), "--device", "cpu"],
        "export": ["ckpt_export", "network_hu", *config, *meta, "--filepath", str(ts), "--ckpt_file",
                   str(root / "models" / "model.pt"), "--device", "cpu"],
        "verify": ["verify_net_in_out", "network_hu", *config, *meta, "--n", "16", "--device", "cpu"],
    }
    procs = {k: subprocess.Popen([sys.executable, "-m", "monai.bundle", *c], cwd=cwd, env=subprocess_env(), text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for k, c in commands.items()}
    logs = {k: p.communicate(timeout=300)[0] for k, p in procs.items()}
    for k, p in procs.items():
        assert p.returncode == 0, f"{k}:\n{logs[k][-3000:]}"
    return logs


def train_two_gloo_ranks(configs: list[str], tmp_path: Path, *args: str,
                         networks: tuple[str, ...] = ("G_AB", "G_BA", "D_A", "D_B")) -> None:
    """Train ``configs`` (ending with multi_gpu_train.json) under torchrun on 2 gloo ranks for one epoch of one
    iteration per rank (``args`` set the data and sizes); check both ranks end with identical ``networks`` (config
    ids), that only rank 0 wrote the checkpoint and that it holds the trained ``networks[0]``."""
    dump = tmp_path / "dump.json"  # every rank saves its networks after training
    pairs = ", ".join(f"('{n}', @{n})" for n in networks)
    state = f"{{k: v for n, m in [{pairs}] for k, v in m.state_dict(prefix=n + '.').items()}}"
    save = f"$torch.save({state}, os.path.join({str(tmp_path)!r}, 'final_rank' + os.environ['RANK'] + '.pt'))"
    dump.write_text(json.dumps({"run": ["$@trainer.run()", save]}))
    run_bundle([*configs, str(dump)], "--output_dir", str(tmp_path / "out"), "--model_dir", str(tmp_path / "models"),
               "--max_epochs", "1", "--val_every", "1", *args, launcher=torchrun_launcher())
    p0, p1 = (torch.load(tmp_path / f"final_rank{r}.pt", weights_only=True) for r in (0, 1))
    assert p0.keys() == p1.keys() and all(any(k.startswith(n + ".") for k in p0) for n in networks)
    for key in p0:
        assert torch.equal(p0[key], p1[key]), f"{key} differs between ranks"
    assert [p.name for p in (tmp_path / "out" / "checkpoints").glob("*.pt")] == ["checkpoint_1.pt"]
    ckpt = torch.load(tmp_path / "out" / "checkpoints" / "checkpoint_1.pt", weights_only=True)
    first = networks[0]
    for key, value in ckpt[f"network/{first}"].items():
        assert torch.equal(p0[f"{first}.{key}"], value), key
    assert (tmp_path / "models" / "model.pt").is_file()


def losses_dump(tmp_path: Path, name: str) -> str:
    """An override that saves the last iteration's losses after training."""
    path = tmp_path / f"{name}.json"
    save = (f"$json.dump({{k: float(v) for k, v in @trainer.state.output.items()}}, "
            f"open({str(tmp_path / (name + '_losses.json'))!r}, 'w'))")
    path.write_text(json.dumps({"imports": ["$import json", "$import os", "$import torch", "$import ctharmonize",
                                            "$import ctharmonize.bundle", "$import ctharmonize.datasets",
                                            "$import ctharmonize.engines", "$import ctharmonize.inference",
                                            "$import ctharmonize.networks",
                                            "$import ctharmonize.evaluation.checkpoint_selection"],
                                "run": ["$@trainer.run()", save]}))
    return str(path)


def split_scan(datalist: Path, kernel: str, split: str = "test") -> str:
    """The image path of the first ``split`` entry of ``kernel`` in ``datalist``."""
    from ctharmonize.data import datalist_entries

    entries, _ = datalist_entries(datalist, split)
    return next(e["image"] for e in entries if e["kernel"] == kernel)
