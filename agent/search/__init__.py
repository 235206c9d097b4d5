"""Evolutionary search over ideas: ideators, the archive with duplicate detection, and the
screening/confirmation split and the verdicts that keep the search's claims honest."""
