//! NCTS messages.
