"""Amazon Athena and S3: the RFM statement rendered for Athena (sqlglot), run through pyathena, and the
cleaned log written to S3 in the layout the Athena table reads."""
