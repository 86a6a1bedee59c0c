//! zt: the RouterOS-style console and tools (idtool, lab)
fn main() {}
