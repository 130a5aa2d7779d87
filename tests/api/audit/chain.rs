//! The hash chain: verification, tampering, checkpoints, concurrency.
