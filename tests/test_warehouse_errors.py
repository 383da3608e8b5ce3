"""The engine's error messages as users read them (issue 20 item 8): chDB repeats the code's name
after the engine's version ("(READONLY) (version 26.9.2.1). (READONLY)"), which pages and the API
showed as it came."""

from __future__ import annotations

from console.warehouse.chdb_backend import _error


def test_the_code_s_name_is_said_once_and_the_version_is_left_out():
    raw = RuntimeError(
        "Code: 164. DB::Exception: Cannot modify 'final' setting in readonly mode. (READONLY) "
        "(version 26.9.2.1). (READONLY)"
    )
    error = _error(raw)
    assert str(error) == "Cannot modify 'final' setting in readonly mode. (READONLY)"
    assert error.code == 164


def test_a_message_without_repeats_is_left_as_it_is():
    raw = RuntimeError(
        "Code: 62. DB::Exception: Syntax error: failed at position 8 (end of query). (SYNTAX_ERROR)"
    )
    assert str(_error(raw)) == "Syntax error: failed at position 8 (end of query). (SYNTAX_ERROR)"
