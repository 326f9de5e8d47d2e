"""The default target of harmonization, and the ground-truth target.

:data:`DEFAULT_REFERENCE_KERNEL`, the reference soft kernel of paper 000 (Siemens B30f), is the one code
default. A bundle's own default target is its ``inference.json`` ``target_kernel`` (``ctharmonize
harmonize`` / ``evaluate --bundle`` use it when ``--target`` is not given).

:data:`TRUTH_DOMAIN` names the noise-free, blur-free ground truth as a harmonization target (paper 001: any
kernel and dose to the truth); it is also the datalist key of a simulated entry's ground-truth volume.
"""

__all__ = ["DEFAULT_REFERENCE_KERNEL", "TRUTH_DOMAIN"]

DEFAULT_REFERENCE_KERNEL = "siemens_b30f"
TRUTH_DOMAIN = "ground_truth"
