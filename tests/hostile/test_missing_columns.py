"""Missing required columns: the message lists the columns found and the option that maps one."""

import json

import pandas as pd
import pytest

from kgrec.errors import KgrecError


@pytest.mark.parametrize("lenient", [False, True], ids=["strict", "lenient"])
@pytest.mark.parametrize(
    "header, role",
    [("customer,item,rating", "user"), ("user,product", "item"), ("rating,timestamp", "user")],
)
def test_missing_user_or_item_column(ws, header, role, lenient):
    path = ws.file("log.csv", ws.csv(",".join("x" for _ in header.split(",")), header=header))
    with pytest.raises(KgrecError, match=f"no {role} column '{role}'"):
        ws.read_log(path, lenient=lenient)
    message = ws.clean_error(ws.build(path, lenient=lenient), "log.csv", f"no {role} column")
    assert f"--column {role}=NAME" in message
    assert all(repr(c) in message for c in header.split(","))


def test_the_suggested_mapping_works(ws):
    path = ws.file("log.csv", ws.csv("u1,i1", "u2,i2", header="customer,item"))
    assert ws.build(path).rc == 2
    outcome = ws.build(path, "--column", "user=customer")
    assert outcome.rc == 0, outcome.err


def test_mapped_column_that_does_not_exist(ws):
    path = ws.file("log.csv", ws.csv(*ws.good_rows))
    ws.clean_error(ws.build(path, "--column", "item=sku"), "log.csv", "no item column 'sku'")


def test_missing_column_in_jsonl_and_parquet(ws):
    jsonl = ws.file("log.jsonl", "".join(json.dumps({"user": "u1", "sku": f"i{k}"}) + "\n" for k in range(3)))
    ws.clean_error(ws.build(jsonl), "log.jsonl", "no item column 'item'", "'sku'")
    parquet = ws.root / "log.parquet"
    pd.DataFrame({"member": ["u1"], "item": ["i1"]}).to_parquet(parquet)
    ws.clean_error(ws.build(parquet), "log.parquet", "no user column 'user'", "'member'")


def test_optional_columns_may_be_missing(ws):
    table, report = ws.read_log(ws.file("log.csv", ws.csv("u1,i1", "u2,i2", header="user,item")))
    assert table["rating"].isna().all() and table["timestamp"].isna().all()
    assert set(table["event"]) == {"interact"}
