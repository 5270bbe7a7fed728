"""The shared kernel: what every bounded context may use."""
