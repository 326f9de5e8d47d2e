"""Reference experiment: radial linear filter H(|f|) fitted by least squares on paired training slices (FFT)."""
import sys, json, numpy as np
from ctharmonize.data import datalist_entries
from ctharmonize.io import read_volume
from ctharmonize.metrics.emphysema import laa, mean_lung_density
PAIRS = {"siemens_b50f": "siemens_b30f", "ge_bone": "ge_standard"}
def radial_bins(n, nb):
    f = np.fft.fftfreq(n); r = np.sqrt(f[:, None]**2 + f[None, :]**2)
    return np.minimum((r / (np.sqrt(2) * 0.5) * nb).astype(int), nb - 1)
def fit(dl, split, nb=64, fit_subjects=None, hu_min=-1024):
    entries, _ = datalist_entries(dl, split)
    by = {(e["subject"], e["kernel"]): e for e in entries}
    H = {}
    for k, t in PAIRS.items():
        num = den = 0
        subs = sorted(s for (s, kk) in by if kk == k)
        if fit_subjects: subs = subs[:fit_subjects]
        for s in subs:
            x = np.clip(read_volume(by[(s, k)]["image"]).array, hu_min, None); y = np.clip(read_volume(by[(s, t)]["image"]).array, hu_min, None)
            b = radial_bins(x.shape[-1], nb)
            X = np.fft.fft2(x - x.mean()); Y = np.fft.fft2(y - y.mean())
            num = num + np.bincount(b.ravel(), (np.conj(X) * Y).real.sum(0).ravel(), nb)
            den = den + np.bincount(b.ravel(), (np.abs(X)**2).sum(0).ravel(), nb)
        H[k] = num / den
    return H
def apply(H, x, nb=64):
    b = radial_bins(x.shape[-1], nb); m = x.mean()
    return np.fft.ifft2(np.fft.fft2(x - m) * H[b]).real + m
if __name__ == "__main__":
    fit_dl, ev_dl, ev_split = sys.argv[1], sys.argv[2], sys.argv[3]
    nfit = int(sys.argv[4]) if len(sys.argv) > 4 else None
    hu_min = float(sys.argv[5]) if len(sys.argv) > 5 else -1024
    H = fit(fit_dl, "train", fit_subjects=nfit, hu_min=hu_min)
    entries, _ = datalist_entries(ev_dl, ev_split)
    by = {(e["subject"], e["kernel"]): e for e in entries}
    for k, t in PAIRS.items():
        b, a, ma = [], [], []
        for (s, kk), e in by.items():
            if kk != k: continue
            lung = read_volume(e["lung"]).array > 0
            x = read_volume(e["image"]); y = read_volume(by[(s, t)]["image"]).array
            fov = x.fov_mask
            out = apply(H[k], np.clip(x.array, hu_min, None)); out[~fov] = x.array[~fov]
            b.append(laa(x.array, lung) - laa(y, lung)); a.append(laa(out, lung) - laa(y, lung)); ma.append(mean_lung_density(out, lung) - mean_lung_density(y, lung))
        rb, ra = np.sqrt(np.mean(np.square(b))), np.sqrt(np.mean(np.square(a)))
        print(k, "n=%d LAA RMSE %.2f -> %.2f (cut %.0f%%), MLD diff after %+.1f" % (len(b), rb, ra, 100 * (1 - ra / rb), np.mean(ma)))
    print("H b50f", np.round(H["siemens_b50f"][::4], 3).tolist())
