from perfanalysis.configdoc import README, render_readme


def test_readme_configuration_tables_match_the_parser() -> None:
    text = README.read_text()
    assert render_readme(text) == text, "README is stale: run python -m perfanalysis.configdoc"
