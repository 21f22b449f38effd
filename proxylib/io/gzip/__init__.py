"""Gzip files read as arrays: seek indexes, decoding engines, saved indexes.

* :mod:`.source`: the byte source a proxy reads a ``.gz`` file through, and
  its process-wide state per file identity;
* :mod:`.members`: the member-walking decoder (streams from the start of the
  file, checks every CRC); :mod:`.jump` and :mod:`.deflate_prime`: isal
  decoding restarted at a seek point; :mod:`.parallel`: large reads in threads;
* :mod:`.index_cache` and :mod:`.cache_trust`: saved indexes and why they are
  trusted; :mod:`.build`: ``proxylib.build_index``.
"""

from .config import GzipConfig
from .source import (GZIP_COST, INDEX_SPACING, GzipSource, cost_for_fileobj,
                     decompressor_name, open_gzip_source)

__all__ = ["GzipSource", "GzipConfig", "GZIP_COST", "INDEX_SPACING", "open_gzip_source",
           "cost_for_fileobj", "decompressor_name"]
