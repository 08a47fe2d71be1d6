"""Pure types and rules: specs, statuses, the instance state machine, errors. No I/O."""
