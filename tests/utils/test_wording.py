"""utils/wording.py: the installed package's words and the checkout's, from one helper."""

from utils.wording import INSTALLED, face_command, install_hint


def test_installed_and_checkout_wording():
    assert face_command("val", installed=True) == "yolov5-spd-val"
    assert face_command("val", installed=False) == "python val.py"
    assert install_hint("export", installed=True) == "pip install 'yolov5-spd[export]'"
    assert install_hint("openvino", installed=False) == "pip install '.[openvino]'"
    assert INSTALLED is False and face_command("train") == "python train.py"  # this test runs in a checkout
