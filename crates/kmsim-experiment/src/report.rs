//! The report (to be written).
