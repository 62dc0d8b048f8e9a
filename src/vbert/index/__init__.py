"""Search your long documents: an incremental, crash-safe index on an embedded vector store.

import vbert
index = vbert.Index("my-index")                 # default embedder and merger
index.update([("notes.md", open("notes.md").read())])
for hit in index.search("how do I reset the device?", k=5):
    print(hit.score, hit.id, hit.snippet)
"""

from vbert.index.chunking import Chunk, ChunkingSpec, chunk_text
from vbert.index.index import Index, IndexReport, SearchHit
from vbert.index.sources import Document, read_path, read_paths

__all__ = [
    "Chunk",
    "ChunkingSpec",
    "Document",
    "Index",
    "IndexReport",
    "SearchHit",
    "chunk_text",
    "read_path",
    "read_paths",
]
