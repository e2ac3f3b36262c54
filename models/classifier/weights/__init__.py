"""The text classifier's weights (trained by models/classifier/train.py), installed with analyzer as package data."""
