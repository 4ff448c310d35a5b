//! bawaba-formats (under construction).
