"""Athena's SQL on DuckDB: Trino's grammar and naming on top of sqlglot's translation, Trino's error texts.

:func:`translate` checks what Trino's grammar rejects but sqlglot reads, parses the query as Trino, names
unnamed SELECT items ``_col<position>`` as Trino does, binds every table to a DuckDB view (catalog tables
through :mod:`pipekit.local.athena_read`, views by translating their SQL, ``information_schema`` from the
catalog) and returns DuckDB SQL. :func:`athena_message` rewords a DuckDB error the way Athena reports it.
"""

from __future__ import annotations

import re
from typing import Any

from pipekit.local import athena_catalog, athena_read
from pipekit.local.athena_catalog import QueryFailed
from pipekit.local.athena_read import ident
from pipekit.local.server import TwinContext

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _clean(text: str) -> str:
    return _ANSI.sub("", text)


def _position(query: str, word: str) -> str:
    """``line L:C`` of the first whole-word occurrence of ``word`` in the caller's query (1:1 if absent)."""
    m = re.search(rf"(?<![\w$]){re.escape(word)}(?![\w$])", query, re.IGNORECASE)
    if not m:
        return "line 1:1"
    before = query[: m.start()]
    return f"line {before.count(chr(10)) + 1}:{m.start() - (before.rfind(chr(10)) + 1) + 1}"


def error_type(msg: str) -> int:
    """Athena's ErrorType for a DuckDB error: 1002 (data error) for bad casts and division by zero, else 1006."""
    return 1002 if ("Conversion Error" in msg or "Division by zero" in msg) else 1006


def athena_message(msg: str, query: str = "") -> str:
    """DuckDB's error, reworded the way Trino reports it (Athena's error name first, no engine internals)."""
    first = _clean(msg).strip().splitlines()[0] if msg.strip() else msg
    m = re.search(r'Referenced column "([^"]+)" not found', first) or re.search(
        r'column "?([\w$]+)"? (?:not found|does not exist)', first, re.IGNORECASE)
    if m and ("Binder Error" in first or "Catalog Error" in first):
        return f"COLUMN_NOT_FOUND: {_position(query, m.group(1))}: Column '{m.group(1)}' cannot be resolved"
    m = re.search(r"(?:Scalar|Aggregate|Table) Function with name \"?(\w+)\"? does not exist", first)
    if m:
        return f"FUNCTION_NOT_FOUND: {_position(query, m.group(1))}: Function '{m.group(1)}' not registered"
    if "Division by zero" in first:
        return "DIVISION_BY_ZERO: Division by zero"
    m = re.search(r"Could not convert string '([^']*)' to (\w+)", first)
    if m:
        return f"INVALID_CAST_ARGUMENT: Cannot cast '{m.group(1)}' to {m.group(2).lower()}"
    if "No function matches" in first or "Cannot compare" in first or "Cannot mix" in first:
        detail = re.sub(r"^\w+ Error: ", "", first)
        return f"TYPE_MISMATCH: line 1:1: {detail}"
    if "Parser Error" in first:
        return f"SYNTAX_ERROR: line 1:1: {re.sub(r'^Parser Error: ', '', first)}"
    if "Binder Error" in first or "Catalog Error" in first:
        return f"SEMANTIC_ERROR: {re.sub(r'^(Binder|Catalog) Error: ', '', first)}"
    return f"GENERIC_USER_ERROR: {re.sub(r'^[A-Z][a-z]+( [A-Z][a-z]+)? Error: ', '', first)}"


def _syntax_error(line: int, col: int, message: str) -> QueryFailed:
    return QueryFailed(f"SYNTAX_ERROR: line {line}:{col}: {message}", error_type=1004)


def _check_trino_grammar(query: str) -> None:
    """Reject what Trino's grammar rejects but sqlglot reads: OFFSET after LIMIT, backquoted identifiers,
    MySQL's ``LIMIT a, b``."""
    import sqlglot
    from sqlglot.tokens import TokenType

    try:
        tokens = sqlglot.Dialect.get_or_raise("trino").tokenize(query)
    except sqlglot.errors.TokenError as exc:
        raise _syntax_error(1, 1, _clean(str(exc)).splitlines()[0]) from exc
    depth, limit_at = 0, dict[int, int]()
    for i, tok in enumerate(tokens):
        start_col = tok.col - len(tok.text) + 1
        if tok.token_type == TokenType.L_PAREN:
            depth += 1
        elif tok.token_type == TokenType.R_PAREN:
            limit_at.pop(depth, None)
            depth -= 1
        elif tok.token_type == TokenType.LIMIT:
            limit_at[depth] = i
            if i + 2 < len(tokens) and tokens[i + 2].token_type == TokenType.COMMA:
                comma = tokens[i + 2]
                raise _syntax_error(comma.line, comma.col, "mismatched input ','. Expecting: <EOF>")
        elif tok.token_type == TokenType.OFFSET and depth in limit_at:
            raise _syntax_error(tok.line, start_col, "mismatched input 'OFFSET'. Expecting: <EOF>")
        bad = _not_trino(tokens, i)
        if bad is not None:
            where = tokens[bad]
            raise _syntax_error(where.line, where.col - len(where.text) + 1,
                                f"mismatched input '{where.text}'. Expecting: <expression>")
    without_strings = re.sub(r"'(?:[^']|'')*'", "''", query)
    tick = without_strings.find("`")
    if tick >= 0:
        before = without_strings[:tick]
        raise _syntax_error(before.count("\n") + 1, tick - (before.rfind("\n") + 1) + 1,
                            "backquoted identifiers are not supported; use double quotes to quote identifiers")


def _not_trino(tokens: list[Any], i: int) -> int | None:
    """The index of the token that makes ``tokens[i]`` non-Trino syntax sqlglot would read anyway, or None:
    ILIKE, ``::`` casts, ``==``, ``{...}`` and bare ``[...]`` literals, ``DISTINCT ON``, ``* EXCLUDE``,
    ``$1``, ``USING SAMPLE``, ``SORT BY``, and a LIMIT that is not a number or ALL."""
    from sqlglot.tokens import TokenType as T

    tok = tokens[i]
    kind, text = tok.token_type, tok.text
    prev = tokens[i - 1].token_type if i else None
    nxt = tokens[i + 1] if i + 1 < len(tokens) else None
    if kind in {T.ILIKE, T.DCOLON, T.L_BRACE, T.SORT_BY} or (kind == T.EQ and text == "=="):
        return i
    if kind == T.DISTINCT and nxt is not None and nxt.token_type == T.ON:
        return i + 1
    if kind == T.VAR and ((text.upper() == "EXCLUDE" and prev == T.STAR) or (text.upper() == "SAMPLE" and prev == T.USING)
                          or (text.startswith("$") and text[1:].isdigit())):
        return i
    if kind == T.L_BRACKET and prev not in {T.VAR, T.IDENTIFIER, T.R_PAREN, T.R_BRACKET, T.ARRAY}:
        return i
    if kind == T.LIMIT and nxt is not None:
        after = tokens[i + 2] if i + 2 < len(tokens) else None
        if nxt.token_type not in {T.NUMBER, T.ALL, T.PLACEHOLDER}:
            return i + 1
        if after is not None and after.token_type in {T.PLUS, T.DASH, T.STAR, T.SLASH}:
            return i + 2
    return None


def _parse_error(exc: Any, query: str) -> QueryFailed:
    """sqlglot's parse error as Trino words one: the offending token, where it is, what was expected
    (sqlglot's own description only when it names a token, never its class names)."""
    err = (getattr(exc, "errors", None) or [{}])[0]
    desc = _clean(str(err.get("description") or exc)).splitlines()[0]
    near = _clean(str(err.get("highlight") or "")).strip()
    expecting = "<expression>"
    m = re.search(r"Expecting (\S+)", desc)
    if m:
        expecting = f"'{m.group(1)}'"
    if "SENTINEL" in desc or not near:
        lines = query.rstrip().split("\n")
        return _syntax_error(len(lines), len(lines[-1]) + 1, f"mismatched input '<EOF>'. Expecting: {expecting}")
    col = int(err.get("col") or 1) - len(near) + 1
    return _syntax_error(int(err.get("line") or 1), max(col, 1), f"mismatched input '{near}'. Expecting: {expecting}")


def translate(query: str, database: str, con: Any, s3: Any, ctx: TwinContext,
               seen_views: tuple[str, ...] = ()) -> tuple[str, int, set[str]]:
    """Trino SQL -> DuckDB SQL with every catalog table bound to a view over its S3 data (or the catalog,
    for ``information_schema``). Returns the SQL, the bytes scanned, and the ``_colN`` names given to
    unnamed expressions of the outermost SELECT."""
    import sqlglot
    from sqlglot import exp

    _check_trino_grammar(query)
    try:
        tree = sqlglot.parse_one(query, read="trino")
    except sqlglot.errors.ParseError as exc:
        raise _parse_error(exc, query) from exc
    if not isinstance(tree, (exp.Query, exp.Values)):
        raise QueryFailed(f"NOT_SUPPORTED: the pipekit twin does not run {tree.key.upper()} statements",
                          error_type=1006)
    generated = _name_unnamed(tree)
    _decimal_literals(tree)
    for node in list(tree.find_all(exp.Typeof)):
        node.replace(exp.Anonymous(this=TYPEOF_MACRO, expressions=[node.this]))
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    hidden = {c.name for c in tree.find_all(exp.Column) if c.name in {"$path", "$file_size"}}
    scanned = 0
    views: dict[tuple[str, str], str] = {}
    for table in list(tree.find_all(exp.Table)):
        name = table.name.lower()
        if not name or (not table.db and name in ctes) or isinstance(table.this, exp.Func):
            continue
        db = (table.db or database).lower()
        if table.catalog and table.catalog.lower() != athena_catalog.CATALOG:
            raise QueryFailed(f"CATALOG_NOT_FOUND: line 1:1: Catalog '{table.catalog}' does not exist",
                              error_type=1301)
        key = (db, name)
        if key not in views:
            view = f"__t{len(views)}_{len(seen_views)}_{re.sub(r'[^a-z0-9_]', '_', name)}"
            if db == "information_schema":
                arrow = athena_catalog.information_schema(ctx, name)
                con.register(view, arrow)
            else:
                scanned += _bind(con, view, db, name, s3, ctx, hidden, seen_views)
            views[key] = view
        alias = table.alias
        table.set("this", exp.to_identifier(views[key]))
        table.set("db", None)
        table.set("catalog", None)
        if not alias:
            table.set("alias", exp.TableAlias(this=exp.to_identifier(name)))
    return tree.sql(dialect="duckdb"), scanned, generated


TYPEOF_MACRO = "__trino_typeof"
#: ``typeof`` in Trino's spelling over DuckDB's type names (created on each connection by :func:`prepare`).
_TYPEOF_SQL = (
    f"CREATE MACRO {TYPEOF_MACRO}(x) AS CASE "
    "WHEN typeof(x) LIKE '%[]' THEN 'array(' || lower(replace(typeof(x), '[]', '')) || ')' "
    "WHEN typeof(x) = 'TIMESTAMP' THEN 'timestamp(3)' "
    "WHEN typeof(x) = 'TIMESTAMP WITH TIME ZONE' THEN 'timestamp(3) with time zone' "
    "WHEN typeof(x) = 'FLOAT' THEN 'real' WHEN typeof(x) IN ('HUGEINT', 'UBIGINT') THEN 'bigint' "
    "WHEN typeof(x) = 'BLOB' THEN 'varbinary' WHEN typeof(x) = '\"NULL\"' THEN 'unknown' "
    "WHEN typeof(x) LIKE 'STRUCT(%' THEN 'row' || lower(substr(typeof(x), 7)) "
    "ELSE lower(replace(typeof(x), ' ', '')) END"
)


def prepare(con: Any) -> None:
    """Session settings and helpers that make DuckDB answer as Trino: integer division truncates,
    zoned values print in UTC, ``typeof`` speaks Trino."""
    con.execute("SET integer_division = true")
    con.execute("SET TimeZone = 'UTC'")
    con.execute(_TYPEOF_SQL)


def _decimal_literals(tree: Any) -> None:
    """``DECIMAL '12.25'`` is decimal(4,2) in Trino; sqlglot leaves a bare DECIMAL (DuckDB: decimal(18,3))."""
    from sqlglot import exp

    for cast in list(tree.find_all(exp.Cast)):
        to, arg = cast.args.get("to"), cast.this
        if (isinstance(to, exp.DataType) and to.this == exp.DataType.Type.DECIMAL and not to.expressions
                and isinstance(arg, exp.Literal) and arg.is_string):
            m = re.fullmatch(r"\s*[+-]?(\d*)(?:\.(\d*))?\s*", arg.this)
            if m:
                whole, frac = m.group(1).lstrip("0"), m.group(2) or ""
                precision = max(len(whole) + len(frac), 1)
                cast.set("to", exp.DataType.build(f"DECIMAL({precision}, {len(frac)})"))


def _name_unnamed(tree: Any) -> set[str]:
    """Alias every SELECT item that has no name as Trino names it: ``_col<position>``."""
    from sqlglot import exp

    generated: set[str] = set()
    outer = tree
    while isinstance(outer, exp.SetOperation):
        outer = outer.this
    for select in tree.find_all(exp.Select):
        items = list(select.expressions)
        for i, item in enumerate(items):
            if isinstance(item, (exp.Alias, exp.Column, exp.Star)) or (
                    isinstance(item, exp.Dot) and isinstance(item.expression, exp.Identifier)):
                continue
            alias = f"_col{i}"
            item.replace(exp.alias_(item.copy(), alias, quoted=True))
            if select is outer:
                generated.add(alias)
    return generated


def _bind(con: Any, view: str, db: str, name: str, s3: Any, ctx: TwinContext, hidden: set[str],
          seen_views: tuple[str, ...]) -> int:
    tbl = athena_catalog.table(ctx, db, name)
    if tbl.get("TableType") == "VIRTUAL_VIEW":
        if f"{db}.{name}" in seen_views:
            raise QueryFailed(f"VIEW_IS_RECURSIVE: View '{db}.{name}' refers to itself", error_type=1006)
        text = athena_catalog.view_sql(tbl)
        sql, scanned, _ = translate(text, db, con, s3, ctx, (*seen_views, f"{db}.{name}"))
        con.execute(f"CREATE VIEW {ident(view)} AS {sql}")
        return scanned
    return athena_read.bind_table(con, view, tbl, s3, ctx, hidden)
