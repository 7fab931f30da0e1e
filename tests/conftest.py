"""Shared test fixtures."""

import contextlib
import logging
from collections.abc import Callable, Iterator

import jax
import pytest


@pytest.fixture
def xla_compilations(caplog: pytest.LogCaptureFixture) -> Callable:
    """``with xla_compilations() as compiled: ...`` collects the XLA compilations (JAX's
    "Compiling ..." log lines) that happen inside the block into the list ``compiled``."""

    @contextlib.contextmanager
    def record() -> Iterator[list[str]]:
        compiled: list[str] = []
        with jax.log_compiles(True), caplog.at_level(logging.WARNING, logger="jax"):
            start = len(caplog.records)
            yield compiled
            messages = (r.getMessage() for r in caplog.records[start:])
            compiled.extend(m for m in messages if m.startswith("Compiling"))

    return record
