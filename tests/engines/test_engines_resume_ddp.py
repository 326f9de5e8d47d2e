"""Multi-process tests of the GAN engine: SIGKILL mid-epoch + resume, and DDP over 2 gloo processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import torch
from engines_toy import build_trainer, state_facts
from ignite.engine import Events

TOY = Path(__file__).with_name("engines_toy.py")


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted_run(tmp_path):
    ckpt_dir = tmp_path / "ckpt"
    marker = tmp_path / "ready"
    toy = {"adversarial": "wgan-gp", "pool_size": 2, "loss_weights": {"identity": 5}}
    common = ["--checkpoint-dir", str(ckpt_dir), "--checkpoint-every", "1", "--adversarial", "wgan-gp",
              "--pool-size", "2", "--identity", "5"]
    # 8 samples, half per epoch, batch 2 -> 2 iterations per epoch, 2 epochs -> 4 iterations.
    proc = subprocess.Popen([sys.executable, str(TOY), "--out", str(tmp_path / "killed"), *common,
                             "--pause-after", "3", "--marker", str(marker)], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while not marker.exists():
        assert proc.poll() is None, proc.stdout.read().decode()
        assert time.time() < deadline, "training subprocess never reached iteration 3"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "killed.rank0.json").exists()
    # checkpoint_every=1 and keep_last=2: iterations 2 (epoch end) and 3 (mid-epoch) are on disk
    assert sorted(p.name for p in ckpt_dir.glob("checkpoint_*.pt")) == ["checkpoint_2.pt", "checkpoint_3.pt"]
    assert not list(ckpt_dir.glob(".*tmp*")), "a temporary checkpoint file was left behind"
    ckpt = torch.load(ckpt_dir / "checkpoint_3.pt", weights_only=True)
    assert ckpt["engine"]["iteration"] == 3

    # resume in this process (1 thread, like the killed run, so that float results are bit-comparable)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        resumed = build_trainer(max_epochs=2, checkpoint_dir=ckpt_dir, checkpoint_every=1, resume_from="auto", **toy)
        started = {}
        resumed.add_event_handler(Events.STARTED, lambda e: started.update(state_facts(e)))
        resumed.run()
        reference = build_trainer(max_epochs=2, **toy)
        reference.run()
    finally:
        torch.set_num_threads(threads)
    # the resumed state is the checkpoint's
    assert started["iteration"] == 3 and started["epoch"] == 1
    for group in ("G", "D_A", "D_B"):
        assert started["steps"][group] == float(ckpt[f"optimizer/{group}"]["state"][0]["step"]) == 3.0
    final = state_facts(resumed)
    assert final["iteration"] == 4 and final["epoch"] == 2
    assert final["steps"] == {"G": 4.0, "D_A": 4.0, "D_B": 4.0}
    assert sorted(p.name for p in ckpt_dir.glob("checkpoint_*.pt")) == ["checkpoint_3.pt", "checkpoint_4.pt"]
    # same data order, RNG and image pools: identical to a run that was never interrupted
    for name, net in reference.networks.items():
        for key, value in net.state_dict().items():
            torch.testing.assert_close(resumed.networks[name].state_dict()[key], value, rtol=0, atol=1e-6)


def test_torchrun_two_gloo_processes_keep_identical_parameters(tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
           str(TOY), "--out", str(out), "--distributed", "--identity", "5", "--max-epochs", "1",
           "--checkpoint-dir", str(tmp_path / "ckpt")]
    res = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stdout + res.stderr
    facts = [json.loads(Path(f"{out}.rank{r}.json").read_text()) for r in (0, 1)]
    assert [f["world"] for f in facts] == [2, 2]
    # 8 samples, half per epoch = 4, sharded over 2 ranks, batch 2 -> 1 iteration per rank
    assert [f["final"]["iteration"] for f in facts] == [1, 1]
    assert all(f["final"]["steps"] == {"G": 1.0, "D_A": 1.0, "D_B": 1.0} for f in facts)
    p0, p1 = (torch.load(f"{out}.rank{r}.pt", weights_only=True) for r in (0, 1))
    assert p0.keys() == p1.keys()
    for key in p0:
        assert torch.equal(p0[key], p1[key]), f"{key} differs between ranks"
    # the ranks saw different samples (disjoint shards), so equality above needs gradient all-reduce:
    init = build_trainer(max_epochs=1)
    changed = [k for k in p0 if not torch.equal(p0[k], init.networks[k.split(".")[0]].state_dict()[k.split(".", 1)[1]])]
    assert changed, "training did not change any parameter"
    # only rank 0 wrote the checkpoint
    assert [p.name for p in (tmp_path / "ckpt").glob("checkpoint_*.pt")] == ["checkpoint_1.pt"]


MAIN_FIRST = '''
import sys, time
from pathlib import Path
import torch.distributed as dist
from ctharmonize.engines import get_rank, main_process_first

out = Path(sys.argv[1])

def prepare(tag):
    if get_rank() == 0:
        time.sleep(1.0)  # a slow writer: the other rank must wait for it
    seen = sorted(p.name for p in out.iterdir())
    (out / f"{tag}{get_rank()}").write_text(",".join(seen))
    return get_rank()

assert main_process_first(prepare, "rank") == get_rank()
dist.destroy_process_group()
'''


def test_main_process_first_runs_rank_zero_before_the_others(tmp_path):
    script = tmp_path / "main_first.py"
    script.write_text(MAIN_FIRST)
    out = tmp_path / "out"
    out.mkdir()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
           str(script), str(out)]
    res = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (out / "rank0").read_text() == ""  # rank 0 ran first, with nothing there yet
    assert (out / "rank1").read_text() == "rank0"  # rank 1 only after rank 0 had finished
    calls = []
    from ctharmonize.engines import main_process_first

    assert main_process_first(lambda x: calls.append(x) or x, 7) == 7 and calls == [7]  # no torchrun: a plain call
