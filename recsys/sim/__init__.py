"""Simulated interaction logs (open-loop now; a closed-loop simulator comes later)."""
