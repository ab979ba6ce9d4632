"""`wslnet check --fix`: apply the fixes that carry an Action, with consent, prove them by
running the affected checks again, and undo the last batch from a journal.

plan.py (which fixes, the answer), script.py (the scripts and command lines), journal.py
(its format) and text.py (what is printed) are pure; shell.py runs the scripts through
system.py and session.py puts the steps in order."""
