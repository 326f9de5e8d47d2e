import json

from ctharmonize.cli import main
from ctharmonize.data.commands import validate_datalist


def _dataset(tmp_path):
    entries = []
    # by hand: train = 2 x siemens_b30f + 1 ge_bone, test = 1 siemens_b30f, no split = 1 ge_bone
    for i, (kernel, split) in enumerate([("siemens_b30f", "train"), ("siemens_b30f", "train"), ("ge_bone", "train"),
                                         ("siemens_b30f", "test"), ("ge_bone", None)]):
        (tmp_path / f"{i}.nii.gz").write_bytes(b"")
        entry = {"image": f"{i}.nii.gz", "kernel": kernel, "subject": f"s{i % 3}"}
        if split:
            entry["split"] = split
        entries.append(entry)
    path = tmp_path / "datalist.json"
    path.write_text(json.dumps({"data": entries}))
    return path


def test_summary_counts(tmp_path, capsys):
    path = _dataset(tmp_path)
    validate_datalist(str(path))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{path}: valid, 5 entries, 3 subjects"
    table = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert table["split"] == ["ge_bone", "siemens_b30f", "total"]
    assert table["train"] == ["1", "2", "3"]
    assert table["test"] == ["0", "1", "1"]
    assert table["-"] == ["1", "0", "1"]
    assert table["total"] == ["2", "3", "5"]


def test_cli_error_is_one_line(tmp_path, capsys):
    path = _dataset(tmp_path)
    doc = json.loads(path.read_text())
    doc["data"][2]["kernel"] = "GE_BONE"
    path.write_text(json.dumps(doc))
    assert main(["validate-datalist", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "data[2].kernel: unknown domain 'GE_BONE'" in err[0]
    assert main(["validate-datalist", str(path), "--check_files=False", "--registry",
                 str(tmp_path / "missing.json")]) == 2
    assert "missing.json: file not found" in capsys.readouterr().err
