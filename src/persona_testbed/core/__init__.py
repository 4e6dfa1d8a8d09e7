"""The foundation layer: errors, hashing, seeds, settings, output, atomic files, artifact paths, the record
reader, the file-hash cache and shared bands. Imports nothing else from the package."""
