"""Colour images: CIFAR-10's formats read safely, FitNets' regressor and hint loss, and a real tiny VGG → FitNet run.

No CIFAR-10 is on this machine or on CI, so the reader is tested on small
files written here in CIFAR's exact formats (pickled batches, the .tar.gz
Keras downloads, the binary version). The training tests use 600 generated
32×32 colour images of 3 classes that differ by their dominant colour.
"""
from __future__ import annotations

import io
import json
import os
import pickle
import tarfile

import numpy as np
import pytest

from kdcore import cli, losses, training
from kdcore.dataset import DatasetError
from kdcore.tasks import images


# --- CIFAR-10's files ----------------------------------------------------------------------------
def _cifar_batch(n: int, seed: int, protocol: int = 2) -> tuple[bytes, np.ndarray, np.ndarray]:
    """A batch as CIFAR-10 ships it: a pickled dict whose 'data' rows hold 1,024 R, then G, then B bytes."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, n)
    rows = x.transpose(0, 3, 1, 2).reshape(n, 3072)  # channel planes, each row-major
    batch = {b"batch_label": b"training batch", b"labels": [int(v) for v in y], b"data": rows,
             b"filenames": [f"img{i}.png".encode() for i in range(n)]}
    return pickle.dumps(batch, protocol=protocol), x, y


def _cifar_files(n: int = 3) -> dict[str, tuple[bytes, np.ndarray, np.ndarray]]:
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    return {name: _cifar_batch(n, seed) for seed, name in enumerate(names)}


@pytest.fixture
def cifar_home(tmp_path, monkeypatch):
    monkeypatch.setattr(images.data, "CIFAR_HOME", tmp_path)
    monkeypatch.setattr(images.data, "_CACHE", {})
    return tmp_path


def _expect(ds, files):
    train = [files[f"data_batch_{i}"] for i in range(1, 6)]
    pixels = np.concatenate([f[1] for f in train]).reshape(15, -1) / 255.0
    both = np.concatenate([ds.x_train, ds.x_valid]).reshape(15, -1)  # a tenth of train carved out to validate
    np.testing.assert_allclose(np.sort(both, axis=0), np.sort(pixels, axis=0), atol=1e-6)
    np.testing.assert_array_equal(np.sort(np.concatenate([ds.y_train, ds.y_valid])),
                                  np.sort(np.concatenate([f[2] for f in train])))
    assert len(ds.y_valid) == 2
    np.testing.assert_array_equal(ds.y_test, files["test_batch"][2])
    assert ds.x_test.shape == (3, 32, 32, 3) and ds.classes == images.CIFAR10_CLASSES


@pytest.mark.parametrize("protocol", [2, 4])
def test_a_cifar_batch_is_read_pixel_for_pixel(protocol):
    raw, x, y = _cifar_batch(4, seed=1, protocol=protocol)
    got_x, got_y = images.read_cifar_batch(raw)
    np.testing.assert_array_equal(got_x, x)
    np.testing.assert_array_equal(got_y, y)


def test_cifar10_from_its_folder_its_archive_and_its_binary_version(cifar_home):
    files = _cifar_files()
    folder = cifar_home / "cifar-10-batches-py"
    folder.mkdir()
    for name, (raw, _, _) in files.items():
        (folder / name).write_bytes(raw)
    _expect(images.load("cifar10"), files)
    assert images.default_dataset()[0] == "cifar10"

    for name in files:
        (folder / name).unlink()
    folder.rmdir()
    images.data._CACHE.clear()
    with tarfile.open(cifar_home / "cifar-10-python.tar.gz", "w:gz") as tar:
        for name, (raw, _, _) in files.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    _expect(images.load("cifar10"), files)

    (cifar_home / "cifar-10-python.tar.gz").unlink()
    images.data._CACHE.clear()
    binary = cifar_home / "cifar-10-batches-bin"
    binary.mkdir()
    for name, (_, x, y) in files.items():
        records = np.concatenate([y.astype(np.uint8)[:, None], x.transpose(0, 3, 1, 2).reshape(len(y), 3072)], 1)
        (binary / f"{name}.bin").write_bytes(records.tobytes())
    _expect(images.load("cifar10"), files)


class _Gadget:
    def __reduce__(self):
        return os.system, ("echo pwned",)


@pytest.mark.parametrize("payload", [{b"data": _Gadget()}, {b"data": np.array([object()], dtype=object)}],
                         ids=["os.system", "object-array"])
def test_a_pickle_naming_anything_but_plain_arrays_is_refused(payload):
    with pytest.raises(DatasetError, match="not a CIFAR-10 batch .*refusing"):
        images.read_cifar_batch(pickle.dumps(payload, protocol=2), "data_batch_1")


def test_missing_cifar10_says_in_one_line_where_to_put_it(cifar_home):
    with pytest.raises(DatasetError) as err:
        images.load("cifar10")
    assert str(err.value) == (f"cifar10 is not on this machine: put cifar-10-python.tar.gz (or its "
                              f"cifar-10-batches-py folder) in {cifar_home}")
    assert images.default_dataset()[0] == "fashion-mnist"


# --- a user's .npz --------------------------------------------------------------------------------
def _colour_blobs(n: int = 600, side: int = 32, seed: int = 0):
    """3 classes of noisy images, each brighter in one colour channel, plus a class-dependent stripe."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.uniform(0, 0.6, (n, side, side, 3))
    x[np.arange(n), :, :, y] += 0.4
    return (255 * x).astype(np.uint8), y


def _npz(path, **arrays):
    x, y = _colour_blobs()
    defaults = dict(x_train=x[:450], y_train=y[:450], x_test=x[450:], y_test=y[450:])
    np.savez(path, **{**defaults, **arrays})
    return str(path)


def test_an_npz_of_any_shape_with_class_names(tmp_path):
    ds = images.load(_npz(tmp_path / "blobs.npz", class_names=np.array(["red", "green", "blue"])))
    assert ds.x_train.shape == (405, 32, 32, 3) and ds.x_train.dtype == np.float32 and ds.x_train.max() <= 1
    assert ds.x_valid.shape == (45, 32, 32, 3)  # no valid split in the file: a tenth of train
    assert ds.classes == ("red", "green", "blue")
    grey = images.load(_npz(tmp_path / "grey.npz", x_train=np.zeros((4, 12, 20), np.uint8), y_train=[0, 1, 2, 3],
                            x_test=np.zeros((2, 12, 20), np.uint8), y_test=[1, 0]))
    assert grey.x_train.shape == (3, 12, 20, 1) and grey.classes == ("0", "1", "2", "3")


@pytest.mark.parametrize("arrays, message", [
    (dict(x_test=np.zeros((5, 28, 28, 1), np.uint8), y_test=np.zeros(5, int)),
     "x_train holds 32x32x3 images but x_test 28x28x1; every split needs the same shape"),
    (dict(y_test=np.full(150, 3), class_names=np.array(["r", "g", "b"])),
     r"y_test has labels 3 to 3, outside 0..2 \(3 classes named in class_names\)"),
    (dict(y_train=np.full(450, -1)), r"y_train has labels -1 to -1, outside 0..2"),
    (dict(x_train=np.zeros((450, 32, 32, 4), np.uint8)), r"C = 1 or 3 .*got shape \(450, 32, 32, 4\)"),
    (dict(y_train=np.zeros(7, int)), r"y_train must hold one whole number per image \(450\)"),
], ids=["shapes", "label-above-k", "negative-label", "four-channels", "label-count"])
def test_a_bad_npz_is_refused_in_one_line(tmp_path, arrays, message):
    with pytest.raises(DatasetError, match=message) as err:
        images.load(_npz(tmp_path / "bad.npz", **arrays))
    assert "\n" not in str(err.value)


# --- the networks and FitNets' pieces ---------------------------------------------------------------
def test_the_size_table_counts_what_keras_builds():
    cfg, student = images.TeacherConfig(width=0.125, augment=True), images.StudentConfig(filters=4, depth=2)
    vgg = images.build_teacher(cfg)
    for spec, net in ((images.teacher_layers(cfg), vgg),
                      (images.student_layers(student), images.build_student(student))):
        assert images.stats(spec)["params"] == net.count_params()
    assert [vgg.get_layer(f"block{b}").output.shape[1] for b in range(1, 6)] == [16, 8, 4, 2, 1]
    grey = images.build_teacher(cfg, (28, 28, 1), 10)  # 28 → 14 → 7 → 3 → 1, then no more pooling
    assert grey.get_layer("block5").output.shape[1:3] == (1, 1)


def test_a_guided_layer_deeper_than_the_student_is_refused():
    with pytest.raises(ValueError, match=r"student_guided must be <= student_blocks \(2\) \(got 3\)"):
        images.StudentConfig(blocks=2, guided=3).validate()


@pytest.mark.parametrize("guided, hint, kernel", [((8, 8, 16), (8, 8, 32), (1, 1)),
                                                  ((16, 16, 8), (8, 8, 32), (9, 9)),
                                                  ((16, 12, 8), (4, 4, 6), (13, 9))])
def test_the_regressor_maps_the_guided_layer_to_the_hint_shape(guided, hint, kernel):
    import keras

    layer = training.hint_regressor(guided, hint)
    out = layer(keras.Input(guided))
    assert tuple(out.shape[1:]) == hint and layer.kernel_size == kernel


def test_a_regressor_that_cannot_map_the_shapes_names_both():
    with pytest.raises(ValueError, match=r"guided layer block3 \(4x4x32\) to the teacher's hint layer block2 "
                                         r"\(8x8x64\): a convolution cannot enlarge"):
        training.hint_regressor((4, 4, 32), (8, 8, 64), "block3", "block2")
    with pytest.raises(ValueError, match="one is a feature map and the other a vector"):
        training.hint_regressor((4, 4, 32), (128,))


def test_hint_loss_against_numpy():
    rng = np.random.default_rng(0)
    hint, regressed = rng.normal(size=(5, 4, 4, 3)), rng.normal(size=(5, 4, 4, 3))
    assert float(losses.hint_loss(hint, regressed)) == pytest.approx(np.mean((hint - regressed) ** 2), rel=1e-5)
    assert float(losses.hint_loss(hint, hint)) == 0.0


# --- grey data for a colour model, and the reverse ------------------------------------------------------
@pytest.mark.parametrize("model_channels,data_channels", [(3, 1), (1, 3)])
def test_grey_and_colour_data_are_converted_for_the_model_with_a_note(model_channels, data_channels):
    import keras

    x, y = _colour_blobs(40, side=8)
    x = x / 255.0 if data_channels == 3 else (x / 255.0) @ images.LUMA[:, None]
    ds = images._make("blobs", x[:30], y[:30], x[30:], y[30:], "generated")
    model = keras.Sequential([keras.Input((8, 8, model_channels)), keras.layers.Flatten(), keras.layers.Dense(3)])
    seen, note = images.IMAGES.fit_data(model, ds)
    assert seen.x_train.shape == (27, 8, 8, model_channels) and seen.y_test is ds.y_test
    assert seen.x_valid.shape == (3, 8, 8, model_channels)
    if model_channels == 3:
        assert "grey" in note and "R, G and B" in note
        np.testing.assert_array_equal(seen.x_test[..., 0], seen.x_test[..., 2])
    else:
        assert "made grey" in note
        np.testing.assert_allclose(seen.x_test[..., 0], ds.x_test @ images.LUMA, atol=1e-6)
    assert 0.0 <= images.IMAGES.score(model, ds) <= 1.0  # scoring converts too, instead of refusing
    assert images.IMAGES.fit_data(model, seen) == (seen, "")  # nothing to do when the channels match

    other = keras.Sequential([keras.Input((6, 6, model_channels)), keras.layers.Flatten(), keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="takes 6x6"):  # another size is still refused: no conversion keeps it
        images.IMAGES.score(other, ds)


# --- a real run, through the command line ------------------------------------------------------------
def _run(argv, capsys):
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else None), err


@pytest.mark.slow
@pytest.mark.timeout(900)  # four Keras fits, each traced afresh: about 3 minutes alone, 5+ on a shared machine
def test_a_tiny_vgg_teaches_a_fitnet_student_through_the_cli(tmp_path, capsys):
    x_valid, y_valid = _colour_blobs(60, seed=1)  # a valid split of its own: the teacher keeps all 450 to train on
    data = _npz(tmp_path / "blobs.npz", class_names=np.array(["red", "green", "blue"]), x_valid=x_valid,
                y_valid=y_valid)
    teacher = str(tmp_path / "vgg.keras")
    code, out, err = _run(["train-teacher", "--task", "images", "--dataset", data, "--variant", "vgg11",
                           "--width", "0.125", "--epochs", "2", "--batch-size", "32", "--out", teacher, "--json"],
                          capsys)
    assert code == 0, err
    assert out["task"] == "images" and out["test_accuracy"] > 0.6  # chance is 1/3

    common = ["distill", "--task", "images", "--teacher", teacher, "--dataset", data, "--student-filters", "4",
              "--student-depth", "2", "--epochs", "2", "--batch-size", "32", "--json"]
    code, _, err = _run(common + ["--hint-epochs", "1", "--student-guided", "3", "--student-hint", "1"], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "the student's block3 (4x4x16) with the teacher's block1 (16x16x8)" in err

    code, out, err = _run(common + ["--hint-epochs", "1", "--baseline"], capsys)
    assert code == 0, err
    assert out["student_accuracy"] > 0.5 and out["baseline_accuracy"] is not None
    assert "hint epoch 1/1" in err  # the FitNets stage ran first, and said so

    # the same images made grey: the colour teacher still evaluates them, given as R = G = B
    x, y = _colour_blobs()
    grey = (x @ images.LUMA).astype(np.uint8)
    grey_data = _npz(tmp_path / "grey.npz", x_train=grey[:450], x_test=grey[450:])
    code, out, err = _run(["evaluate", "--task", "images", "--model", teacher, "--dataset", grey_data, "--json"],
                          capsys)
    assert code == 0, err
    assert out["test_size"] == 150 and 0 <= out["test_accuracy"] <= 1  # scored, not refused (grey loses the hue)


# --- a photo of one's own ------------------------------------------------------------------------
def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG")
    return buf.getvalue()


def test_a_photo_is_centre_cropped_resized_and_converted_with_a_note():
    wide = np.zeros((40, 80, 3), np.uint8)
    wide[:, 20:60] = (255, 0, 0)  # a red centre square between black side bands
    image, note = images.prepare_photo(_png(wide), (32, 32, 3))
    assert image.shape == (32, 32, 3) and note == ""
    assert image[..., 0].min() > 0.9  # the black side bands were cropped away (Lanczos rings a little)
    grey, note = images.prepare_photo(_png(wide), (28, 28, 1))
    assert grey.shape == (28, 28, 1) and "turned grey" in note
    assert grey[14, 14, 0] == pytest.approx(0.299, abs=0.01)
    _, note = images.prepare_photo(_png(np.full((20, 20), 90, np.uint8)), (32, 32, 3))
    assert "given as R, G and B" in note


@pytest.mark.slow
def test_the_upload_screen_shows_the_photo_as_the_models_see_it(tmp_path):
    from streamlit.testing.v1 import AppTest

    from kdcore import storage
    from tests.conftest import ROOT

    data = _npz(tmp_path / "blobs.npz", class_names=np.array(["red", "green", "blue"]))
    teacher = images.build_teacher(images.TeacherConfig(width=0.0625), (32, 32, 3), 3)  # untrained: the screen
    student = images.build_student(images.StudentConfig(filters=2, depth=1), 0, (32, 32, 3), 3)  # is under test
    for kind, net in (("teacher", teacher), ("student", student)):
        storage.save_model(net, storage.model_path(kind), {"kind": kind, "task": "images", "dataset": "blobs"})
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["task"], at.session_state["dataset"] = "images", data
    at.switch_page("pages/upload.py").run()
    assert not at.exception and "Upload a photo" in at.info[0].value
    photo = np.zeros((50, 70, 3), np.uint8)
    photo[..., 2] = 200
    at.file_uploader(key="upload.photo").upload("sky.png", _png(photo), "image/png").run()
    assert not at.exception and not at.error
    assert at.image[0].captions[0] == "As the models see it: 32×32×3"
    assert len(at.get("plotly_chart")) == 2  # T = 1 and the slider's T
    at.file_uploader(key="upload.photo").upload("grey.png", _png(np.full((9, 9), 99, np.uint8)), "image/png").run()
    assert any("given as R, G and B" in c.value for c in at.caption)
    # The uploaded photo is offered on the Temperature screen, which, like Predictions, serves colour images too.
    at.switch_page("pages/temperature.py").run()
    assert not at.exception, [e.value for e in at.exception]
    at.radio(key="temperature_source").set_value("The last drawn image").run()
    assert at.image[0].captions[0] == "Your image (grey.png)"
    assert "all 3 classes equally likely" in at.metric[0].help
    at.switch_page("pages/predictions.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.radio(key="predictions_show").options[0] == "All images"
    assert at.image[0].captions[0].startswith("#0 · label ")
    # Experiments offers the images presets (no run here: the CLI test above trains for real).
    at.switch_page("pages/experiments.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="experiments.preset").options == ["images-demo", "images-kd", "images-fitnets"]
    assert "fashion-mnist-3k" in at.markdown[0].value or any("fashion-mnist-3k" in m.value for m in at.markdown)


def test_cli_predict_takes_a_photo_as_the_images_task_sees_it(tmp_path, capsys):
    from kdcore import storage

    net = images.build_student(images.StudentConfig(filters=2, depth=1), 0, (32, 32, 3), 3)
    path = storage.save_model(net, tmp_path / "s.keras", {"kind": "student", "task": "images"})
    photo = tmp_path / "photo.png"
    photo.write_bytes(_png(np.full((40, 60, 3), 120, np.uint8)))  # not 32×32: cropped and resized first
    code, out, err = _run(["predict", "--task", "images", "--model", str(path), "--image", str(photo), "--json"],
                          capsys)
    assert code == 0, err
    [p] = out["predictions"]
    assert len(p["probabilities"]) == 3 and abs(sum(p["probabilities"]) - 1) < 1e-6 and p["label"] in (0, 1, 2)
