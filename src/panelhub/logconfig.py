"""Logging set-up, done once by the CLI: library code only ever calls ``getLogger(__name__)``."""

from __future__ import annotations

import logging.config


def configure_logging(level: str = "INFO") -> None:
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {
                "plain": {"format": "%(asctime)s %(levelname)-7s %(name)s: %(message)s"},
            },
            "handlers": {
                "console": {
                    "class": "logging.StreamHandler",
                    "formatter": "plain",
                    "stream": "ext://sys.stderr",
                },
            },
            "loggers": {
                "panelhub": {"level": level, "handlers": ["console"], "propagate": False},
                # pymodbus runs the simulated meters; its own chatter is not ours to show.
                "pymodbus": {"level": "WARNING", "handlers": ["console"], "propagate": False},
            },
        }
    )
