//! The glommio row of fanbench's runtime trait
