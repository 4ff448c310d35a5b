//! bawaba-store (under construction).
