"""The in-memory losses: public functions, gradients, the registry of losses and the calls of the kernels."""
