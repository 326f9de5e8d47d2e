"""Cohort evaluation, plots, report and checkpoint selection."""

from ctharmonize.evaluation.checkpoint_selection import (
    EmphysemaCheckpointSelector,
    ValidationSet,
    metric_name,
    select_checkpoint,
)
from ctharmonize.evaluation.cohort import CohortEvaluation, evaluate_cohort
from ctharmonize.evaluation.feature_separation import kernel_feature_separation
from ctharmonize.evaluation.model_comparison import compare_models, read_per_scan
from ctharmonize.evaluation.pairing import (
    DEFAULT_PAIRED_REFERENCES,
    DEFAULT_REFERENCE_KERNEL,
    Cohort,
    Scan,
    build_cohort,
)
from ctharmonize.evaluation.run import run_evaluation
from ctharmonize.evaluation.summary import summarize

__all__ = [
    "compare_models",
    "read_per_scan",
    "DEFAULT_PAIRED_REFERENCES",
    "DEFAULT_REFERENCE_KERNEL",
    "Cohort",
    "CohortEvaluation",
    "EmphysemaCheckpointSelector",
    "Scan",
    "ValidationSet",
    "build_cohort",
    "evaluate_cohort",
    "kernel_feature_separation",
    "metric_name",
    "run_evaluation",
    "select_checkpoint",
    "summarize",
]
