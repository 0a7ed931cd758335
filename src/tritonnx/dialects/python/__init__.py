"""Python-side modules of the tnx and tile dialects, found by MLIR's bindings through
`append_dialect_search_prefix`: every time the bindings wrap an op they look for a module
named after its dialect and, without one, retry the import (thousands of failed imports per
compile). The ops stay generic, so the modules are empty."""
