"""``ctharmonize stage-deploy-app``: assemble the folders ``monai-deploy package`` turns into a MAP.

A MAP image installs ``requirements.txt`` from PyPI and copies the app folder to ``/opt/holoscan/app``
and the models to ``/opt/holoscan/models``. ctharmonize is not on PyPI, so the staged app folder holds
a copy of the package beside ``__main__.py`` (which puts it first on ``sys.path``). The bundle's code
digest is recorded as trusted in the app folder's own ``ctharmonize_home/trusted_bundles.json``
(docs/bundles.md), so the MAP runs that bundle, and a bundle whose configs differ from it is refused.
Staging needs no SDK and no Docker: it only copies files (about 2 MB with the shipped bundle).

Layout written to ``out``::

    out/app/__main__.py, app.yaml, requirements.txt   (apps/deploy)
    out/app/ctharmonize/                             (the package, no caches)
    out/app/ctharmonize_home/trusted_bundles.json    (the staged bundle's digest)
    out/models/<bundle name>/                        (configs, models, docs, LICENSE; no eval or samples)
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ctharmonize.errors import ConfigError

__all__ = ["APP_FILES", "deploy_app_dir", "stage_deploy_app"]

#: The files of apps/deploy that make the MAP's app folder.
APP_FILES = ("__main__.py", "app.yaml", "requirements.txt")
#: Bundle folders left out of the MAP: outputs, demo samples, training runs.
_SKIP_BUNDLE = ("eval", "sample", "sample_data", "eval_data")
TRUST_HOME = "ctharmonize_home"
MAP_MODELS = "/opt/holoscan/models"


def deploy_app_dir() -> Path:
    """``apps/deploy`` of the source tree this package was installed from (an editable install)."""
    return Path(__file__).resolve().parents[3] / "apps" / "deploy"


def _bundle_filter(root: Path):
    """``shutil.copytree`` ignore function: caches, training runs and the top-level data folders."""
    def ignore(folder: str, names: list[str]) -> set[str]:
        top = Path(folder) == root
        return {n for n in names if n == "__pycache__" or (top and (n.startswith("train_output") or n in _SKIP_BUNDLE))}
    return ignore


def stage_deploy_app(bundle: str, out: str, overwrite: bool = False, trust_bundle: bool = False) -> str:
    """Stage the MONAI Deploy app and a bundle for ``monai-deploy package`` (see docs/deployment.md).

    Args:
        bundle: the bundle folder the MAP will run (it must be trusted here: shipped, recorded with
            ``ctharmonize trust-bundle``, or ``--trust_bundle`` after review).
        out: output folder (``app/`` and ``models/`` inside it; written atomically).
        overwrite: replace an earlier, unchanged output of this command.
        trust_bundle: trust a bundle that is neither shipped nor recorded (review its configs first).

    Returns:
        the ``monai-deploy package`` command to run on a machine with Docker.
    """
    from ctharmonize.bundle.trust import check_bundle_trusted, record_trusted_bundle
    from ctharmonize.io.atomic import atomic_path
    from ctharmonize.io.output_check import check_output

    source = Path(bundle)
    if not (source / "configs" / "inference.json").is_file():
        raise ConfigError(source, "not a bundle folder (no configs/inference.json)")
    app_dir = deploy_app_dir()
    missing = [name for name in APP_FILES if not (app_dir / name).is_file()]
    if missing:
        raise ConfigError(app_dir, f"the MONAI Deploy app is not there ({', '.join(missing)} missing); staging "
                                   "needs a source checkout of ctharmonize installed with pip install -e")
    check_output(out, [bundle], overwrite)
    check_bundle_trusted(source, trust=trust_bundle)
    name = source.resolve().name
    with atomic_path(out, overwrite=overwrite, directory=True, record=True) as tmp:
        app = tmp / "app"
        app.mkdir()
        for item in APP_FILES:
            shutil.copy2(app_dir / item, app / item)
        package = Path(__file__).resolve().parents[1]
        shutil.copytree(package, app / "ctharmonize", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        model = tmp / "models" / name
        shutil.copytree(source, model, ignore=_bundle_filter(source))
        home = app / TRUST_HOME
        home.mkdir()
        previous = os.environ.get("CTHARMONIZE_HOME")
        os.environ["CTHARMONIZE_HOME"] = os.fspath(home)
        try:
            digest = record_trusted_bundle(model, source=f"staged for a MAP from {source.resolve()}")
            record = home / "trusted_bundles.json"
            entries = json.loads(record.read_text(encoding="utf-8"))
            entries[digest]["path"] = f"{MAP_MODELS}/{name}"  # where the MAP holds it, not the temporary copy
            record.write_text(json.dumps(entries, indent=2), encoding="utf-8")
        finally:
            if previous is None:
                del os.environ["CTHARMONIZE_HOME"]
            else:
                os.environ["CTHARMONIZE_HOME"] = previous
    out = os.fspath(out)
    return (f"{out}: staged {name}; on a machine with Docker: monai-deploy package {out}/app -c {out}/app/app.yaml "
            f"-m {out}/models -t ctharmonize-deploy:0.1.0 --platform x86_64")
