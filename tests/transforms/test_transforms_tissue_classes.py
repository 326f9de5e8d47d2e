"""Simulator tissue codes -> the 7 chest-CT segmenter classes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ctharmonize.networks import CHEST_CT_TISSUE_CLASSES
from ctharmonize.simulation.labels import LABEL_CODES, TISSUE_LABELS
from ctharmonize.transforms import ChestCTClassesd, chest_ct_class_lookup, tissue_codes_to_classes

#: by tissue name, written out independently of the module
EXPECTED = {
    "outside_body_air": "background",
    "right_lung": "lungs", "left_lung": "lungs", "pulmonary_vessel": "lungs", "nodule": "lungs",
    "airway": "airway",
    "skeletal_muscle": "skeletal_muscle",
    "subcutaneous_fat": "fat", "visceral_fat": "fat",
    "bone": "bone",
    "other_soft_tissue": "mediastinum", "heart": "mediastinum", "aorta": "mediastinum", "esophagus": "mediastinum",
}


def test_every_tissue_code_maps_to_its_class():
    assert set(EXPECTED) == set(TISSUE_LABELS.values())
    lookup = chest_ct_class_lookup()
    assert lookup.dtype == np.int64 and lookup.shape == (len(TISSUE_LABELS),)
    for tissue, cls in EXPECTED.items():
        assert CHEST_CT_TISSUE_CLASSES[lookup[LABEL_CODES[tissue]]] == cls, tissue
    assert set(lookup.tolist()) == set(range(len(CHEST_CT_TISSUE_CLASSES)))  # every class is reachable


def test_nodules_can_go_to_the_mediastinum_instead():
    lookup = chest_ct_class_lookup("mediastinum")
    assert CHEST_CT_TISSUE_CLASSES[lookup[LABEL_CODES["nodule"]]] == "mediastinum"
    assert (np.delete(lookup, 13) == np.delete(chest_ct_class_lookup(), 13)).all()
    with pytest.raises(ValueError, match="nodule"):
        chest_ct_class_lookup("vessel")


def test_numpy_torch_and_dictionary_transform_agree():
    codes = np.arange(14).reshape(1, 2, 7)
    expected = np.array([[[CHEST_CT_TISSUE_CLASSES.index(EXPECTED[TISSUE_LABELS[c]]) for c in row] for row in codes[0]]])
    np.testing.assert_array_equal(tissue_codes_to_classes(codes), expected)
    out = tissue_codes_to_classes(torch.as_tensor(codes, dtype=torch.uint8))
    assert out.dtype == torch.long
    np.testing.assert_array_equal(out.numpy(), expected)
    d = ChestCTClassesd(["labels_a"], nodule="mediastinum")({"labels_a": torch.as_tensor(codes), "image_a": 1})
    assert int(d["labels_a"][0, 1, 6]) == CHEST_CT_TISSUE_CLASSES.index("mediastinum") and d["image_a"] == 1


def test_codes_outside_the_table_and_float_labels_are_refused():
    with pytest.raises(ValueError, match=r"\[0, 13\]"):
        tissue_codes_to_classes(np.array([0, 14]))
    with pytest.raises(ValueError, match=r"\[0, 13\]"):
        tissue_codes_to_classes(torch.tensor([-1, 3]))
    with pytest.raises(ValueError, match="integers"):
        tissue_codes_to_classes(np.array([0.0, 1.0]))
