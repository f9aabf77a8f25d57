"""One reader per source format; each yields batches of features in the source CRS."""
