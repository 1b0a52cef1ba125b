"""Readers of the real public sources, one module per source, each with its quirks.

:mod:`.tcga` (UCSC Xena GDC hub: matrices, clinical tables, probe map, barcodes, patients) and
:mod:`.met500` (UCSC Xena: matrix, metadata, patients and sequencing libraries). The shared table
reading and validation lives in :mod:`oncoshot.tables`; the steps shared by the bulk sources (gene
ids, units, gene filter, labels, splits) in :mod:`oncoshot.bulk`.
"""
