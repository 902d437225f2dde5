"""Bugs the type checker found, pinned by tests."""

from __future__ import annotations

import io
from decimal import Decimal

from loader.cli.users import progress_reporter
from loader.export import _cell


def test_a_non_finite_decimal_is_an_empty_cell_not_a_crash():
    # Decimal('NaN').as_tuple().exponent is 'n': comparing it with 0 raised TypeError mid-export.
    assert [_cell(Decimal(text)) for text in ("NaN", "Infinity", "-Infinity")] == ["", "", ""]
    assert (_cell(Decimal("1.234")), _cell(Decimal("7")), _cell(None), _cell(1.5)) == ("1.23", "7", "", "1.50")


def test_progress_bar_on_a_terminal_opens_at_the_first_update_and_closes(monkeypatch):
    screen = io.StringIO()
    screen.isatty = lambda: True  # type: ignore[method-assign]
    monkeypatch.setattr("sys.stderr", screen)
    with progress_reporter() as update:
        update(20, 40)
        update(40, 40)
    assert "users" in screen.getvalue()
    with progress_reporter() as unused:  # a sync with nothing to ask never opens a bar
        pass
    assert unused is not None
