"""Checkpoint averaging of network weights: the mean by hand, formats, refusals, CLI."""

import pytest
import torch

from ctharmonize.cli import main
from ctharmonize.errors import OutputExistsError, WeightsError
from ctharmonize.inference import average_network_weights, load_network_weights
from ctharmonize.networks import MultipathGenerator

DOMAINS = ["siemens_b50f", "siemens_b30f"]


def _generator(seed: int, ngf: int = 4) -> MultipathGenerator:
    torch.manual_seed(seed)
    return MultipathGenerator(DOMAINS, ngf=ngf, n_blocks=1)


def test_average_is_the_elementwise_mean_and_loads(tmp_path):
    nets = [_generator(s) for s in (0, 1, 2)]
    paths = []
    for i, net in enumerate(nets):
        state = net.state_dict()
        # three accepted formats: plain state dict, selector candidate, trainer checkpoint
        obj = state if i == 0 else {"G": state} if i == 1 else {"network/G": state, "network/D_x": {"w": torch.ones(1)}}
        torch.save(obj, tmp_path / f"w{i}.pt")
        paths.append(tmp_path / f"w{i}.pt")
    out = tmp_path / "avg.pt"
    avg = average_network_weights(paths, out, networks={"G": ""})
    key = next(k for k, v in avg.items() if k.startswith("latent.") and v.is_floating_point() and v.numel() > 10)
    by_hand = (nets[0].state_dict()[key] + nets[1].state_dict()[key] + nets[2].state_dict()[key]) / 3
    assert torch.allclose(avg[key], by_hand, atol=1e-7)
    assert not torch.allclose(avg[key], nets[0].state_dict()[key])
    loaded = load_network_weights(_generator(5), out)  # the file is a loadable model.pt
    assert torch.equal(loaded.state_dict()[key], avg[key])
    # averaging one file returns it unchanged
    single = average_network_weights([paths[0]])
    assert all(torch.equal(single[k], v) for k, v in nets[0].state_dict().items())


def test_refuses_other_architecture_and_existing_output(tmp_path):
    torch.save(_generator(0).state_dict(), tmp_path / "a.pt")
    torch.save(_generator(1, ngf=8).state_dict(), tmp_path / "b.pt")
    with pytest.raises(WeightsError, match="b.pt.*shape"):
        average_network_weights([tmp_path / "a.pt", tmp_path / "b.pt"])
    (tmp_path / "out.pt").write_bytes(b"keep")
    with pytest.raises(OutputExistsError):
        average_network_weights([tmp_path / "a.pt"], tmp_path / "out.pt")
    assert (tmp_path / "out.pt").read_bytes() == b"keep"


def test_cli_average_weights(tmp_path, capsys):
    for i in range(2):
        torch.save(_generator(i).state_dict(), tmp_path / f"w{i}.pt")
    out = tmp_path / "m.pt"
    assert main(["average-weights", "--paths", f"{tmp_path / 'w0.pt'},{tmp_path / 'w1.pt'}", "--out", str(out)]) == 0
    state = torch.load(out, weights_only=True)
    a, b = (torch.load(tmp_path / f"w{i}.pt", weights_only=True) for i in range(2))
    assert all(torch.allclose(state[k], (a[k] + b[k]) / 2) for k in a if a[k].is_floating_point())
    assert main(["average-weights", "--paths", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "x.pt")]) == 2
    assert "missing.pt" in capsys.readouterr().err
