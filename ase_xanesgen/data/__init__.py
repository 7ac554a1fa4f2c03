"""Data: reading the shared a-C cells and spectra, topology splits, spectrum utilities."""
