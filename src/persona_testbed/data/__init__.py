"""Input data: the manifest of known files, the data directory, fetching from a mirror or the Census.

Other stages need only::

    from persona_testbed.data import resolve
    path = resolve("census/acs/2018/1-Year/csv_pde.zip")   # DataMissingError tells the user the fix
"""

from ..core.errors import DataMissingError
from .census_urls import census_base_url, dictionary_file, parse_target, pums_file
from .fetcher import FetchFailed, FetchResult, fetch
from .manifest import GROUPS, MANIFEST, DataFile, group_files
from .resolver import resolve
from .states import STATES, State, state
from .status import FileStatus, verify

__all__ = [
    "DataFile",
    "DataMissingError",
    "FetchFailed",
    "FetchResult",
    "FileStatus",
    "GROUPS",
    "MANIFEST",
    "STATES",
    "State",
    "census_base_url",
    "dictionary_file",
    "fetch",
    "group_files",
    "parse_target",
    "pums_file",
    "resolve",
    "state",
    "verify",
]
