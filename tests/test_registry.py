import pytest

from cnnkit._registry import Registry
from cnnkit.errors import UnknownNameError


def test_registry_refuses_duplicates_and_suggests_close_names():
    reg: Registry[int] = Registry("widget")
    reg.add("resnet18", 1)
    reg.add("resnet34", 2)
    with pytest.raises(ValueError, match="already registered"):
        reg.add("resnet18", 3)
    with pytest.raises(UnknownNameError, match=r"did you mean: resnet18") as info:
        reg.get("resnet19")
    assert "resnet18" in info.value.close_matches
    assert reg.names("resnet3*") == ["resnet34"]


def test_registry_decorator_keys_by_name_and_override_is_explicit():
    reg: Registry[object] = Registry("rule")

    @reg.register()
    def conv():
        return 1

    assert reg.get("conv") is conv
    reg.add("conv", 5, override=True)
    assert reg.get("conv") == 5
