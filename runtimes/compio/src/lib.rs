//! The compio row of fanbench's runtime trait
