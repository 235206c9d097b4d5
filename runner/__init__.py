"""Running a committed candidate: the git workspace it runs in (`workspace`), its steps and
reward (`run`), and where runs execute (`backends`: this machine's slot `scheduler`, or Ray).

This layer sits on `sandbox` (isolation) and `environments` (the manifest); see
docs/architecture.md.
"""
