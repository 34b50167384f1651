"""utils/data/formats.py: COCO instances JSON labels; every malformed entry is one line naming file and entry."""

from __future__ import annotations

import json

import numpy as np
import pytest

from utils.data.formats import DatasetError, labels_from_coco_json


def _coco(tmp_path, annotations=None, images=None, categories=None):
    payload = {"images": images if images is not None else [{"id": 1, "file_name": "a.jpg", "width": 100,
                                                              "height": 50}],
               "categories": categories if categories is not None else [{"id": 3, "name": "car"},
                                                                        {"id": 7, "name": "bus"}],
               "annotations": annotations if annotations is not None else []}
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(payload).replace('"NaN"', "NaN"))
    return path


def test_boxes_become_yolo_rows_by_category_rank_and_are_clipped(tmp_path):
    path = _coco(tmp_path, [{"id": 1, "image_id": 1, "category_id": 7, "bbox": [10, 5, 20, 10]},
                            {"id": 2, "image_id": 1, "category_id": 3, "bbox": [90, 40, 20, 20]},  # overhangs
                            {"id": 3, "image_id": 1, "category_id": 3, "bbox": [0, 0, 5, 5], "iscrowd": 1}])
    labels, nc = labels_from_coco_json(path)
    assert nc == 2
    np.testing.assert_allclose(labels["a.jpg"], [[1, 0.2, 0.2, 0.2, 0.2], [0, 0.95, 0.9, 0.1, 0.2]], atol=1e-6)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"annotations": [{"id": 9, "image_id": 1, "category_id": 12, "bbox": [1, 1, 2, 2]}]},
     r"annotations\[0\] \(id 9\): category_id 12 is not in 'categories'"),
    ({"annotations": [{"id": 9, "image_id": 1, "category_id": 3}]}, r"annotations\[0\] \(id 9\): 'bbox' must be"),
    ({"annotations": [{"id": 9, "image_id": 1, "category_id": 3, "bbox": [1, "NaN", 2, 2]}]},
     r"'bbox' must be 4 finite numbers"),
    ({"annotations": [{"id": 9, "image_id": 5, "category_id": 3, "bbox": [1, 1, 2, 2]}]},
     r"image_id 5 is not in 'images'"),
    ({"annotations": [{"id": 9, "image_id": 1, "category_id": 3, "bbox": [200, 1, 2, 2]}]},
     r"lies outside the 100x50 image a.jpg"),
    ({"images": [{"id": 1, "file_name": "a.jpg", "width": 100}]},
     r"images\[0\] \(a.jpg\): 'width' and 'height' must be positive numbers, got 100 and None"),
    ({"categories": [{"name": "car"}]}, r"every entry of 'categories' needs an integer 'id'"),
])
def test_malformed_entries_are_one_line_naming_the_file_and_entry(tmp_path, kwargs, message):
    path = _coco(tmp_path, **kwargs)
    with pytest.raises(DatasetError, match=message) as error:
        labels_from_coco_json(path)
    assert str(error.value).startswith(str(path)) and "\n" not in str(error.value)


def test_a_file_that_is_not_json_is_one_line(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(DatasetError, match="broken.json: not a readable COCO JSON"):
        labels_from_coco_json(path)


def test_nc_disagreeing_with_names_is_refused(tmp_path):
    from utils.data.formats import load_dataset_config

    (tmp_path / "images").mkdir()
    path = tmp_path / "d.yaml"
    path.write_text("path: .\nval: images\nnc: 3\nnames: [a, b]\n")
    with pytest.raises(DatasetError, match="'nc' is 3 but 'names' lists 2 classes"):
        load_dataset_config(path)
    path.write_text("path: .\nval: images\nnc: 2\nnames: [a, b]\n")
    assert load_dataset_config(path)["nc"] == 2
