"""scikit-learn-style finite-width networks: the NNGP's prior, trained by gradient descent.

``FiniteMLPRegressor`` and ``FiniteMLPClassifier`` train a :class:`FullyConnected`
network with the NNGP's depth, activation and prior variances on the same regression
targets as the GP (standardised values; one-hot -0.1 / 0.9 for classes), by mean squared
error with SGD or Adam and early stopping on a held-out part of the training data.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from neuroseq.decoding.training import pick_device
from neuroseq.errors import InputError
from neuroseq.nngp.network import ACTIVATION_MODULES, FullyConnected
from neuroseq.nngp.training import OPTIMIZERS, predict_network, train_network
from neuroseq.nngp.validation import (
    fit_data,
    one_hot_targets,
    predict_data,
    regression_targets,
)


class _FiniteMLP(BaseEstimator):
    def __init__(
        self,
        *,
        width: int = 256,
        depth: int = 2,
        activation: str = "relu",
        weight_var: float = 2.0,
        bias_var: float = 0.0,
        optimizer: str = "adam",
        lr: float = 1e-3,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        batch_size: int = 64,
        max_epochs: int = 200,
        patience: int = 20,
        val_fraction: float = 0.15,
        device: str = "auto",
        random_state: int | None = 0,
    ) -> None:
        self.width = width
        self.depth = depth
        self.activation = activation
        self.weight_var = weight_var
        self.bias_var = bias_var
        self.optimizer = optimizer
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.val_fraction = val_fraction
        self.device = device
        self.random_state = random_state

    def _check(self) -> None:
        name = type(self).__name__
        checks = [
            ("width", isinstance(self.width, int | np.integer) and self.width >= 1, "int >= 1"),
            ("depth", isinstance(self.depth, int | np.integer) and self.depth >= 0, "int >= 0"),
            ("activation", self.activation in ACTIVATION_MODULES, str(list(ACTIVATION_MODULES))),
            ("optimizer", self.optimizer in OPTIMIZERS, str(list(OPTIMIZERS))),
            ("weight_var", self.weight_var > 0, "> 0"),
            ("bias_var", self.bias_var >= 0, ">= 0"),
            ("lr", self.lr > 0, "> 0"),
            ("val_fraction", 0 <= self.val_fraction < 1, "in [0, 1)"),
        ]
        for field, ok, expected in checks:
            if not ok:
                raise InputError(name, field, expected, repr(getattr(self, field)))

    def _fit_targets(self, X: np.ndarray, Y: np.ndarray, strata: np.ndarray | None) -> None:
        self._check()
        seed = 0 if self.random_state is None else int(self.random_state)
        rng = np.random.default_rng(seed)
        val = np.zeros(len(X), dtype=bool)
        if self.val_fraction > 0:
            # Held out per class (or at random), so early stopping sees every class.
            groups = strata if strata is not None else np.zeros(len(X), dtype=int)
            for g in np.unique(groups):
                members = rng.permutation(np.flatnonzero(groups == g))
                val[members[: round(self.val_fraction * len(members))]] = True
        self.device_ = pick_device(self.device)
        self.net_ = FullyConnected(
            X.shape[1],
            Y.shape[1],
            width=int(self.width),
            depth=int(self.depth),
            activation=self.activation,
            weight_var=self.weight_var,
            bias_var=self.bias_var,
            generator=torch.Generator().manual_seed(seed),
        )
        self.history_ = train_network(
            self.net_,
            X,
            Y,
            val,
            optimizer=self.optimizer,
            lr=self.lr,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            batch_size=self.batch_size,
            max_epochs=self.max_epochs,
            patience=self.patience,
            seed=seed,
            device=self.device_,
        )
        self.diverged_ = not all(bool(torch.isfinite(p).all()) for p in self.net_.parameters())

    def _outputs(self, X: Any) -> np.ndarray:
        X = predict_data(self, X, "net_")
        return predict_network(self.net_, X, self.device_)


class FiniteMLPRegressor(RegressorMixin, _FiniteMLP):
    """A finite fully connected network trained by MSE on standardised targets.

    Parameters
    ----------
    width, depth : int
        Units per hidden layer, number of hidden layers.
    activation : {"relu", "erf", "linear", "tanh", "sigmoid"}
    weight_var, bias_var : float
        The prior: weights ``N(0, weight_var / fan_in)``, biases ``N(0, bias_var)``.
    optimizer : {"adam", "sgd"}
        Adam, or SGD with ``momentum``; learning rate ``lr``, ``weight_decay``.
    batch_size, max_epochs, patience : int
        Minibatches; early stopping after ``patience`` epochs without a better
        validation loss (the best state is kept).
    val_fraction : float
        Part of the training data held out for early stopping (0: none, train
        ``max_epochs``).
    device : {"auto", "cpu", "cuda"}
        ``auto`` picks CUDA when present.
    random_state : int
        Seeds the initial weights, the validation split and the minibatch order.
    """

    def fit(self, X: Any, y: Any) -> FiniteMLPRegressor:
        """Train on (X, y); ``y`` is (n,) or (n, n_outputs)."""
        X, y = fit_data(self, X, y, classifier=False)
        self._fit_targets(X, regression_targets(self, y), None)
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets."""
        out = self._outputs(X) * self.y_scale_ + self.y_mean_
        return out[:, 0] if self._single_output_ else out


class FiniteMLPClassifier(ClassifierMixin, _FiniteMLP):
    """A finite fully connected network trained by MSE on one-hot targets (-0.1 / 0.9).

    Parameters are those of :class:`FiniteMLPRegressor`; the validation split is drawn
    within each class. The predicted class is the largest output, as for the NNGP.
    """

    def fit(self, X: Any, y: Any) -> FiniteMLPClassifier:
        """Train on (X, labels)."""
        X, y = fit_data(self, X, y, classifier=True)
        self._fit_targets(X, *one_hot_targets(self, y))
        return self

    def predict_mean(self, X: Any) -> np.ndarray:
        """Network outputs per class (n, n_classes)."""
        return self._outputs(X)

    def decision_function(self, X: Any) -> np.ndarray:
        """Outputs per class; for two classes, the second's minus the first's."""
        out = self._outputs(X)
        return out[:, 1] - out[:, 0] if len(self.classes_) == 2 else out

    def predict(self, X: Any) -> np.ndarray:
        """The class with the largest output."""
        out = self._outputs(X)
        return self.classes_[np.argmax(out, axis=1)]
