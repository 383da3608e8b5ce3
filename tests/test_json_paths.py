"""The rewrite that lets a path naming a DynamoDB attribute read as the attribute (pure text)."""

from __future__ import annotations

import pytest

from console.json_paths import JsonColumns, rewrite, typed_leaves
from tests.helpers.pools import GUIDE_STEP_4

COLUMNS = JsonColumns(others=frozenset({"user_identity", "img"}), objects=frozenset({"img.a"}))


def test_it_rewrites_the_guides_order_items_and_nothing_else():
    out = rewrite(GUIDE_STEP_4, COLUMNS)
    expected = "(nullIf(toJSONString(new_image.^orderItems), '{}') AS `new_image.orderItems`) AS order_items"
    assert expected in out
    # Everything else is the user's text, comments included.
    assert out.replace(expected, "new_image.orderItems AS order_items") == GUIDE_STEP_4


@pytest.mark.parametrize(
    ("sql", "rewritten"),
    [
        ("SELECT new_image.customer FROM t", "new_image.^customer"),  # a map attribute
        ("SELECT new_image.customer.M FROM t", "new_image.^`customer.M`"),  # the map's contents
        ("SELECT new_image.customer.M.name FROM t", "new_image.^`customer.M.name`"),
        ("SELECT old_image.tags FROM t", "old_image.^tags"),  # a set
        ("SELECT keys.order_id FROM t", "keys.^order_id"),
        ("SELECT t.new_image.orderItems FROM t", "t.new_image.^orderItems"),  # qualified
        ("SELECT `new_image`.`order items` FROM t", "new_image.^`order items`"),
        ("SELECT img.a FROM t", "img.^a"),  # another JSON column: the data says a is an object
    ],
)
def test_it_rewrites_every_path_that_names_an_object(sql, rewritten):
    assert f"toJSONString({rewritten})" in rewrite(sql, COLUMNS)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT new_image.quantity.N, keys.order_id.S, new_image.customer.M.name.S FROM t",
        "SELECT new_image.orderItems.L FROM t",  # a list's array is a value
        "SELECT new_image.^orderItems, new_image.orderItems.:String FROM t",  # the user's own syntax
        "SELECT 'new_image.orderItems', \"x\" FROM t -- new_image.orderItems\n",
        "SELECT 1 /* new_image.orderItems /* nested */ new_image.tags */ FROM t",
        "SELECT user_identity.type, img.b, other.x.y, new_image FROM t",
        "SELECT tuple(1, 2).1, 1.5e3 FROM t",
        # heredoc strings, as ClickHouse's lexer reads them: $$…$$ and $tag$…$tag$
        "SELECT $$ new_image.customer $$ FROM t",
        "SELECT $a$ new_image.customer $$ new_image.tags $a$, $$'$$ FROM t",
        "SELECT $$ it's new_image.customer $$ FROM t",
        "SELECT 'it''s new_image.customer', 'a\\' new_image.customer' FROM t",
        "SELECT 1 # new_image.customer\n FROM t",
        "SELECT 1 #! new_image.customer\n FROM t",
    ],
)
def test_it_leaves_leaves_literals_comments_and_explicit_syntax_alone(sql):
    assert rewrite(sql, COLUMNS) == sql


def test_a_dollar_that_opens_no_heredoc_leaves_the_rest_of_the_text_read_as_sql():
    out = rewrite("SELECT $ new_image.customer FROM t", COLUMNS)
    assert "toJSONString(new_image.^customer)" in out


def test_typed_leaves_read_the_guides_scalars_as_the_grammar_types_them():
    out = typed_leaves(GUIDE_STEP_4)
    assert "toInt32OrNull((new_image.quantity.N.:String AS `new_image.quantity.N`))" in out
    assert "toString((new_image.taqueria.S.:String AS `new_image.taqueria.S`))" in out
    # A path in keys names a part of the primary key, which every change record carries.
    assert "(assumeNotNull(keys.order_id.S.:String) AS `keys.order_id.S`) AS order_id" in out
    assert "new_image.orderItems AS order_items" in out  # an attribute, not a scalar leaf


@pytest.mark.parametrize(
    ("sql", "typed"),
    [
        ("SELECT new_image.flag.BOOL FROM t", "new_image.flag.BOOL.:Bool"),
        ("SELECT t.old_image.customer.M.name.S FROM t", "t.old_image.customer.M.name.S.:String"),
        ("SELECT new_image.`a b`.N FROM t", "new_image.`a b`.N.:String"),
    ],
)
def test_typed_leaves_types_every_scalar_leaf(sql, typed):
    assert typed in typed_leaves(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT new_image.tags.SS, new_image.orderItems.L FROM t",  # a missing set reads as []
        "SELECT new_image.quantity.N.:Int64, user_identity.type.S, new_image.customer FROM t",
        "SELECT 'new_image.quantity.N' FROM t -- keys.order_id.S\n",
    ],
)
def test_typed_leaves_leaves_the_rest_alone(sql):
    assert typed_leaves(sql) == sql
