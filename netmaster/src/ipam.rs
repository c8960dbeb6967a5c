//! IPAM: the pure address allocator (being written).
