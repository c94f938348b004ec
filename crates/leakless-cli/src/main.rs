mod sockets;
fn main() {}
