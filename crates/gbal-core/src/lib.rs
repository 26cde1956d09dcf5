//! gbal domain types.
