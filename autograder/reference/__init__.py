"""Reference implementations the hidden tests compare student functions with."""
