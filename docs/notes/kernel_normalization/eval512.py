"""Paired LAA-950 (Table 1 form) and LAA-950 medians to B30f (Table 2 form) on a test datalist with the
bundle's own harmonizer (no files written): for the 512² reference experiment."""
import sys, json, time, numpy as np, torch
from scipy.stats import mannwhitneyu, wilcoxon
from ctharmonize.data import datalist_entries
from ctharmonize.inference import load_bundle_harmonizer
from ctharmonize.io import read_volume
from ctharmonize.metrics.bootstrap import bootstrap_rmse
from ctharmonize.metrics.emphysema import laa, perc15, mean_lung_density
torch.set_num_threads(1)
bundle, weights, dl = sys.argv[1], sys.argv[2], sys.argv[3]
t0 = time.time()
h = load_bundle_harmonizer(bundle, device="cpu", weights=weights, batch_size=1)
entries, _ = datalist_entries(dl, "all")
by = {(e["subject"], e["kernel"]): e for e in entries}
cache = {}
def vol(e):
    v = read_volume(e["image"]); lung = read_volume(e["lung"]).array > 0
    return v, lung
res = {"paired": {}, "to_b30f": {}}
PAIRS = {"siemens_b50f": "siemens_b30f", "ge_bone": "ge_standard"}
for k, t in PAIRS.items():
    rows = []
    for (s, kk), e in sorted(by.items()):
        if kk != k: continue
        v, lung = vol(e); ref = read_volume(by[(s, t)]["image"]).array
        o = h(v.array, k, t, fov_mask=v.fov_mask)
        rows.append([laa(v.array, lung), laa(o, lung), laa(ref, lung), perc15(v.array, lung), perc15(o, lung), perc15(ref, lung),
                     mean_lung_density(v.array, lung), mean_lung_density(o, lung), mean_lung_density(ref, lung)])
    r = np.array(rows)
    b = bootstrap_rmse(r[:, 0], r[:, 2]); a = bootstrap_rmse(r[:, 1], r[:, 2])
    res["paired"][k] = {"n": len(r), "before": [round(x, 2) for x in b], "after": [round(x, 2) for x in a],
        "cut_pct": round(100 * (1 - np.sqrt(np.mean((r[:, 1] - r[:, 2])**2)) / np.sqrt(np.mean((r[:, 0] - r[:, 2])**2))), 1),
        "after_mean_diff": round(float(np.mean(r[:, 1] - r[:, 2])), 2),
        "p_before_vs_after": float(wilcoxon(np.abs(r[:, 0] - r[:, 2]), np.abs(r[:, 1] - r[:, 2])).pvalue),
        "perc15_before": [round(float(np.mean(r[:, 3] - r[:, 5])), 1), round(float(np.sqrt(np.mean((r[:, 3] - r[:, 5])**2))), 1)],
        "perc15_after": [round(float(np.mean(r[:, 4] - r[:, 5])), 1), round(float(np.sqrt(np.mean((r[:, 4] - r[:, 5])**2))), 1)],
        "mld_before": [round(float(np.mean(r[:, 6] - r[:, 8])), 1), round(float(np.sqrt(np.mean((r[:, 6] - r[:, 8])**2))), 1)],
        "mld_after": [round(float(np.mean(r[:, 7] - r[:, 8])), 1), round(float(np.sqrt(np.mean((r[:, 7] - r[:, 8])**2))), 1)]}
    print(k, res["paired"][k], flush=True)
ref = [laa(*[read_volume(e["image"]).array, read_volume(e["lung"]).array > 0]) for e in entries if e["kernel"] == "siemens_b30f"]
res["to_b30f"]["siemens_b30f"] = {"median": round(float(np.median(ref)), 2), "min": round(float(np.min(ref)), 2), "max": round(float(np.max(ref)), 2)}
for k in ("siemens_b50f", "ge_bone", "ge_standard"):
    before, after = [], []
    for e in entries:
        if e["kernel"] != k: continue
        v, lung = vol(e)
        before.append(laa(v.array, lung)); after.append(laa(h(v.array, k, "siemens_b30f", fov_mask=v.fov_mask), lung))
    res["to_b30f"][k] = {"before": [round(float(np.median(before)), 2), round(float(np.min(before)), 2), round(float(np.max(before)), 2)],
                         "after": [round(float(np.median(after)), 2), round(float(np.min(after)), 2), round(float(np.max(after)), 2)],
                         "p_after": float(mannwhitneyu(after, ref).pvalue), "p_before": float(mannwhitneyu(before, ref).pvalue)}
    print(k, res["to_b30f"][k], flush=True)
res["seconds"] = round(time.time() - t0, 1)
print(json.dumps(res))
