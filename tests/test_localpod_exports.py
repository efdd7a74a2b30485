import pete_mcp.localpod as localpod


def test_localpod_exports_exactly_its_public_names_sorted() -> None:
    public = {name for name in vars(localpod) if not name.startswith("_")} - {"annotations"}
    modules = {name for name in public if type(getattr(localpod, name)).__name__ == "module"}
    assert sorted(localpod.__all__) == localpod.__all__
    assert set(localpod.__all__) == public - modules
