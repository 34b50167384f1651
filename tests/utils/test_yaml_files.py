import pytest

from utils.yaml_files import YamlError, load_yaml_mapping, load_yaml_text


@pytest.mark.parametrize("text", ["[" * 100_000, "a: " + "{b: " * 5000 + "1" + "}" * 5000])
def test_deep_nesting_is_one_line_not_a_recursion_error(text):
    with pytest.raises(YamlError, match=r"x.yaml: not usable YAML \(nested too deeply\)"):
        load_yaml_text(text, "x.yaml")


def test_aliases_and_non_mappings_are_refused(tmp_path):
    with pytest.raises(YamlError, match="aliases"):
        load_yaml_text("a: &x [1]\nb: *x\n", "y.yaml")
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n")
    with pytest.raises(YamlError, match="list.yaml: expected a mapping"):
        load_yaml_mapping(path)
