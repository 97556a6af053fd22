package balancer

// Index is the node's position in its picker: nodes sorted by descending
// priority, configuration order within a priority. A caller that keeps its own
// per-node data (connection pools) in the same order finds it without a map.
func (n *Node) Index() int { return n.index }
