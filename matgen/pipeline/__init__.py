"""Stage entry points: read a stage's input files, call the library, write its outputs."""
