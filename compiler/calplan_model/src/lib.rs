//! The resolved, typed intent, its Calico resources, block placement and BGP graph
