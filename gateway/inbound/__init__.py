"""The receiving pipeline (corner 3): POST /as4 → verify/decrypt → store → receipt → hand-over."""
