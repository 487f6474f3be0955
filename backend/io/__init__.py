"""File input and output: video decoding, motion files, atomic writes."""
