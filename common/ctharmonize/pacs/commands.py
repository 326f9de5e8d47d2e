"""``ctharmonize pacs-harmonize``: harmonize a CT series held in a PACS (Orthanc) and store the derived series
back into its study.

The steps, each checked before the next, so that every error is one line and the PACS is left as it was:

1. Orthanc's HTTP API (``--pacs``) answers and reports its DICOM AE title and port (``--dicom`` overrides
   them). The HTTP API is needed because DICOM cannot delete: it removes a partly stored series and, with
   ``--overwrite``, the earlier derived series.
2. The source series: ``--series UID`` (C-FIND; it must be CT), or the one series of ``--study UID`` that
   the project's series rules pick (:mod:`ctharmonize.io.series`: one instance of every CT series is
   fetched with C-GET and the rules judge its header, as ``ctharmonize series`` does on a folder).
3. An earlier derived series of the same source series, bundle model and target in the study
   (:mod:`ctharmonize.pacs.derived_series`) stops the run unless ``--overwrite``.
4. The whole series is fetched with C-GET into a temporary folder (every instance the C-FIND listed)
   and harmonized by :func:`ctharmonize.inference.commands.harmonize`, exactly as ``ctharmonize
   harmonize`` does it, into a derived DICOM series (same StudyInstanceUID, new Series and SOP UIDs).
5. The written series is verified (one new series in the source's study, one instance per source
   instance, new UIDs, recognisable as this derivation) before anything is sent.
6. C-STORE of every instance, then a C-FIND that the PACS holds each of them (a PACS may accept an
   instance and drop it, as an Orthanc filter does). If a store fails or an instance is missing, the
   new series is deleted again and the command fails.
7. With ``--overwrite``, the earlier derived series is deleted only after the new one is stored and
   verified, so the study never lacks one and never keeps two.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import RE_VALID_UID

from ctharmonize.errors import (
    CTHarmonizeError,
    ModalityError,
    OutputExistsError,
    PacsError,
    SeriesNotFoundError,
)
from ctharmonize.pacs.derived_series import is_harmonized_from
from ctharmonize.pacs.dimse import DicomAddress, DimseClient, RetrieveFailed, SeriesRecord, StoreFailed
from ctharmonize.pacs.orthanc import OrthancRest

__all__ = ["pacs_harmonize"]


def _uid(value: str | None, flag: str) -> str | None:
    from ctharmonize.cli import UsageError

    if value is None:
        return None
    text = str(value).strip()
    if len(text) > 64 or not RE_VALID_UID.match(text):  # not pydicom.uid.UID: it warns on stderr
        raise UsageError(None, f"{flag} expects a DICOM UID (digits and dots, at most 64 characters), got {value!r}")
    return text


def _first_header(client: DimseClient, record: SeriesRecord, folder: Path) -> Dataset | None:
    """The header of one instance of a series (C-FIND of its instances, C-GET of the first), kept in
    ``folder``; None when the PACS lists none or cannot send it (a SOP class that is no CT image)."""
    sops = client.find_instances(record.study_uid, record.series_uid)
    if not sops:
        return None
    try:
        files = client.get(record.study_uid, record.series_uid, folder, sop_uid=sops[0])
    except RetrieveFailed:
        return None
    return pydicom.dcmread(files[0], stop_before_pixels=True) if files else None


def _renamed(err: CTHarmonizeError, work: Path, label: str) -> CTHarmonizeError:
    """``err`` with a path inside the temporary folder replaced by ``label`` (the PACS and series)."""
    if err.path is None or not Path(err.path).is_relative_to(work):
        return err
    inner = Path(err.path).relative_to(work)
    problem = err.problem if len(inner.parts) <= 1 else f"instance {inner.name}: {err.problem}"
    try:
        return type(err)(label, problem)
    except TypeError:
        return CTHarmonizeError(label, problem)


class _Pacs:
    """The PACS as this command uses it: DIMSE for the images, Orthanc's REST API for deletes."""

    def __init__(self, pacs: str, aet: str, dicom: str | None, timeout: float):
        self.rest = OrthancRest(pacs, timeout=timeout)
        address = DicomAddress.parse(dicom) if dicom is not None else None
        reported = self.rest.dicom_address()  # also checks, before any work, that deletes will be possible
        self.dimse = DimseClient(address or reported, calling_aet=aet, timeout=timeout)
        self.name = f"{self.rest} ({self.dimse})"

    def remove(self, series_uid: str, problem: str, what: str) -> str:
        """Delete a series; ``problem`` extended with the outcome (for the one-line error)."""
        try:
            self.rest.delete_series(series_uid)
        except PacsError as err:
            return f"{problem}; could not remove {what} {series_uid} again ({err.problem}): delete it by hand"
        return f"{problem}; removed {what} {series_uid} again, the PACS is as before"


def _choose_in_study(pacs: _Pacs, study: str, records: list[SeriesRecord], rules: str | None,
                     folder: Path, headers: dict[str, Dataset]) -> SeriesRecord:
    """The series of a study the project's series rules pick, judged on one instance of each CT series."""
    from ctharmonize.io.series import choose_series, scan_study

    ct = [r for r in records if r.modality == "CT"]
    if not ct:
        listed = "; ".join(r.describe() for r in records)
        raise ModalityError(pacs.name, f"study {study} holds no CT series ({listed})")
    for k, record in enumerate(ct):
        header = _first_header(pacs.dimse, record, folder / f"{k:04d}")
        if header is not None:
            headers[record.series_uid] = header
    if not headers:
        raise SeriesNotFoundError(pacs.name, f"study {study}: the PACS returned no instance of its CT series")
    try:
        chosen = choose_series(scan_study(folder), None, rules)
    except CTHarmonizeError as err:
        err = _renamed(err, folder, f"{pacs.name} study {study}")
        err.problem = err.problem.replace("--series UID|NUMBER", "--series UID")  # no SeriesNumbers here
        raise err from None
    return next(r for r in ct if r.series_uid == chosen.uid)


def _verify_written(files: list[Path], source: SeriesRecord, source_sops: list[str], existing: set[str],
                    model_name: str, target: str) -> tuple[str, set[str]]:
    """(new SeriesInstanceUID, its SOPInstanceUIDs) of the written series, or a one-line problem."""
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    series = {str(h.SeriesInstanceUID) for h in headers}
    studies = {str(h.StudyInstanceUID) for h in headers}
    sops = {str(h.SOPInstanceUID) for h in headers}
    problems = []
    if len(files) != len(source_sops):
        problems.append(f"{len(files)} instances written for {len(source_sops)} source instances")
    if studies != {source.study_uid}:
        problems.append(f"StudyInstanceUID {sorted(studies)} is not the source's {source.study_uid}")
    if len(series) != 1 or series & existing:
        problems.append("the SeriesInstanceUID is not one new UID")
    if len(sops) != len(files) or not sops.isdisjoint(source_sops):
        problems.append("the SOPInstanceUIDs are not new and distinct")
    if headers and not is_harmonized_from(headers[0], set(source_sops), model_name, target):
        problems.append("its header does not identify it as this derivation")
    if problems:
        raise PacsError(None, f"the derived series failed verification, nothing was stored: {'; '.join(problems)}")
    return series.pop(), sops


def pacs_harmonize(
    pacs: str,
    bundle: str,
    study: str | None = None,
    series: str | None = None,
    aet: str = "CTHARMONIZE",
    dicom: str | None = None,
    target: str | None = None,
    source: str | None = None,
    overwrite: bool = False,
    trust_bundle: bool = False,
    device: str | None = None,
    batch_size: int | None = None,
    amp: bool | str = "auto",
    rules: str | None = None,
    allow_non_axial: bool = False,
    assume_rescale: str | None = None,
    timeout: float = 30.0,
    quiet: bool = False,
    spacing_policy: str = "resample",
) -> str:
    """Harmonize a CT series in a PACS (Orthanc) with a bundle and store the derived series in the same study.

    Args:
        pacs: Orthanc's HTTP address, e.g. http://127.0.0.1:8042 (its REST API says where its DICOM
            service is, and deletes a partly stored or replaced series).
        bundle: bundle folder (its ``harmonizer`` item is used, as by ``ctharmonize harmonize``).
        study: StudyInstanceUID: harmonize the series of this study that the series rules pick.
        series: SeriesInstanceUID of the CT series to harmonize (with --study: within that study).
        aet: this machine's (calling) AE title; the PACS must allow it C-FIND, C-GET and C-STORE.
        dicom: the PACS's DICOM service as AET@HOST:PORT (default: the AE title and port Orthanc reports,
            on the host of --pacs).
        target: target kernel domain (default: the bundle's target_kernel).
        source: source kernel domain (default: from the series' Manufacturer and ConvolutionKernel).
        overwrite: replace an earlier derived series of the same source series, model and target (it is
            deleted after the new one is stored); without it such a series stops the run.
        trust_bundle: run the configs of a bundle that is not trusted otherwise (a bundle config is code).
        device: cpu, cuda or cuda:N (default: CUDA when available).
        batch_size: axial slices per forward pass.
        amp: bf16 autocast: "auto" (default: on CUDA, fp32 on CPU), "bf16" (CPU too: about 2x faster
            there, measurements change slightly, see the model card) or "none" (fp32; also --noamp).
        rules: series selection rules JSON for --study (MONAI Deploy DICOMSeriesSelectorOperator format;
            default: CT, axial, ORIGINAL, known kernel).
        allow_non_axial: harmonize sagittal/coronal reformats with the axial-trained network anyway.
        assume_rescale: "SLOPE,INTERCEPT" for slices without rescale tags (default: refuse them).
        timeout: seconds to wait for the PACS at each step.
        quiet: no progress output.
        spacing_policy: outside the bundle's trained_pixel_spacing_mm, "resample" in-plane to it and back
            (default) or "refuse" (as for ``ctharmonize harmonize``).

    Returns:
        a one-line summary: the new series and what it replaced.
    """
    from ctharmonize.cli import UsageError
    from ctharmonize.domains import default_registry
    from ctharmonize.inference.bundle_harmonizer import (
        bundle_default_target,
        bundle_model_name,
        read_bundle_config,
    )
    from ctharmonize.inference.commands import harmonize
    from ctharmonize.inference.slice_harmonizer import amp_mode
    from ctharmonize.inference.spacing_policy import check_spacing_policy
    from ctharmonize.io.series_rules import load_rules

    study, series = _uid(study, "--study"), _uid(series, "--series")
    if study is None and series is None:
        raise UsageError(None, "give --study UID or --series UID")
    if float(timeout) <= 0:
        raise UsageError(None, f"--timeout must be > 0 seconds, got {timeout}")
    registry = default_registry()
    if target is not None:
        registry.validate_target(str(target))
    if source is not None:
        registry.validate_name(str(source))
    if rules is not None:
        load_rules(rules)  # a bad rules file fails before the PACS is asked anything
    check_spacing_policy(spacing_policy)
    amp = amp_mode(amp)
    parser = read_bundle_config(bundle, trust=trust_bundle)
    target = str(target) if target is not None else bundle_default_target(parser)
    model_name = bundle_model_name(parser)

    def say(text: str) -> None:
        if not quiet:
            print(text, file=sys.stderr, flush=True)

    remote = _Pacs(pacs, aet, dicom, float(timeout))
    with tempfile.TemporaryDirectory(prefix="ctharmonize-pacs-") as tmp:
        work = Path(tmp)
        headers: dict[str, Dataset] = {}
        if series is not None:
            found = [r for r in remote.dimse.find_series(study_uid=study, series_uid=series) if r.series_uid == series]
            if not found:
                raise SeriesNotFoundError(remote.name, f"no series {series}" + (f" in study {study}" if study else "")
                                          + " in the PACS")
            chosen = found[0]
            if chosen.modality != "CT":
                raise ModalityError(remote.name, f"{chosen.describe()} is not CT")
            records = remote.dimse.find_series(study_uid=chosen.study_uid)
        else:
            records = remote.dimse.find_series(study_uid=study)
            if not records:
                raise SeriesNotFoundError(remote.name, f"no study {study} in the PACS")
            chosen = _choose_in_study(remote, str(study), records, rules, work / "headers", headers)
        label = f"{remote.name} series {chosen.series_uid}"
        source_sops = remote.dimse.find_instances(chosen.study_uid, chosen.series_uid)
        if not source_sops:
            raise SeriesNotFoundError(label, "the PACS lists no instance of this series")

        earlier = []
        for k, record in enumerate(r for r in records if r.modality == "CT" and r.series_uid != chosen.series_uid):
            header = headers.get(record.series_uid) or _first_header(remote.dimse, record, work / "others" / f"{k:04d}")
            if header is not None and is_harmonized_from(header, set(source_sops), model_name, target):
                earlier.append(record)
        if earlier and not overwrite:
            raise OutputExistsError(label, f"study {chosen.study_uid} already holds {earlier[0].describe()}, "
                                           f"harmonized from this series with {model_name} to {target}; pass "
                                           "--overwrite to replace it")

        say(f"retrieving {chosen.describe()}: {len(source_sops)} instances")
        received = remote.dimse.get(chosen.study_uid, chosen.series_uid, work / "source")
        got = {str(pydicom.dcmread(f, stop_before_pixels=True, specific_tags=["SOPInstanceUID"]).SOPInstanceUID)
               for f in received}
        if got != set(source_sops):
            raise PacsError(label, f"C-GET returned {len(got & set(source_sops))} of the {len(source_sops)} "
                                   "instances the PACS lists")
        try:
            summary = harmonize(bundle=bundle, input=str(work / "source"), out=str(work / "derived"), source=source,
                                target=target, device=device, batch_size=batch_size, amp=amp, quiet=quiet,
                                trust_bundle=trust_bundle, allow_non_axial=allow_non_axial,
                                assume_rescale=assume_rescale, spacing_policy=spacing_policy)
        except CTHarmonizeError as err:
            raise _renamed(err, work, label) from None
        files = sorted((work / "derived").glob("*.dcm"))
        try:
            new_uid, new_sops = _verify_written(files, chosen, source_sops, {r.series_uid for r in records},
                                                model_name, target)
        except PacsError as err:
            raise PacsError(label, err.problem) from None

        say(f"storing the derived series {new_uid}: {len(files)} instances")
        try:
            remote.dimse.store(files)
            kept = set(remote.dimse.find_instances(chosen.study_uid, new_uid))
            if kept != new_sops:
                raise StoreFailed(remote.name, f"the PACS accepted the derived series {new_uid} but holds "
                                               f"{len(kept & new_sops)} of its {len(new_sops)} instances", len(files))
        except StoreFailed as err:
            raise PacsError(remote.name, remote.remove(new_uid, err.problem, "the derived series")) from None
        except BaseException:  # interrupted or anything unexpected: leave no partial series behind
            remote.remove(new_uid, "", "the derived series")
            raise
        replaced = []
        for record in earlier:
            try:
                remote.rest.delete_series(record.series_uid)
            except PacsError as err:
                raise PacsError(remote.name, f"stored the derived series {new_uid}, but could not remove the earlier "
                                             f"{record.describe()} ({err.problem}): delete it by hand") from None
            replaced.append(record.series_uid)
    what = summary.split(": ", 1)[-1]
    text = f"{remote.rest}: study {chosen.study_uid}: stored series {new_uid} ({what})"
    return text + (f"; replaced series {', '.join(replaced)}" if replaced else "")
