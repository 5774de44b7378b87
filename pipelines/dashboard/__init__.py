"""The read-only views people open: the web dashboard (`okr serve`) and the HTML report.

Both render from the warehouse alone, so they are current after every run.
"""
