"""One table of options: each face's flags are its job's options object, with the same defaults, so a Python
call and the command line mean the same run."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("face, options, required, python_only", [
    ("val", "utils.detection.validation:ValidationOptions", [], set()),
    ("detect", "utils.detection.prediction:PredictionOptions", [], {"stream"}),
    ("export", "utils.deploy.exporters:ExportOptions", ["--weights", "m.pt"], set()),
    ("classify.val", "utils.classification.validation:ClassifierValidationOptions", ["--weights", "m.pt"], set()),
])
def test_a_faces_flags_are_its_options_with_the_same_defaults(face, options, required, python_only):
    module_name, _, class_name = options.partition(":")
    options_class = getattr(importlib.import_module(module_name), class_name)
    parsed = vars(importlib.import_module(face).parse_args(required))
    assert set(parsed) | python_only == set(options_class.names())
    given = {k: parsed[k] for k in ("weights",) if required}
    assert options_class.from_dict(parsed) == options_class.from_dict(given)


def test_an_unknown_option_from_python_names_the_nearest():
    import val

    with pytest.raises(ValueError, match="unknown option 'conf_thresh' \\(did you mean 'conf_thres'\\?\\)"):
        val.run(weights="m.pt", conf_thresh=0.1)
