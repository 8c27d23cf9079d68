"""Landed: the HTTP service and its storage, which turn posted events into launch reports."""
