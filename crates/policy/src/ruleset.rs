//! Placeholder: replaced by the compiled matcher.
