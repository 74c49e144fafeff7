"""Takarir training: frozen EfficientNet-Lite features -> bilingual transformer caption decoder."""
