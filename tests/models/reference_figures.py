"""Published figures the zoo is checked against (not cnnkit output).

``TORCHVISION_FIGURES`` is the table of /work/shared/docs/reference-figures.md: parameters, MACs
of one 3x224x224 image (torch.utils.flop_counter FLOPs / 2) and state_dict entries, read from
torchvision's real modules (torchvision 0.28, default arguments, GoogLeNet with aux_logits=False).
``SEED_RESNET_SMALL_INPUT``: seed 003's ResNets (1 input channel, 3x3 stem, 10 classes) built
from 003's own classes (the seed's comments print other, wrong numbers).
"""

from __future__ import annotations

# name: (params, MACs at 224, state_dict entries)
TORCHVISION_FIGURES: dict[str, tuple[int, int, int]] = {
    "alexnet": (61_100_840, 714_188_480, 16),
    "vgg11": (132_863_336, 7_609_090_048, 22),
    "vgg16": (138_357_544, 15_470_264_320, 32),
    "vgg16_bn": (138_365_992, 15_470_264_320, 97),
    "vgg19": (143_667_240, 19_632_062_464, 38),
    "googlenet": (6_624_904, 1_498_376_192, 344),
    "resnet18": (11_689_512, 1_814_073_344, 122),
    "resnet34": (21_797_672, 3_663_761_408, 218),
    "resnet50": (25_557_032, 4_089_184_256, 320),
    "resnet101": (44_549_160, 7_801_405_440, 626),
    "resnet152": (60_192_808, 11_513_626_624, 932),
    "resnext50_32x4d": (25_028_904, 4_230_479_872, 320),
    "wide_resnet50_2": (68_883_240, 11_398_021_120, 320),
    "densenet121": (7_978_856, 2_834_161_664, 727),
    "densenet169": (14_149_480, 3_359_843_328, 1015),
    "mobilenet_v2": (3_504_872, 300_774_272, 314),
    "mobilenet_v3_small": (2_542_856, 56_510_400, 244),
    "mobilenet_v3_large": (5_483_032, 216_589_760, 312),
    "efficientnet_b0": (5_288_548, 385_814_752, 360),
    "efficientnet_b4": (19_341_616, 1_503_710_432, 706),
    "convnext_tiny": (28_589_128, 4_455_531_264, 182),
    "squeezenet1_0": (1_248_424, 818_924_576, 52),
    "shufflenet_v2_x1_0": (2_278_604, 144_907_992, 338),
    "regnet_y_400mf": (4_344_144, 401_842_848, 384),
}

SEED_RESNET_SMALL_INPUT: dict[str, int] = {
    "resnet18": 11_172_810,
    "resnet34": 21_280_970,
    "resnet50": 23_519_690,
}
