"""Readers of the real public sources, one module per source, each with its quirks.

The shared table reading and validation lives in :mod:`oncoshot.tables`.
"""
