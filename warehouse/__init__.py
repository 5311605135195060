"""The warehouse: immutable Parquet files per table and run, DuckDB views over them."""
