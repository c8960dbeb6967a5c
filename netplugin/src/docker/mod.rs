//! Docker CNM remote network driver and IPAM driver (in progress).
