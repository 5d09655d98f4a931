"""rc-run: the recipe orchestrator (Stimela2-style YAML). Never imports an app."""
