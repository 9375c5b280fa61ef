"""The one API every face calls: the CLI, the dashboard, the benchmarks and the tests.

Faces parse input and format output; everything in between is here, so a job done from the command
line and from the dashboard gives the same answer:

- `datasets`: a source (files or Athena) and its options -> `Dataset` (RFM table, cleaning report,
  content fingerprint, snapshot, date range); the RFM table to CSV; the statement that runs;
- `models`: sweep, train, save, rename (one atomic write), promote, list versions;
- `segmentation`: a model applied to a dataset, the model/data fit check, the export list, the report;
- `insights`: what the dashboard shows (headline figures, heatmap, a customer against the centroids);
- `scoring`: the configured scoring client.

Settings come from `rfm.config.load_settings()`, read once by each face and passed in. Import the
submodules (`from rfm.service import datasets`): this package imports nothing, so `rfm table` stays
free of pandas and scikit-learn.
"""
