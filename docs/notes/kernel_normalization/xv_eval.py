"""Cross-vendor truth evaluation: LAA-950 / MLD of GE scans harmonized to B30f against the same phantom scanned
by the Siemens model with B30f (xv_truth.py). Usage: xv_eval.py DATALIST SPLIT TRUTH_DIR BUNDLE [WEIGHTS ...]"""
import json, sys, numpy as np, torch
from ctharmonize.data import datalist_entries
from ctharmonize.inference import load_bundle_harmonizer
from ctharmonize.io import read_volume
from ctharmonize.metrics.bootstrap import bootstrap_rmse
from ctharmonize.metrics.emphysema import laa, mean_lung_density, perc15
torch.set_num_threads(1)
dl, split, truth_dir, bundle = sys.argv[1:5]
weights = sys.argv[5:] or [None]
truth = json.load(open(f"{truth_dir}/truth.json"))
entries, _ = datalist_entries(dl, split)
ge = [e for e in entries if e["vendor"] == "ge"]
for w in weights:
    h = load_bundle_harmonizer(bundle, device="cpu", weights=w, batch_size=1)
    out = {}
    for k in ("ge_bone", "ge_standard"):
        rows = []
        for e in ge:
            if e["kernel"] != k: continue
            v = read_volume(e["image"]); lung = read_volume(e["lung"]).array > 0
            t = read_volume(truth[e["subject"]]).array
            o = h(v.array, k, "siemens_b30f", fov_mask=v.fov_mask)
            rows.append([laa(v.array, lung), laa(o, lung), laa(t, lung), mean_lung_density(v.array, lung), mean_lung_density(o, lung), mean_lung_density(t, lung),
                         perc15(v.array, lung), perc15(o, lung), perc15(t, lung)])
        r = np.array(rows)
        b, a = bootstrap_rmse(r[:, 0], r[:, 2]), bootstrap_rmse(r[:, 1], r[:, 2])
        out[k] = {"n": len(r), "laa_rmse_before": [round(x, 2) for x in b], "laa_rmse_after": [round(x, 2) for x in a],
                  "laa_mean_diff_before": round(float((r[:, 0] - r[:, 2]).mean()), 2), "laa_mean_diff_after": round(float((r[:, 1] - r[:, 2]).mean()), 2),
                  "mld_diff_before": round(float((r[:, 3] - r[:, 5]).mean()), 1), "mld_diff_after": round(float((r[:, 4] - r[:, 5]).mean()), 1),
                  "p15_diff_before": round(float((r[:, 6] - r[:, 8]).mean()), 1), "p15_diff_after": round(float((r[:, 7] - r[:, 8]).mean()), 1),
                  "truth_laa_median": round(float(np.median(r[:, 2])), 2)}
    print(w, json.dumps(out), flush=True)
