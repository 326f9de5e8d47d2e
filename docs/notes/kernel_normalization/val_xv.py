"""Design selection on the validation split: paired LAA-950 (B50f->B30f, BONE->STANDARD) and cross-vendor truth
(GE BONE/STANDARD -> B30f against the Siemens-B30f scan of the same phantom). Usage: val_xv.py DATASET_DIR XV_DIR REGION:STAT ..."""
import json, sys, time, numpy as np, torch
from ctharmonize.data import datalist_entries
from ctharmonize.engines import fit_band_energies
from ctharmonize.inference import SliceHarmonizer
from ctharmonize.io import read_volume
from ctharmonize.metrics.emphysema import laa, mean_lung_density
from ctharmonize.networks import BandEnergyNormalizer
torch.set_num_threads(1)
ds, xv = sys.argv[1], sys.argv[2]
D = ["siemens_b50f", "siemens_b30f", "ge_bone", "ge_standard"]
dl = f"{ds}/datalist.json"
truth = json.load(open(f"{xv}/truth.json"))
entries, _ = datalist_entries(dl, "validation")
by = {(e["subject"], e["kernel"]): e for e in entries}
cache = {}
def load(e):
    if e["image"] not in cache:
        v = read_volume(e["image"]); cache[e["image"]] = (v, read_volume(e["lung"]).array > 0)
    return cache[e["image"]]
for spec in sys.argv[3:]:
    region, stat = spec.split(":")
    t0 = time.time()
    net = BandEnergyNormalizer(D)
    fit_band_energies(net, dl, "train", region=region, statistic=stat, hu_min=-2048.0, progress=False)
    h = SliceHarmonizer(net, hu_min=-2048.0, hu_max=3072.0, batch_size=1, device="cpu")
    out = {}
    for k, t in (("siemens_b50f", "siemens_b30f"), ("ge_bone", "ge_standard"), ("ge_bone", "xv"), ("ge_standard", "xv")):
        rows = []
        for (s, kk), e in sorted(by.items()):
            if kk != k: continue
            v, lung = load(e)
            ref = read_volume(truth[s]).array if t == "xv" else load(by[(s, t)])[0].array
            o = h(v.array, k, "siemens_b30f" if t == "xv" else t, fov_mask=v.fov_mask)
            rows.append([laa(v.array, lung) - laa(ref, lung), laa(o, lung) - laa(ref, lung), mean_lung_density(o, lung) - mean_lung_density(ref, lung)])
        r = np.array(rows); rb, ra = np.sqrt((r[:, 0]**2).mean()), np.sqrt((r[:, 1]**2).mean())
        out[f"{k}->{t}"] = "LAA %.2f->%.2f (mean %+.2f) MLD %+.1f" % (rb, ra, r[:, 1].mean(), r[:, 2].mean())
    g = net.gains("ge_standard", "siemens_b30f").numpy().round(3).tolist()
    print(spec, f"{time.time() - t0:.0f}s", json.dumps(out), "gains STD->B30f", g, flush=True)
