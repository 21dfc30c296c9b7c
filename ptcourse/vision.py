"""Fine-tuning a torchvision ResNet (chapter 08): weights, preprocessing, data and speed.

One code path, two sources of pretrained weights:

- **online** (the ``full`` profile, on a GPU): torchvision's ImageNet weights for ResNet-18 or
  ResNet-50, loaded through :func:`ptcourse.hub.torchvision_weights`, transferred to the 37 pet
  breeds of Oxford-IIIT Pet;
- **offline** (always possible, and what the tests run): the same torchvision ``ResNet`` class,
  pretrained by the course on a *source task* of 41 rendered letters (:func:`rendered_letters`,
  drawn with the fonts that ship with matplotlib) and transferred to a *target task* with new
  classes: scikit-learn's real handwritten digits. The stand-in is cached in
  :func:`ptcourse.paths.checkpoint_dir` and reproduced by the same code when it is missing.

Usage::

    from ptcourse.vision import load_transfer, new_head
    pretrained, task = load_transfer("resnet18", online=False)  # the stand-in and the digits
    model = new_head(pretrained.model, len(task.classes))
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import numbers
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler, TensorDataset
from torchvision.models.resnet import BasicBlock, ResNet
from torchvision.transforms import v2
from torchvision.transforms._presets import ImageClassification  # the class behind weights.transforms()

from ptcourse._checks import positive_int
from ptcourse.hub import notice, reachable, torchvision_weights
from ptcourse.paths import checkpoint_dir, data_dir

__all__ = [
    "LETTERS", "PETS_IN_IMAGENET", "CourseResNet", "Pretrained", "StandinConfig", "TransferTask", "ImageSplit", "ImageFiles",
    "rendered_letters", "digit_images", "imagenet_resnet", "course_standin",
    "pretrain_standin", "load_transfer", "AUGMENTATION_STYLES", "train_transforms", "new_head", "check_images", "check_labels",
    "make_loader", "predict", "bn_running_stats", "input_images_per_second", "model_images_per_second",
]

PETS_URL = "https://www.robots.ox.ac.uk"
# 41 classes: the capitals, and the lower-case letters that do not look like their capital once
# scaled to the same height (c, k, o, p, s, u, v, w, x, z are left out, and l, which looks like I).
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabdefghijmnqrty"
_FONTS = [f"DejaVu{family}{style}.ttf" for family in ("Sans", "Serif", "SansMono")
          for style in ("", "-Bold", "-Oblique" if family != "Serif" else "-Italic",
                        "-BoldOblique" if family != "Serif" else "-BoldItalic")]
_FONTS += ["STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf", "STIXGeneralBolIta.ttf",
           "cmr10.ttf", "cmb10.ttf", "cmss10.ttf", "cmti10.ttf", "cmtt10.ttf", "cmmi10.ttf"]
# Oxford-IIIT Pet breeds that are also ImageNet-1k classes (name in weights.meta["categories"]).
PETS_IN_IMAGENET = {
    "Basset Hound": "basset", "Beagle": "beagle", "Boxer": "boxer", "Chihuahua": "Chihuahua",
    "English Cocker Spaniel": "cocker spaniel", "English Setter": "English setter",
    "German Shorthaired": "German short-haired pointer", "Great Pyrenees": "Great Pyrenees",
    "Japanese Chin": "Japanese spaniel", "Keeshond": "keeshond", "Leonberger": "Leonberg",
    "Miniature Pinscher": "miniature pinscher", "Newfoundland": "Newfoundland", "Pomeranian": "Pomeranian",
    "Pug": "pug", "Saint Bernard": "Saint Bernard", "Samoyed": "Samoyed", "Scottish Terrier": "Scotch terrier",
    "Staffordshire Bull Terrier": "Staffordshire bullterrier", "Wheaten Terrier": "soft-coated wheaten terrier",
    "Yorkshire Terrier": "Yorkshire terrier", "Persian": "Persian cat", "Siamese": "Siamese cat",
}


# --------------------------------------------------------------------------- the network
class CourseResNet(ResNet):
    """torchvision's ``ResNet`` with basic blocks at a chosen width (chapter 08).

    The module names (``conv1``, ``bn1``, ``layer1`` ... ``layer4``, ``fc``) and the forward
    pass are torchvision's own; only the channel counts are ``width`` times 1, 2, 4 and 8
    instead of 64, 128, 256 and 512. ``CourseResNet(width=64)`` *is* ResNet-18: same parameter
    names and shapes as ``torchvision.models.resnet18()``.

    Usage: ``model = CourseResNet(width=16, num_classes=41)``
    """

    def __init__(self, width: int = 64, num_classes: int = 1000, layers: Sequence[int] = (2, 2, 2, 2)) -> None:
        nn.Module.__init__(self)  # ResNet.__init__ fixes the widths; build the same modules ourselves
        width, num_classes = positive_int(width, "width"), positive_int(num_classes, "num_classes")
        self._norm_layer, self.dilation, self.groups, self.base_width = nn.BatchNorm2d, 1, 1, 64
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(BasicBlock, width, layers[0])
        self.layer2 = self._make_layer(BasicBlock, 2 * width, layers[1], stride=2)
        self.layer3 = self._make_layer(BasicBlock, 4 * width, layers[2], stride=2)
        self.layer4 = self._make_layer(BasicBlock, 8 * width, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(8 * width, num_classes)
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")



@dataclass
class Pretrained:
    """A pretrained network and what belongs with its weights (chapter 08).

    ``model`` still has its source-task head (``model.fc``); ``preprocess`` is the transform
    the weights expect (``weights.transforms()``); ``categories`` names the source classes
    (``weights.meta["categories"]``); ``name`` says where the weights come from.

    Usage: ``x = pretrained.preprocess(image); print(pretrained.categories[pretrained.model(x[None]).argmax()])``
    """

    model: nn.Module
    preprocess: ImageClassification
    categories: list[str]
    name: str
    source_eval: Dataset | None = None  # held-out images of source classes, for checking preprocessing


# --------------------------------------------------------------------------- the source task
@functools.lru_cache(maxsize=2)
def _letter_templates(size: int = 32) -> torch.Tensor:
    """Every letter in every font, black on white, scaled so its longer side is ``size`` pixels."""
    import matplotlib
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    out = torch.zeros(len(_FONTS), len(LETTERS), size, size)
    for i, name in enumerate(_FONTS):
        font = ImageFont.truetype(str(folder / name), 64)
        for j, letter in enumerate(LETTERS):
            canvas = Image.new("L", (128, 128))
            ImageDraw.Draw(canvas).text((64, 64), letter, fill=255, font=font, anchor="mm")
            glyph = canvas.crop(canvas.getbbox())
            scale = size / max(glyph.size)
            w, h = max(1, round(glyph.width * scale)), max(1, round(glyph.height * scale))
            glyph = torch.from_numpy(np.asarray(glyph.resize((w, h), Image.BILINEAR), dtype=np.float32) / 255)
            top, left = (size - h) // 2, (size - w) // 2
            out[i, j, top:top + h, left:left + w] = glyph
    return out


def rendered_letters(n_per_class: int, seed: int = 0) -> TensorDataset:
    """Images of 41 letters in 22 fonts, randomly slanted, squeezed and thickened (chapter 08).

    Made like scikit-learn's digits: a 32x32 black-and-white bitmap is cut into 4x4 blocks and
    the ink pixels of each block are counted, giving an 8x8 image with 17 grey levels. Items
    are ``(image, label)`` with ``image`` a uint8 tensor (3, 8, 8), the same format as
    :func:`digit_images`. The same seed gives the same images.

    Usage: ``source = rendered_letters(100, seed=0); image, label = source[0]``
    """
    n = positive_int(n_per_class, "n_per_class")
    gen = torch.Generator().manual_seed(int(seed))
    templates = _letter_templates(32)
    labels = torch.arange(len(LETTERS)).repeat_interleave(n)
    fonts = torch.randint(len(_FONTS), (len(labels),), generator=gen)
    x = templates[fonts, labels].unsqueeze(1)

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(len(labels), generator=gen)

    angle, shear = uniform(-0.25, 0.25), uniform(-0.3, 0.3)   # radians; shear as a slope
    sx, sy = uniform(1.0, 1.6), uniform(1.0, 1.25)             # > 1 shrinks: thinner, smaller letters
    tx, ty = uniform(-0.1, 0.1), uniform(-0.05, 0.05)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([torch.stack([sx * cos, sx * (shear * cos - sin), tx], 1),
                         torch.stack([sy * sin, sy * (shear * sin + cos), ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")
    thick = torch.rand(len(labels), generator=gen) < 0.5
    x = torch.where(thick[:, None, None, None], F.max_pool2d(x, 3, stride=1, padding=1), x)
    counts = (x > 0.5).float().reshape(-1, 1, 8, 4, 8, 4).sum(dim=(3, 5))  # ink pixels per 4x4 block: 0..16
    images = (counts * (255 / 16)).round().to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
    return TensorDataset(images, labels)


def digit_images(x: torch.Tensor) -> torch.Tensor:
    """Grey images in [0, 1], shape (N, 1, H, W), as uint8 RGB tensors (N, 3, H, W) (chapter 08).

    Usage: ``images = digit_images(load_digits()[0].x)``
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"expected a tensor of shape (N, 1, H, W), got {getattr(x, 'shape', type(x).__name__)}")
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).expand(-1, 3, -1, -1).contiguous()


# --------------------------------------------------------------------------- the course's stand-in
_STANDIN_VERSION = 2  # bump when pretrain_standin changes, so that old checkpoints are not reused


@dataclass(frozen=True)
class StandinConfig:
    """How the course's stand-in for ImageNet weights is pretrained on the rendered letters (chapter 08).

    Usage: ``config = StandinConfig(width=16, letters_per_class=100, epochs=4)``
    """

    width: int = 16             # channels of the first stage (64 would be ResNet-18 itself)
    image_size: int = 32        # the 8x8 images are resized to this (the ResNet stem divides by 4)
    letters_per_class: int = 300
    epochs: int = 8
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.05
    seed: int = 0

    def file_name(self) -> str:
        """The checkpoint's name: the settings' hash, and a version bumped when the recipe changes."""
        digest = hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:10]
        return f"ch08_standin_letters_v{_STANDIN_VERSION}_w{self.width}_{digest}.pt"


def _standin_preprocess(size: int, mean: float, std: float) -> ImageClassification:
    return ImageClassification(crop_size=size, resize_size=size, mean=(mean,) * 3, std=(std,) * 3)


def pretrain_standin(config: StandinConfig, device: Any = None) -> dict[str, Any]:
    """Pretrain a :class:`CourseResNet` on the rendered letters; return its checkpoint dict (chapter 08).

    Plain supervised training with ``fit`` (AdamW with a one-cycle schedule, weight decay on
    weights only, random slants and shifts from :func:`train_transforms`),
    the normalisation statistics measured on its own training images, and a held-out set of
    letters (other seed) for the accuracy it reaches and for chapter 08's preprocessing check.

    Usage: ``ckpt = pretrain_standin(StandinConfig(epochs=2))``
    """
    from ptcourse.finetune import param_groups
    from ptcourse.repro import seed_everything
    from ptcourse.training import accuracy, fit

    seed_everything(config.seed)
    train = rendered_letters(config.letters_per_class, seed=config.seed)
    held_out = rendered_letters(20, seed=config.seed + 10_000)
    pixels = train.tensors[0][:, 0].float() / 255
    mean, std = pixels.mean().item(), pixels.std().item()
    preprocess = _standin_preprocess(config.image_size, mean, std)
    model = CourseResNet(config.width, num_classes=len(LETTERS))
    train_loader = make_loader(ImageSplit(train, transform=train_transforms(preprocess, "handwriting")),
                               config.batch_size, shuffle=True)
    val_loader = make_loader(ImageSplit(held_out, transform=preprocess), 256)
    optimizer = torch.optim.AdamW(param_groups(model, default_lr=config.lr, weight_decay=config.weight_decay))
    steps = config.epochs * len(train_loader)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=steps)
    start = time.perf_counter()
    history = fit(model, train_loader, epochs=config.epochs, optimizer=optimizer, scheduler=scheduler,
                  loss_fn=nn.CrossEntropyLoss(), val_loader=val_loader, metrics={"acc": accuracy},
                  device=device, progress=False)
    return {"state_dict": {k: v.cpu() for k, v in model.state_dict().items()}, "config": asdict(config),
            "mean": mean, "std": std, "held_out": held_out.tensors, "seconds": time.perf_counter() - start,
            "history": history.to_dict(orient="list")}


def course_standin(config: StandinConfig | None = None, device: Any = None) -> Pretrained:
    """The course's stand-in for ImageNet weights: loaded from the cache, else pretrained and saved (chapter 08).

    Usage: ``pretrained = course_standin(StandinConfig(width=16))``
    """
    config = StandinConfig() if config is None else config
    if not isinstance(config, StandinConfig):
        raise TypeError(f"config must be a StandinConfig, got {type(config).__name__}")
    path = checkpoint_dir() / config.file_name()
    ckpt = None
    if path.exists():
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - a damaged cache is rebuilt, never fatal
            notice(f"{path.name} could not be read ({type(err).__name__}); pretraining it again.")
    if ckpt is None:
        notice(f"pretraining the course's stand-in ResNet on rendered letters (saved to {path}) ...")
        ckpt = pretrain_standin(config, device)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(ckpt, path.with_suffix(".tmp"))
        path.with_suffix(".tmp").replace(path)  # atomic: an interruption never leaves half a file
    model = CourseResNet(config.width, num_classes=len(LETTERS))
    model.load_state_dict(ckpt["state_dict"])
    preprocess = _standin_preprocess(config.image_size, ckpt["mean"], ckpt["std"])
    acc = ckpt["history"]["val_acc"][-1]
    notice(f"offline: the course's own ResNet (width {config.width}), pretrained on 41 rendered letters "
           f"(held-out accuracy {acc:.1%}), stands in for ImageNet weights.")
    held_out = ImageSplit(TensorDataset(*ckpt["held_out"]), classes=list(LETTERS))
    return Pretrained(model, preprocess, list(LETTERS), f"course stand-in: letters, width {config.width}", held_out)


# --------------------------------------------------------------------------- ImageNet weights
def imagenet_resnet(arch: str = "resnet18") -> Pretrained | None:
    """torchvision's ImageNet ResNet-18 (``IMAGENET1K_V1``) or ResNet-50 (``IMAGENET1K_V2``), or None (chapter 08).

    The weights come through :func:`ptcourse.hub.torchvision_weights`: from the torch hub
    cache, else downloaded (hash-checked) after a short probe; ``None`` with one line when
    they cannot be had. Equivalent to ``resnet18(weights=ResNet18_Weights.IMAGENET1K_V1)``.

    Usage: ``pretrained = imagenet_resnet("resnet50")``
    """
    from torchvision import models

    builders = {"resnet18": (models.resnet18, models.ResNet18_Weights.IMAGENET1K_V1),
                "resnet50": (models.resnet50, models.ResNet50_Weights.IMAGENET1K_V2)}
    if arch not in builders:
        raise ValueError(f"arch must be one of {sorted(builders)}, got {arch!r}")
    build, weights = builders[arch]
    state = torchvision_weights(weights)
    if state is None:
        return None
    model = build(weights=None)  # the architecture; the weights are loaded next
    model.load_state_dict(state)
    return Pretrained(model, weights.transforms(), list(weights.meta["categories"]), f"{arch}, {weights}")


# --------------------------------------------------------------------------- data
class ImageSplit(Dataset):
    """Some rows of an image dataset, their labels known up front, and a transform (chapter 08).

    Items are ``(transform(image), label)``; ``labels`` is a tensor, so a few images per
    class can be drawn without decoding any image. ``subset`` and ``with_transform`` return
    new views; the images themselves are never copied.

    Usage: ``few = split.subset(per_class_indices(split.labels, k=5)).with_transform(preprocess)``
    """

    def __init__(self, dataset: Dataset, indices: Sequence[int] | torch.Tensor | None = None,
                 labels: torch.Tensor | None = None, classes: list[str] | None = None,
                 transform: Callable | None = None) -> None:
        self.dataset, self.transform = dataset, transform
        all_labels = _labels_of(dataset) if labels is None else torch.as_tensor(labels).long()
        self.indices = torch.arange(len(all_labels)) if indices is None else torch.as_tensor(indices).long()
        self.labels = all_labels[self.indices] if labels is None else all_labels
        if len(self.labels) != len(self.indices):
            raise ValueError(f"{len(self.labels)} labels for {len(self.indices)} images")
        self.classes = list(classes) if classes is not None else [str(c) for c in range(int(all_labels.max()) + 1)]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        image, _ = self.dataset[int(self.indices[i])]
        return (self.transform(image) if self.transform is not None else image), int(self.labels[i])

    def subset(self, positions: Sequence[int] | torch.Tensor) -> "ImageSplit":
        positions = torch.as_tensor(positions).long()
        return ImageSplit(self.dataset, self.indices[positions], self.labels[positions], self.classes, self.transform)

    def with_transform(self, transform: Callable | None) -> "ImageSplit":
        return ImageSplit(self.dataset, self.indices, self.labels, self.classes, transform)


class ImageFiles(Dataset):
    """Image files decoded with PIL, as torchvision's folder datasets do; items ``(image, 0)`` (chapter 08).

    Defined here, not in the notebook, so that DataLoader workers can import it on every
    platform (macOS and Windows start workers by importing, not forking).

    Usage: ``photos = ImageFiles(sorted(folder.glob("*.jpg"))); image, _ = photos[0]``
    """

    def __init__(self, paths: Sequence[str | Path]) -> None:
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise ValueError("paths is empty: give at least one image file")
        missing = [str(p) for p in self.paths if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"no such image file: {missing[0]}")

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        from PIL import Image

        with Image.open(self.paths[i]) as image:
            return image.convert("RGB"), 0


def _labels_of(dataset: Dataset) -> torch.Tensor:
    if isinstance(dataset, TensorDataset):
        return dataset.tensors[1].long()
    if isinstance(dataset, ImageFiles):
        return torch.zeros(len(dataset), dtype=torch.long)
    known = getattr(dataset, "_labels", None)  # torchvision's OxfordIIITPet keeps them here
    if known is not None:
        return torch.as_tensor(known).long()
    return torch.tensor([int(label) for _, label in dataset])  # reads every image: slow but correct


@dataclass
class TransferTask:
    """The target task: a labelled pool to draw k images per class from, validation and test splits (chapter 08).

    ``augmentation`` names the :func:`train_transforms` style that keeps its labels
    (``"photos"``: crops and mirror images; ``"handwriting"``: small slants and shifts).

    Usage: ``_, task = load_transfer(online=False); print(task.name, len(task.train), len(task.test))``
    """

    name: str
    classes: list[str]
    train: ImageSplit
    val: ImageSplit
    test: ImageSplit
    augmentation: str


def _digits_task(val_per_class: int) -> TransferTask:
    from ptcourse.data import load_digits, per_class_indices

    train, test = load_digits()  # a fixed stratified test split, never used for choices
    classes = [str(c) for c in range(10)]
    pool = ImageSplit(TensorDataset(digit_images(train.x), train.y), classes=classes)
    test = ImageSplit(TensorDataset(digit_images(test.x), test.y), classes=classes)
    val_idx = per_class_indices(pool.labels, val_per_class, seed=0)
    rest = torch.ones(len(pool), dtype=torch.bool)
    rest[val_idx] = False
    return TransferTask("digits", classes, pool.subset(torch.nonzero(rest).flatten()), pool.subset(val_idx), test,
                        augmentation="handwriting")


def _pets(split: str, download: bool) -> Dataset:
    from torchvision.datasets import OxfordIIITPet

    return OxfordIIITPet(root=data_dir(), split=split, target_types="category", download=download)


def _pets_task(val_per_class: int) -> TransferTask | None:
    import socket

    from ptcourse.data import per_class_indices

    try:
        trainval, test = _pets("trainval", False), _pets("test", False)
    except RuntimeError:  # not in the cache
        if not reachable(PETS_URL):
            notice(f"Oxford-IIIT Pet is not cached in {data_dir()} and {PETS_URL} is unreachable.")
            return None
        old = socket.getdefaulttimeout()
        socket.setdefaulttimeout(60)  # a stalled server raises instead of hanging
        try:
            trainval, test = _pets("trainval", True), _pets("test", True)
        except Exception as err:  # noqa: BLE001 - any download failure falls back
            notice(f"downloading Oxford-IIIT Pet failed ({type(err).__name__}: {str(err)[:100]}).")
            return None
        finally:
            socket.setdefaulttimeout(old)
    pool = ImageSplit(trainval, classes=trainval.classes)
    val_idx = per_class_indices(pool.labels, val_per_class, seed=0)
    rest = torch.ones(len(pool), dtype=torch.bool)
    rest[val_idx] = False
    return TransferTask("Oxford-IIIT Pet", list(trainval.classes), pool.subset(torch.nonzero(rest).flatten()),
                        pool.subset(val_idx), ImageSplit(test, classes=test.classes), augmentation="photos")


def _imagenet_eval(task: TransferTask, categories: list[str]) -> ImageSplit:
    """The validation images of the pet breeds ImageNet also has, labelled with their ImageNet index."""
    index = {name: categories.index(imagenet) for name, imagenet in PETS_IN_IMAGENET.items()}
    keep = [i for i, y in enumerate(task.val.labels.tolist()) if task.classes[y] in index]
    subset = task.val.subset(keep)
    labels = torch.tensor([index[task.classes[y]] for y in subset.labels.tolist()])
    return ImageSplit(subset.dataset, subset.indices, labels, categories)


def load_transfer(arch: str = "resnet18", *, online: bool, config: StandinConfig | None = None,
                  val_per_class: int = 20, device: Any = None) -> tuple[Pretrained, TransferTask]:
    """The pretrained network and the target task, both online or both offline (chapter 08).

    Online (``online=True``, the data and the weights cached or reachable): torchvision's
    ImageNet ``arch`` and Oxford-IIIT Pet. Otherwise, with one line saying so: the course's
    stand-in (:func:`course_standin`) and scikit-learn's digits. The validation split is
    ``val_per_class`` images per class carved out of the training pool (the same for every
    seed); the test split is the dataset's own, to be used once.

    Usage: ``pretrained, task = load_transfer("resnet50", online=True)``
    """
    val_per_class = positive_int(val_per_class, "val_per_class")
    if online:
        task = _pets_task(val_per_class)
        pretrained = imagenet_resnet(arch) if task is not None else None
        if task is not None and pretrained is not None:
            pretrained.source_eval = _imagenet_eval(task, pretrained.categories)
            return pretrained, task
        notice("offline path: the course's stand-in ResNet and scikit-learn's digits.")
    return course_standin(config, device), _digits_task(val_per_class)


# --------------------------------------------------------------------------- transforms
AUGMENTATION_STYLES = ("photos", "handwriting")


def train_transforms(preprocess: ImageClassification, style: str = "photos") -> v2.Compose:
    """Random augmentation that ends in the weights' own normalisation (chapter 08).

    ``style="photos"``: a random part of the image (25 % to all of its area) resized to the
    weights' crop size, mirrored half of the time (a mirrored pet is the same breed).
    ``style="handwriting"``: the image resized and cropped as ``preprocess`` does, then small
    random rotations, shifts, zooms and slants (a mirrored or cropped digit may become another digit). Both end in the
    same ``ToDtype`` + ``Normalize(mean, std)`` as ``preprocess`` (``weights.transforms()``),
    so training and evaluation images are on the same scale.

    Usage: ``augment = train_transforms(weights.transforms(), style="photos")``
    """
    if not isinstance(preprocess, ImageClassification):
        raise TypeError(f"preprocess must be weights.transforms() (an ImageClassification), got {type(preprocess).__name__}")
    size = preprocess.crop_size[0]
    if style == "photos":
        steps = [v2.RandomResizedCrop(size, scale=(0.25, 1.0), interpolation=preprocess.interpolation, antialias=True),
                 v2.RandomHorizontalFlip()]
    elif style == "handwriting":
        steps = [v2.Resize(preprocess.resize_size, interpolation=preprocess.interpolation, antialias=True),
                 v2.CenterCrop(size), v2.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1), shear=10)]
    else:
        raise ValueError(f"style must be one of {AUGMENTATION_STYLES}, got {style!r}")
    return v2.Compose([v2.ToImage(), *steps, v2.ToDtype(torch.float32, scale=True),
                       v2.Normalize(preprocess.mean, preprocess.std)])


# --------------------------------------------------------------------------- the new head and checks
def new_head(model: nn.Module, n_classes: int) -> nn.Module:
    """Replace ``model.fc`` by a fresh ``nn.Linear(in_features, n_classes)``; return the model (chapter 08).

    The rest of the network keeps its pretrained weights. The new layer sits on the device
    and has the dtype of the old one.

    Usage: ``model = new_head(pretrained.model, len(task.classes))``
    """
    if isinstance(n_classes, bool) or not isinstance(n_classes, numbers.Integral) or n_classes < 2:
        raise ValueError(f"n_classes must be an int >= 2 (the number of target classes), got {n_classes!r}")
    old = getattr(model, "fc", None)
    if not isinstance(old, nn.Linear):
        raise TypeError(f"expected a ResNet whose head model.fc is an nn.Linear, got {type(old).__name__}")
    model.fc = nn.Linear(old.in_features, int(n_classes), device=old.weight.device, dtype=old.weight.dtype)
    return model


def check_images(images: Any, model: nn.Module | None = None, channels: int = 3) -> torch.Tensor:
    """``images`` if it is a preprocessed batch the network can take, else a clear error (chapter 08).

    Expected: a float tensor (N, C, H, W) with C the number of input channels of
    ``model.conv1`` (3 for ImageNet weights), finite values, at least one image.

    Usage: ``check_images(x, model)``
    """
    if model is not None and isinstance(getattr(model, "conv1", None), nn.Conv2d):
        channels = model.conv1.in_channels
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor of shape (N, {channels}, H, W), got {type(images).__name__}; "
                        "apply weights.transforms() to each image and stack them")
    shape = tuple(images.shape)
    if images.ndim == 3 and shape[0] == channels:
        raise ValueError(f"got one image of shape {shape}; the network takes a batch: use images.unsqueeze(0)")
    if images.ndim != 4:
        raise ValueError(f"images must have shape (N, {channels}, H, W), got {shape}")
    if shape[1] != channels and shape[3] == channels:
        raise ValueError(f"images look channels-last {shape} (numpy / PIL layout); the network wants "
                         f"(N, {channels}, H, W): use images.permute(0, 3, 1, 2)")
    if shape[1] != channels:
        hint = (" (grey images: repeat them, e.g. v2.Grayscale(num_output_channels=3))" if shape[1] == 1 else "")
        raise ValueError(f"the weights expect {channels}-channel images, got {shape[1]}-channel ones {shape}{hint}")
    if shape[0] == 0:
        raise ValueError(f"images is an empty batch {shape}")
    if not images.is_floating_point():
        raise TypeError(f"images have dtype {images.dtype}: they are not preprocessed; apply weights.transforms() "
                        "(it converts to float and normalises)")
    if not torch.isfinite(images).all():
        raise ValueError("images contain NaN or infinite values")
    return images


def check_labels(labels: Any, model: nn.Module) -> torch.Tensor:
    """``labels`` as a tensor if every one has an output in ``model.fc``, else a clear error (chapter 08).

    A label >= the number of outputs makes ``cross_entropy`` fail with an index error on the
    CPU and a device-side assert (which ends the session) on a GPU; this says why first.

    Usage: ``check_labels(task.train.labels, model)``
    """
    fc = getattr(model, "fc", None)
    if not isinstance(fc, nn.Linear):
        raise TypeError(f"expected a ResNet whose head model.fc is an nn.Linear, got {type(fc).__name__}")
    labels = torch.as_tensor(labels)
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise TypeError(f"labels must be integer class indices, got dtype {labels.dtype}")
    if labels.numel() == 0:
        raise ValueError("labels is empty")
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= fc.out_features:
        raise ValueError(f"the head has {fc.out_features} outputs (classes 0..{fc.out_features - 1}) but the labels "
                         f"range over {low}..{high}: build it with new_head(model, n_classes) for this task")
    return labels


# --------------------------------------------------------------------------- loaders, predictions, statistics
def make_loader(dataset: Dataset, batch_size: int, *, shuffle: bool = False, epoch_size: int | None = None,
                num_workers: int = 0, device: Any = None) -> DataLoader:
    """A ``DataLoader`` for ``fit``: shuffled epochs of at least ``epoch_size`` images, workers, pinned memory (chapter 08).

    A training set of 10 images makes an epoch of one step; ``epoch_size`` repeats it
    (fresh permutations, a fresh augmentation each time) so every recipe takes the same
    number of steps per epoch. Pinned memory only when the device is a CUDA GPU.

    Usage: ``loader = make_loader(train_split, 32, shuffle=True, epoch_size=512, num_workers=2)``
    """
    batch_size, num_workers = positive_int(batch_size, "batch_size"), int(num_workers)
    if len(dataset) == 0:
        raise ValueError("the dataset is empty")
    sampler = None
    if shuffle:
        size = len(dataset) if epoch_size is None else max(len(dataset), positive_int(epoch_size, "epoch_size"))
        sampler = RandomSampler(dataset, num_samples=size)
    from ptcourse.device import get_device

    cuda = torch.device(device if device is not None else get_device()).type == "cuda"
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers, pin_memory=cuda,
                      persistent_workers=num_workers > 0)


@torch.no_grad()
def predict(model: nn.Module, loader: Any, device: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted classes and true labels of every image in ``loader`` (eval mode, on the CPU) (chapter 08).

    Usage: ``pred, true = predict(model, test_loader); accuracy = (pred == true).float().mean()``
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    preds, trues = [], []
    try:
        for images, labels in loader:
            check_images(images, model)
            preds.append(model(images.to(device)).argmax(dim=1).cpu())
            trues.append(torch.as_tensor(labels))
    finally:
        model.train(was_training)
    return torch.cat(preds), torch.cat(trues)


def bn_running_stats(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of every BatchNorm running mean and variance of ``model`` (chapter 08).

    Usage: ``before = bn_running_stats(model.layer1); ...; after = bn_running_stats(model.layer1)``
    """
    return {f"{name}.{buf}": getattr(m, buf).detach().clone() for name, m in model.named_modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) for buf in ("running_mean", "running_var")}


def input_images_per_second(loader: Any, batches: int = 10) -> float:
    """Images per second a loader delivers (decoding and augmentation, in its workers) (chapter 08).

    The first batch (worker start-up) is not timed.

    Usage: ``input_images_per_second(make_loader(train, 64, shuffle=True, num_workers=2))``
    """
    batches = positive_int(batches, "batches")
    it = iter(loader)
    next(it)
    n, start = 0, time.perf_counter()
    for _ in range(batches):
        try:
            images, _ = next(it)
        except StopIteration:
            break
        n += len(images)
    if n == 0:
        raise ValueError("the loader has fewer than two batches: nothing to time")
    return n / (time.perf_counter() - start)


def model_images_per_second(model: nn.Module, images: torch.Tensor, *, train: bool = True, amp: Any = "auto",
                            channels_last: bool = False, steps: int = 5, device: Any = None) -> float:
    """Images per second of the model alone on one batch: a training step (forward, backward, SGD) or inference (chapter 08).

    Mixed precision and channels-last as ``fit`` uses them; one untimed warm-up step; on a
    GPU the clock waits for the GPU to finish.

    Usage: ``model_images_per_second(model, torch.randn(64, 3, 224, 224), channels_last=True)``
    """
    from ptcourse.device import amp_dtype, get_device

    check_images(images, model)
    device = torch.device(device) if device is not None else get_device()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = copy.deepcopy(model).to(device, memory_format=fmt).train(train)  # the caller's model is untouched
    x = images.to(device, memory_format=fmt)
    y = torch.zeros(len(x), dtype=torch.long, device=device)
    dtype = amp_dtype(device) if amp == "auto" else (torch.bfloat16 if amp else None)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-9)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for step in range(positive_int(steps, "steps") + 1):
        if step == 1:
            sync()
            start = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None), torch.set_grad_enabled(train):
            loss = F.cross_entropy(model(x), y)
        if train:
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    sync()
    return steps * len(x) / (time.perf_counter() - start)
