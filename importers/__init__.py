"""Readers for the files municipalities have, staging, versioned merge and the demo loader."""
