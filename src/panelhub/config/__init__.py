"""Configuration: pydantic models (models.py) and loading with located errors (store.py)."""
