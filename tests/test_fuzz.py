"""Property-based fuzzing of the parsers that read user files: any input gives a valid result or one of the
project's own errors, never another exception."""

import io

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from utils.checkpoints.files import load_checkpoint
from utils.checkpoints.format import CheckpointError
from utils.data.formats import DatasetError, load_dataset_config, parse_label_text

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**6, 10**6))
tokens = st.one_of(numbers.map(str), st.sampled_from(["nan", "inf", "-inf", "1e999", "0x10", "", "a", "\ufeff0"]),
                   st.text(max_size=6))
label_text = st.lists(st.lists(tokens, max_size=9).map(" ".join), max_size=6).map("\n".join)


@FAST
@given(label_text, st.integers(1, 5))
def test_label_parser_returns_labels_or_a_report(text, nc):
    labels, kind, message, duplicates = parse_label_text(text, nc, "x.txt")
    if labels is None:
        assert kind == "bad label" and message.startswith("x.txt:")
    else:
        assert labels.shape[1] == 5 and np.isfinite(labels).all() and duplicates >= 0
        assert ((labels[:, 0] >= 0) & (labels[:, 0] < nc)).all()
        assert (labels[:, 1:] >= 0).all() and (labels[:, 1:] <= 1).all()


yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 20), st.floats(allow_nan=False),
                         st.text(max_size=8))
yaml_values = st.recursive(yaml_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                                 st.dictionaries(yaml_scalars, inner, max_size=4)),
                           max_leaves=12)


@FAST
@given(st.dictionaries(st.sampled_from(["path", "train", "val", "test", "names", "nc", "annotations", "x"]),
                       yaml_values, max_size=6))
def test_dataset_yaml_loader_gives_a_config_or_a_dataset_error(tmp_path_factory, content):
    import yaml

    folder = tmp_path_factory.mktemp("yaml")
    path = folder / "d.yaml"
    path.write_text(yaml.safe_dump(content))
    try:
        config = load_dataset_config(path)
    except DatasetError:
        return
    assert config["nc"] == len(config["names"]) >= 1 and all(isinstance(n, str) for n in config["names"])


@FAST
@given(st.binary(max_size=600))
def test_dataset_yaml_bytes_never_crash(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("raw") / "d.yaml"
    path.write_bytes(raw)
    try:
        load_dataset_config(path)
    except DatasetError:
        pass


class _Blob(bytes):
    def __repr__(self) -> str:  # hypothesis prints arguments of a failing case: keep it short
        return f"<{len(self)} checkpoint bytes>"


@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory):
    from models.yolo import DetectionModel
    from utils.checkpoints.files import model_payload
    from utils.checkpoints.format import FORMAT

    model = DetectionModel("yolov5n.yaml", nc=1)
    model.names = ["a"]
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "model": model_payload(model), "epoch": 0}, buffer)
    return _Blob(buffer.getvalue())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 10**9), st.integers(0, 255)), min_size=1, max_size=8))
def test_damaged_checkpoints_load_or_raise_checkpoint_error(tmp_path_factory, checkpoint_bytes, edits):
    from models.loading import model_from_payload

    data = bytearray(checkpoint_bytes)
    for position, value in edits:
        data[position % len(data)] = value
    path = tmp_path_factory.mktemp("ckpt") / "m.pt"
    path.write_bytes(bytes(data))
    try:
        ckpt = load_checkpoint(path)
        model_from_payload(ckpt["model"], str(path))
    except CheckpointError:
        pass


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(["nc", "depth_multiple", "width_multiple", "anchors", "backbone", "head", "ch", "names"]),
       yaml_values)
def test_mangled_checkpoint_payloads_build_or_raise_checkpoint_error(key, value):
    from models.loading import model_from_payload
    from models.yolo import DetectionModel
    from utils.checkpoints.files import model_payload

    payload = model_payload(_SMALL_MODEL)
    if key == "names":
        payload["names"] = value
    else:
        payload["config"] = {**payload["config"], key: value}
    try:
        model = model_from_payload(payload, "fuzzed.pt")
    except CheckpointError:
        return
    assert isinstance(model, DetectionModel) and len(model.names) == model.nc


def _small_model():
    from models.yolo import DetectionModel

    model = DetectionModel("yolov5n.yaml", nc=1)
    model.names = ["a"]
    return model


_SMALL_MODEL = _small_model()
