//! bawaba-bundle (under construction).
