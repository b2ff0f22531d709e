"""Run records and leaderboard tables."""
