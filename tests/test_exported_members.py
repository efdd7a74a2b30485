import pete_mcp


def test_all_lists_exactly_the_public_names_sorted() -> None:
    public = {name for name in vars(pete_mcp) if not name.startswith("_")}
    public -= {"annotations"}
    modules = {name for name in public if type(getattr(pete_mcp, name)).__name__ == "module"}
    assert sorted(pete_mcp.__all__) == pete_mcp.__all__
    assert set(pete_mcp.__all__) == public - modules
