"""Training: the jitted step, the loop, validation, run outputs, preemption and the workdir lock."""
