"""Cross-vendor truth for a simulated dataset: each GE subject's phantom (regenerated from the dataset seed)
scanned by the Siemens scanner model and reconstructed with B30f, on the GE grid. Writes
<out>/<subject>_siemens_b30f_truth.nii.gz and <out>/truth.json {subject: path}."""
import json, sys, numpy as np
from pathlib import Path
from ctharmonize.io import read_volume, write_volume
from ctharmonize.simulation.phantom import generate_phantom
from ctharmonize.simulation.scan import simulate_scan
from ctharmonize.simulation.vendors import get_vendor
ds, seed, out = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
out.mkdir(parents=True, exist_ok=True)
d = json.load(open(ds / "datalist.json"))
size = read_volume(ds / d["data"][0]["image"]).shape
subjects = sorted({e["subject"] for e in d["data"] if e["vendor"] == "ge"})
spec = get_vendor("ge")
truth = {}
for subject in subjects:
    i = int(subject.split("-")[-1])
    ph_seed = int(np.random.SeedSequence([seed, 1, i]).generate_state(1)[0] % (2**31))
    ph = generate_phantom(ph_seed, size=size[1], slices=size[0], fov_mm=spec.recon_fov_mm, fov_center_mm=spec.fov_center_mm,
                          slice_thickness=spec.slice_thickness_mm)
    gt = read_volume(ds / f"ground_truth/{subject}_gt.nii.gz").array
    assert np.abs(ph.hu - gt).max() < 1e-3, subject  # same phantom as the dataset's
    vol = simulate_scan(ph, "siemens", kernels=["siemens_b30f"], seed=seed * 7919 + i + 100000)["siemens_b30f"]
    path = out / f"{subject}_siemens_b30f_truth.nii.gz"
    write_volume(vol, path)
    truth[subject] = str(path)
    print(subject, flush=True)
(out / "truth.json").write_text(json.dumps(truth, indent=1))
