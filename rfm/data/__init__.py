"""From a transaction log to the RFM table: sources, column mapping, cleaning rules, the RFM SQL, the
embedded DuckDB engine, ingest and the demo data. No model, no cloud, no user interface."""
