//! The real binary: killed, restarted, stopped.
