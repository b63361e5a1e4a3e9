"""Exports of designs and plans: preview figures (matplotlib) and GDSII layouts (gdstk)."""
