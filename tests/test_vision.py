"""ptcourse.vision: the ResNet, the stand-in and its cache, both data paths, transforms, checks, speed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torch import nn
from torch.utils.data import TensorDataset
from torchvision.models import ResNet18_Weights, resnet18
from torchvision.transforms._presets import ImageClassification

from ptcourse import fit, seed_everything
from ptcourse.finetune import freeze, unfreeze
from ptcourse.vision import (
    LETTERS,
    PETS_IN_IMAGENET,
    CourseResNet,
    ImageSplit,
    StandinConfig,
    bn_running_stats,
    check_images,
    check_labels,
    course_standin,
    digit_images,
    imagenet_resnet,
    input_images_per_second,
    load_transfer,
    make_loader,
    model_images_per_second,
    new_head,
    predict,
    rendered_letters,
    train_transforms,
)

TINY = StandinConfig(width=4, letters_per_class=3, epochs=1, batch_size=32)


@pytest.fixture(scope="module")
def shared_checkpoints(tmp_path_factory):
    return tmp_path_factory.mktemp("ckpt")


@pytest.fixture(autouse=True)
def caches(monkeypatch, tmp_path, shared_checkpoints):
    monkeypatch.setenv("PTCOURSE_CHECKPOINTS", str(shared_checkpoints))  # the tiny stand-in is pretrained once
    monkeypatch.setenv("PTCOURSE_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("PTCOURSE_DEVICE", "cpu")


# ----------------------------------------------------------------- the network
def test_course_resnet_at_width_64_is_resnet18():
    ours, theirs = CourseResNet(width=64), resnet18()
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(ours.eval()(x), theirs.eval()(x))


def test_course_resnet_width_and_classes():
    model = CourseResNet(width=8, num_classes=41)
    assert model.layer4[0].conv1.out_channels == 64 and model.fc.out_features == 41
    assert model(torch.randn(3, 3, 32, 32)).shape == (3, 41)
    assert CourseResNet(width=np.int64(4)).conv1.out_channels == 4
    for bad in (0, -1, 2.5, True, "8"):
        with pytest.raises((ValueError, TypeError), match="width must be"):
            CourseResNet(width=bad)


# ----------------------------------------------------------------- the source task
def test_rendered_letters_look_like_the_digits_and_are_reproducible():
    a, b, c = rendered_letters(4, seed=0), rendered_letters(4, seed=0), rendered_letters(4, seed=1)
    x, y = a.tensors
    assert x.shape == (4 * len(LETTERS), 3, 8, 8) and x.dtype == torch.uint8
    assert torch.equal(torch.bincount(y), torch.full((len(LETTERS),), 4))
    assert torch.equal(x, b.tensors[0]) and not torch.equal(x, c.tensors[0])
    levels = torch.unique(x).float() * 16 / 255  # counts of black pixels in 4x4 blocks: 0..16
    torch.testing.assert_close(levels, levels.round(), atol=0.032, rtol=0)  # uint8 rounding: 0.5 * 16 / 255
    assert len(levels) <= 17
    assert torch.equal(x[:, 0], x[:, 1]) and 0.15 < x.float().mean() / 255 < 0.45
    for bad in (0, -3, 1.5):
        with pytest.raises((ValueError, TypeError), match="n_per_class must be"):
            rendered_letters(bad)


def test_digit_images():
    x = torch.rand(5, 1, 8, 8)
    out = digit_images(x)
    assert out.shape == (5, 3, 8, 8) and out.dtype == torch.uint8
    torch.testing.assert_close(out[:, 1].float() / 255, x[:, 0], atol=1 / 255, rtol=0)
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        digit_images(torch.rand(5, 8, 8))


# ----------------------------------------------------------------- the stand-in and its cache
def test_the_stand_in_is_pretrained_once_then_loaded(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("PTCOURSE_CHECKPOINTS", str(tmp_path / "ckpt"))
    first = course_standin(TINY)
    out = capsys.readouterr().out
    assert "pretraining the course's stand-in" in out and "stands in for ImageNet weights" in out
    assert (tmp_path / "ckpt" / TINY.file_name()).exists()
    second = course_standin(TINY)
    out = capsys.readouterr().out
    assert "pretraining" not in out and "stands in for ImageNet weights" in out
    for (name, p), q in zip(first.model.state_dict().items(), second.model.state_dict().values()):
        assert torch.equal(p, q), name
    assert first.categories == list(LETTERS) and first.preprocess.crop_size == [TINY.image_size]
    assert len(first.source_eval) == 20 * len(LETTERS)
    mean = first.preprocess.mean[0]
    assert first.preprocess.mean == [mean] * 3 and 0.1 < mean < 0.5


def test_a_damaged_stand_in_is_rebuilt(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("PTCOURSE_CHECKPOINTS", str(tmp_path / "ckpt"))
    path = tmp_path / "ckpt" / TINY.file_name()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    pretrained = course_standin(TINY)
    assert "could not be read" in capsys.readouterr().out
    assert isinstance(pretrained.model, CourseResNet) and path.stat().st_size > 1000


def test_a_different_config_is_a_different_file():
    assert TINY.file_name() != StandinConfig(width=4, letters_per_class=3, epochs=2).file_name()
    with pytest.raises(TypeError, match="StandinConfig"):
        course_standin({"width": 4})


# ----------------------------------------------------------------- the offline path
def test_offline_transfer_is_the_stand_in_and_the_digits(capsys, monkeypatch):
    monkeypatch.setenv("PTCOURSE_OFFLINE", "1")
    pretrained, task = load_transfer(online=True, config=TINY, val_per_class=np.int64(20))
    out = capsys.readouterr().out
    assert "offline path" in out and isinstance(pretrained.model, CourseResNet)
    assert task.name == "digits" and task.classes == [str(c) for c in range(10)]
    assert task.augmentation == "handwriting"
    assert torch.equal(torch.bincount(task.val.labels), torch.full((10,), 20))
    assert len(task.train) + len(task.val) == 1437 and len(task.test) == 360
    assert set(task.train.indices.tolist()).isdisjoint(task.val.indices.tolist())
    image, label = task.train[0]
    assert image.shape == (3, 8, 8) and image.dtype == torch.uint8 and isinstance(label, int)
    with pytest.raises(ValueError, match="val_per_class"):
        load_transfer(online=False, config=TINY, val_per_class=0)


def test_imagenet_weights_offline_are_none_with_one_line(capsys, monkeypatch):
    monkeypatch.setenv("PTCOURSE_OFFLINE", "1")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: "/nonexistent-hub-dir")
    assert imagenet_resnet("resnet18") is None
    out = capsys.readouterr().out
    assert out.startswith("[ptcourse]") and out.count("\n") == 1 and "not cached" in out
    with pytest.raises(ValueError, match="arch"):
        imagenet_resnet("vgg16")


def test_pet_breeds_are_imagenet_categories():
    categories = ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
    assert set(PETS_IN_IMAGENET.values()) <= set(categories) and len(PETS_IN_IMAGENET) == 23


# ----------------------------------------------------------------- the online path, on a fake Oxford-IIIT Pet
def _fake_pets(root, per_class=(30, 3)):
    """A tiny dataset in Oxford-IIIT Pet's layout: images/<breed>_<n>.jpg and annotations/<split>.txt."""
    base = root / "oxford-iiit-pet"
    (base / "images").mkdir(parents=True)
    (base / "annotations").mkdir()
    breeds = ["Abyssinian", "beagle", "pug"]  # file names: cats capitalised, dogs not (as in the real data)
    rng = np.random.default_rng(0)
    for split, n in zip(("trainval", "test"), per_class):
        lines = []
        for label, breed in enumerate(breeds, start=1):
            for i in range(n):
                image_id = f"{breed}_{split}{i}"
                Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(base / "images" / f"{image_id}.jpg")
                lines.append(f"{image_id} {label} {1 if breed[0].isupper() else 2} {label}")
        (base / "annotations" / f"{split}.txt").write_text("\n".join(lines) + "\n")


def test_online_path_with_pets_and_imagenet_weights(monkeypatch, tmp_path):
    _fake_pets(tmp_path / "data")
    state = resnet18().state_dict()
    monkeypatch.setattr("ptcourse.vision.torchvision_weights", lambda weights: state)
    pretrained, task = load_transfer("resnet18", online=True, val_per_class=10)
    assert task.name == "Oxford-IIIT Pet" and task.classes == ["Abyssinian", "Beagle", "Pug"]
    assert task.augmentation == "photos"
    assert len(task.train) == 60 and len(task.val) == 30 and len(task.test) == 9
    assert pretrained.preprocess.crop_size == [224] and pretrained.preprocess.resize_size == [256]
    assert len(pretrained.categories) == 1000
    torch.testing.assert_close(pretrained.model.state_dict()["fc.weight"], state["fc.weight"])
    source = pretrained.source_eval  # validation images of the breeds ImageNet has: beagle and pug
    names = {pretrained.categories[y] for y in source.labels.tolist()}
    assert len(source) == 20 and names == {"beagle", "pug"}
    image, label = source.with_transform(pretrained.preprocess)[0]
    assert image.shape == (3, 224, 224) and pretrained.categories[label] in names
    augment = train_transforms(pretrained.preprocess, task.augmentation)
    assert augment(task.train[0][0]).shape == (3, 224, 224)


def test_online_without_pets_falls_back(capsys, monkeypatch):
    monkeypatch.setenv("PTCOURSE_OFFLINE", "1")
    pretrained, task = load_transfer("resnet18", online=True, config=TINY)
    out = capsys.readouterr().out
    assert "Oxford-IIIT Pet is not cached" in out and task.name == "digits"


# ----------------------------------------------------------------- splits, transforms, loaders
def test_image_split_views():
    ds = TensorDataset(torch.arange(10).reshape(10, 1, 1, 1).expand(10, 3, 2, 2), torch.arange(10) % 3)
    split = ImageSplit(ds, classes=["a", "b", "c"])
    assert len(split) == 10 and split.labels.tolist() == [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]
    few = split.subset([1, 4]).with_transform(lambda img: img.float() * 2)
    assert len(few) == 2 and few.labels.tolist() == [1, 1] and few.classes == ["a", "b", "c"]
    image, label = few[1]
    assert image.dtype == torch.float32 and image[0, 0, 0] == 8 and label == 1
    assert split[1][0].dtype == torch.int64  # the original is unchanged
    with pytest.raises(ValueError, match="labels for"):
        ImageSplit(ds, indices=[0, 1], labels=torch.tensor([0]))


def test_train_transforms_end_in_the_weights_normalisation():
    preprocess = ResNet18_Weights.IMAGENET1K_V1.transforms()
    torch.manual_seed(0)
    image = torch.randint(0, 256, (3, 300, 400), dtype=torch.uint8)
    flat = torch.full((3, 300, 400), 128, dtype=torch.uint8)  # a flat image: normalised exactly like preprocess
    for style in ("photos", "handwriting"):
        augment = train_transforms(preprocess, style)
        out = augment(image)
        assert out.shape == (3, 224, 224) and out.dtype == torch.float32
        if style == "photos":
            torch.testing.assert_close(augment(flat), preprocess(flat))
        names = [type(t).__name__ for t in augment.transforms]
        assert names[0] == "ToImage" and names[-2:] == ["ToDtype", "Normalize"]
        assert ("RandomHorizontalFlip" in names) == (style == "photos")
    pil = Image.fromarray(image.permute(1, 2, 0).numpy())
    assert train_transforms(preprocess)(pil).shape == (3, 224, 224)
    digit = torch.zeros(3, 8, 8, dtype=torch.uint8)
    digit[:, 2:6, 3:5] = 255
    small = ImageClassification(crop_size=32, resize_size=32, mean=(0.3,) * 3, std=(0.36,) * 3)
    assert train_transforms(small, "handwriting")(digit).shape == (3, 32, 32)
    with pytest.raises(ValueError, match="style"):
        train_transforms(preprocess, "cartoons")
    with pytest.raises(TypeError, match="weights.transforms"):
        train_transforms(torchvision.transforms.v2.Normalize([0.5], [0.5]))


def test_make_loader_repeats_small_sets_to_the_epoch_size():
    ds = TensorDataset(torch.randn(10, 3, 8, 8), torch.arange(10))
    loader = make_loader(ds, 4, shuffle=True, epoch_size=np.int64(24), device="cpu")
    seen = torch.cat([y for _, y in loader])
    assert len(seen) == 24 and torch.equal(torch.bincount(seen[:20], minlength=10), torch.full((10,), 2))
    assert len(torch.cat([y for _, y in make_loader(ds, 4, device="cpu")])) == 10
    for bad in (dict(batch_size=0), dict(batch_size=4, epoch_size=0, shuffle=True)):
        with pytest.raises(ValueError, match="must be >= 1"):
            make_loader(ds, **bad)
    with pytest.raises(ValueError, match="empty"):
        make_loader(TensorDataset(torch.zeros(0, 3), torch.zeros(0)), 4)


# ----------------------------------------------------------------- the new head and bad input
def test_new_head_replaces_only_the_head():
    model = CourseResNet(width=4, num_classes=41)
    before = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("fc.")}
    new_head(model, np.int64(10))
    assert model.fc.out_features == 10 and model.fc.in_features == 32
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("bad, error, match", [
    (1, ValueError, ">= 2"), (0, ValueError, ">= 2"), (2.0, ValueError, "int"), (True, ValueError, "int"),
    ("10", ValueError, "int"),
])
def test_new_head_bad_class_counts(bad, error, match):
    with pytest.raises(error, match=match):
        new_head(CourseResNet(width=4), bad)


def test_new_head_needs_a_linear_fc():
    with pytest.raises(TypeError, match="model.fc"):
        new_head(nn.Sequential(nn.Linear(3, 3)), 5)


MODEL = CourseResNet(width=4, num_classes=5)


@pytest.mark.parametrize("images, error, match", [
    ([[0.0]], TypeError, "torch.Tensor"),
    (np.zeros((2, 3, 8, 8), np.float32), TypeError, "torch.Tensor"),
    (torch.randn(3, 32, 32), ValueError, "unsqueeze"),
    (torch.randn(2, 32, 32, 3), ValueError, "permute"),
    (torch.randn(2, 1, 32, 32), ValueError, "Grayscale"),
    (torch.randn(2, 4, 32, 32), ValueError, "3-channel"),
    (torch.randn(2, 3, 32), ValueError, "shape"),
    (torch.zeros(0, 3, 32, 32), ValueError, "empty"),
    (torch.randint(0, 255, (2, 3, 32, 32), dtype=torch.uint8), TypeError, "weights.transforms"),
    (torch.full((2, 3, 32, 32), float("nan")), ValueError, "NaN"),
    (torch.full((2, 3, 32, 32), float("inf")), ValueError, "infinite"),
])
def test_check_images_says_what_is_wrong(images, error, match):
    with pytest.raises(error, match=match):
        check_images(images, MODEL)


def test_check_images_passes_a_good_batch_and_uses_the_model_channels():
    x = torch.randn(2, 3, 32, 32)
    assert check_images(x, MODEL) is x
    grey_model = nn.Module()
    grey_model.conv1 = nn.Conv2d(1, 4, 3)
    check_images(torch.randn(2, 1, 8, 8), grey_model)


@pytest.mark.parametrize("labels, error, match", [
    (torch.tensor([0, 5]), ValueError, "new_head"),
    (np.array([0, 37]), ValueError, "5 outputs"),
    (torch.tensor([-1, 2]), ValueError, "range over -1"),
    (torch.tensor([0.0, 1.0]), TypeError, "integer"),
    (torch.tensor([], dtype=torch.long), ValueError, "empty"),
])
def test_check_labels_catches_a_class_count_mismatch(labels, error, match):
    with pytest.raises(error, match=match):
        check_labels(labels, MODEL)


def test_check_labels_accepts_labels_within_the_head():
    assert check_labels(np.array([0, 4, 2]), MODEL).tolist() == [0, 4, 2]
    with pytest.raises(TypeError, match="model.fc"):
        check_labels([0, 1], nn.Linear(3, 3))


# ----------------------------------------------------------------- frozen backbone, BatchNorm statistics
def _feature_extractor():
    seed_everything(0)
    model = new_head(CourseResNet(width=4, num_classes=41), 3)
    freeze(model)
    unfreeze(model, "fc")
    return model


def test_a_frozen_backbone_in_train_mode_still_moves_its_batchnorm_statistics():
    model = _feature_extractor()
    before = bn_running_stats(model)
    with torch.no_grad():
        model.train()(torch.randn(8, 3, 32, 32) * 3 + 1)  # no gradient, no optimizer: the statistics still move
    after = bn_running_stats(model)
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_fit_keeps_a_frozen_backbone_and_its_statistics_fixed():
    model = _feature_extractor()
    before, fc_before = bn_running_stats(model), model.fc.weight.detach().clone()
    data = TensorDataset(torch.randn(32, 3, 32, 32) * 3 + 1, torch.arange(32) % 3)
    fit(model, make_loader(data, 8, shuffle=True, device="cpu"), epochs=2, lr=1e-2,
        loss_fn=nn.CrossEntropyLoss(), progress=False, device="cpu")
    after = bn_running_stats(model)
    assert before.keys() == after.keys() and len(before) == 2 * 20  # 20 BatchNorm layers, 2 statistics each
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not torch.equal(fc_before, model.fc.weight)


# ----------------------------------------------------------------- predictions and speed
def test_predict_and_speed_helpers():
    model = CourseResNet(width=4, num_classes=3)
    data = TensorDataset(torch.randn(10, 3, 16, 16), torch.arange(10) % 3)
    pred, true = predict(model, make_loader(data, 4, device="cpu"))
    assert pred.shape == (10,) and torch.equal(true, torch.arange(10) % 3) and model.training
    with pytest.raises(ValueError, match="3-channel"):
        predict(model, [(torch.randn(2, 1, 16, 16), torch.tensor([0, 1]))])
    assert input_images_per_second(make_loader(data, 2, device="cpu"), batches=3) > 0
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for train in (True, False):
        assert model_images_per_second(model, torch.randn(4, 3, 16, 16), train=train, steps=2, device="cpu") > 0
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # the caller's model is untouched
    with pytest.raises(ValueError, match="fewer than two batches"):
        input_images_per_second(make_loader(data, 10, device="cpu"))
