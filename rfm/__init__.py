"""Retail customer segmentation: transactions in, RFM table and K-Means segments out."""

__version__ = "0.1.0"
