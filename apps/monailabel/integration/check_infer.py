"""Checks a running MONAI Label server of apps/monailabel against local ``ctharmonize harmonize`` runs.

Called by run_integration_test.sh once /info/ answers. For every harmonization bundle of ``--bundles``:

* /info/ lists it as a model of type "others";
* ``POST /infer/<model>?image=<id>&output=image`` (datastore image; source kernel from its JSON sidecar)
  and ``POST /infer/<model>?output=image`` with the file uploaded and ``params={"source": ...}`` return a
  float32 NIfTI whose shape and affine equal the local run's and whose HU differ from it by at most
  ``--tolerance``, while differing from the input (the model did something);
* ``output=json`` reports the source and target kernels;
* an upload without a source (no header) is refused with HTTP 400 and a message naming ``source``;
* with ``--dicom``, the same study as a DICOM series folder (what a DICOMweb datastore hands the task),
  sent by its path, equals the local run on that folder, with the NIfTI study's affine.

Prints one line per check and exits 0 only if all pass.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import requests

TIMEOUT = 600


class Checks:
    """Collects PASS/FAIL lines."""

    def __init__(self) -> None:
        self.failed = 0
        self.passed = 0

    def check(self, ok: bool, what: str) -> bool:
        print(f"  {'ok  ' if ok else 'FAIL'} {what}", flush=True)
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        return ok


def harmonization_bundles(folder: Path) -> list[str]:
    """Sub-folders whose configs/inference.json defines a harmonizer item (read as plain JSON)."""
    names = []
    for config in sorted(folder.glob("*/configs/inference.json")):
        if "harmonizer" in json.loads(config.read_text()):
            names.append(config.parent.parent.name)
    return names


def compare(checks: Checks, label: str, got: Path, ref: Path, image: Path, tolerance: float) -> None:
    """Result vs the local run: dtype, shape, affine, max |HU| difference; and that it is not the input."""
    g, r, i = nib.load(str(got)), nib.load(str(ref)), nib.load(str(image))
    ga, ra, ia = (np.asarray(x.dataobj, dtype=np.float64) for x in (g, r, i))
    checks.check(g.get_data_dtype() == np.float32, f"{label}: NIfTI dtype {g.get_data_dtype()} (want float32)")
    if not checks.check(ga.shape == ra.shape, f"{label}: shape {ga.shape} (local run {ra.shape})"):
        return
    affine_diff = float(np.abs(g.affine - r.affine).max())
    checks.check(affine_diff <= 1e-4 and np.allclose(g.affine, i.affine, atol=1e-4),
                 f"{label}: affine equals the local run's and the input's (max difference {affine_diff:.2e} mm)")
    diff = float(np.abs(ga - ra).max())
    checks.check(diff <= tolerance, f"{label}: max |HU - local run| = {diff:.6f} (tolerance {tolerance})")
    changed = float(np.abs(ga - ia).max())
    checks.check(changed > 1.0, f"{label}: differs from the input by up to {changed:.1f} HU (harmonized, not copied)")


def local_run(checks: Checks, name: str, reference: str, bundle: Path, image: Path, ref: Path) -> bool:
    """`ctharmonize harmonize` on ``image`` into ``ref`` (source from the header, default target, CPU)."""
    started = time.perf_counter()
    run = subprocess.run([reference, "harmonize", "--bundle", str(bundle), "--input", str(image), "--out",
                          str(ref), "--device", "cpu", "--quiet"], capture_output=True, text=True)
    summary = (run.stdout + run.stderr).strip().splitlines()
    return checks.check(run.returncode == 0 and ref.is_file(),
                        f"{name}: local run `{reference} harmonize --input {image.name}` "
                        f"({time.perf_counter() - started:.1f} s): {summary[-1] if summary else ''}")


def main(argv: list[str] | None = None) -> int:
    """Run all checks; 0 if all pass."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--bundles", type=Path, required=True)
    ap.add_argument("--image", type=Path, required=True, help="the study's NIfTI (with its JSON sidecar)")
    ap.add_argument("--image-id", required=True, help="its datastore id")
    ap.add_argument("--dicom", type=Path, help="the same study as a DICOM series folder, sent by path")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--reference", required=True, help="ctharmonize executable for the local runs")
    ap.add_argument("--source", default="ge_bone", help="the study's kernel domain, sent with the upload")
    ap.add_argument("--tolerance", type=float, default=0.01)
    args = ap.parse_args(argv)
    checks = Checks()

    info = requests.get(f"{args.url}/info/", timeout=60).json()
    models = info.get("models", {})
    expected = harmonization_bundles(args.bundles)
    print(f"/info/: app {info.get('name')!r} {info.get('version')}, models: {', '.join(sorted(models))}")
    checks.check(sorted(models) == expected, f"/info/ lists exactly the bundles of {args.bundles}: {expected}")
    for name in expected:
        model = models.get(name)
        if not checks.check(model is not None, f"{name}: listed in /info/"):
            continue
        print(f"{name}: type {model.get('type')!r}, config {json.dumps(model.get('config'))}")
        checks.check(model.get("type") == "others", f"{name}: InferType others (image result, not a segmentation)")
        ref = args.out / f"{name}_local.nii.gz"
        if not local_run(checks, name, args.reference, args.bundles / name, args.image, ref):
            continue

        started = time.perf_counter()
        resp = requests.post(f"{args.url}/infer/{name}", params={"image": args.image_id, "output": "image"},
                             timeout=TIMEOUT)
        got = args.out / f"{name}_by_id.nii.gz"
        if checks.check(resp.status_code == 200, f"{name}: POST /infer/{name}?image={args.image_id}&output=image "
                                                 f"-> HTTP {resp.status_code} in {time.perf_counter() - started:.1f} s"
                                                 + ("" if resp.ok else f": {resp.text[:300]}")):
            got.write_bytes(resp.content)
            compare(checks, f"{name} by id", got, ref, args.image, args.tolerance)

        resp = requests.post(f"{args.url}/infer/{name}", params={"image": args.image_id, "output": "json"},
                             timeout=TIMEOUT)
        params = resp.json() if resp.ok else {}
        checks.check(resp.ok and params.get("source") == args.source and params.get("unit") == "HU"
                     and params.get("target") == next(iter(model["config"]["target"])),
                     f"{name}: output=json reports source {params.get('source')!r} -> target "
                     f"{params.get('target')!r} (from the header; the bundle's default target)")

        started = time.perf_counter()
        with args.image.open("rb") as fh:
            resp = requests.post(f"{args.url}/infer/{name}", params={"output": "image"},
                                 files={"file": (args.image.name, fh, "application/gzip")},
                                 data={"params": json.dumps({"source": args.source})}, timeout=TIMEOUT)
        got = args.out / f"{name}_upload.nii.gz"
        if checks.check(resp.status_code == 200, f"{name}: POST /infer/{name}?output=image, file uploaded, "
                                                 f"params {{\"source\": \"{args.source}\"}} -> HTTP "
                                                 f"{resp.status_code} in {time.perf_counter() - started:.1f} s"
                                                 + ("" if resp.ok else f": {resp.text[:300]}")):
            got.write_bytes(resp.content)
            compare(checks, f"{name} upload", got, ref, args.image, args.tolerance)

        with args.image.open("rb") as fh:
            resp = requests.post(f"{args.url}/infer/{name}", params={"output": "image"},
                                 files={"file": (args.image.name, fh, "application/gzip")}, timeout=TIMEOUT)
        detail = resp.json().get("detail", "") if resp.headers.get("content-type", "").startswith(
            "application/json") else resp.text
        checks.check(resp.status_code == 400 and "'source'" in detail,
                     f"{name}: upload without a source (no header) -> HTTP {resp.status_code}: {detail[:400]}")

        if args.dicom is None:
            continue
        ref = args.out / f"{name}_local_dicom.nii.gz"
        if not local_run(checks, name, args.reference, args.bundles / name, args.dicom, ref):
            continue
        started = time.perf_counter()
        resp = requests.post(f"{args.url}/infer/{name}", params={"image": str(args.dicom), "output": "image"},
                             timeout=TIMEOUT)
        got = args.out / f"{name}_dicom.nii.gz"
        if checks.check(resp.status_code == 200, f"{name}: POST /infer/{name}?image=<DICOM series folder>"
                                                 f"&output=image -> HTTP {resp.status_code} in "
                                                 f"{time.perf_counter() - started:.1f} s"
                                                 + ("" if resp.ok else f": {resp.text[:300]}")):
            got.write_bytes(resp.content)
            compare(checks, f"{name} DICOM", got, ref, args.image, args.tolerance)

    print(f"checks: {checks.passed} passed, {checks.failed} failed")
    return 0 if checks.failed == 0 and checks.passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
