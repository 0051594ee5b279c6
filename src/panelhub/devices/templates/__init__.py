"""Built-in device templates: one ``<id>.toml`` data file per model (docs/device-templates.md)."""
