"""Decoding behaviour from population activity: a transformer beside strong baselines."""

from neuroseq.decoding.baselines import KalmanFilterDecoder, WienerFilter
from neuroseq.decoding.estimators import GRUDecoder, TransformerDecoder

__all__ = ["GRUDecoder", "KalmanFilterDecoder", "TransformerDecoder", "WienerFilter"]
