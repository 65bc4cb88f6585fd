"""`mdr ablate`'s foundations (issue 12): which documents each arm trains on and which it is evaluated on
(`heldout`: held-out selection, decontamination, the readers of `--eval` sets), and what the seeds say about the
arms' differences (`statistics`)."""
