"""dataset.json's defaultViewConfiguration: what is refused before anything is sent."""

from __future__ import annotations

import pytest

from neurofs.errors import InvalidContent
from neurofs.sources.webknossos.sidecars import validate_dataset

GOOD = {
    "zoom": 1.5,
    "position": [10, 20, 30],
    "rotation": [0, 90.5, 0],
    "layers": {
        "color": {"color": [255, 0, 0], "alpha": 50, "intensityRange": [0, 200.5]},
        "segmentation": {
            "alpha": 20,
            "isDisabled": False,
            "mapping": {"name": "m", "type": "HDF5"},
        },
    },
}


def test_a_full_view_configuration_is_valid() -> None:
    validate_dataset({"name": "d", "defaultViewConfiguration": GOOD})
    validate_dataset({"name": "d", "defaultViewConfiguration": {"layers": {}}})


@pytest.mark.parametrize(
    ("views", "said"),
    [
        ({"zoom": 0}, "zoom"),
        ({"zoom": True}, "zoom"),
        ({"position": [1, 2]}, "position"),
        ({"position": [1.5, 2, 3]}, "position.0"),
        ({"rotation": [0, "x", 0]}, "rotation.1"),
        ({"segmentationPatternOpacity": 101}, "segmentationPatternOpacity"),
        ({"layers": {"c": {"alpha": 101}}}, "layers.c.alpha"),
        ({"layers": {"c": {"alpha": -1}}}, "layers.c.alpha"),
        ({"layers": {"c": {"color": [0, 0, 256]}}}, "layers.c.color.2"),
        ({"layers": {"c": {"intensityRange": [5, 1]}}}, "low ≤ high"),
        ({"layers": {"c": {"isInverted": "yes"}}}, "layers.c.isInverted"),
        ({"layers": {"c": {"alhpa": 1}}}, "alhpa"),
        ({"zoomm": 1}, "zoomm"),
    ],
)
def test_bad_values_are_refused_with_their_path(views: dict, said: str) -> None:
    with pytest.raises(InvalidContent) as info:
        validate_dataset({"name": "d", "defaultViewConfiguration": views})
    assert said in str(info.value)
