"""The user's tables (Parquet, CSV, JSON Lines) read in chunks: readers.py, with csv_reader.py and
json_lines.py. Below the checks and the front ends (bulk jobs, evaluate, the builds' user data);
pyarrow comes with the [files] extra and is imported only here and in bulk/."""

# The column of a chunk that says why each row could not be read (None for a row that could).
UNREADABLE = "__unreadable__"
