//! The ZIP package (placeholder, filled in below).
