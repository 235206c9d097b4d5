"""Evolutionary search over ideas: ideators, the archive with duplicate detection, and the
statistics that keep the leaderboard honest."""
