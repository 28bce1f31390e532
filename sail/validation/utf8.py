"""Text that is not valid UTF-8 in a Parquet table, found in the raw bytes before pandas sees it.

Parquet stores strings as bytes; pyarrow reads invalid UTF-8 without complaint and only fails,
with an unhelpful message, when converting to pandas. Here every string and list-of-string column
is checked on its bytes; the rows that fail are named, and their text is decoded with U+FFFD in
place of the bad bytes so that the rest of the table is still validated.
"""

from __future__ import annotations

import pyarrow as pa


def invalid_utf8_rows(table: pa.Table) -> dict[str, list[int]]:
    """Row numbers whose text is not valid UTF-8, by column (only columns that have some)."""
    invalid = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        binary = _as_binary(column.type)
        if binary is None or _is_valid(column):
            continue
        values = column.cast(binary).to_pylist()
        invalid[name] = [row for row, value in enumerate(values) if not _decodes(value)]
    return invalid


def repaired(table: pa.Table, invalid: dict[str, list[int]]) -> pa.Table:
    """`table` with each column in `invalid` decoded, bad bytes replaced by U+FFFD."""
    for name in invalid:
        column = table.column(name)
        values = [_decode(value) for value in column.cast(_as_binary(column.type)).to_pylist()]
        index = table.column_names.index(name)
        table = table.set_column(index, name, pa.array(values, type=column.type))
    return table


def _as_binary(kind: pa.DataType) -> pa.DataType | None:
    """The same type with bytes in place of strings; None for a type that holds no text."""
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return pa.binary()
    if pa.types.is_list(kind) and (inner := _as_binary(kind.value_type)) is not None:
        return pa.list_(inner)
    return None


def _is_valid(column: pa.ChunkedArray) -> bool:
    try:
        column.validate(full=True)  # a full validation checks every string's UTF-8
    except pa.ArrowInvalid:
        return False
    return True


def _decodes(value: bytes | list | None) -> bool:
    if isinstance(value, list):
        return all(map(_decodes, value))
    if value is None:
        return True
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _decode(value: bytes | list | None) -> str | list | None:
    if isinstance(value, list):
        return [_decode(item) for item in value]
    return None if value is None else value.decode("utf-8", errors="replace")
