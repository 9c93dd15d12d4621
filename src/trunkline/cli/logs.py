"""Logging for every long-running command: one JSON object per line on stderr."""

from __future__ import annotations

import logging.config


def configure_logging(level: str) -> None:
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"json": {"()": "trunkline.http.middleware.JsonLogFormatter"}},
            "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json"}},
            "root": {"handlers": ["stderr"], "level": level.upper()},
            "loggers": {"uvicorn.access": {"level": "WARNING"}},
        }
    )
