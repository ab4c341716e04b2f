"""Reading NWB files and trial tables; writing every output with provenance."""

from neuroseq.io.ingest import ingest_file, ingest_nwb, ingest_table
from neuroseq.io.output import read_dataset, session_contents, write_dataset

__all__ = [
    "ingest_file",
    "ingest_nwb",
    "ingest_table",
    "read_dataset",
    "session_contents",
    "write_dataset",
]
