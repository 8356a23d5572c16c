"""The school domain: directory, channels, message kinds and their rules. No I/O here."""
