"""persona-testbed: the PERSONA testbed for pluralistic alignment (arXiv 2407.17387)."""

import os as _os

__version__ = "0.1.0"

# Polars' allocator (jemalloc) keeps freed pages for 10 s by default; mapping a million personas chunk by
# chunk frees and reallocates hundreds of MB per chunk, so returning pages after 0.1 s (with two arenas)
# keeps the peak RSS about 0.15-0.2 GB lower at no measurable cost. It only takes effect when this
# package is imported before polars (as the CLI does); a value the user set wins.
_os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:100,muzzy_decay_ms:0,narenas:2")
