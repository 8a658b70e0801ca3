//! Rolling Parquet writer (in progress).
