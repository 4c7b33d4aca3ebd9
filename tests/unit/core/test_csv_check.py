from __future__ import annotations

import hashlib
import io
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from airflow_provider_optimizely.core.csv_check import Attribute, CheckOptions, check_csv, check_rows
from airflow_provider_optimizely.core.pii import SaltedHasher

ATTRIBUTES = {
    a.name: a
    for a in [
        Attribute("ltv", "double"),
        Attribute("visits", "long"),
        Attribute("vip", "bool"),
        Attribute("last_seen", "datetime", "yyyy-mm-ddThh:mm:ssZ"),
        Attribute("signup", "datetime", "yyyy-mm-dd"),
        Attribute("seen_ms", "datetime", "epoch"),
        Attribute("category", "string"),
        Attribute("contact", "string"),
        Attribute("email", "string"),
    ]
}
HEADER = "customerId,ltv,visits,vip,last_seen,signup,seen_ms,category\n"
GOOD_ROW = "c1,10.5,3,true,2024-01-31T23:59:59Z,2024-01-31,1706745599000,shoes\n"


def check(text: str | bytes, **options):
    data = text.encode() if isinstance(text, str) else text
    delimiter = options.pop("delimiter", ",")
    opts = CheckOptions(ATTRIBUTES, **options)
    output = io.BytesIO() if opts.rewrites else None
    result = check_csv(io.BytesIO(data), opts, delimiter=delimiter, output=output)
    return result, (output.getvalue().decode() if output is not None else None)


def only_problem(result):
    assert result.problem_count == 1, result.describe_problems()
    return result.problems[0]


def test_a_good_file_passes_and_is_named_by_the_hash_of_its_bytes():
    text = HEADER + GOOD_ROW + GOOD_ROW.replace("c1", "c2")
    result, _ = check(text)
    assert result.problem_count == 0
    assert result.uploadable(skip_bad_rows=False)
    assert (result.rows, result.rows_rejected, result.bytes) == (2, 0, len(text.encode()))
    assert result.content_hash == hashlib.sha256(text.encode()).hexdigest()
    assert result.columns == HEADER.strip().split(",")


def test_customer_id_column_is_found_in_any_case_and_an_empty_string_cell_is_fine():
    result, _ = check("CUSTOMERID,ltv,category\nc1,1.5,\n")
    assert result.problem_count == 0 and result.rows == 1


def test_an_empty_typed_cell_is_refused_by_row_and_column():
    """docs/api-contract.md §3a: whether an empty cell is a valid long is open; under the strict reading one
    fails the whole file, so the client refuses it first (the conservative reading, valid under both)."""
    result, _ = check("customerId,ltv,visits,vip,category\nc1,,,,\nc2,1.5,2,true,\n")
    assert [(p.row, p.column, p.value) for p in result.problems] == [
        (2, "ltv", None),
        (2, "visits", None),
        (2, "vip", None),
    ]
    assert "whether an empty cell is a double is left open" in result.problems[0].message
    assert (result.rows, result.rows_rejected) == (2, 1)


def test_an_unregistered_header_column_is_named_on_row_1():
    problem = only_problem(check("customerId,ltv,colour\nc1,1.5,red\n")[0])
    assert (problem.row, problem.column) == (1, "colour")
    assert "not a registered attribute" in problem.message


def test_a_header_without_customer_id_is_refused():
    result, _ = check("ltv\n1.5\n")
    assert result.file_refused
    assert "no customerId column" in result.problems[0].message


def test_a_column_twice_is_refused():
    problem = only_problem(check("customerId,ltv,ltv\nc1,1,2\n")[0])
    assert (problem.row, problem.column) == (1, "ltv")


@pytest.mark.parametrize(
    ("column", "bad", "reason"),
    [
        ("ltv", "ten", "not a double: 'ten'"),
        ("ltv", "1e5", "not a double: '1e5'"),
        ("vip", "TRUE", "not a bool (true or false): 'TRUE'"),
        ("visits", "+3", "not a long: '+3'"),
        ("visits", "3.5", "not a long: '3.5'"),
        ("vip", "yes", "not a bool (true or false): 'yes'"),
        ("last_seen", "2024-01-31 23:59:59", "yyyy-mm-ddThh:mm:ssZ"),
        ("signup", "2024-02-30", "no calendar date"),
        ("seen_ms", "2024-01-31", "epoch (milliseconds)"),
    ],
)
def test_a_value_of_the_wrong_datatype_is_named_by_row_column_and_value(column, bad, reason):
    cells = dict(zip(HEADER.strip().split(","), GOOD_ROW.strip().split(","), strict=True))
    cells[column] = bad
    text = HEADER + GOOD_ROW + ",".join(cells.values()) + "\n"
    result, _ = check(text)
    problem = only_problem(result)
    assert (problem.row, problem.column, problem.value) == (3, column, bad)
    assert reason in problem.message
    assert not result.uploadable(skip_bad_rows=False)


def test_a_row_without_customer_id_is_named():
    problem = only_problem(check(HEADER + GOOD_ROW + GOOD_ROW.replace("c1", " "))[0])
    assert (problem.row, problem.column) == (3, "customerId")
    assert "customerId is empty" in problem.message


def test_a_row_with_the_wrong_number_of_fields_is_named():
    problem = only_problem(check("customerId,ltv\nc1,1.5\nc2,1.5,extra\n")[0])
    assert problem.row == 3 and "3 fields where the header has 2" in problem.message


def test_doubled_quotes_inside_a_quoted_value_are_fine():
    result, _ = check('customerId,category\nc1,"Height: 6\'1"""\n"c2", "say ""hi"", ok"\n')
    assert result.problem_count == 0, result.describe_problems()


def test_a_bare_quote_inside_an_unquoted_value_is_named():
    problem = only_problem(check("customerId,category\nc1,shoes\nc2,6'1\"\n")[0])
    assert (problem.row, problem.column) == (3, "category")
    assert "doubled" in problem.message


def test_text_after_a_closing_quote_is_refused_with_its_row():
    result, _ = check('customerId,category\nc1,shoes\nc2,"ab"c\n')
    assert result.file_refused
    assert result.problems[0].row == 3 and "not well-formed CSV" in result.problems[0].message


def test_an_unterminated_quote_is_refused():
    result, _ = check('customerId,category\nc1,"shoes\n')
    assert result.file_refused and "not well-formed CSV" in result.problems[0].message


def test_a_value_over_several_lines_is_counted_at_the_line_where_the_record_ends():
    problem = only_problem(check('customerId,category,ltv\nc1,"two\nlines",x\n')[0])
    assert (problem.row, problem.column) == (3, "ltv")


def test_bytes_that_are_not_utf8_are_named_by_row_and_column():
    data = b"customerId,category\nc1,shoes\nc2,caf\xe9\nc3,hats\n"
    result, _ = check(data)
    problem = only_problem(result)
    assert (problem.row, problem.column) == (3, "category")
    assert "not UTF-8" in problem.message


def test_a_bad_byte_far_into_the_file_is_pinned_to_its_own_row():
    rows = [f"c{i},shoes\n".encode() for i in range(5000)]
    rows[4321] = b"c4321,sh\xffoes\n"
    result, _ = check(b"customerId,category\n" + b"".join(rows))
    problem = only_problem(result)
    assert (problem.row, problem.column) == (4323, "category")


def test_a_byte_order_mark_is_tolerated_and_kept_in_the_hash():
    data = b"\xef\xbb\xbf" + (HEADER + GOOD_ROW).encode()
    result, _ = check(data)
    assert result.problem_count == 0
    assert result.content_hash == hashlib.sha256(data).hexdigest()


def test_a_file_at_the_size_limit_is_refused():
    text = HEADER + GOOD_ROW * 100
    result, _ = check(text, max_bytes=1000)
    assert result.file_refused
    assert "DCP takes files under 1,000 bytes" in result.problems[-1].message


def test_tab_separated_files_are_read_with_tabs():
    result, _ = check(HEADER.replace(",", "\t") + GOOD_ROW.replace(",", "\t"), delimiter="\t")
    assert result.problem_count == 0 and result.rows == 1


def test_blank_lines_are_skipped_and_not_counted():
    result, _ = check(HEADER + GOOD_ROW + "\n" + GOOD_ROW.replace("c1", "c2") + "\n")
    assert (result.rows, result.problem_count) == (2, 0)


def test_all_or_nothing_stops_after_the_first_problems_and_reports_them_in_row_order():
    rows = "".join(f"c{i},x{i},{'bad' if i % 2 else i}\n" for i in range(100))
    result, _ = check("customerId,visits,ltv\n" + rows, max_problems=5)
    assert result.stopped_early
    assert [(p.row, p.column) for p in result.problems] == [
        (2, "visits"),
        (3, "visits"),
        (3, "ltv"),
        (4, "visits"),
        (5, "visits"),
    ]
    assert "stopped early" in result.describe_problems()


def test_skipping_bad_rows_writes_only_the_good_ones_and_reports_the_bad():
    text = (
        HEADER + GOOD_ROW + GOOD_ROW.replace("c1", "c2").replace("10.5", "ten") + GOOD_ROW.replace("c1", "c3")
    )
    result, output = check(text, skip_bad_rows=True)
    assert (result.rows, result.rows_rejected, result.rows_accepted) == (3, 1, 2)
    assert only_problem(result).row == 3
    assert result.uploadable(skip_bad_rows=True) and not result.uploadable(skip_bad_rows=False)
    assert [line.split(",")[0] for line in output.splitlines()] == ["customerId", "c1", "c3"]
    assert result.content_hash == hashlib.sha256(output.encode()).hexdigest()
    assert result.bytes == len(output.encode())


def test_a_personal_data_column_is_refused_by_its_name():
    result, _ = check("customerId,email\nc1,x\n")
    problem = only_problem(result)
    assert result.file_refused
    assert (problem.row, problem.column) == (1, "email")
    assert "an email address" in problem.message and "hash_columns" in problem.message


def test_a_personal_data_column_is_refused_by_its_values_without_showing_them():
    result, _ = check("customerId,contact\nc1,call later\nc2,ann.smith@example.com\n")
    problem = only_problem(result)
    assert (problem.row, problem.column) == (3, "contact")
    assert "an email address (by its values)" in problem.message
    assert "ann.smith" not in str(problem.value) and "example.com" not in result.describe_problems()


def test_an_email_past_the_full_sample_is_still_found():
    rows = "".join(f"c{i},note {i}\n" for i in range(30))
    result, _ = check("customerId,contact\n" + rows + "c99,bob@example.org\n", pii_sample_rows=10)
    assert only_problem(result).row == 32


@pytest.mark.parametrize("value", ["+1 415 555 0100", "(415) 555-0100", "078-05-1120"])
def test_phone_numbers_and_social_security_numbers_are_found_by_value(value):
    problem = only_problem(check(f"customerId,contact\nc1,{value}\n")[0])
    assert problem.column == "contact"


def test_a_personal_data_column_named_for_hashing_goes_up_hashed():
    hasher = SaltedHasher("pepper")
    text = "customerId,email,ltv\nc1, Ann@Example.com ,1.5\nc2,,2\n"
    result, output = check(text, hash_columns={"email": hasher})
    assert result.problem_count == 0, result.describe_problems()
    lines = output.splitlines()
    expected = hashlib.sha256(b"pepperann@example.com").hexdigest()
    assert lines[1] == f"c1,{expected},1.5"
    assert lines[2] == "c2,,2"
    assert "Ann@Example.com" not in output


def test_a_hashed_column_must_be_a_string_attribute_and_in_the_header():
    result, _ = check(
        "customerId,ltv\nc1,1\n", hash_columns={"ltv": SaltedHasher("s"), "email": SaltedHasher("s")}
    )
    assert {p.column for p in result.problems} == {"ltv", "email"}
    assert result.file_refused


def test_a_rewrite_needs_an_output_stream():
    with pytest.raises(ValueError, match="output stream"):
        check_csv(io.BytesIO(b""), CheckOptions(ATTRIBUTES, skip_bad_rows=True))


def test_an_empty_file_is_refused():
    assert "needs a header row" in only_problem(check("")[0]).message


def test_sql_rows_are_checked_typed_and_written_as_csv():
    rows = [
        (
            "c1",
            Decimal("10.50"),
            3,
            True,
            datetime(2024, 1, 31, 23, 59, 59, tzinfo=timezone.utc),
            date(2024, 1, 31),
        ),
        ("c2", 1e20, 2**40, False, datetime(2024, 1, 31), date(2024, 2, 29)),
        (None, 1.0, 1, True, None, None),
        ("c4", 1.0, 1.5, True, datetime(2024, 1, 31), date(2024, 2, 29)),
        ("c5", None, 1, True, datetime(2024, 1, 31), date(2024, 2, 29)),
    ]
    output = io.BytesIO()
    columns = ["customerid", "ltv", "visits", "vip", "last_seen", "signup"]
    result = check_rows(columns, rows, CheckOptions(ATTRIBUTES, skip_bad_rows=True), output)
    assert (result.rows, result.rows_rejected) == (5, 3)
    assert [(p.row, p.column, p.value) for p in result.problems] == [
        (3, "customerid", None),
        (4, "visits", "1.5"),
        (5, "ltv", "None"),  # a NULL double: an empty cell, which DCP may refuse (docs/api-contract.md §3a)
    ]
    text = output.getvalue().decode()
    assert text.splitlines() == [
        "customerid,ltv,visits,vip,last_seen,signup",
        "c1,10.50,3,true,2024-01-31T23:59:59Z,2024-01-31",  # every digit of numeric 10.50
        "c2,100000000000000000000,1099511627776,false,2024-01-31T00:00:00Z,2024-02-29",
    ]
    assert result.content_hash == hashlib.sha256(output.getvalue()).hexdigest()


def _many_rows(count: int, bad_at: dict[int, str] | None = None) -> str:
    """``count`` good rows, some quoted (one value spanning two lines); ``bad_at`` replaces rows by index."""
    rows = []
    for i in range(count):
        category = ['"winter, 2025"', '"6\'1"""', '"two\nlines"', "hats"][i % 4] if i % 7 == 0 else "shoes"
        rows.append(f"c{i},{i}.5,{i},true,2024-01-31T23:59:59Z,2024-03-30,{i},{category}\n")
    for i, row in (bad_at or {}).items():
        rows[i] = row
    return HEADER + "".join(rows)


def _check_in_blocks(text: str, block_bytes: int, monkeypatch, **options):
    from airflow_provider_optimizely.core.csv_check import files

    monkeypatch.setattr(files, "BLOCK_BYTES", block_bytes)
    return check(text, **options)


@pytest.mark.parametrize("pii_sample_rows", [0, 10_000])
def test_blocks_read_whole_or_line_by_line_give_the_same_result(monkeypatch, pii_sample_rows):
    bad = {
        50: "c50,1.5,x,true,2024-01-31T23:59:59Z,2024-03-30,1,shoes\n",
        51: "\n",
        400: 'c400,1.5,1,true,2024-01-31T23:59:59Z,2024-03-30,1,sh"oes\n',
        900: "c900,1.5\n",
        1500: ",1.5,1,true,2024-01-31T23:59:59Z,2024-03-30,1,shoes\n",
        1999: "c1999,1.5,1,TRUE,2024-02-29T00:00:00Z,2024-02-30,1,shoes\n",
    }
    text = _many_rows(2000, bad)
    options = {"skip_bad_rows": True, "max_problems": 50, "pii_sample_rows": pii_sample_rows}
    one_block, _ = _check_in_blocks(text, 1 << 24, monkeypatch, **options)
    small_blocks, _ = _check_in_blocks(text, 997, monkeypatch, **options)
    assert one_block.summary() == small_blocks.summary()
    assert [(p.row, p.column) for p in one_block.problems] == [
        (_line_of(text, "c50,"), "visits"),
        (_line_of(text, "c400,"), "category"),
        (_line_of(text, "c900,"), None),
        (_line_of(text, ",1.5,1,true,2024-01-31T23:59:59Z"), "customerId"),
        (_line_of(text, "c1999,"), "vip"),
        (_line_of(text, "c1999,"), "signup"),
    ]
    assert (one_block.rows, one_block.rows_rejected) == (2000 - 1, 5)  # the blank line is not a row


def _line_of(text: str, start: str) -> int:
    return text[: text.index("\n" + start)].count("\n") + 2


def test_a_bad_value_past_the_personal_data_sample_is_named_in_a_block_read_whole(monkeypatch):
    text = _many_rows(3000, {2990: "c2990,1.5,1,true,2024-13-01T00:00:00Z,2024-03-30,1,shoes\n"})
    result, _ = _check_in_blocks(text, 4096, monkeypatch, pii_sample_rows=10)
    problem = only_problem(result)
    found = (problem.row, problem.column, problem.value)
    assert found == (_line_of(text, "c2990,"), "last_seen", "2024-13-01T00:00:00Z")
    assert result.rows == 3000 and result.content_hash == hashlib.sha256(text.encode()).hexdigest()


def test_an_email_past_the_personal_data_sample_is_found_in_a_block_read_whole(monkeypatch):
    text = _many_rows(3000, {2500: "c2500,1.5,1,true,2024-01-31T23:59:59Z,2024-03-30,1,ann@example.com\n"})
    result, _ = _check_in_blocks(text, 4096, monkeypatch, pii_sample_rows=10)
    problem = only_problem(result)
    assert problem.column == "category" and result.file_refused


def test_a_header_only_file_is_refused_with_nothing_to_upload():
    """Issue 10 #14: a header-only file was uploaded as a 0-row file."""
    for text in (HEADER, HEADER.strip(), HEADER + "\n\n"):
        result, _ = check(text)
        assert result.file_refused and not result.uploadable(skip_bad_rows=True)
        assert "has a header and no rows: there is nothing to upload" in only_problem(result).message


def test_a_whitespace_only_header_is_refused():
    result, _ = check(" \nc1\n")
    assert result.file_refused
    assert "the header has no customerId column" in result.describe_problems()


@pytest.mark.parametrize("block_bytes", [64, 1 << 18])
def test_a_nul_byte_is_named_by_row_and_column_and_the_row_refused(monkeypatch, block_bytes):
    """Issue 10 #14: NUL bytes passed through."""
    text = "customerId,category\nc1,shoes\nc2,sh\x00oes\nc3,hats\n"
    result, _ = _check_in_blocks(text, block_bytes, monkeypatch)
    problem = only_problem(result)
    assert (problem.row, problem.column, problem.message) == (3, "category", "the value holds a NUL byte")
    assert (result.rows, result.rows_rejected) == (3, 1)


def test_a_cell_over_the_csv_modules_default_limit_is_checked_like_any(monkeypatch):
    """Issue 10 #4: a cell over 128 KiB ended the check with ``field larger than field limit``."""
    big = "x" * 300_000
    text = f'customerId,category,ltv\nc1,"{big}",1.5\nc2,{big},2\nc3,"a\n{big}",ten\n'
    result, _ = _check_in_blocks(text, 4096, monkeypatch)
    problem = only_problem(result)
    assert (problem.row, problem.column, problem.value) == (5, "ltv", "ten")
    assert result.rows == 3


def test_a_quoted_value_spanning_blocks_keeps_its_line_numbers(monkeypatch):
    rows = "".join(f'c{i},"line {i}\nmore, ""quoted""",{i}.5\n' for i in range(300))
    text = "customerId,category,ltv\n" + rows + "c300,plain,bad\n"
    for block_bytes in (50, 997, 1 << 18):
        result, _ = _check_in_blocks(text, block_bytes, monkeypatch)
        problem = only_problem(result)
        assert (problem.row, problem.column) == (2 + 2 * 300, "ltv"), block_bytes
        assert result.rows == 301 and result.content_hash == hashlib.sha256(text.encode()).hexdigest()


def test_a_quote_after_a_skipped_space_is_read_as_dcps_example_writes_it(monkeypatch):
    """Seed 000 writes ``"CustomerId1", "John Doe", "Height: 6'1\"\"\""``: a space after the comma."""
    text = 'customerId,category,ltv\n"c1", "John Doe", 1.5\n"c2", "Height: 6\'1""", 2\n'
    for block_bytes in (16, 1 << 18):
        result, _ = _check_in_blocks(text, block_bytes, monkeypatch)
        assert result.problem_count == 0 and result.rows == 2, result.describe_problems()
